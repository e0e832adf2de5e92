/**
 * Test harness for the runtime (`createRaftNode`): virtual time, a seeded random source and an
 * in-memory cluster. No real timers and no Node globals: time moves only when a test calls
 * `advance()`, and every wait is bounded by a number of steps, never by wall time.
 */

import { afterEach } from 'vitest';
import type {
  AbortSignalLike,
  ApplyContext,
  Clock,
  CommandCodec,
  LogBounds,
  LogEntry,
  LogIndex,
  LogStore,
  Membership,
  NodeId,
  RaftEvent,
  RaftNode,
  RaftNodeOptions,
  SnapshotMeta,
  StateMachine,
  TimerHandle,
} from '../../src/index.js';
import {
  createRaftNode,
  MemoryLogStore,
  MemoryNetwork,
  MemorySnapshotStore,
  MemoryStableStore,
  RaftError,
} from '../../src/index.js';
import { hostNextTurn } from '../../src/platform.js';
import { seededRandom } from '../seeded-random.js';

// ------------------------------------------------------------------ event loop

/** Resolves on a later macrotask, after anything the in-memory network queued before it. */
export function nextTurn(): Promise<void> {
  return new Promise<void>((resolve) => hostNextTurn(resolve));
}

/** Lets `turns` macrotasks (and every microtask between them) run. */
export async function flushTurns(turns: number): Promise<void> {
  for (let i = 0; i < turns; i++) await nextTurn();
}

// ------------------------------------------------------------------ virtual time

interface ManualTimer {
  readonly at: number;
  readonly seq: number;
  readonly callback: () => void;
  cancelled: boolean;
}

/**
 * A {@link Clock} on virtual time. `advance(ms)` fires the timers that fall due, in order of
 * due time (ties in the order they were set), and after each instant lets the event loop turn
 * `turnsPerInstant` times so promise continuations and MemoryNetwork deliveries run. One
 * network hop takes one turn, so with the default of 6 turns a request/response round trip
 * (and the commit that follows it) completes within one instant: the network is faster than
 * the timers, as on a LAN.
 */
export class ManualClock implements Clock {
  private time = 0;
  private seq = 0;
  private timers: ManualTimer[] = [];

  constructor(private readonly turnsPerInstant = 6) {}

  now(): number {
    return this.time;
  }

  setTimer(delayMs: number, callback: () => void): TimerHandle {
    const timer: ManualTimer = {
      at: this.time + Math.max(0, delayMs),
      seq: this.seq++,
      callback,
      cancelled: false,
    };
    this.timers.push(timer);
    return {
      cancel: () => {
        timer.cancelled = true;
      },
    };
  }

  /** Timers set and not yet fired or cancelled (tests). */
  get pendingTimers(): number {
    return this.timers.filter((t) => !t.cancelled).length;
  }

  /** Moves virtual time forward by `ms`, firing due timers in order. */
  async advance(ms: number): Promise<void> {
    if (!(ms >= 0)) throw new Error(`advance(${ms}): ms must be >= 0`);
    const target = this.time + ms;
    // A timer that re-arms itself with delay 0 would loop forever: bound the instants.
    for (let guard = 0; guard < 100_000; guard++) {
      this.timers = this.timers.filter((t) => !t.cancelled);
      let next: ManualTimer | undefined;
      for (const t of this.timers) {
        if (t.at <= target && (next === undefined || t.at < next.at)) next = t;
      }
      if (next === undefined) break;
      const at = next.at;
      this.time = at;
      // Fire everything due at this instant, including timers set by these callbacks for now.
      for (;;) {
        const due = this.timers
          .filter((t) => !t.cancelled && t.at === at)
          .sort((a, b) => a.seq - b.seq)[0];
        if (due === undefined) break;
        due.cancelled = true;
        due.callback();
      }
      await flushTurns(this.turnsPerInstant);
    }
    this.time = target;
    await flushTurns(this.turnsPerInstant);
  }
}

// ------------------------------------------------------------------ randomness

export { seededRandom };

// ------------------------------------------------------------------ state machine and codec

/** One applied command, as a state machine saw it. */
export interface AppliedCommand {
  readonly index: LogIndex;
  readonly term: number;
  readonly command: number;
}

/** A counter: commands are numbers to add; each result is the new total. */
export class Counter implements StateMachine<number, number> {
  total = 0;
  readonly applied: AppliedCommand[] = [];

  apply(command: number, at: ApplyContext): number {
    this.total += command;
    this.applied.push({ index: at.index, term: at.term, command });
    return this.total;
  }

