/**
 * Regressions from the review of the core (issue #12). Each failed on the code before its fix:
 * 1. a malformed append (entries that do not follow prevIndex) corrupted a follower's log;
 * 2. a forwarded proposal could be applied twice (a late copy reaching a later leader);
 * 3. a log store that lost committed entries went unnoticed;
 * 4. a freshly elected leader counted every follower as recently active;
 * 5. a caught-up follower in probe state stayed there until the next proposal;
 * 6. a slow state machine (a long apply queue) stopped heartbeats and deposed the leader;
 * 7. proposals pending at stop() or at a storage failure did not say their outcome is unknown.
 */
import { describe, expect, it } from 'vitest';
import { RawNode } from '../../src/engine/index.js';
import type { AppendMessage, RaftMessage, Transport, TransportHandlers } from '../../src/index.js';
import {
  createRaftNode,
  decodeMessage,
  encodeMessage,
  MemoryLogStore,
  MemoryStableStore,
  RaftError,
} from '../../src/index.js';
import { bootstrapState, DEFAULT_CONFIG, entry, Network, seededRandom } from '../engine/harness.js';
import type { NodeOptions } from '../runtime/helpers.js';
import { Cluster, Counter, decimalCodec, membershipOf, track } from '../runtime/helpers.js';

const ids = ['n1', 'n2', 'n3'];

function follower(id: string): RawNode {
  const n = new RawNode({ ...DEFAULT_CONFIG, id, random: seededRandom(7) }, bootstrapState(ids));
  n.advance(n.ready());
  return n;
}

describe('issue #12 (1): malformed appends never reach a follower log', () => {
  const malformed: AppendMessage = {
    type: 'append',
    from: 'n1',
    to: 'n2',
    term: 2,
    prevIndex: 1,
    prevTerm: 1,
    entries: [entry(7, 2), entry(8, 2)],
    commit: 0,
  };

  it('the wire format cannot carry entries that do not follow prevIndex', () => {
    expect(() => encodeMessage(malformed)).toThrow(/follow prevIndex/);
    const wellFormed = { ...malformed, entries: [entry(2, 2), entry(3, 2)] };
    const decoded = decodeMessage(encodeMessage(wellFormed)) as AppendMessage;
    expect(decoded.entries.map((e) => e.index)).toEqual([2, 3]);
  });

  it('the engine drops such an append: no entries, no acknowledgement', () => {
    const n2 = follower('n2');
    n2.step(malformed);
    const rd = n2.hasReady() ? n2.ready() : undefined;
    expect(rd?.entries ?? []).toEqual([]);
    const acks = [...(rd?.messages ?? []), ...(rd?.messagesAfterPersist ?? [])].filter(
      (m) => m.type === 'appendResponse' && m.success,
    );
    expect(acks).toEqual([]);
    expect(n2.status().lastLogIndex).toBe(1);
  });

  it('the engine also drops entries whose terms go backwards or exceed the sender term', () => {
    for (const entries of [[entry(2, 3), entry(3, 2)], [entry(2, 5)]]) {
      const n2 = follower('n2');
      n2.step({ ...malformed, term: 3, entries });
      expect(n2.status().lastLogIndex).toBe(1);
    }
  });

  it('a leader ignores an acknowledgement past its own log', async () => {
    const c = await Cluster.create();
    const leader = await c.electLeader();
    const follower = c.followersOf(leader)[0] as (typeof c.nodes)[number];
    const { term, lastLogIndex } = leader.node.status();
    c.network.transport(follower.id).send([
      {
        type: 'appendResponse',
        from: follower.id,
        to: leader.id,
        term,
        success: true,
        matchIndex: lastLogIndex + 50,
      },
    ]);
    await c.run(3);
    expect(leader.node.status().progress?.[follower.id]?.match).toBeLessThanOrEqual(lastLogIndex);
    expect(leader.node.status().role).toBe('leader');
    expect(leader.node.status().commitIndex).toBeLessThanOrEqual(lastLogIndex);
    await c.stopAll();
  });
});

