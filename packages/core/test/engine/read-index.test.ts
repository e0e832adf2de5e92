/**
 * ReadIndex in the engine (thesis §6.4): a read is confirmed by a quorum answering a heartbeat
 * round that left after it, concurrent reads share one round, a new leader waits for its first
 * commit, and a leader that loses its quorum confirms nothing.
 */
import { describe, expect, it } from 'vitest';
import { RaftError } from '../../src/errors.js';
import { Network, ofType } from './harness.js';

const THREE = ['n1', 'n2', 'n3'];

const heartbeatsFrom = (net: Network, from: string, since: number) =>
  ofType(
    net.sent.slice(since).map((s) => s.message),
    'heartbeat',
  ).filter((m) => m.from === from);

describe('ReadIndex', () => {
  it('confirms a read at the commit index after one heartbeat round', () => {
    const net = new Network({ voters: THREE });
    net.elect('n1');
    const { index } = net.propose('n1', 'a');
    const n1 = net.node('n1');
    n1.readIndex(7);
    expect(n1.takeReads().confirmed).toEqual([]);
    net.stabilize();
    expect(n1.takeReads()).toEqual({ confirmed: [{ id: 7, index }], dropped: [] });
  });

  it('concurrent reads share one heartbeat round', () => {
    const net = new Network({ voters: THREE });
    net.elect('n1');
    net.propose('n1', 'a');
    const n1 = net.node('n1');
    const since = net.sent.length;
    for (let id = 1; id <= 50; id++) n1.readIndex(id);
    net.stabilize();
    expect(n1.takeReads().confirmed.map((r) => r.id)).toEqual(
      Array.from({ length: 50 }, (_, i) => i + 1),
    );
    // One heartbeat per follower for all fifty reads.
    expect(heartbeatsFrom(net, 'n1', since)).toHaveLength(2);
  });

  it('an answer to an earlier round does not confirm a later read', () => {
    const net = new Network({ voters: THREE });
    net.elect('n1');
    const n1 = net.node('n1');
    n1.readIndex(1);
    net.processAll();
    const round1 = net.queue.filter((m) => m.type === 'heartbeat');
    net.queue = [];
    // A second read registered after round 1 left waits for round 2.
    n1.readIndex(2);
    for (const m of round1) net.deliver(m);
    net.processAll();
    const answers = net.queue.filter((m) => m.type === 'heartbeatResponse');
    net.queue = net.queue.filter((m) => m.type !== 'heartbeatResponse');
    for (const m of answers) net.deliver(m);
    expect(n1.takeReads().confirmed.map((r) => r.id)).toEqual([1]);
    net.stabilize();
    expect(n1.takeReads().confirmed.map((r) => r.id)).toEqual([2]);
  });

  it('a new leader confirms reads only after an entry of its term commits', () => {
    const net = new Network({ voters: THREE });
    net.elect('n1');
    net.propose('n1', 'a');
    const off = net.addDropRule((m) => m.type === 'appendResponse' && m.to === 'n2');
    net.crash('n1');
    net.tickUntil(() => net.status('n2').role === 'leader' || net.status('n3').role === 'leader');
    const leader = net.leader() as string;
    const n = net.node(leader);
    n.readIndex(1);
    net.stabilize();
    if (leader === 'n2') expect(n.takeReads().confirmed).toEqual([]);
    off();
    net.tickAll(3);
    const confirmed = n.takeReads().confirmed;
    expect(confirmed.map((r) => r.id)).toEqual([1]);
    expect(net.status(leader).commitIndex).toBeGreaterThanOrEqual(confirmed[0]?.index ?? 0);
  });

  it('a leader cut off from its quorum confirms nothing, and drops the reads on stepping down', () => {
    const net = new Network({ voters: THREE });
    net.elect('n1');
    net.isolate('n1');
    const n1 = net.node('n1');
    n1.readIndex(1);
    net.tickAll(5, ['n1']);
    expect(n1.takeReads()).toEqual({ confirmed: [], dropped: [] });
    net.tickAll(30, ['n1']);
    expect(n1.status().role).not.toBe('leader');
    expect(n1.takeReads()).toEqual({ confirmed: [], dropped: [1] });
  });

  it('a single voter confirms at once, and a follower refuses with NotLeaderError', () => {
    const solo = new Network({ voters: ['n1'] });
    solo.elect('n1');
    const n1 = solo.node('n1');
    n1.readIndex(3);
    expect(n1.takeReads().confirmed.map((r) => r.id)).toEqual([3]);

    const net = new Network({ voters: THREE });
    net.elect('n1');
    let error: unknown;
    try {
      net.node('n2').readIndex(1);
    } catch (err) {
      error = err;
    }
    expect(RaftError.is(error, 'NOT_LEADER') && error.leaderId).toBe('n1');
  });

  it('a lease is revoked for the rest of the term once TimeoutNow left', () => {
    const net = new Network({ voters: THREE });
    net.elect('n1');
    net.tickAll(2);
    const lease = net.node('n1').lease();
    expect(lease.revoked).toBe(false);
    expect(lease.confirmedRound).toBeGreaterThan(0);
    net.crash('n3');
    net.node('n1').transferLeadership('n2');
    net.processAll();
    expect(net.node('n1').lease().revoked).toBe(true);
  });
});
