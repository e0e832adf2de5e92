/**
 * A small synchronous harness for the pure engine, after etcd's `network` in raft_test.go:
 * RawNodes wired through an in-memory queue, a per-node "disk" that keeps exactly what each
 * Ready asked to persist, and a seeded random source. No clock and no promises: time is
 * `tick()`, and every loop is bounded by a count.
 *
 * Each Ready is handled the way the runtime handles it (ready.ts): persist `entries` (replacing
 * a suffix when they overlap), persist `hardState`, queue `messages` and
 * `messagesAfterPersist`, apply `committedEntries`, then `advance()`. While doing so the
 * harness checks the properties every test relies on and throws at the first violation:
 *
 * - durable before send: `messages` never carries a vote grant, an append acknowledgement or
 *   a real vote request; a granted vote or a vote request is backed by the persisted hard
 *   state; an acknowledgement never covers more than the persisted log;
 * - committed entries handed out are already durable on the node, applied in index order;
 * - Election Safety (one leader per term) and State Machine Safety (one entry per index).
 */
import type { EngineConfig, EngineStatus, InitialState } from '../../src/engine/raft.js';
import { RawNode } from '../../src/engine/raw-node.js';
import type { Ready } from '../../src/engine/ready.js';
import { RaftError } from '../../src/errors.js';
import { encodeMembership } from '../../src/membership.js';
import type { RaftMessage } from '../../src/messages.js';
import type { EntryKind, HardState, LogEntry, NodeId, Term } from '../../src/types.js';
import { seededRandom } from '../seeded-random.js';

/** Engine settings a test may override (id and random are the harness's). */
export type NodeConfig = Partial<Omit<EngineConfig, 'id' | 'random'>>;

/** Defaults: etcd's 10/1 ticks. */
export const DEFAULT_CONFIG = { electionTicks: 10, heartbeatTicks: 1 } as const;

export { seededRandom };

const EMPTY = new Uint8Array(0);

/** The entry every node is bootstrapped with: index 1, term 1, the initial membership. */
export function membershipEntry(voters: readonly NodeId[], learners: readonly NodeId[] = []) {
  const members = [
    ...voters.map((id) => ({ id, address: `addr-${id}`, voter: true })),
    ...learners.map((id) => ({ id, address: `addr-${id}`, voter: false })),
  ];
  const entry: LogEntry = {
    index: 1,
    term: 1,
    kind: 'membership',
    data: encodeMembership({ members }),
  };
  return entry;
}

/** What the runtime persists on bootstrap: the membership entry, term 1, commit 1. */
export function bootstrapState(
  voters: readonly NodeId[],
  learners: readonly NodeId[] = [],
): InitialState {
  return {
    hardState: { term: 1, votedFor: null, commit: 1 },
    entries: [membershipEntry(voters, learners)],
    applied: 0,
  };
}

/**
 * A log whose entry i+1 has term `terms[i]`: index 1 is the membership entry (terms[0] must be
 * 1), the rest are empty commands. Handy for the paper's figures.
 */
export function logWithTerms(voters: readonly NodeId[], terms: readonly Term[]): LogEntry[] {
  if (terms[0] !== 1) throw new Error('index 1 is the bootstrap entry of term 1');
  const out: LogEntry[] = [membershipEntry(voters)];
  for (let i = 1; i < terms.length; i++) out.push(entry(i + 1, terms[i] as Term));
  return out;
}

/** A log entry with a short payload (`data` defaults to the bytes of `index:term`). */
export function entry(index: number, term: Term, kind: EntryKind = 'command'): LogEntry {
  return { index, term, kind, data: kind === 'command' ? bytes(`${index}:${term}`) : EMPTY };
}

/** ASCII bytes (no TextEncoder needed for test payloads). */
export function bytes(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i) & 0xff;
  return out;
}

/** A RawNode on its own, outside any network, exactly as constructed (its first Ready is
 *  still pending: the committed entries it must apply, any hard state to rewrite). */
export function rawNode(
  id: NodeId,
  voters: readonly NodeId[],
  config: NodeConfig = {},
  initial: InitialState = bootstrapState(voters),
  random: () => number = seededRandom(1),
): RawNode {
  return new RawNode({ ...DEFAULT_CONFIG, ...config, id, random }, initial);
}

/** A freshly bootstrapped RawNode outside any network, its first Ready (applying the bootstrap
 *  entry) already handled: for tests that drive Ready by hand. */
export function newNode(
  id: NodeId,
  voters: readonly NodeId[],
  config: NodeConfig = {},
  initial: InitialState = bootstrapState(voters),
): RawNode {
  const node = rawNode(id, voters, config, initial);
  if (node.hasReady()) takeReady(node);
  return node;
}