describe('issue #12 (2): a forwarded proposal applies at most once', () => {
  it('a late copy of a forward that reaches a later leader is not appended again', async () => {
    const c = new Cluster();
    const captured: RaftMessage[] = [];
    for (const id of c.ids) {
      const inner = c.network.transport(id);
      const capturing: Transport = {
        start: (h) => inner.start(h),
        setPeers: (p) => inner.setPeers(p),
        close: () => inner.close(),
        send: (messages) => {
          for (const m of messages) if (m.type === 'propose') captured.push(m);
          inner.send(messages);
        },
      };
      c.add(id, { transport: capturing });
    }
    await Promise.all(c.nodes.map((n) => n.node.start({ bootstrap: membershipOf(c.ids) })));
    const leader = await c.electLeader();
    const f = c.followersOf(leader)[0] as (typeof c.nodes)[number];
    const r = await c.settle(f.node.propose(7));
    await c.waitApplied(r.index);
    expect(captured).toHaveLength(1);
    // The leader restarts on its disk; a new leader (of a later term) is elected.
    await c.settle(leader.node.stop());
    const restarted = c.add(leader.id, {
      logStore: leader.logStore,
      stableStore: leader.stableStore,
    });
    await c.settle(restarted.node.start());
    const next = await c.electLeader();
    expect(next.node.status().term).toBeGreaterThan(r.term);
    // The network delivers the old forward again, late, to whoever leads now.
    const late = { ...(captured[0] as RaftMessage), to: next.id };
    c.network.transport(f.id).send([late]);
    await c.run(10);
    const mark = await c.settle(next.node.propose(8));
    await c.waitApplied(mark.index);
    for (const n of c.nodes) {
      expect(n.sm.applied.filter((a) => a.command === 7)).toEqual([
        { index: r.index, term: r.term, command: 7 },
      ]);
    }
    await c.stopAll();
  });
});

describe('issue #12 (3): a log store that lost committed entries', () => {
  it('start() fails with a StorageError naming the commit index and the last entry', async () => {
    const logStore = new MemoryLogStore();
    const stableStore = new MemoryStableStore();
    const c = new Cluster({ ids: ['a'] });
    const a = c.add('a', {});
    await c.settle(a.node.start({ bootstrap: membershipOf(['a']) }));
    await c.electLeader();
    for (let i = 1; i <= 3; i++) await c.settle(a.node.propose(i));
    await c.stopAll();
    // The log keeps entries 1-2 of the 5 that were committed (a restored backup, a lost file).
    const entries = a.logStore.inner.snapshotEntries().slice(0, 2);
    await logStore.append(entries);
    await stableStore.save({ term: a.node.status().term, votedFor: 'a', commit: 5 });
    const node = createRaftNode({
      id: 'a',
      stateMachine: new Counter(),
      codec: decimalCodec,
      logStore,
      stableStore,
      transport: c.network.transport('a'),
      clock: c.clock,
    });
    const err = await node.start().catch((e: unknown) => e);
    expect(RaftError.is(err, 'STORAGE')).toBe(true);
    expect((err as Error).message).toMatch(/commit index 5 is past the last log entry 2/);
    expect(node.state).toBe('failed');
    await c.settle(node.stop());
  });
});

describe('issue #12 (4): a leader isolated right after its election', () => {
  it('steps down after one election timeout, not two', async () => {
    const c = new Cluster();
    for (const id of c.ids) c.add(id);
    let isolatedAt = -1;
    let isolated = '';
    for (const n of c.nodes) {
      n.node.subscribe((e) => {
        // Synchronously, before the new leader's first messages leave.
        if (e.type === 'roleChanged' && e.role === 'leader' && isolated === '') {
          isolated = n.id;
          isolatedAt = c.clock.now();
          c.network.disconnect(n.id);
        }
      });
    }
    await Promise.all(c.nodes.map((n) => n.node.start({ bootstrap: membershipOf(c.ids) })));
    await c.runUntil(() => isolated !== '', 200, 'a leader');
    const leader = c.get(isolated);
    await c.runUntil(() => leader.node.status().role !== 'leader', 40, 'the leader to step down');
    // electionTimeoutMs is 100 in the test timing; the first CheckQuorum round sees nobody.
    expect(c.clock.now() - isolatedAt).toBeLessThanOrEqual(100 + 10);
    await c.stopAll();
  });
});

