import { describe, expect, it } from 'vitest';
import type { ApplyContext, HardState, RaftEvent, StateMachine } from '../../src/index.js';
import { decodeMembership, MemoryStableStore, RaftError, StorageError } from '../../src/index.js';
import type { TestNode } from './helpers.js';
import { Cluster, membershipOf, TICK_MS, TIMING, track } from './helpers.js';

const HS: HardState = { term: 1, votedFor: null, commit: 0 };

/** Proposes each command on `leader` in turn; returns the last index. */
async function proposeAll(c: Cluster, leader: TestNode, commands: number[]): Promise<number> {
  let last = 0;
  for (const n of commands) last = (await c.settle(leader.node.propose(n))).index;
  return last;
}

describe('stop()', () => {
  it('rejects pending proposals with SHUTDOWN, closes the stores, and is idempotent', async () => {
    const c = await Cluster.create();
    const leader = await c.electLeader();
    c.network.disconnect(leader.id);
    const pending = [
      track(leader.node.propose(1)),
      track(leader.node.propose(2, { timeoutMs: 5000 })),
    ];
    await c.run(2);
    expect(pending.some((p) => p.settled)).toBe(false);

    const first = track(leader.node.stop());
    const second = track(leader.node.stop());
    expect(leader.node.state).toBe('stopping');
    await c.runUntil(() => first.settled && second.settled, 10, 'stop() settled');
    expect([first.error, second.error]).toEqual([undefined, undefined]);
    expect(leader.node.state).toBe('stopped');
    for (const p of pending) {
      expect(RaftError.is(p.error, 'SHUTDOWN')).toBe(true);
    }
    // Once more after it finished: still fine, closes nothing twice.
    await c.settle(leader.node.stop());
    expect(leader.logStore.closeCalls).toBe(1);

    // The stores are closed.
    await expect(leader.logStore.inner.read(1, 1)).rejects.toMatchObject({ code: 'STORAGE' });
    await expect(leader.stableStore.save(HS)).rejects.toMatchObject({ code: 'STORAGE' });
    // propose() after stop: SHUTDOWN; status() still answers.
    await expect(leader.node.propose(3)).rejects.toMatchObject({ code: 'SHUTDOWN' });
    expect(leader.node.status().id).toBe(leader.id);
    await c.stopAll();
  });

  it('rejects forwarded proposals waiting on a follower with SHUTDOWN', async () => {
    const c = await Cluster.create();
    const leader = await c.electLeader();
    const follower = c.followersOf(leader)[0] as TestNode;
    c.network.disconnect(leader.id);
    const p = track(follower.node.propose(1));
    await c.run(2);
    expect(p.settled).toBe(false);
    await c.settle(follower.node.stop());
    expect(RaftError.is(p.error, 'SHUTDOWN')).toBe(true);
    await c.stopAll();
  });

  it('leaves no timers behind', async () => {
    const c = await Cluster.create();
    const leader = await c.electLeader();
    c.network.disconnect(leader.id);
    track(leader.node.propose(1));
    track(leader.node.propose(2, { timeoutMs: 3000 }));
    await c.stopAll();
    expect(c.clock.pendingTimers).toBe(0);
    expect(c.nodes.map((n) => n.node.state)).toEqual(['stopped', 'stopped', 'stopped']);
  });

  it('a stopped leader is replaced; the rest of the cluster carries on', async () => {
    const c = await Cluster.create();
    const leader = await c.electLeader();
    await proposeAll(c, leader, [1]);
    await c.settle(leader.node.stop());
    const others = c.followersOf(leader);
    const fresh = await c.electLeader(others);
    const last = await proposeAll(c, fresh, [2]);
    await c.waitApplied(last, others);
    for (const n of others) expect(n.sm.commands).toEqual([1, 2]);
    await c.stopAll();
  });

  it('waits for a hung storage write no longer than requestTimeoutMs', async () => {
    const c = await Cluster.create({ ids: ['solo'] });
    const solo = await c.electLeader();
    const store = solo.logStore;
    store.append = () => new Promise<void>(() => {});
    const p = track(solo.node.propose(1));
    await c.run(2);
    const started = c.clock.now();
    const stopped = track(solo.node.stop());
    await c.runUntil(() => stopped.settled, 2 * (TIMING.requestTimeoutMs / TICK_MS), 'stop()');
    expect(c.clock.now() - started).toBeLessThanOrEqual(TIMING.requestTimeoutMs + TICK_MS);
    expect(stopped.error).toBeUndefined();
    expect(solo.node.state).toBe('stopped');
    expect(RaftError.is(p.error, 'SHUTDOWN')).toBe(true);
    expect(store.closeCalls).toBe(1);
  });

  it('stop() before start() just marks the node stopped', async () => {
    const c = new Cluster();
    const a = c.add('a');
    await c.settle(a.node.stop());
    expect(a.node.state).toBe('stopped');
    await expect(a.node.propose(1)).rejects.toMatchObject({ code: 'SHUTDOWN' });
    await expect(a.node.start()).rejects.toBeInstanceOf(RaftError);
  });
});

