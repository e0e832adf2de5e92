/**
 * Exactly-once commands over a 3-node in-memory cluster: the same SessionCommand proposed again
 * (on the leader, through a follower, after a leader change, after snapshots and restarts, on a
 * follower that caught up by InstallSnapshot) returns the first result, and the inner state
 * machine applies it exactly once on every node.
 */
import { describe, expect, it } from 'vitest';
import type { SessionCommand } from '../../src/index.js';
import { ApplyError, RaftError } from '../../src/index.js';
import { track } from '../runtime/helpers.js';
import type { SessionTestNode } from './session-cluster.js';
import { SessionCluster } from './session-cluster.js';

const first: SessionCommand<number> = { clientId: 'client-1', seq: 1, command: 5 };
const second: SessionCommand<number> = { clientId: 'client-1', seq: 2, ack: 0, command: 7 };

/** Every node applied `command` to its inner state machine exactly `times` times. */
function expectApplied(nodes: readonly SessionTestNode[], command: number, times: number): void {
  for (const n of nodes) expect(n.inner.count(command), `node ${n.id}`).toBe(times);
}

describe('exactly-once commands over a cluster', () => {
  it('a duplicate on the leader, and one through a follower, get the first result', async () => {
    const c = await SessionCluster.create();
    const leader = await c.electLeader();
    const follower = c.nodes.find((n) => n !== leader) as SessionTestNode;
    const r1 = await c.settle(leader.node.propose(first));
    expect(r1.result).toBe(5);
    expect((await c.settle(leader.node.propose(second))).result).toBe(12);
    const again = await c.settle(leader.node.propose(first));
    expect(again.result).toBe(5); // not 17
    expect(again.index).toBeGreaterThan(r1.index); // a new entry, answered from the table
    const forwarded = await c.settle(follower.node.propose(first));
    expect(forwarded.result).toBe(5);
    await c.waitApplied(forwarded.index);
    expectApplied(c.nodes, 5, 1);
    expectApplied(c.nodes, 7, 1);
    for (const n of c.nodes) {
      expect(n.inner.total).toBe(12);
      expect(n.sm.session('client-1')).toMatchObject({ keptSeqs: [1, 2] });
    }
    await c.stopAll();
  });

  it('a retry on the new leader after a leader change is answered from the replicated table', async () => {
    const c = await SessionCluster.create();
    const old = await c.electLeader();
    const r1 = await c.settle(old.node.propose(first));
    await c.waitApplied(r1.index);
    c.network.disconnect(old.id);
    const others = c.nodes.filter((n) => n !== old);
    const fresh = await c.electLeader(others);
    expect(fresh).not.toBe(old);
    const retry = await c.settle(fresh.node.propose(first));
    expect(retry.result).toBe(5);
    c.network.connect(old.id);
    await c.waitApplied(retry.index);
    expectApplied(c.nodes, 5, 1);
    await c.stopAll();
  });

  it('a command whose fate is unknown to its client (its leader was cut off) applies once when retried elsewhere', async () => {
    const c = await SessionCluster.create();
    const old = await c.electLeader();
    await c.settle(old.node.propose({ ...first, command: 1 }));
    const lost = track(old.node.propose(second));
    c.network.disconnect(old.id); // the proposal may or may not have left
    const others = c.nodes.filter((n) => n !== old);
    const fresh = await c.electLeader(others);
    const retry = await c.settle(fresh.node.propose(second));
    expect(retry.result).toBe(8);
    c.network.connect(old.id);
    await c.runUntil(() => lost.settled, 300, 'the first attempt settles');
    // The first attempt either failed (its entry was overwritten) or, had it committed, would
    // have had the same result; either way the command applied once.
    if (lost.value !== undefined) expect(lost.value.result).toBe(8);
    else expect(RaftError.is(lost.error)).toBe(true);
    await c.waitApplied(retry.index);
    expectApplied(c.nodes, 7, 1);
    for (const n of c.nodes) expect(n.inner.total).toBe(8);
    await c.stopAll();
  });

  it('after a snapshot and a restart of every node, retries are answered from the restored table', async () => {
    const c = await SessionCluster.create();
    const leader = await c.electLeader();
    await c.settle(leader.node.propose(first));
    const r2 = await c.settle(leader.node.propose(second));
    await c.waitApplied(r2.index);
    for (const n of c.nodes) await c.settle(n.node.takeSnapshot());
    const restarted: SessionTestNode[] = [];
    for (const n of [...c.nodes]) restarted.push(await c.restart(n));
    await Promise.all(restarted.map((n) => n.node.start()));
    for (const n of restarted) {
      expect(n.inner.restores).toHaveLength(1); // restored, not replayed
      expect(n.inner.total).toBe(12);
      expect(n.sm.session('client-1')).toMatchObject({ keptSeqs: [1, 2] });
    }
    const leader2 = await c.electLeader();
    const follower = restarted.find((n) => n !== leader2) as SessionTestNode;
    expect((await c.settle(leader2.node.propose(first))).result).toBe(5);
    const retry = await c.settle(follower.node.propose(second));
    expect(retry.result).toBe(12);
    await c.waitApplied(retry.index);
    expectApplied(restarted, 5, 0); // not applied again after the restart
    expectApplied(restarted, 7, 0);
    // A new command applies once; its ack makes every node forget seqs 1 and 2.
    const third = await c.settle(
      leader2.node.propose({ clientId: 'client-1', seq: 3, ack: 2, command: 1 }),
    );
    expect(third.result).toBe(13);
    const late = await c.settle(leader2.node.propose(first)).catch((e: unknown) => e);
    expect(RaftError.is(late, 'APPLY_FAILED')).toBe(true);
    expect(RaftError.is((late as ApplyError).cause, 'SESSION_EXPIRED')).toBe(true);
    await c.waitApplied((late as ApplyError).index);
    for (const n of restarted) {
      expect(n.inner.total).toBe(13);
      expect(n.sm.session('client-1')).toMatchObject({ ackedThrough: 2, keptSeqs: [3] });
    }
    await c.stopAll();
  });

  it('a follower that catches up by InstallSnapshot dedups like the others', async () => {
    const c = await SessionCluster.create();
    const leader = await c.electLeader();
    const lagging = c.nodes.find((n) => n !== leader) as SessionTestNode;
    c.network.disconnect(lagging.id);
    await c.settle(leader.node.propose(first));
    const r2 = await c.settle(leader.node.propose(second));
    const others = c.nodes.filter((n) => n !== lagging);
    await c.waitApplied(r2.index, others);
    await c.settle(leader.node.takeSnapshot()); // compacts the log: lagging needs the snapshot
    c.network.connect(lagging.id);
    await c.runUntil(() => lagging.inner.restores.length === 1, 300, 'the snapshot installs');
    const retry = await c.settle(lagging.node.propose(first));
    expect(retry.result).toBe(5);
    await c.waitApplied(retry.index);
    expect(lagging.inner.applied).toEqual([]); // everything came in the snapshot
    expect(lagging.inner.total).toBe(12);
    expectApplied(others, 5, 1);
    expect(lagging.sm.sessions()).toEqual(leader.sm.sessions());
    await c.stopAll();
  });

  it('a command of an unknown session is an ApplyError (SESSION_EXPIRED) on every node; a bad envelope never enters the log', async () => {
    const c = await SessionCluster.create();
    const leader = await c.electLeader();
    const err = await c
      .settle(leader.node.propose({ clientId: 'ghost', seq: 4, command: 1 }))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApplyError);
    const cause = (err as ApplyError).cause;
    expect(RaftError.is(cause, 'SESSION_EXPIRED')).toBe(true);
    expect((cause as Error).message).toMatch(/start a new client id/);
    await c.waitApplied((err as ApplyError).index);
    for (const n of c.nodes) {
      expect(n.sm.sessions()).toEqual([]);
      expect(n.inner.applied).toEqual([]);
    }
    const before = leader.node.status().lastLogIndex;
    const bad = await leader.node
      .propose({ clientId: '', seq: 1, command: 1 })
      .catch((e: unknown) => e);
    expect(RaftError.is(bad, 'INVALID_ARGUMENT')).toBe(true);
    expect((bad as RaftError).outcome).toBe('notApplied');
    expect(leader.node.status().lastLogIndex).toBe(before);
    await c.stopAll();
  });
});
