/**
 * Regressions found while testing the runtime API (issue #2):
 * - stop() during start() left a running node behind;
 * - a forwarded command the leader refused as too large came back as NO_LEADER;
 * - a failed node kept reporting itself as leader, and propose() hid its fatal error.
 */
import { describe, expect, it } from 'vitest';
import { NotLeaderError, RaftError } from '../../src/index.js';
import { Cluster, membershipOf, nextTurn, track } from '../runtime/helpers.js';

describe('issue #2: runtime lifecycle and forwarding regressions', () => {
  it('stop() during start() leaves the node stopped, with no timer, transport or leadership', async () => {
    const c = new Cluster({ ids: ['a'] });
    const a = c.add('a');
    const open = a.logStore.open.bind(a.logStore);
    a.logStore.open = async () => {
      await nextTurn();
      await nextTurn();
      return open();
    };
    const started = track(a.node.start({ bootstrap: membershipOf(['a']) }));
    const stopped = track(a.node.stop());
    await c.run(50);
    expect(stopped.settled && stopped.error === undefined).toBe(true);
    expect(started.settled).toBe(true);
    expect(RaftError.is(started.error, 'SHUTDOWN')).toBe(true);
    expect(a.node.state).toBe('stopped');
    expect(a.node.status().role).toBe('follower');
    expect(c.clock.pendingTimers).toBe(0);
    await expect(a.node.propose(1)).rejects.toMatchObject({ code: 'SHUTDOWN' });
  });

  it('a forwarded command that the leader finds too large rejects with ENTRY_TOO_LARGE', async () => {
    const c = new Cluster();
    c.add('a', { maxCommandBytes: 4 });
    c.add('b', { maxCommandBytes: 4 });
    c.add('c', { maxCommandBytes: 100 });
    await Promise.all(c.nodes.map((n) => n.node.start({ bootstrap: membershipOf(c.ids) })));
    const leader = await c.electLeader(c.nodes.filter((n) => n.id !== 'c'));
    expect(leader.id).not.toBe('c');
    const result = track(c.get('c').node.propose(12345));
    await c.runUntil(() => result.settled, 50, 'the forwarded proposal to settle');
    expect(result.error).toBeInstanceOf(RaftError);
    expect(result.error).not.toBeInstanceOf(NotLeaderError);
    expect((result.error as RaftError).code).toBe('ENTRY_TOO_LARGE');
    expect((result.error as RaftError).retryable).toBe(false);
    await c.stopAll();
  });

  it('a failed leader reports itself as a follower and propose() rejects with its fatal error', async () => {
    const c = await Cluster.create();
    const leader = await c.electLeader();
    leader.logStore.failAppendWith = new Error('disk on fire');
    const first = track(leader.node.propose(1));
    await c.runUntil(() => leader.node.state === 'failed', 50, 'the leader to fail');
    expect(first.settled).toBe(true);
    expect(RaftError.is(first.error, 'STORAGE')).toBe(true);
    expect(leader.node.status()).toMatchObject({ role: 'follower', leaderId: null });
    expect(leader.node.status().progress).toBeUndefined();
    const later = track(leader.node.propose(2));
    await c.run(1);
    // Nothing of the later call was appended; its cause is what made the node fail.
    expect(later.error).toMatchObject({ code: 'STORAGE', outcome: 'notApplied' });
    expect(((later.error as Error).cause as Error).message).toBe('append failed');
    await c.stopAll();
  });
});