  /** The commands applied, in order. */
  get commands(): number[] {
    return this.applied.map((a) => a.command);
  }
}

/**
 * Numbers as ASCII decimal text, so the encoded size grows with the number of digits (for the
 * `maxCommandBytes` tests). Non-finite numbers are refused: `encode(NaN)` throws.
 */
export const decimalCodec: CommandCodec<number> = {
  encode(n) {
    if (typeof n !== 'number' || !Number.isFinite(n)) {
      throw new RangeError(`not a finite number: ${String(n)}`);
    }
    const text = String(n);
    const bytes = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
    return bytes;
  },
  decode(bytes) {
    return Number(String.fromCharCode(...bytes));
  },
};

/**
 * A counter that snapshots: the image is the total and the applied count, padded to `padBytes`
 * and streamed in `chunkBytes` pieces (several chunks per snapshot), so restores are checked
 * byte for byte.
 */
export class SnapCounter extends Counter {
  count = 0;
  readonly restores: SnapshotMeta[] = [];
  snapshots = 0;
  /** Throws from the stream of the next snapshot. */
  failNextSnapshot = false;

  constructor(
    private readonly padBytes = 64,
    private readonly chunkBytes = 16,
  ) {
    super();
  }

  override apply(command: number, at: { index: LogIndex; term: number }): number {
    this.count++;
    return super.apply(command, at);
  }

  snapshot(): AsyncIterable<Uint8Array> {
    this.snapshots++;
    const text = `${this.total} ${this.count}`.padEnd(this.padBytes, '.');
    const bytes = ascii(text);
    const fail = this.failNextSnapshot;
    this.failNextSnapshot = false;
    const chunkBytes = this.chunkBytes;
    return (async function* () {
      for (let at = 0; at < bytes.length; at += chunkBytes) {
        if (fail && at > 0) throw new Error('the snapshot stream broke');
        yield bytes.slice(at, at + chunkBytes);
      }
    })();
  }

  async restore(chunks: AsyncIterable<Uint8Array>, meta: SnapshotMeta): Promise<void> {
    let text = '';
    for await (const c of chunks) text += String.fromCharCode(...c);
    const [total, count] = text.replace(/\.+$/, '').split(' ').map(Number);
    this.total = total as number;
    this.count = count as number;
    this.restores.push(meta);
  }
}

export function ascii(text: string): Uint8Array {
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes;
}

// ------------------------------------------------------------------ stores

/** A MemoryLogStore whose `append` can be made to fail. */
export class FlakyLogStore implements LogStore {
  /** When set, every `append` rejects with this error. */
  failAppendWith: unknown = null;
  appendCalls = 0;
  closeCalls = 0;

  constructor(readonly inner: MemoryLogStore = new MemoryLogStore()) {}

  open(): Promise<LogBounds> {
    return this.inner.open();
  }
  read(from: LogIndex, to: LogIndex): Promise<LogEntry[]> {
    return this.inner.read(from, to);
  }
  async append(entries: readonly LogEntry[]): Promise<void> {
    this.appendCalls++;
    if (this.failAppendWith !== null) throw this.failAppendWith;
    return this.inner.append(entries);
  }
  compact(upTo: LogIndex): Promise<void> {
    return this.inner.compact(upTo);
  }
  truncate(from: LogIndex): Promise<void> {
    return this.inner.truncate(from);
  }
  close(): Promise<void> {
    this.closeCalls++;
    return this.inner.close();
  }
}

// ------------------------------------------------------------------ abort signals

/** An AbortSignal for tests (core compiles without DOM or Node types). */
export class FakeAbortSignal implements AbortSignalLike {
  aborted = false;
  reason: unknown = undefined;
  private listeners: (() => void)[] = [];

  addEventListener(_type: 'abort', listener: () => void): void {
    this.listeners.push(listener);
  }
  removeEventListener(_type: 'abort', listener: () => void): void {
    this.listeners = this.listeners.filter((l) => l !== listener);
  }
  abort(reason: unknown = new Error('aborted by the caller')): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    for (const l of [...this.listeners]) l();
  }
  get listenerCount(): number {
    return this.listeners.length;
  }
}

// ------------------------------------------------------------------ promises

/** The observable state of a promise, with rejection handled at once (no unhandled rejections). */
export interface Tracked<T> {
  readonly promise: Promise<T>;
  readonly settled: boolean;
  readonly value: T | undefined;
  readonly error: unknown;
}

