/**
 * Regressions from a new user's first hour (issue #12), each failing on the code before:
 * - there was no way to wait for a leader (the README's example proposed before one existed);
 * - one command the codec could not decode (propose(undefined) with a JSON codec) failed every
 *   node, and again after a restart; a throwing apply() was fatal on every replica;
 * - no codec shipped to start with;
 * - a function as stateMachine, a typo in an option and a bootstrap without the node itself were
 *   accepted; lifecycle misuse had no message of its own;
 * - RaftError.is(e, code) did not narrow to the subclass.
 */
import { describe, expect, expectTypeOf, it } from 'vitest';
import type { ApplyContext, RaftNode, StateMachine } from '../../src/index.js';
import {
  ApplyError,
  ConfigError,
  createRaftNode,
  jsonCodec,
  MemoryLogStore,
  MemoryNetwork,
  MemoryStableStore,
  NotLeaderError,
  RaftError,
  utf8Codec,
} from '../../src/index.js';
import type { TestNode } from '../runtime/helpers.js';
import {
  Cluster,
  Counter,
  decimalCodec,
  FakeAbortSignal,
  ManualClock,
  membershipOf,
  seededRandom,
  TIMING,
  track,
} from '../runtime/helpers.js';

describe('waitForLeader()', () => {
  it('resolves with the leader and its term once one is elected, on every node', async () => {
    const c = await Cluster.create();
    const waits = c.nodes.map((n) => track(n.node.waitForLeader()));
    const leader = await c.electLeader();
    await c.run(1);
    const term = leader.node.status().term;
    for (const w of waits) expect(w.value).toEqual({ leaderId: leader.id, term });
    // Known already: resolves at once.
    await expect(leader.node.waitForLeader()).resolves.toEqual({ leaderId: leader.id, term });
    await c.stopAll();
  });

  it('times out with TimeoutError, honours an abort signal, and rejects at stop()', async () => {
    const c = new Cluster({ ids: ['a', 'b', 'c'] });
    c.add('a');
    // A node of a three-node cluster alone: no leader, ever.
    const a = c.get('a');
    await c.settle(a.node.start({ bootstrap: membershipOf(['a', 'b', 'c']) }));
    const timedOut = track(a.node.waitForLeader({ timeoutMs: 100 }));
    const controller = new FakeAbortSignal();
    const aborted = track(a.node.waitForLeader({ signal: controller }));
    const stopped = track(a.node.waitForLeader());
    await c.run(11);
    expect(timedOut.error).toMatchObject({ code: 'TIMEOUT' });
    controller.abort();
    await c.run(1);
    expect(aborted.error).toMatchObject({ code: 'ABORTED' });
    expect(stopped.settled).toBe(false);
    await c.settle(a.node.stop());
    expect(stopped.error).toMatchObject({ code: 'SHUTDOWN' });
    await expect(a.node.waitForLeader()).rejects.toMatchObject({ code: 'SHUTDOWN' });
  });

  it('before start() says to call start() first; during start() it waits', async () => {
    const c = new Cluster({ ids: ['solo'] });
    const solo = c.add('solo');
    await expect(solo.node.waitForLeader()).rejects.toThrow(/call start\(\) first/);
    const started = solo.node.start({ bootstrap: membershipOf(['solo']) });
    const waiting = track(solo.node.waitForLeader());
    await c.settle(started);
    await c.runUntil(() => waiting.settled, 50, 'a leader');
    expect(waiting.value).toMatchObject({ leaderId: 'solo' });
    await c.stopAll();
  });
});

