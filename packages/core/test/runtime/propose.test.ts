import { describe, expect, it } from 'vitest';
import { NotLeaderError, RaftError } from '../../src/index.js';
import type { TestNode } from './helpers.js';
import { Cluster, track } from './helpers.js';

/** Every `roleChanged: leader` event of the cluster, as term -> leader ids. */
function leadersByTerm(nodes: readonly TestNode[]): Map<number, Set<string>> {
  const byTerm = new Map<number, Set<string>>();
  for (const n of nodes) {
    for (const e of n.events) {
      if (e.type !== 'roleChanged' || e.role !== 'leader') continue;
      const ids = byTerm.get(e.term) ?? new Set<string>();
      ids.add(n.id);
      byTerm.set(e.term, ids);
    }
  }
  return byTerm;
}

describe('election and replication', () => {
  it('elects exactly one leader in a 3-node cluster, and keeps it', async () => {
    const c = await Cluster.create();
    const leader = await c.electLeader();
    // Stay a while: a stable cluster keeps its leader and never has two.
    for (let i = 0; i < 50; i++) {
      await c.step();
      expect(c.leaders().map((n) => n.id)).toEqual([leader.id]);
    }
    const term = leader.node.status().term;
    for (const n of c.nodes) {
      expect(n.node.status()).toMatchObject({ term, leaderId: leader.id });
      expect(n.node.status().members.map((m) => m.id)).toEqual(['a', 'b', 'c']);
    }
    for (const ids of leadersByTerm(c.nodes).values()) expect(ids.size).toBe(1);
    expect(leader.node.status().progress).toBeDefined();
    expect(c.followersOf(leader)[0]?.node.status().progress).toBeUndefined();
    await c.stopAll();
  });

  it('propose on the leader resolves with the result and the entry position', async () => {
    const c = await Cluster.create();
    const leader = await c.electLeader();
    const before = leader.node.status();

    const r = await c.settle(leader.node.propose(5));
    expect(r).toEqual({ index: before.lastLogIndex + 1, term: before.term, result: 5 });
    const r2 = await c.settle(leader.node.propose(-2));
    expect(r2).toEqual({ index: r.index + 1, term: before.term, result: 3 });
    expect(leader.node.status().commitIndex).toBeGreaterThanOrEqual(r2.index);
    expect(leader.node.status().appliedIndex).toBeGreaterThanOrEqual(r2.index);
    await c.stopAll();
  });

  it('every node applies the same commands in the same order', async () => {
    const c = await Cluster.create({ seed: 7 });
    const leader = await c.electLeader();
    // Proposals made in one turn are batched; then a few more, one by one.
    const batch = [1, 2, 3, 4, 5].map((n) => track(leader.node.propose(n)));
    await c.runUntil(() => batch.every((t) => t.settled), 50, 'batch applied');
    const results = batch.map((t) => t.value?.result);
    expect(results).toEqual([1, 3, 6, 10, 15]);
    let last = 0;
    for (const n of [10, 20, 30]) last = (await c.settle(leader.node.propose(n))).index;

    await c.waitApplied(last);
    const expected = leader.sm.applied;
    expect(expected.map((a) => a.command)).toEqual([1, 2, 3, 4, 5, 10, 20, 30]);
    for (const n of c.nodes) {
      expect(n.sm.applied).toEqual(expected);
      expect(n.sm.total).toBe(75);
    }
    // Indices are strictly increasing and all of this leader's term.
    const indices = expected.map((a) => a.index);
    expect([...indices].sort((x, y) => x - y)).toEqual(indices);
    expect(new Set(expected.map((a) => a.term))).toEqual(new Set([leader.node.status().term]));
    await c.stopAll();
  });

  it('a single-node cluster elects itself and commits', async () => {
    const c = await Cluster.create({ ids: ['solo'] });
    const solo = await c.electLeader();
    expect(solo.id).toBe('solo');
    const r = await c.settle(solo.node.propose(42));
    expect(r.result).toBe(42);
    expect(solo.sm.commands).toEqual([42]);
    expect(solo.node.status()).toMatchObject({ role: 'leader', leaderId: 'solo' });
    await c.stopAll();
  });

  it('a different seed still converges (no reliance on one schedule)', async () => {
    for (const seed of [2, 3, 4]) {
      const c = await Cluster.create({ seed, ids: ['a', 'b', 'c', 'd', 'e'] });
      const leader = await c.electLeader();
      const r = await c.settle(leader.node.propose(1));
      await c.waitApplied(r.index);
      for (const n of c.nodes) expect(n.sm.commands).toEqual([1]);
      await c.stopAll();
    }
  });
});