describe('issue #12 (5): a caught-up follower in probe state', () => {
  it('returns to replicate at the next heartbeat, without a proposal', async () => {
    const c = new Cluster();
    const handlers = new Map<string, TransportHandlers>();
    for (const id of c.ids) {
      const inner = c.network.transport(id);
      c.add(id, {
        transport: {
          start: (h) => {
            handlers.set(id, h);
            return inner.start(h);
          },
          setPeers: (p) => inner.setPeers(p),
          close: () => inner.close(),
          send: (m) => inner.send(m),
        },
      });
    }
    await Promise.all(c.nodes.map((n) => n.node.start({ bootstrap: membershipOf(c.ids) })));
    const leader = await c.electLeader();
    const f = c.followersOf(leader)[0] as (typeof c.nodes)[number];
    await c.settle(leader.node.propose(1));
    await c.run(5);
    expect(leader.node.status().progress?.[f.id]?.state).toBe('replicate');
    handlers.get(leader.id)?.onUnreachable?.(f.id);
    expect(leader.node.status().progress?.[f.id]?.state).toBe('probe');
    // Heartbeats every 30 ms: a few of them, and no proposal.
    await c.run(10);
    expect(leader.node.status().progress?.[f.id]).toMatchObject({
      state: 'replicate',
      match: leader.node.status().lastLogIndex,
    });
    await c.stopAll();
  });
});

describe('issue #12 (6): a slow state machine', () => {
  it('bounds the apply queue without holding back heartbeats: the leader keeps leading', async () => {
    const c = new Cluster({ options: { requestTimeoutMs: 60_000 } });
    let release: (() => void) | null = null;
    let slowOn = '';
    class BlockingCounter extends Counter {
      constructor(private readonly id: string) {
        super();
      }
      override apply(command: number, at: { index: number; term: number }): number {
        const result = super.apply(command, at);
        if (command === -1 && this.id === slowOn) {
          return new Promise<number>((resolve) => {
            release = () => resolve(result);
          }) as unknown as number;
        }
        return result;
      }
    }
    const machines = new Map<string, BlockingCounter>();
    for (const id of c.ids) {
      const sm = new BlockingCounter(id);
      machines.set(id, sm);
      c.add(id, { stateMachine: sm });
    }
    await Promise.all(c.nodes.map((n) => n.node.start({ bootstrap: membershipOf(c.ids) })));
    const leader = await c.electLeader();
    const term = leader.node.status().term;
    slowOn = leader.id;
    const blocker = track(leader.node.propose(-1));
    // More proposals than the bound (65,536 by default), in bursts, while the leader's state
    // machine is stuck on the first one.
    const proposals: ReturnType<typeof track<unknown>>[] = [];
    for (let burst = 0; burst < 16; burst++) {
      for (let i = 0; i < 5000; i++) proposals.push(track(leader.node.propose(1)));
      await c.run(1);
    }
    // Ten election timeouts later the leader still leads the same term.
    await c.run(100);
    for (const n of c.nodes) expect(n.node.status()).toMatchObject({ term, leaderId: leader.id });
    const dropped = proposals.filter((p) => RaftError.is(p.error, 'PROPOSAL_DROPPED'));
    expect(dropped.length).toBeGreaterThan(0);
    for (const p of dropped)
      expect(p.error).toMatchObject({ outcome: 'notApplied', retryable: true });
    // Once the state machine moves again, everything accepted applies.
    (release as unknown as () => void)();
    await c.runUntil(() => blocker.settled, 200, 'the blocked apply');
    await c.runUntil(() => proposals.every((p) => p.settled), 500, 'every proposal settled');
    const accepted = proposals.filter((p) => p.error === undefined).length;
    expect(accepted + dropped.length).toBe(proposals.length);
    expect(machines.get(leader.id)?.total).toBe(accepted - 1);
    await c.stopAll();
  }, 60_000);
});

