import { describe, expect, it } from 'vitest';
import { LeadershipLostError, RaftError, TimeoutError } from '../../src/index.js';
import type { TestNode } from './helpers.js';
import { Cluster, FakeAbortSignal, TIMING, track } from './helpers.js';

/** A minimal AbortSignal (core compiles without DOM types). */
/** A cluster with an elected leader that is then cut off from its followers. */
async function isolatedLeader(
  options = {},
): Promise<{ c: Cluster; leader: TestNode; others: TestNode[] }> {
  const c = await Cluster.create({ options });
  const leader = await c.electLeader();
  c.network.disconnect(leader.id);
  return { c, leader, others: c.followersOf(leader) };
}

describe('timeouts', () => {
  it('a proposal that cannot commit rejects with TimeoutError after requestTimeoutMs', async () => {
    const { c, leader } = await isolatedLeader();
    const lastBefore = leader.node.status().lastLogIndex;
    const p = track(leader.node.propose(1));
    // The leader appended it locally: the outcome really is unknown to the caller.
    await c.clock.advance(0);
    expect(leader.node.status().lastLogIndex).toBe(lastBefore + 1);

    await c.clock.advance(TIMING.requestTimeoutMs - 1);
    expect(p.settled).toBe(false);
    await c.clock.advance(1);
    expect(p.settled).toBe(true);
    expect(p.error).toBeInstanceOf(TimeoutError);
    expect(p.error).toMatchObject({ code: 'TIMEOUT', outcome: 'unknown', retryable: false });
    expect(RaftError.is(p.error, 'TIMEOUT')).toBe(true);
    await c.stopAll();
  });

  it('proposals made at different times each get their own deadline', async () => {
    // Without CheckQuorum the cut-off leader stays leader and keeps accepting proposals.
    const { c, leader } = await isolatedLeader({ checkQuorum: false });
    const first = track(leader.node.propose(1));
    await c.clock.advance(300);
    expect(leader.node.status().role).toBe('leader');
    const second = track(leader.node.propose(2));
    await c.clock.advance(TIMING.requestTimeoutMs - 300);
    expect(first.error).toBeInstanceOf(TimeoutError);
    expect(second.settled).toBe(false);
    await c.clock.advance(299);
    expect(second.settled).toBe(false);
    await c.clock.advance(1);
    expect(second.error).toBeInstanceOf(TimeoutError);
    await c.stopAll();
  });

  it('a per-call timeoutMs overrides requestTimeoutMs, shorter or longer', async () => {
    const { c, leader } = await isolatedLeader();
    const short = track(leader.node.propose(1, { timeoutMs: 200 }));
    const long = track(leader.node.propose(2, { timeoutMs: 1500 }));
    const dflt = track(leader.node.propose(3));

    await c.clock.advance(199);
    expect([short.settled, long.settled, dflt.settled]).toEqual([false, false, false]);
    await c.clock.advance(1);
    expect(short.error).toBeInstanceOf(TimeoutError);
    await c.clock.advance(800);
    expect(dflt.error).toBeInstanceOf(TimeoutError);
    expect(long.settled).toBe(false);
    await c.clock.advance(500);
    expect(long.error).toBeInstanceOf(TimeoutError);
    expect(long.error).toMatchObject({ code: 'TIMEOUT', outcome: 'unknown' });
    await c.stopAll();
  });

  it('rejects an invalid per-call timeoutMs with INVALID_ARGUMENT, appending nothing', async () => {
    const c = await Cluster.create();
    const leader = await c.electLeader();
    const lastBefore = leader.node.status().lastLogIndex;
    for (const timeoutMs of [0, -5, Number.NaN, Number.POSITIVE_INFINITY]) {
      await expect(leader.node.propose(1, { timeoutMs })).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
      });
    }
    await c.run(3);
    expect(leader.node.status().lastLogIndex).toBe(lastBefore);
    await c.stopAll();
  });

  it("a timed-out proposal may still apply: outcome 'unknown' is honest", async () => {
    const c = await Cluster.create();
    const leader = await c.electLeader();
    c.network.disconnect(leader.id);
    const p = track(leader.node.propose(7, { timeoutMs: 30 }));
    await c.clock.advance(30);
    expect(p.error).toBeInstanceOf(TimeoutError);
    // Heal well before anyone's election timeout: the same leader replicates the entry.
    c.network.connect(leader.id);
    await c.runUntil(
      () => c.nodes.every((n) => n.sm.commands.includes(7)),
      50,
      'the timed-out command applied everywhere',
    );
    expect(c.leaders()).toEqual([leader]);
    await c.stopAll();
  });

  it('a forwarded proposal whose leader is unreachable times out', async () => {
    const c = await Cluster.create();
    const leader = await c.electLeader();
    const follower = c.followersOf(leader)[0] as TestNode;
    c.network.disconnect(leader.id);
    const p = track(follower.node.propose(1));
    await c.clock.advance(TIMING.requestTimeoutMs);
    expect(p.error).toBeInstanceOf(TimeoutError);
    await c.stopAll();
  });
});

