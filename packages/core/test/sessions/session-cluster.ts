/**
 * An in-memory cluster whose nodes run a {@link withSessions} state machine around a counter
 * that snapshots, on the runtime test harness's virtual time (test/runtime/helpers.ts). No real
 * timers: time moves in ticks, and every wait is bounded by a number of steps.
 */
import type {
  ApplyContext,
  LogIndex,
  NodeId,
  RaftNode,
  SessionCommand,
  SessionStateMachine,
  SnapshotMeta,
  StateMachine,
} from '../../src/index.js';
import {
  createRaftNode,
  MemoryLogStore,
  MemoryNetwork,
  MemorySnapshotStore,
  MemoryStableStore,
  sessionCodec,
  withSessions,
} from '../../src/index.js';
import {
  decimalCodec,
  ManualClock,
  membershipOf,
  seededRandom,
  TICK_MS,
  TIMING,
  track,
} from '../runtime/helpers.js';

/**
 * Adds numbers; each result is the new total. Records every apply (to count how often the inner
 * state machine saw a command) and snapshots as decimal text in 3-byte chunks.
 */
export class SnapshotCounter implements StateMachine<number, number> {
  total = 0;
  readonly applied: { readonly index: LogIndex; readonly command: number }[] = [];
  readonly restores: SnapshotMeta[] = [];

  apply(command: number, at: ApplyContext): number {
    if (command < 0) throw new RangeError(`cannot add ${command}: negative`);
    this.total += command;
    this.applied.push({ index: at.index, command });
    return this.total;
  }

  snapshot(): Iterable<Uint8Array> {
    const text = String(this.total);
    const chunks: Uint8Array[] = [];
    for (let i = 0; i < text.length; i += 3)
      chunks.push(Uint8Array.from(text.slice(i, i + 3), (c) => c.charCodeAt(0)));
    return chunks;
  }

  async restore(chunks: AsyncIterable<Uint8Array>, meta: SnapshotMeta): Promise<void> {
    let text = '';
    for await (const c of chunks) text += String.fromCharCode(...c);
    this.total = Number(text);
    this.restores.push(meta);
  }

  /** How many times `command` reached apply. */
  count(command: number): number {
    return this.applied.filter((a) => a.command === command).length;
  }
}

export type SessionNode = RaftNode<SessionCommand<number>, number>;

export interface SessionTestNode {
  readonly id: NodeId;
  readonly node: SessionNode;
  readonly inner: SnapshotCounter;
  readonly sm: SessionStateMachine<number, number>;
  readonly logStore: MemoryLogStore;
  readonly stableStore: MemoryStableStore;
  readonly snapshotStore: MemorySnapshotStore;
}

/** Three nodes (a, b, c) on one ManualClock and MemoryNetwork. */
export class SessionCluster {
  readonly clock = new ManualClock();
  readonly network = new MemoryNetwork();
  readonly nodes: SessionTestNode[] = [];
  private created = 0;

  constructor(readonly ids: readonly NodeId[] = ['a', 'b', 'c']) {}

  static async create(): Promise<SessionCluster> {
    const c = new SessionCluster();
    for (const id of c.ids) c.add(id);
    await Promise.all(c.nodes.map((n) => n.node.start({ bootstrap: membershipOf(c.ids) })));
    return c;
  }

  /** Creates (not starts) node `id`, over `disk` when given (a restart that keeps its disk). */
  add(
    id: NodeId,
    disk?: Pick<SessionTestNode, 'logStore' | 'stableStore' | 'snapshotStore'>,
  ): SessionTestNode {
    const inner = new SnapshotCounter();
    const sm = withSessions(inner);
    const logStore = disk?.logStore ?? new MemoryLogStore();
    const stableStore = disk?.stableStore ?? new MemoryStableStore();
    const snapshotStore = disk?.snapshotStore ?? new MemorySnapshotStore();
    const node = createRaftNode<SessionCommand<number>, number>({
      id,
      stateMachine: sm,
      codec: sessionCodec(decimalCodec),
      logStore,
      stableStore,
      snapshotStore,
      transport: this.network.transport(id),
      clock: this.clock,
      random: seededRandom(1000 + this.created++),
      ...TIMING,
      snapshotThreshold: 0, // snapshots only when a test asks
      trailingEntries: 0,
    });
    const n: SessionTestNode = { id, node, inner, sm, logStore, stableStore, snapshotStore };
    const i = this.nodes.findIndex((x) => x.id === id);
    if (i >= 0) this.nodes[i] = n;
    else this.nodes.push(n);
    return n;
  }

  /** Stops `n` and creates it again over the same stores, with a fresh state machine. */
  async restart(n: SessionTestNode): Promise<SessionTestNode> {
    await this.settle(n.node.stop(), 200);
    return this.add(n.id, n);
  }

  get(id: NodeId): SessionTestNode {
    const n = this.nodes.find((x) => x.id === id);
    if (n === undefined) throw new Error(`no node ${id}`);
    return n;
  }

  step(): Promise<void> {
    return this.clock.advance(TICK_MS);
  }

  async runUntil(predicate: () => boolean, maxSteps: number, what: string): Promise<void> {
    for (let steps = 0; !predicate(); steps++) {
      if (steps >= maxSteps) throw new Error(`${what} not reached within ${maxSteps} steps`);
      await this.step();
    }
  }

  /** Steps until one leader among `among` is known to all of them. */
  async electLeader(among: readonly SessionTestNode[] = this.nodes): Promise<SessionTestNode> {
    let leader: SessionTestNode | undefined;
    await this.runUntil(
      () => {
        const leaders = among.filter((n) => n.node.status().role === 'leader');
        leader = leaders.length === 1 ? leaders[0] : undefined;
        return leader !== undefined && among.every((n) => n.node.status().leaderId === leader?.id);
      },
      300,
      'a single leader known to every node',
    );
    return leader as SessionTestNode;
  }

  /** Steps until `promise` settles; returns its value or throws its error. */
  async settle<T>(promise: Promise<T>, maxSteps = 100): Promise<T> {
    const t = track(promise);
    await this.runUntil(() => t.settled, maxSteps, 'promise settlement');
    return promise;
  }

  /** Steps until every node in `nodes` has applied up to `index`. */
  async waitApplied(index: LogIndex, nodes: readonly SessionTestNode[] = this.nodes) {
    await this.runUntil(
      () => nodes.every((n) => n.node.status().appliedIndex >= index),
      200,
      `applied index ${index}`,
    );
  }

  async stopAll(): Promise<void> {
    await this.settle(Promise.all(this.nodes.map((n) => n.node.stop())), 500);
  }
}