describe('a command no replica could decode', () => {
  it('is refused before it enters the log (validateCommands, the default)', async () => {
    const c = await Cluster.create({ ids: ['solo'] });
    const solo = await c.electLeader();
    const lossy = {
      encode: () => new Uint8Array(0),
      decode: (b: Uint8Array) => JSON.parse(String(b)),
    };
    const node = createRaftNode<unknown, number>({
      id: 'x',
      stateMachine: new Counter() as unknown as StateMachine<unknown, number>,
      codec: lossy,
      logStore: new MemoryLogStore(),
      stableStore: new MemoryStableStore(),
      transport: c.network.transport('x'),
      clock: c.clock,
      random: seededRandom(3),
      ...TIMING,
    });
    await c.settle(node.start({ bootstrap: membershipOf(['x']) }));
    await c.runUntil(() => node.status().role === 'leader', 50, 'x to lead');
    const before = node.status().lastLogIndex;
    const err = await node.propose(undefined).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'INVALID_ARGUMENT', outcome: 'notApplied' });
    expect((err as Error).cause).toBeInstanceOf(SyntaxError);
    expect(node.status().lastLogIndex).toBe(before);
    await c.settle(node.stop());
    await c.settle(solo.node.stop());
  });

  it('with validation off, it fails on every replica alike as APPLY_FAILED, and the cluster goes on', async () => {
    // A codec that cannot decode the command "13": the replicas record the same failure.
    const picky = {
      encode: decimalCodec.encode,
      decode: (b: Uint8Array) => {
        const n = decimalCodec.decode(b);
        if (n === 13) throw new RangeError('13 is unlucky');
        return n;
      },
    };
    const c = await Cluster.create({ options: { codec: picky, validateCommands: false } });
    const leader = await c.electLeader();
    const err = await c.settle(leader.node.propose(13)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApplyError);
    expect((err as ApplyError).cause).toBeInstanceOf(RangeError);
    const after = await c.settle(leader.node.propose(2));
    await c.waitApplied(after.index);
    for (const n of c.nodes) {
      expect(n.node.state).toBe('running');
      expect(n.sm.commands).toEqual([2]);
    }
    await c.stopAll();
  });
});

describe('a state machine that throws', () => {
  class Picky extends Counter {
    override apply(command: number, at: ApplyContext): number {
      if (command < 0) throw new RangeError(`negative: ${command}`);
      return super.apply(command, at);
    }
  }

  function pickyCluster(): Promise<Cluster> {
    const c = new Cluster();
    const machines: Picky[] = [];
    for (const id of c.ids) {
      const sm = new Picky();
      machines.push(sm);
      c.add(id, { stateMachine: sm });
    }
    return Promise.all(c.nodes.map((n) => n.node.start({ bootstrap: membershipOf(c.ids) }))).then(
      () => c,
    );
  }

  it('rejects the proposer with ApplyError (code APPLY_FAILED, the cause), on leader and follower', async () => {
    const c = await pickyCluster();
    const leader = await c.electLeader();
    const follower = c.followersOf(leader)[0] as TestNode;
    for (const node of [leader, follower]) {
      const err = await c.settle(node.node.propose(-1)).catch((e: unknown) => e);
      expect(RaftError.is(err, 'APPLY_FAILED')).toBe(true);
      expect(err).toMatchObject({ code: 'APPLY_FAILED', retryable: false });
      expect((err as ApplyError).cause).toBeInstanceOf(RangeError);
      expect((err as ApplyError).index).toBeGreaterThan(1);
    }
    // Every replica recorded the same and went on.
    const r = await c.settle(follower.node.propose(5));
    expect(r.result).toBe(5);
    await c.waitApplied(r.index);
    for (const n of c.nodes) {
      expect(n.node.state).toBe('running');
      expect(n.node.status().appliedIndex).toBeGreaterThanOrEqual(r.index);
    }
    await c.stopAll();
  });

  it('a restart replays the log past the failing command, with the same outcome', async () => {
    const c = await pickyCluster();
    const leader = await c.electLeader();
    await c.settle(leader.node.propose(-1)).catch(() => undefined);
    const r = await c.settle(leader.node.propose(4));
    await c.waitApplied(r.index);
    await c.settle(leader.node.stop());
    const sm = new Picky();
    const restarted = c.add(leader.id, {
      stateMachine: sm,
      logStore: leader.logStore,
      stableStore: leader.stableStore,
    });
    await c.settle(restarted.node.start());
    await c.runUntil(() => restarted.node.status().appliedIndex >= r.index, 100, 'the replay');
    expect(sm.commands).toEqual([4]);
    await c.stopAll();
  });
});