export function track<T>(promise: Promise<T>): Tracked<T> {
  const t = {
    promise,
    settled: false,
    value: undefined as T | undefined,
    error: undefined as unknown,
  };
  promise.then(
    (v) => {
      t.settled = true;
      t.value = v;
    },
    (e: unknown) => {
      t.settled = true;
      t.error = e;
    },
  );
  return t;
}

// ------------------------------------------------------------------ cluster

export const TICK_MS = 10;

/** Fast, tick-aligned timing used by every cluster unless a test overrides it. */
export const TIMING = {
  tickMs: TICK_MS,
  heartbeatMs: 30,
  electionTimeoutMs: 100,
  requestTimeoutMs: 1000,
} as const;

export type NodeOptions = Partial<RaftNodeOptions<number, number>>;

export function membershipOf(ids: readonly NodeId[]): Membership {
  return { members: ids.map((id) => ({ id, address: `mem://${id}`, voter: true })) };
}

/** One node of a {@link Cluster}, with its stores and a log of the events it emitted. */
export interface TestNode {
  readonly id: NodeId;
  readonly node: RaftNode<number, number>;
  readonly sm: Counter;
  readonly logStore: FlakyLogStore;
  readonly stableStore: MemoryStableStore;
  /** Present when the cluster was configured with snapshots. */
  readonly snapshotStore: MemorySnapshotStore | undefined;
  readonly events: RaftEvent[];
}

export interface ClusterConfig {
  /** Node ids; default a, b, c. */
  readonly ids?: readonly NodeId[];
  /** Seeds every node's random source (node i gets seed + i). Default 1. */
  readonly seed?: number;
  /** Options for every node. */
  readonly options?: NodeOptions;
  /** Start every node, bootstrapped with the full membership. Default true. */
  readonly start?: boolean;
  /** Builds each node's state machine (default: a plain Counter). */
  readonly stateMachine?: () => Counter;
  /** Give every node a MemorySnapshotStore (default false). */
  readonly snapshots?: boolean;
}

/** An in-memory cluster on a shared ManualClock and MemoryNetwork. */
export class Cluster {
  readonly clock = new ManualClock();
  readonly network = new MemoryNetwork();
  readonly ids: readonly NodeId[];
  readonly nodes: TestNode[] = [];
  private readonly seed: number;
  private readonly options: NodeOptions;
  private readonly makeStateMachine: () => Counter;
  private readonly snapshots: boolean;
  private created = 0;

  constructor(config: ClusterConfig = {}) {
    this.ids = config.ids ?? ['a', 'b', 'c'];
    this.seed = config.seed ?? 1;
    this.options = config.options ?? {};
    this.makeStateMachine = config.stateMachine ?? (() => new Counter());
    this.snapshots = config.snapshots ?? false;
  }

  /** Builds and starts a cluster (see {@link ClusterConfig.start}). */
  static async create(config: ClusterConfig = {}): Promise<Cluster> {
    const cluster = new Cluster(config);
    for (const id of cluster.ids) cluster.add(id);
    if (config.start ?? true) {
      await Promise.all(
        cluster.nodes.map((n) => n.node.start({ bootstrap: membershipOf(cluster.ids) })),
      );
    }
    return cluster;
  }

  /**
   * Creates a node (not started) and puts it in `nodes`, replacing any node with the same id.
   * Pass `logStore`/`stableStore` from an earlier node to model a restart that keeps its disk.
   */
  add(
    id: NodeId,
    extra: NodeOptions & {
      logStore?: FlakyLogStore;
      stableStore?: MemoryStableStore;
      snapshotStore?: MemorySnapshotStore;
    } = {},
  ): TestNode {
    const sm = this.makeStateMachine();
    const logStore = extra.logStore ?? new FlakyLogStore();
    const stableStore = extra.stableStore ?? new MemoryStableStore();
    const snapshotStore =
      extra.snapshotStore ?? (this.snapshots ? new MemorySnapshotStore() : undefined);
    const node = createRaftNode<number, number>({
      id,
      stateMachine: sm,
      codec: decimalCodec,
      transport: this.network.transport(id),
      clock: this.clock,
      random: seededRandom(this.seed * 1000 + this.created++),
      ...TIMING,
      ...this.options,
      ...extra,
      logStore,
      stableStore,
      ...(snapshotStore === undefined ? {} : { snapshotStore }),
    });
    const events: RaftEvent[] = [];
    node.subscribe((e) => events.push(e));
    const testNode: TestNode = { id, node, sm, logStore, stableStore, snapshotStore, events };
    const i = this.nodes.findIndex((n) => n.id === id);
    if (i >= 0) this.nodes[i] = testNode;
    else this.nodes.push(testNode);
    return testNode;
  }

