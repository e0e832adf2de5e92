/**
 * `node.read()` through the public API: ReadIndex on the leader and on followers, shared
 * heartbeat rounds, leases, stale reads, and reads that cannot be confirmed.
 */
import { describe, expect, it } from 'vitest';
import type { RaftMessage } from '../../src/index.js';
import { Cluster, clustersPerTest, type TestNode, track } from './helpers.js';

const clusters = clustersPerTest();
const threeNodes = clusters.withLeader;

/** Counts the heartbeats the network carries from `from` while `fn` runs. */
function countHeartbeats(c: Cluster, from: string): { readonly count: number; stop(): void } {
  const counter = { count: 0, stop: () => {} };
  counter.stop = c.network.onSend((m: RaftMessage) => {
    if (m.type === 'heartbeat' && m.from === from) counter.count++;
  });
  return counter;
}

describe('linearizable reads (ReadIndex)', () => {
  it('on the leader: resolves once every write completed before it is applied', async () => {
    const { c, leader } = await threeNodes();
    const w = await c.settle(leader.node.propose(5));
    const r = await c.settle(leader.node.read());
    expect(r.index).toBeGreaterThanOrEqual(w.index);
    expect(leader.sm.total).toBe(5);
    // No entry was written for the read.
    expect(leader.node.status().lastLogIndex).toBe(w.index);
  });

  it('on a follower: asks the leader for the index, serves once applied locally', async () => {
    const { c, leader } = await threeNodes();
    const follower = c.followersOf(leader)[0] as TestNode;
    const w = await c.settle(leader.node.propose(9));
    const r = await c.settle(follower.node.read());
    expect(r.index).toBeGreaterThanOrEqual(w.index);
    expect(follower.sm.total).toBe(9);
    expect(follower.node.status().appliedIndex).toBeGreaterThanOrEqual(w.index);
  });

  it('concurrent reads share heartbeat rounds', async () => {
    const { c, leader } = await threeNodes();
    await c.settle(leader.node.propose(1));
    const hb = countHeartbeats(c, leader.id);
    const reads = Array.from({ length: 200 }, () => track(leader.node.read()));
    await c.runUntil(() => reads.every((r) => r.settled), 50, 'reads');
    hb.stop();
    expect(reads.every((r) => r.error === undefined)).toBe(true);
    // One round (two heartbeats) for all of them, plus at most a periodic one meanwhile.
    expect(hb.count).toBeLessThanOrEqual(4);
  });

  it('a leader cut off from its quorum rejects reads with a typed error within the timeout', async () => {
    const { c, leader } = await threeNodes();
    c.network.disconnect(leader.id);
    const err = await c.rejection(leader.node.read({ timeoutMs: 500 }), 100);
    expect(['NOT_LEADER', 'NO_LEADER', 'TIMEOUT']).toContain(err.code);
    c.network.connect(leader.id);
  });

  it('a node that knows no leader rejects at once with NO_LEADER', async () => {
    const c = await clusters.create();
    const a = c.get('a');
    const err = await c.rejection(a.node.read(), 5);
    expect(err).toMatchObject({ code: 'NO_LEADER', retryable: true });
  });

  it('stale reads resolve at once with the applied index', async () => {
    const { c, leader } = await threeNodes();
    const follower = c.followersOf(leader)[0] as TestNode;
    c.network.disconnect(follower.id);
    const r = await c.settle(follower.node.read({ consistency: 'stale' }), 1);
    expect(r.index).toBe(follower.node.status().appliedIndex);
    c.network.connect(follower.id);
  });

  it('validates its options', async () => {
    const { c, leader } = await threeNodes();
    expect(
      await c.rejection(leader.node.read({ consistency: 'eventual' as never }), 2),
    ).toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(await c.rejection(leader.node.read({ timeoutMs: -1 }), 2)).toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    expect(await c.rejection(leader.node.read({ consistency: 'lease' }), 2)).toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
  });
});

describe('lease reads', () => {
  it('the leader serves within its lease without a heartbeat round', async () => {
    const { c, leader } = await threeNodes({ options: { leaseReads: true } });
    await c.settle(leader.node.propose(4));
    await c.run(3);
    const hb = countHeartbeats(c, leader.id);
    const r = await c.settle(leader.node.read({ consistency: 'lease' }), 1);
    hb.stop();
    expect(hb.count).toBe(0);
    expect(leader.sm.total).toBe(4);
    expect(r.index).toBe(leader.node.status().commitIndex);
  });

  it('after the lease lapses (no quorum), falls back to ReadIndex, which fails', async () => {
    const { c, leader } = await threeNodes({ options: { leaseReads: true } });
    await c.settle(leader.node.propose(4));
    c.network.disconnect(leader.id);
    await c.run(12);
    const err = await c.rejection(leader.node.read({ consistency: 'lease', timeoutMs: 300 }), 100);
    expect(['NOT_LEADER', 'NO_LEADER', 'TIMEOUT']).toContain(err.code);
    c.network.connect(leader.id);
  });

  it('leaseReads needs checkQuorum', async () => {
    expect(() =>
      new Cluster({ options: { leaseReads: true, checkQuorum: false } }).add('x'),
    ).toThrow(/checkQuorum/);
    expect(() => new Cluster({ options: { maxClockDrift: 0.9 } }).add('x')).toThrow(
      /maxClockDrift/,
    );
  });
});