describe('jsonCodec() and utf8Codec', () => {
  it('round-trip JSON values and strings', () => {
    const json = jsonCodec<{ op: string; n: number; tags: string[] }>();
    const cmd = { op: 'set', n: 3, tags: ['é', '🦀'] };
    expect(json.decode(json.encode(cmd))).toEqual(cmd);
    expect(utf8Codec.decode(utf8Codec.encode('héllo 🦀'))).toBe('héllo 🦀');
  });

  it('refuse what they could not give back', () => {
    const json = jsonCodec<unknown>();
    expect(() => json.encode(undefined)).toThrow(/JSON/);
    expect(() => json.encode(() => 1)).toThrow(/JSON/);
    expect(() => utf8Codec.encode('x\ud800')).toThrow(/surrogate/);
    expect(() => utf8Codec.encode(5 as unknown as string)).toThrow(/string/);
    expect(() => utf8Codec.decode(Uint8Array.from([0xff]))).toThrow(/UTF-8/);
  });

  it('a cluster on jsonCodec refuses propose(undefined) instead of failing every node', async () => {
    const network = new MemoryNetwork();
    const clock = new ManualClock();
    const log: unknown[] = [];
    const node: RaftNode<unknown, number> = createRaftNode({
      id: 'n1',
      stateMachine: { apply: (cmd: unknown) => log.push(cmd) },
      codec: jsonCodec<unknown>(),
      logStore: new MemoryLogStore(),
      stableStore: new MemoryStableStore(),
      transport: network.transport('n1'),
      clock,
      random: seededRandom(4),
    });
    await node.start({ bootstrap: membershipOf(['n1']) });
    const leader = track(node.waitForLeader());
    for (let i = 0; i < 100 && !leader.settled; i++) await clock.advance(10);
    expect(leader.value).toMatchObject({ leaderId: 'n1' });
    await expect(node.propose(undefined)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    const ok = track(node.propose({ a: 1 }));
    await clock.advance(10);
    expect(ok.value).toMatchObject({ result: 1 });
    expect(log).toEqual([{ a: 1 }]);
    expect(node.state).toBe('running');
    const stopped = track(node.stop());
    await clock.advance(10);
    expect(stopped.settled).toBe(true);
  });
});

describe('misuse gets a clear error', () => {
  const base = () => {
    const network = new MemoryNetwork();
    return {
      id: 'a',
      stateMachine: new Counter(),
      codec: decimalCodec,
      logStore: new MemoryLogStore(),
      stableStore: new MemoryStableStore(),
      transport: network.transport('a'),
    };
  };

  it('a plain function as stateMachine', () => {
    const options = { ...base(), stateMachine: ((cmd: number) => cmd) as unknown as Counter };
    expect(() => createRaftNode(options)).toThrow(ConfigError);
    expect(() => createRaftNode(options)).toThrow(/stateMachine.*not a function/);
  });

  it('an unknown option names the closest valid one', () => {
    const err = (() => {
      try {
        createRaftNode({ ...base(), electionTimeout: 300 } as never);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(ConfigError);
    expect(err).toMatchObject({ field: 'electionTimeout' });
    expect((err as Error).message).toContain("did you mean 'electionTimeoutMs'?");
  });

  it('a bootstrap that omits the node itself', async () => {
    const node = createRaftNode(base());
    const err = await node.start({ bootstrap: membershipOf(['b', 'c']) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect(err).toMatchObject({ field: 'bootstrap' });
    expect((err as Error).message).toContain('does not list this node (a)');
    expect(node.state).toBe('created');
  });

  it('lifecycle misuse', async () => {
    const node = createRaftNode(base());
    await expect(node.propose(1)).rejects.toThrow(/call start\(\) first/);
    await node.start({ bootstrap: membershipOf(['a']) });
    await expect(node.start()).rejects.toThrow(/start\(\) was already called/);
    await node.stop();
    await expect(node.start()).rejects.toThrow(/create a new node over the same stores/);
    await expect(node.propose(1)).rejects.toMatchObject({
      code: 'SHUTDOWN',
      outcome: 'notApplied',
    });
  });
});

describe('RaftError.is narrows to the subclass of the code', () => {
  it('NOT_LEADER gives leaderId; APPLY_FAILED gives index; no code gives RaftError', () => {
    const err: unknown = new NotLeaderError('n2');
    if (RaftError.is(err, 'NOT_LEADER')) {
      expectTypeOf(err).toEqualTypeOf<NotLeaderError>();
      expect(err.leaderId).toBe('n2');
    } else {
      throw new Error('not narrowed');
    }
    const applyErr: unknown = new ApplyError(5, 2, { cause: new Error('x') });
    if (RaftError.is(applyErr, 'APPLY_FAILED')) expect(applyErr.index).toBe(5);
    const any: unknown = err;
    if (RaftError.is(any)) expectTypeOf(any).toEqualTypeOf<RaftError>();
    expect(RaftError.is(err, 'TIMEOUT')).toBe(false);
  });
});