describe('issue #12 (7): outcome honesty', () => {
  it('a proposal pending at stop() rejects with SHUTDOWN and outcome unknown', async () => {
    const c = await Cluster.create();
    const leader = await c.electLeader();
    for (const f of c.followersOf(leader)) c.network.disconnect(f.id);
    const p = track(leader.node.propose(1));
    await c.run(1);
    await c.settle(leader.node.stop());
    expect(p.error).toMatchObject({ code: 'SHUTDOWN', outcome: 'unknown' });
    const after = await leader.node.propose(2).catch((e: unknown) => e);
    expect(after).toMatchObject({ code: 'SHUTDOWN', outcome: 'notApplied' });
    await c.stopAll();
  });

  it('a proposal pending when storage fails rejects with STORAGE and outcome unknown', async () => {
    const c = await Cluster.create();
    const leader = await c.electLeader();
    leader.logStore.failAppendWith = new Error('disk on fire');
    const p = track(leader.node.propose(1));
    await c.runUntil(() => p.settled, 20, 'the proposal to settle');
    expect(p.error).toMatchObject({ code: 'STORAGE', outcome: 'unknown' });
    await c.stopAll();
  });

  it('rejections before anything is appended say notApplied; timeouts say unknown', async () => {
    const c = await Cluster.create({ options: { followerProposals: 'reject' } });
    const leader = await c.electLeader();
    const f = c.followersOf(leader)[0] as (typeof c.nodes)[number];
    await expect(f.node.propose(1)).rejects.toMatchObject({
      code: 'NOT_LEADER',
      outcome: 'notApplied',
    });
    await expect(leader.node.propose(Number.NaN)).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      outcome: 'notApplied',
    });
    for (const other of c.followersOf(leader)) c.network.disconnect(other.id);
    const timedOut = track(leader.node.propose(2, { timeoutMs: 50 }));
    await c.runUntil(() => timedOut.settled, 20, 'the timeout');
    expect(timedOut.error).toMatchObject({ code: 'TIMEOUT', outcome: 'unknown' });
    await c.stopAll();
  });
});

describe('issue #12 (8): a lone voter never sends as leader before its term is durable', () => {
  it('a restart that lost the term cannot put two entries at one (index, term)', () => {
    const ids = ['v'];
    const init = () => bootstrapState(ids, ['l']);
    const enc = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));
    const learner = new RawNode({ ...DEFAULT_CONFIG, id: 'l', random: seededRandom(2) }, init());
    learner.advance(learner.ready());
    const exchange = (from: RawNode, to: RawNode): void => {
      if (!from.hasReady()) return;
      const rd = from.ready();
      for (const m of [...rd.messages, ...rd.messagesAfterPersist]) to.step(m);
      from.advance(rd);
    };
    // The voter elects itself (term 2) and proposes A; it crashes before that Ready is durable,
    // so only what the Ready allowed to leave before persisting reached the learner.
    let voter = new RawNode({ ...DEFAULT_CONFIG, id: 'v', random: seededRandom(1) }, init());
    voter.advance(voter.ready());
    voter.campaign();
    voter.propose(enc('A'));
    const lost = voter.ready();
    for (const m of lost.messages) learner.step(m);
    expect(lost.messages.filter((m) => m.type === 'append')).toEqual([]);
    // It restarts on what was durable (term 1), leads term 2 again and proposes B.
    voter = new RawNode({ ...DEFAULT_CONFIG, id: 'v', random: seededRandom(1) }, init());
    voter.advance(voter.ready());
    voter.campaign();
    voter.propose(enc('B'));
    for (let i = 0; i < 10; i++) {
      exchange(voter, learner);
      exchange(learner, voter);
    }
    const last = voter.status().lastLogIndex;
    expect(learner.status().lastLogIndex).toBe(last);
    expect(learner.status().commitIndex).toBe(voter.status().commitIndex);
  });
});