describe('proposals on a follower', () => {
  it("forwards by default and resolves once applied on the follower ('forward')", async () => {
    const c = await Cluster.create();
    const leader = await c.electLeader();
    const follower = c.followersOf(leader)[0] as TestNode;

    await c.settle(leader.node.propose(100));
    const r = await c.settle(follower.node.propose(1));
    expect(r.result).toBe(101);
    expect(r.term).toBe(leader.node.status().term);
    // The promise resolved once the entry applied on the follower itself.
    expect(follower.sm.applied.at(-1)).toEqual({ index: r.index, term: r.term, command: 1 });
    expect(follower.node.status().appliedIndex).toBeGreaterThanOrEqual(r.index);
    // ... and it is replicated, not a local side effect.
    await c.waitApplied(r.index);
    for (const n of c.nodes) expect(n.sm.commands).toEqual([100, 1]);
    await c.stopAll();
  });

  it('forwards many proposals from several followers', async () => {
    const c = await Cluster.create();
    const leader = await c.electLeader();
    const proposals = c.nodes.flatMap((n, i) =>
      [1, 2, 3].map((k) => ({ from: n, p: track(n.node.propose(i * 10 + k)) })),
    );
    await c.runUntil(() => proposals.every(({ p }) => p.settled), 50, 'all proposals settled');
    for (const { from, p } of proposals) {
      expect(p.error).toBeUndefined();
      const value = p.value;
      expect(value).toBeDefined();
      if (value === undefined) continue;
      // The result is the running total at that index, as this node's state machine saw it.
      const prefix = from.sm.applied.filter((a) => a.index <= value.index);
      expect(value.result).toBe(prefix.reduce((s, a) => s + a.command, 0));
    }
    await c.waitApplied(leader.node.status().commitIndex);
    for (const n of c.nodes) expect(n.sm.applied).toEqual(leader.sm.applied);
    expect(leader.sm.commands.sort((x, y) => x - y)).toEqual([1, 2, 3, 11, 12, 13, 21, 22, 23]);
    await c.stopAll();
  });

  it("rejects with NotLeaderError naming the leader ('reject')", async () => {
    const c = await Cluster.create({ options: { followerProposals: 'reject' } });
    const leader = await c.electLeader();
    const follower = c.followersOf(leader)[0] as TestNode;
    const lastBefore = follower.node.status().lastLogIndex;

    const err = await follower.node.propose(1).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotLeaderError);
    expect(err).toMatchObject({ code: 'NOT_LEADER', leaderId: leader.id, retryable: true });
    expect(RaftError.is(err, 'NOT_LEADER')).toBe(true);
    expect(RaftError.is(err)).toBe(true);
    expect(RaftError.is(err, 'NO_LEADER')).toBe(false);
    expect((err as Error).name).toBe('NotLeaderError');

    // Nothing was appended anywhere.
    await c.run(5);
    expect(follower.node.status().lastLogIndex).toBe(lastBefore);
    expect(leader.node.status().lastLogIndex).toBe(lastBefore);
    // The leader still accepts proposals in 'reject' mode.
    expect((await c.settle(leader.node.propose(3))).result).toBe(3);
    await c.stopAll();
  });

  it('rejects with code NO_LEADER while no leader is known, in either mode', async () => {
    for (const followerProposals of ['forward', 'reject'] as const) {
      const c = await Cluster.create({ options: { followerProposals } });
      // Just started: nobody has timed out yet, nobody knows a leader.
      const a = c.get('a');
      expect(a.node.status().leaderId).toBeNull();
      const err = await a.node.propose(1).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(NotLeaderError);
      expect(err).toMatchObject({ code: 'NO_LEADER', leaderId: null });
      expect(RaftError.is(err, 'NO_LEADER')).toBe(true);
      expect(RaftError.is(err, 'NOT_LEADER')).toBe(false);
      await c.stopAll();
    }
  });

  it('RaftError.is() recognises errors by brand, not by class identity', () => {
    const real = new NotLeaderError('b');
    // A structurally identical error from "another copy" of the package carries the same
    // Symbol.for brand; a plain object with a code does not.
    const foreign = Object.assign(new Error('x'), { code: 'NOT_LEADER' });
    Object.defineProperty(foreign, Symbol.for('@raft/error'), { value: true });
    expect(RaftError.is(real, 'NOT_LEADER')).toBe(true);
    expect(RaftError.is(foreign, 'NOT_LEADER')).toBe(true);
    expect(RaftError.is({ code: 'NOT_LEADER' }, 'NOT_LEADER')).toBe(false);
    expect(RaftError.is(null)).toBe(false);
    expect(RaftError.is('NOT_LEADER')).toBe(false);
  });

  it('status() before start() is an empty follower', () => {
    const c = new Cluster();
    const a = c.add('a');
    expect(a.node.state).toBe('created');
    expect(a.node.status()).toEqual({
      id: 'a',
      role: 'follower',
      term: 0,
      leaderId: null,
      commitIndex: 0,
      appliedIndex: 0,
      lastLogIndex: 0,
      snapshotIndex: 0,
      members: [],
    });
  });

  it('propose() before start() rejects with UNAVAILABLE', async () => {
    const c = new Cluster();
    const a = c.add('a');
    await expect(a.node.propose(1)).rejects.toMatchObject({ code: 'UNAVAILABLE' });
  });
});