/** Ready without the runtime: persist nothing, just advance. Returns the Ready. */
export function takeReady(node: RawNode): Ready {
  const rd = node.ready();
  node.advance(rd);
  return rd;
}

/** A message that went through the harness, and which queue of its Ready it came from. */
export interface SentMessage {
  readonly message: RaftMessage;
  readonly afterPersist: boolean;
}

/** What a node has on disk. */
export interface Disk {
  hardState: HardState;
  entries: LogEntry[];
}

export interface NetworkOptions {
  readonly voters: readonly NodeId[];
  readonly learners?: readonly NodeId[];
  /** Seeds the per-node random sources. */
  readonly seed?: number;
  /** Settings for every node. */
  readonly config?: NodeConfig;
  /** Per-node settings, over `config`. */
  readonly configFor?: (id: NodeId) => NodeConfig;
  /** Per-node starting disk; default: the bootstrap state. */
  readonly initial?: (id: NodeId) => { hardState: HardState; entries: LogEntry[] } | undefined;
}

/** Drops the message when it returns true. */
export type DropRule = (m: RaftMessage) => boolean;

/** See the module comment. */
export class Network {
  readonly ids: readonly NodeId[];
  readonly nodes = new Map<NodeId, RawNode>();
  readonly disks = new Map<NodeId, Disk>();
  /** Entries each node applied since it last (re)started, in order. */
  readonly applied = new Map<NodeId, LogEntry[]>();
  /** Every Ready handled, in order. */
  readonly readies: { id: NodeId; ready: Ready }[] = [];
  /** Every message a Ready produced, dropped or not. */
  readonly sent: SentMessage[] = [];
  /** Every message stepped into a node. */
  readonly delivered: RaftMessage[] = [];
  /** Messages waiting for the next delivery pass. */
  queue: RaftMessage[] = [];

  private readonly options: NetworkOptions;
  private readonly randoms = new Map<NodeId, () => number>();
  private readonly cutLinks = new Set<string>();
  private readonly down = new Set<NodeId>();
  private readonly rules: DropRule[] = [];
  /** index -> term of every entry applied anywhere (State Machine Safety). */
  private readonly appliedTerms = new Map<number, Term>();
  /** term -> leader (Election Safety). */
  private readonly leaders = new Map<Term, NodeId>();

  constructor(options: NetworkOptions) {
    this.options = options;
    this.ids = [...options.voters, ...(options.learners ?? [])];
    const seed = options.seed ?? 1;
    this.ids.forEach((id, i) => {
      this.randoms.set(id, seededRandom(seed * 7919 + i + 1));
      const boot = bootstrapState(options.voters, options.learners ?? []);
      const disk = options.initial?.(id) ?? {
        hardState: boot.hardState as HardState,
        entries: boot.entries.slice(),
      };
      this.disks.set(id, { hardState: disk.hardState, entries: disk.entries.slice() });
      this.start(id);
    });
  }

  /** The node `id` (throws if it is down). */
  node(id: NodeId): RawNode {
    const n = this.nodes.get(id);
    if (!n || this.down.has(id)) throw new Error(`node ${id} is down`);
    return n;
  }

  status(id: NodeId): EngineStatus {
    return this.node(id).status();
  }

  disk(id: NodeId): Disk {
    return this.disks.get(id) as Disk;
  }

  /** Live nodes that currently think they lead. */
  leadersNow(): NodeId[] {
    return this.ids.filter((id) => !this.down.has(id) && this.status(id).role === 'leader');
  }

  /** The one live leader with the highest term, if any. */
  leader(): NodeId | undefined {
    let best: NodeId | undefined;
    let bestTerm = -1;
    for (const id of this.leadersNow()) {
      const t = this.status(id).term;
      if (t > bestTerm) {
        best = id;
        bestTerm = t;
      }
    }
    return best;
  }

  // ------------------------------------------------------------ faults

  /** Drops every message from `from` to `to`. */
  drop(from: NodeId, to: NodeId): void {
    this.cutLinks.add(`${from}->${to}`);
  }

  /** Drops every message between `a` and `b`, both ways. */
  cut(a: NodeId, b: NodeId): void {
    this.drop(a, b);
    this.drop(b, a);
  }

  /** Cuts `id` off from every other node. */
  isolate(id: NodeId): void {
    for (const other of this.ids) if (other !== id) this.cut(id, other);
  }