describe('AbortSignal', () => {
  it('rejects with ABORTED when the signal aborts, with the reason as cause', async () => {
    const { c, leader } = await isolatedLeader();
    const signal = new FakeAbortSignal();
    const p = track(leader.node.propose(1, { signal }));
    expect(signal.listenerCount).toBe(1);
    await c.clock.advance(50);
    expect(p.settled).toBe(false);

    const reason = new Error('client went away');
    signal.abort(reason);
    await c.clock.advance(0);
    expect(p.settled).toBe(true);
    expect(RaftError.is(p.error, 'ABORTED')).toBe(true);
    expect((p.error as Error).cause).toBe(reason);
    expect(signal.listenerCount).toBe(0);
    await c.stopAll();
  });

  it('an already-aborted signal rejects at once and appends nothing', async () => {
    const c = await Cluster.create();
    const leader = await c.electLeader();
    const lastBefore = leader.node.status().lastLogIndex;
    const signal = new FakeAbortSignal();
    signal.abort('gone');
    const p = track(leader.node.propose(1, { signal }));
    // No virtual time passes and no event-loop turn: a microtask is enough.
    await Promise.resolve();
    expect(p.settled).toBe(true);
    expect(p.error).toMatchObject({ code: 'ABORTED', cause: 'gone' });
    expect(signal.listenerCount).toBe(0);
    await c.run(3);
    expect(leader.node.status().lastLogIndex).toBe(lastBefore);
    expect(leader.sm.commands).toEqual([]);
    await c.stopAll();
  });

  it('removes its abort listener once the proposal resolves; a late abort is harmless', async () => {
    const c = await Cluster.create();
    const leader = await c.electLeader();
    const signal = new FakeAbortSignal();
    const r = await c.settle(leader.node.propose(4, { signal, timeoutMs: 500 }));
    expect(r.result).toBe(4);
    expect(signal.listenerCount).toBe(0);
    signal.abort();
    await c.run(2);
    expect(leader.node.state).toBe('running');
    await c.stopAll();
  });

  it('a signal shared by several proposals aborts all of them', async () => {
    const { c, leader } = await isolatedLeader();
    const signal = new FakeAbortSignal();
    const ps = [1, 2, 3].map((n) => track(leader.node.propose(n, { signal })));
    expect(signal.listenerCount).toBe(3);
    signal.abort();
    await c.clock.advance(0);
    for (const p of ps) expect(RaftError.is(p.error, 'ABORTED')).toBe(true);
    expect(signal.listenerCount).toBe(0);
    await c.stopAll();
  });
});

describe('leadership lost', () => {
  it('a partitioned leader’s proposal rejects with LEADERSHIP_LOST once it is overwritten', async () => {
    const { c, leader: old, others } = await isolatedLeader();
    const oldTerm = old.node.status().term;
    const lost = track(old.node.propose(1000));
    await c.clock.advance(0);
    const lostIndex = old.node.status().lastLogIndex;

    // The majority side elects a new leader and commits past the lost entry's index.
    const fresh = await c.electLeader(others);
    expect(fresh.node.status().term).toBeGreaterThan(oldTerm);
    let last = 0;
    for (const n of [1, 2, 3]) last = (await c.settle(fresh.node.propose(n))).index;
    expect(last).toBeGreaterThanOrEqual(lostIndex);
    expect(lost.settled).toBe(false);

    // Heal: the old leader learns the new term and its entry is replaced.
    c.network.connect(old.id);
    await c.runUntil(() => lost.settled, 100, 'the old proposal settled');
    expect(lost.error).toBeInstanceOf(LeadershipLostError);
    expect(lost.error).toMatchObject({ code: 'LEADERSHIP_LOST', retryable: true });

    await c.waitApplied(last);
    for (const n of c.nodes) {
      expect(n.sm.commands).toEqual([1, 2, 3]);
      expect(n.sm.commands).not.toContain(1000);
      expect(n.node.status().leaderId).toBe(fresh.id);
    }
    expect(c.leaders()).toEqual([fresh]);
    await c.stopAll();
  });

  it('the partitioned leader steps down by CheckQuorum within an election timeout', async () => {
    const { c, leader } = await isolatedLeader();
    await c.runUntil(
      () => leader.node.status().role !== 'leader',
      2 * (TIMING.electionTimeoutMs / TIMING.tickMs) + 1,
      'old leader stepped down',
    );
    expect(leader.node.status().leaderId).toBeNull();
    await c.stopAll();
  });
});