describe('restart recovery', () => {
  it('a restarted follower recovers term, membership and log, replays, and rejoins', async () => {
    const c = await Cluster.create();
    const leader = await c.electLeader();
    const first = await proposeAll(c, leader, [1, 2, 3]);
    await c.waitApplied(first);
    const old = c.followersOf(leader)[0] as TestNode;
    const before = old.node.status();
    await c.settle(old.node.stop());

    // While it is down the others keep committing.
    const second = await proposeAll(c, leader, [4]);

    const again = c.add(old.id, { logStore: old.logStore, stableStore: old.stableStore });
    expect(again.sm.total).toBe(0);
    await c.settle(again.node.start());
    const after = again.node.status();
    expect(after.term).toBe(before.term);
    expect(after.members).toEqual(before.members);
    expect(after.lastLogIndex).toBeGreaterThanOrEqual(first);

    // The committed commands replay into the fresh state machine, then it catches up.
    await c.runUntil(() => again.sm.commands.length >= 3, 5, 'replay');
    expect(again.sm.commands.slice(0, 3)).toEqual([1, 2, 3]);
    await c.waitApplied(second, [again]);
    const third = await proposeAll(c, leader, [5]);
    await c.waitApplied(third);
    for (const n of c.nodes) {
      expect(n.sm.applied).toEqual(leader.sm.applied);
      expect(n.sm.total).toBe(15);
    }
    expect(again.node.status().leaderId).toBe(leader.id);
    await c.stopAll();
  });

  it('a whole cluster restarts from its stores without bootstrap', async () => {
    const c = await Cluster.create({ seed: 11 });
    const leader = await c.electLeader();
    const last = await proposeAll(c, leader, [10, 20]);
    await c.waitApplied(last);
    const term = leader.node.status().term;
    const applied = leader.sm.applied;
    await c.stopAll();

    for (const n of [...c.nodes]) {
      c.add(n.id, { logStore: n.logStore, stableStore: n.stableStore });
    }
    await c.settle(Promise.all(c.nodes.map((n) => n.node.start())));
    const next = await c.electLeader();
    expect(next.node.status().term).toBeGreaterThan(term);
    const r = await c.settle(next.node.propose(5));
    expect(r.result).toBe(35);
    await c.waitApplied(r.index);
    for (const n of c.nodes) {
      expect(n.sm.applied.slice(0, 2)).toEqual(applied);
      expect(n.sm.commands).toEqual([10, 20, 5]);
    }
    await c.stopAll();
  });
});