  /** Drops messages matching `rule` until the returned function is called or `heal()`. */
  addDropRule(rule: DropRule): () => void {
    this.rules.push(rule);
    return () => {
      const i = this.rules.indexOf(rule);
      if (i >= 0) this.rules.splice(i, 1);
    };
  }

  /** Restores every link and removes every drop rule (crashed nodes stay down). */
  heal(): void {
    this.cutLinks.clear();
    this.rules.length = 0;
  }

  /** Stops a node; its in-memory state is lost, its disk is kept. Messages to it are dropped. */
  crash(id: NodeId): void {
    this.down.add(id);
    this.queue = this.queue.filter((m) => m.to !== id && m.from !== id);
  }

  /** Starts a node again from exactly what it persisted (applied state is rebuilt). */
  restart(id: NodeId, config: NodeConfig = {}): RawNode {
    this.down.delete(id);
    return this.start(id, config);
  }

  private start(id: NodeId, extra: NodeConfig = {}): RawNode {
    const disk = this.disk(id);
    const config: EngineConfig = {
      ...DEFAULT_CONFIG,
      ...this.options.config,
      ...this.options.configFor?.(id),
      ...extra,
      id,
      random: this.randoms.get(id) as () => number,
    };
    const node = new RawNode(config, {
      hardState: disk.hardState,
      entries: disk.entries.slice(),
      applied: 0,
    });
    this.nodes.set(id, node);
    this.applied.set(id, []);
    return node;
  }

  private isDropped(m: RaftMessage): boolean {
    return (
      this.down.has(m.to) ||
      this.down.has(m.from) ||
      this.cutLinks.has(`${m.from}->${m.to}`) ||
      this.rules.some((rule) => rule(m))
    );
  }

  // ------------------------------------------------------------ driving

  /** Steps `m` into its destination now, unless it is dropped. Returns whether it arrived. */
  deliver(m: RaftMessage): boolean {
    if (this.isDropped(m)) return false;
    const to = this.nodes.get(m.to);
    if (!to) return false;
    this.delivered.push(m);
    to.step(m);
    return true;
  }

  /** Delivers everything queued (in order). Returns how many messages were taken. */
  deliverQueued(): number {
    const batch = this.queue;
    this.queue = [];
    for (const m of batch) this.deliver(m);
    return batch.length;
  }

  /** Handles one Ready of `id` if it has one (see the module comment). */
  process(id: NodeId): Ready | undefined {
    if (this.down.has(id)) return undefined;
    const node = this.node(id);
    if (!node.hasReady()) return undefined;
    const rd = node.ready();
    this.readies.push({ id, ready: rd });
    const disk = this.disk(id);

    for (const m of rd.messages) {
      if (
        m.type === 'voteResponse' ||
        m.type === 'appendResponse' ||
        (m.type === 'vote' && !m.preVote)
      ) {
        throw new Error(`${id} would send ${m.type} before persisting: ${describeMessage(m)}`);
      }
    }
    // Committed entries must already be durable, before this Ready's own writes.
    for (const e of rd.committedEntries) {
      if (disk.entries[e.index - 1]?.term !== e.term)
        throw new Error(`${id} applies entry ${e.index}@${e.term} that is not durable`);
    }

    // Persist: entries (possibly replacing a suffix), then the hard state.
    const first = rd.entries[0];
    if (first) {
      if (first.index > disk.entries.length + 1)
        throw new Error(`${id} persists entry ${first.index} past its log end`);
      disk.entries.splice(first.index - 1, disk.entries.length, ...rd.entries);
    }
    if (rd.hardState) disk.hardState = rd.hardState;
    if (rd.softState?.role === 'leader') {
      const term = node.status().term;
      const other = this.leaders.get(term);
      if (other !== undefined && other !== id)
        throw new Error(`Election Safety: ${other} and ${id} both lead term ${term}`);
      this.leaders.set(term, id);
    }

    for (const m of rd.messagesAfterPersist) this.checkBacked(id, m);
    for (const m of rd.messages) this.sent.push({ message: m, afterPersist: false });
    for (const m of rd.messagesAfterPersist) this.sent.push({ message: m, afterPersist: true });
    this.queue.push(...rd.messages, ...rd.messagesAfterPersist);

    const applied = this.applied.get(id) as LogEntry[];
    for (const e of rd.committedEntries) {
      const expected = (applied[applied.length - 1]?.index ?? 0) + 1;
      if (e.index !== expected) throw new Error(`${id} applies ${e.index}, expected ${expected}`);
      const seen = this.appliedTerms.get(e.index);
      if (seen !== undefined && seen !== e.term)
        throw new Error(
          `State Machine Safety: index ${e.index} applied at terms ${seen}, ${e.term}`,
        );
      this.appliedTerms.set(e.index, e.term);
      applied.push(e);
    }
    node.advance(rd);
    return rd;
  }

