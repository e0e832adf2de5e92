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
import { bootstrapState, DEFAULT_CONFIG, entry, seededRandom } from '../engine/harness.js';
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