describe('bootstrap', () => {
  it('is ignored on non-empty storage', async () => {
    const c = await Cluster.create();
    const leader = await c.electLeader();
    await proposeAll(c, leader, [1]);
    const old = c.followersOf(leader)[0] as TestNode;
    await c.settle(old.node.stop());
    const entries = old.logStore.inner.snapshotEntries();

    // A single-member bootstrap would make it leader of its own cluster if it were honoured.
    const again = c.add(old.id, { logStore: old.logStore, stableStore: old.stableStore });
    await c.settle(again.node.start({ bootstrap: membershipOf([old.id]) }));
    expect(again.node.status().members.map((m) => m.id)).toEqual(['a', 'b', 'c']);
    const first = again.logStore.inner.snapshotEntries()[0];
    expect(first).toEqual(entries[0]);
    expect(decodeMembership((first as { data: Uint8Array }).data).members).toHaveLength(3);

    await c.run(40);
    expect(c.leaders()).toEqual([leader]);
    expect(again.node.status().leaderId).toBe(leader.id);
    await c.stopAll();
  });

  it('empty storage without bootstrap: no members, never a leader', async () => {
    const c = new Cluster({ ids: ['x'] });
    const x = c.add('x');
    await c.settle(x.node.start());
    expect(x.node.status()).toMatchObject({ role: 'follower', term: 0, members: [] });
    for (let i = 0; i < 100; i++) {
      await c.step();
      expect(x.node.status().role).toBe('follower');
    }
    expect(x.events).toEqual([]);
    expect(x.logStore.inner.snapshotEntries()).toEqual([]);
    await expect(x.node.propose(1)).rejects.toMatchObject({ code: 'NO_LEADER' });
    await c.stopAll();
  });

  it('a node started empty without bootstrap is brought up to date by the leader', async () => {
    const c = await Cluster.create({ start: false });
    const [a, b, late] = c.nodes as [TestNode, TestNode, TestNode];
    await c.settle(
      Promise.all([a, b].map((n) => n.node.start({ bootstrap: membershipOf(c.ids) }))),
    );
    await c.settle(late.node.start());
    const leader = await c.electLeader();
    const last = await proposeAll(c, leader, [1, 2]);
    await c.waitApplied(last);
    expect(late.node.status().members.map((m) => m.id)).toEqual(['a', 'b', 'c']);
    expect(late.sm.commands).toEqual([1, 2]);
    await c.stopAll();
  });

  it('an invalid bootstrap membership rejects start() and leaves the node startable', async () => {
    const c = new Cluster({ ids: ['a'] });
    const a = c.add('a');
    for (const bootstrap of [
      { members: [] },
      { members: [{ id: 'a', address: 'x', voter: false }] },
      {
        members: [
          { id: 'a', address: 'x', voter: true },
          { id: 'a', address: 'y', voter: true },
        ],
      },
    ]) {
      await expect(a.node.start({ bootstrap })).rejects.toMatchObject({
        code: 'INVALID_CONFIG',
        field: 'bootstrap',
      });
      expect(a.node.state).toBe('created');
    }
    await c.settle(a.node.start({ bootstrap: membershipOf(['a']) }));
    expect(a.node.state).toBe('running');
    await c.electLeader();
    await c.stopAll();
  });

  it('start() twice rejects', async () => {
    const c = await Cluster.create({ ids: ['a'] });
    const a = c.get('a');
    await expect(a.node.start()).rejects.toBeInstanceOf(RaftError);
    expect(a.node.state).toBe('running');
    await c.stopAll();
  });
});