  /** A message leaving after persistence must be vouched for by what is now on disk. */
  private checkBacked(id: NodeId, m: RaftMessage): void {
    const hs = this.disk(id).hardState;
    if (m.type === 'vote' && !m.preVote) {
      if (hs.term !== m.term || hs.votedFor !== id)
        throw new Error(`${id} requests votes for term ${m.term} without a durable self-vote`);
    } else if (m.type === 'voteResponse' && m.granted && !m.preVote) {
      if (hs.term < m.term || (hs.term === m.term && hs.votedFor !== m.to))
        throw new Error(`${id} grants ${m.to} a vote at term ${m.term} not on disk`);
    } else if (m.type === 'appendResponse' && m.success && hs.term === m.term) {
      if (this.disk(id).entries.length < m.matchIndex)
        throw new Error(`${id} acknowledges ${m.matchIndex} beyond its durable log`);
    }
  }

  /** Handles every pending Ready of every node once. Returns whether anything happened. */
  processAll(): boolean {
    let any = false;
    for (const id of this.ids) if (this.process(id)) any = true;
    return any;
  }

  /**
   * Drains Readies and delivers messages until no node has a Ready and nothing is queued.
   * Returns the number of rounds; throws after `maxRounds`.
   */
  stabilize(maxRounds = 1000): number {
    for (let round = 0; round < maxRounds; round++) {
      const worked = this.processAll();
      const moved = this.deliverQueued();
      if (!worked && moved === 0) return round;
    }
    throw new Error(`stabilize: still busy after ${maxRounds} rounds`);
  }

  /** Ticks one node `n` times (no delivery). */
  tick(id: NodeId, n = 1): void {
    const node = this.node(id);
    for (let i = 0; i < n; i++) node.tick();
  }

  /** Ticks every live node (or `ids`) once and stabilizes, `n` times. */
  tickAll(n = 1, ids: readonly NodeId[] = this.ids): void {
    for (let i = 0; i < n; i++) {
      for (const id of ids) if (!this.down.has(id)) this.node(id).tick();
      this.stabilize();
    }
  }

  /**
   * Ticks every live node (or `ids`), stabilizing after each tick, until `done()` holds.
   * Returns the number of ticks taken; throws after `maxTicks`.
   */
  tickUntil(done: () => boolean, maxTicks = 1000, ids: readonly NodeId[] = this.ids): number {
    this.stabilize();
    for (let t = 0; t <= maxTicks; t++) {
      if (done()) return t;
      this.tickAll(1, ids);
    }
    throw new Error(`tickUntil: condition not met within ${maxTicks} ticks`);
  }

  /** Campaigns `id` at once and stabilizes. */
  campaign(id: NodeId): void {
    this.node(id).campaign();
    this.stabilize();
  }

  /** Elects `id` (campaign + stabilize) and checks that it won. */
  elect(id: NodeId): void {
    this.campaign(id);
    if (this.status(id).role !== 'leader') throw new Error(`${id} did not win its election`);
  }

  /** Proposes on `id` and stabilizes; returns the position of the entry. */
  propose(id: NodeId, text: string): { index: number; term: Term } {
    const at = this.node(id).propose(bytes(text));
    this.stabilize();
    return at;
  }

  /** Delivered messages matching `pred`, from index `since` of `delivered`. */
  deliveredWhere(pred: (m: RaftMessage) => boolean, since = 0): RaftMessage[] {
    return this.delivered.slice(since).filter(pred);
  }
}

/** A one-line description of a message, for failure text. */
export function describeMessage(m: RaftMessage): string {
  const { type, from, to, term } = m;
  return `${type} ${from}->${to} t${term}`;
}

/** The (index, term) pairs of a log, for compact comparisons. */
export function terms(entries: readonly LogEntry[]): string[] {
  return entries.map((e) => `${e.index}@${e.term}`);
}

/** Messages of one type, narrowed. */
export function ofType<T extends RaftMessage['type']>(
  messages: readonly RaftMessage[],
  type: T,
): Extract<RaftMessage, { type: T }>[] {
  return messages.filter((m): m is Extract<RaftMessage, { type: T }> => m.type === type);
}

/** The code of the RaftError `fn` throws (throws if it throws nothing, or something else). */
export function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (RaftError.is(err)) return err.code;
    throw err;
  }
  throw new Error('expected a RaftError');
}