describe('issue #12 (9): back-pressure applies to forwarded proposals and only on the leader', () => {
  /** A started cluster whose state machine on `stuck()`'s node never finishes an apply. */
  async function clusterWithStuckNode(options: NodeOptions, stuck: () => string) {
    class Stuck extends Counter {
      constructor(private readonly id: string) {
        super();
      }
      override apply(command: number, at: { index: number; term: number }): number {
        if (this.id === stuck()) return new Promise<number>(() => {}) as unknown as number;
        return super.apply(command, at);
      }
    }
    const c = new Cluster({ options });
    for (const id of c.ids) c.add(id, { stateMachine: new Stuck(id) });
    await Promise.all(c.nodes.map((n) => n.node.start({ bootstrap: membershipOf(c.ids) })));
    const leader = await c.electLeader();
    const follower = c.followersOf(leader)[0] as (typeof c.nodes)[number];
    return { c, leader, f: follower };
  }

  it('the leader refuses forwards past maxPendingEntries', async () => {
    let stuck = '';
    const { c, leader, f } = await clusterWithStuckNode(
      { maxPendingEntries: 100, requestTimeoutMs: 500 },
      () => stuck,
    );
    stuck = leader.id;
    const forwarded = Array.from({ length: 300 }, (_, i) => track(f.node.propose(i + 1)));
    await c.run(20);
    const dropped = forwarded.filter((p) => RaftError.is(p.error, 'PROPOSAL_DROPPED'));
    expect(dropped.length).toBeGreaterThan(0);
    for (const p of dropped) expect(p.error).toMatchObject({ outcome: 'notApplied' });
    const s = leader.node.status();
    expect(s.lastLogIndex - s.appliedIndex).toBeLessThanOrEqual(101);
    await c.stopAll();
  });

  it('a follower far behind in reject mode answers NOT_LEADER with the leader, not PROPOSAL_DROPPED', async () => {
    let stuck = '';
    const { c, leader, f } = await clusterWithStuckNode(
      { maxPendingEntries: 10, followerProposals: 'reject' },
      () => stuck,
    );
    stuck = f.id;
    for (let i = 0; i < 30; i++) await c.settle(leader.node.propose(i + 1));
    await c.run(3);
    const err = await f.node.propose(1).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'NOT_LEADER', leaderId: leader.id });
    await c.stopAll();
  });
});

describe('issue #12 (10): a write that fails while stop() waits for it', () => {
  it('makes stop() reject with StorageError; the node ends stopped', async () => {
    const c = await Cluster.create({ ids: ['solo'] });
    const solo = await c.electLeader();
    await c.run(2);
    let failWrite: ((err: Error) => void) | null = null;
    solo.logStore.append = () =>
      new Promise<void>((_resolve, reject) => {
        failWrite = reject;
      });
    const p = track(solo.node.propose(1));
    await c.run(1);
    const stopped = track(solo.node.stop());
    await c.run(1);
    (failWrite as unknown as (err: Error) => void)(new Error('disk on fire'));
    await c.runUntil(() => stopped.settled, 50, 'stop()');
    expect(RaftError.is(stopped.error, 'STORAGE')).toBe(true);
    expect(solo.node.state).toBe('stopped');
    expect(p.error).toMatchObject({ code: 'SHUTDOWN', outcome: 'unknown' });
  });
});

describe('issue #12 (11): acknowledgements that arrive out of order', () => {
  it('do not multiply the appends in flight (no message storm)', () => {
    const net = new Network({
      voters: ['n1'],
      learners: ['n2'],
      config: { maxEntriesPerAppend: 1, maxInflightAppends: 64 },
    });
    net.elect('n1');
    net.stabilize();
    const leader = net.node('n1');
    for (let i = 0; i < 300; i++) leader.propose(Uint8Array.of(i & 0xff));
    // A network that reorders: each round it delivers a random half of what is in flight (the
    // rest stays in flight), and no time passes.
    const random = seededRandom(11);
    const start = net.sent.length;
    const appendsSent = (): number =>
      net.sent.slice(start).filter((s) => s.message.type === 'append').length;
    for (let round = 0; round < 200; round++) {
      net.processAll();
      const inFlight = net.queue;
      net.queue = [];
      const later: typeof inFlight = [];
      for (const m of inFlight) (random() < 0.5 ? net.queue : later).push(m);
      net.deliverQueued();
      net.queue = later;
    }
    // 300 entries, one per append: 121 appends with the fix, 3,305 without (seed 11).
    expect(appendsSent()).toBeLessThan(1000);
    // Time passes (ticks), in order: the learner catches up.
    net.tickUntil(() => net.status('n2').lastLogIndex === leader.status().lastLogIndex, 200);
    expect(net.status('n2').commitIndex).toBe(leader.status().commitIndex);
  });
});