describe('fatal errors', () => {
  it('a failing log store append is fatal: fatal event, pending proposals reject, failed', async () => {
    const c = await Cluster.create();
    const leader = await c.electLeader();
    await proposeAll(c, leader, [1]);

    const cause = new Error('disk full');
    leader.logStore.failAppendWith = cause;
    const a = track(leader.node.propose(3));
    const b = track(leader.node.propose(4, { timeoutMs: 5000 }));
    await c.runUntil(() => a.settled && b.settled, 5, 'proposals settled');

    expect(leader.node.state).toBe('failed');
    const fatal = leader.events.filter(
      (e): e is Extract<RaftEvent, { type: 'fatal' }> => e.type === 'fatal',
    );
    expect(fatal).toHaveLength(1);
    const error = fatal[0]?.error;
    expect(error).toBeInstanceOf(StorageError);
    expect(error).toMatchObject({ code: 'STORAGE', retryable: false });
    expect(error?.cause).toBe(cause);
    expect(RaftError.is(error, 'STORAGE')).toBe(true);
    for (const p of [a, b]) expect(RaftError.is(p.error, 'STORAGE')).toBe(true);
    // A failed node takes no more proposals and no longer ticks.
    await expect(leader.node.propose(5)).rejects.toBeInstanceOf(RaftError);

    // The others elect a new leader without it.
    const fresh = await c.electLeader(c.followersOf(leader));
    await proposeAll(c, fresh, [6]);

    // stop() on a failed node closes its stores and ends in 'stopped'.
    await c.settle(leader.node.stop());
    expect(leader.node.state).toBe('stopped');
    expect(leader.logStore.closeCalls).toBe(1);
    await c.stopAll();
  });

  it('a proposal rejected by a fatal error may still commit on the others (outcome unknown)', async () => {
    // The leader sends appends before its own write (thesis §10.2.1), so the followers may
    // hold the entry that its failed write did not: the caller cannot assume "not applied".
    const c = await Cluster.create();
    const leader = await c.electLeader();
    leader.logStore.failAppendWith = new Error('disk full');
    const p = track(leader.node.propose(77));
    const others = c.followersOf(leader);
    await c.electLeader(others);
    await c.runUntil(
      () => others.every((n) => n.sm.commands.includes(77)),
      50,
      'the command applied on the others',
    );
    expect(RaftError.is(p.error, 'STORAGE')).toBe(true);
    await c.stopAll();
  });

  it('a StorageError from the store is passed through, not wrapped twice', async () => {
    const c = await Cluster.create({ ids: ['solo'] });
    const solo = await c.electLeader();
    const own = new StorageError('fsync failed');
    solo.logStore.failAppendWith = own;
    const p = track(solo.node.propose(1));
    await c.runUntil(() => p.settled, 5, 'proposal settled');
    // The pending proposal may have reached followers before the local write failed.
    expect(p.error).toMatchObject({ code: 'STORAGE', outcome: 'unknown' });
    expect((p.error as Error).cause).toBe(own);
    expect(solo.events.at(-1)).toEqual({ type: 'fatal', error: own });
    await c.stopAll();
  });

  it('a state machine that throws a StorageError (its own disk failed) is fatal', async () => {
    const broken = new StorageError('the state machine lost its disk');
    const sm: StateMachine<number, number> = {
      apply(command: number, _at: ApplyContext): number {
        if (command === 13) throw broken;
        return command;
      },
    };
    const c = new Cluster({ ids: ['solo'] });
    const solo = c.add('solo', { stateMachine: sm });
    await c.settle(solo.node.start({ bootstrap: membershipOf(['solo']) }));
    await c.electLeader();
    expect((await c.settle(solo.node.propose(1))).result).toBe(1);
    const p = track(solo.node.propose(13));
    await c.runUntil(() => p.settled, 5, 'proposal settled');
    expect(solo.node.state).toBe('failed');
    expect(solo.events.at(-1)).toEqual({ type: 'fatal', error: broken });
    expect(RaftError.is(p.error, 'STORAGE')).toBe(true);
    await c.stopAll();
  });

  it('a store that fails while starting rejects start() with StorageError', async () => {
    class BrokenStableStore extends MemoryStableStore {
      override async load(): Promise<HardState | null> {
        throw new Error('cannot read');
      }
    }
    const c = new Cluster({ ids: ['a'] });
    const a = c.add('a', { stableStore: new BrokenStableStore() });
    const err = await a.node.start({ bootstrap: membershipOf(['a']) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageError);
    expect((err as Error).cause).toEqual(new Error('cannot read'));
    expect(a.node.state).toBe('failed');
    await c.settle(a.node.stop());
    expect(a.node.state).toBe('stopped');
  });
});

describe('stop() reports what failed to close', () => {
  it('a store whose close() rejects makes stop() reject with StorageError, and the node is stopped', async () => {
    const c = await Cluster.create({ ids: ['solo'] });
    const solo = await c.electLeader();
    const broken = new Error('cannot close the file');
    solo.logStore.close = async () => {
      throw broken;
    };
    const err = await c.settle(solo.node.stop()).catch((e: unknown) => e);
    expect(RaftError.is(err, 'STORAGE')).toBe(true);
    expect((err as Error).message).toBe('closing the node failed');
    expect((err as Error).cause).toBe(broken);
    expect(solo.node.state).toBe('stopped');
  });
});