  /** Stops `n` and creates it again over the same stores (a restart that keeps its disk). */
  async restart(n: TestNode, extra: Omit<NodeOptions, 'snapshotStore'> = {}): Promise<TestNode> {
    await n.node.stop();
    return this.add(n.id, {
      ...extra,
      logStore: n.logStore,
      stableStore: n.stableStore,
      ...(n.snapshotStore === undefined ? {} : { snapshotStore: n.snapshotStore }),
    });
  }

  get(id: NodeId): TestNode {
    const n = this.nodes.find((x) => x.id === id);
    if (n === undefined) throw new Error(`no node ${id}`);
    return n;
  }

  /** Running nodes that currently consider themselves leader. */
  leaders(): TestNode[] {
    return this.nodes.filter(
      (n) => n.node.state === 'running' && n.node.status().role === 'leader',
    );
  }

  followersOf(leader: TestNode): TestNode[] {
    return this.nodes.filter((n) => n !== leader);
  }

  /** Advances virtual time by one tick. */
  step(): Promise<void> {
    return this.clock.advance(TICK_MS);
  }

  /** Steps until `predicate` holds; throws after `maxSteps`. Returns the steps taken. */
  async runUntil(predicate: () => boolean, maxSteps: number, what = 'condition'): Promise<number> {
    for (let steps = 0; ; steps++) {
      if (predicate()) return steps;
      if (steps >= maxSteps) throw new Error(`${what} not reached within ${maxSteps} steps`);
      await this.step();
    }
  }

  /** Steps `n` times. */
  async run(n: number): Promise<void> {
    for (let i = 0; i < n; i++) await this.step();
  }

  /**
   * Steps until exactly one leader exists among `among` (default: every node) and all of them
   * know it; returns it.
   */
  async electLeader(among: readonly TestNode[] = this.nodes, maxSteps = 200): Promise<TestNode> {
    let leader: TestNode | undefined;
    await this.runUntil(
      () => {
        const leaders = among.filter((n) => n.node.status().role === 'leader');
        const only = leaders[0];
        if (leaders.length !== 1 || only === undefined) return false;
        leader = only;
        return among.every((n) => n.node.status().leaderId === only.id);
      },
      maxSteps,
      'a single leader known to every node',
    );
    return leader as TestNode;
  }

  /** Builds and starts a cluster, then steps until it has one leader known to every node. */
  static async withLeader(config: ClusterConfig = {}): Promise<{ c: Cluster; leader: TestNode }> {
    const c = await Cluster.create(config);
    return { c, leader: await c.electLeader() };
  }

  /** Steps until `promise` rejects; returns the RaftError (throws if it resolves or rejects
   *  with anything else). */
  async rejection(promise: Promise<unknown>, maxSteps = 400): Promise<RaftError> {
    try {
      await this.settle(promise, maxSteps);
    } catch (err) {
      if (RaftError.is(err)) return err;
      throw err;
    }
    throw new Error('expected a rejection');
  }

  /** Steps until `promise` settles; returns its value or throws its error. */
  async settle<T>(promise: Promise<T>, maxSteps = 100): Promise<T> {
    const t = track(promise);
    await this.runUntil(() => t.settled, maxSteps, 'promise settlement');
    return promise;
  }

  /** Steps until every running node has applied up to `index`. */
  async waitApplied(index: LogIndex, nodes: readonly TestNode[] = this.nodes, maxSteps = 100) {
    await this.runUntil(
      () => nodes.every((n) => n.node.status().appliedIndex >= index),
      maxSteps,
      `applied index ${index} on ${nodes.map((n) => n.id).join(',')}`,
    );
  }

  /** Stops every node (bounded by steps). */
  async stopAll(): Promise<void> {
    await this.settle(Promise.all(this.nodes.map((n) => n.node.stop())), 500);
  }
}

/**
 * Clusters for the tests of one file, each stopped after its test: call at the top level of the
 * file, then `await clusters.withLeader()` (or `clusters.create()`) in a test.
 */
export function clustersPerTest(): {
  create(config?: ClusterConfig): Promise<Cluster>;
  withLeader(config?: ClusterConfig): Promise<{ c: Cluster; leader: TestNode }>;
} {
  let running: Cluster[] = [];
  afterEach(async () => {
    const all = running;
    running = [];
    for (const c of all) await c.stopAll();
  });
  return {
    async create(config = {}) {
      const c = await Cluster.create(config);
      running.push(c);
      return c;
    },
    async withLeader(config = {}) {
      const started = await Cluster.withLeader(config);
      running.push(started.c);
      return started;
    },
  };
}
