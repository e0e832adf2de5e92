/**
 * RawNode: the engine's public face (etcd `RawNode`). Feed it ticks, messages and proposals;
 * drain `ready()`; persist, send and apply what it says; then call `advance()`.
 *
 * ```
 *   tick() / step(msg) / propose(data) / campaign()
 *                   │
 *                   ▼
 *   hasReady()? ──► ready() ──► (runtime: send, persist, send-after-persist, apply) ──► advance(rd)
 * ```
 *
 * Contract:
 * - Exactly one Ready is outstanding at a time: call `advance(rd)` before the next `ready()`.
 * - Inputs may arrive between `ready()` and `advance()` (the runtime awaits storage in
 *   between); the engine accounts for that (a write that was overtaken is re-issued).
 * - All proposals made between two `ready()` calls leave as one batch: one append to the
 *   log store and one AppendEntries per follower.
 */
import type { RaftMessage } from '../messages.js';
import type {
  HardState,
  LogEntry,
  LogIndex,
  Member,
  NodeId,
  SnapshotMeta,
  Term,
} from '../types.js';
import type { MembershipChange } from './configuration.js';
import type {
  BasicStatus,
  EngineConfig,
  EngineStatus,
  InitialState,
  LeaseStatus,
  SnapshotRequest,
} from './raft.js';
import { Raft } from './raft.js';
import type { ReadState } from './read-index.js';
import type { Ready, SoftState } from './ready.js';

/**
 * Term and vote must be durable before dependent messages leave; the commit index need not
 * be (it is re-learned from the leader, etcd's MustSync makes the same call). So a change of
 * the commit index alone produces no hardState: that spares a stable-store write per commit.
 */
function sameTermAndVote(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.votedFor === b.votedFor;
}

const NO_MESSAGES: readonly RaftMessage[] = Object.freeze([]);
const NO_REQUESTS: readonly SnapshotRequest[] = Object.freeze([]);
const NO_READS: readonly ReadState[] = Object.freeze([]);
const NO_IDS: readonly number[] = Object.freeze([]);

/** What {@link RawNode.takeReads} returns. */
export interface ReadOutcomes {
  /** Confirmed reads: serve each once the state machine has applied its index. */
  readonly confirmed: readonly ReadState[];
  /** Reads dropped because this node stopped leading before confirming them. */
  readonly dropped: readonly number[];
}

/** See the module comment. */
export class RawNode {
  private readonly raft: Raft;
  private prevSoftState: SoftState;
  private prevHardState: HardState;
  private outstanding = false;
  /** Applying is reported by appliedTo(), not by advance() (see EngineConfig). */
  private readonly asyncApply: boolean;

  constructor(config: EngineConfig, initial: InitialState) {
    validateEngineConfig(config);
    this.raft = new Raft(config, initial);
    this.asyncApply = config.maxApplyingEntries !== undefined;
    if (config.maxApplyingEntries !== undefined)
      this.raft.log.maxApplying = config.maxApplyingEntries;
    this.prevSoftState = { role: this.raft.role, leaderId: this.raft.leaderId };
    // What the stable store holds. If the engine raised the term to its log's last term, the
    // first Ready persists the difference.
    this.prevHardState = initial.hardState ?? { term: 0, votedFor: null, commit: 0 };
  }

  /** Advances logical time by one tick. */
  tick(): void {
    this.raft.tick();
  }

  /** Handles one inbound message. Messages not addressed to this node are ignored. */
  step(message: RaftMessage): void {
    this.raft.step(message);
  }

  /**
   * Appends a command to the log (leader only). Returns its position; the entry is committed
   * once it appears in some Ready's `committedEntries` with the same term.
   * @throws NotLeaderError when this node is not the leader.
   */
  propose(data: Uint8Array): { index: LogIndex; term: Term } {
    return this.raft.propose(data);
  }

  /** Starts an election at once (used by tests). */
  campaign(): void {
    this.raft.hup();
  }

  /**
   * Appends a single-server membership change (leader only): it takes effect at once and is
   * done when its entry commits. `maxLag` bounds how far a promoted learner may lag the leader
   * (undefined: no check). Throws NotLeaderError, MembershipChangeInProgressError, or a
   * RaftError (TRANSFER_IN_PROGRESS, LEARNER_LAGGING, INVALID_ARGUMENT).
   */
  proposeMembership(
    change: MembershipChange,
    maxLag?: number,
  ): { index: LogIndex; term: Term; membership: { readonly members: readonly Member[] } } {
    return this.raft.proposeMembership(change, maxLag);
  }

  /**
   * Hands leadership to the voter `to` (thesis §3.10): the leader refuses proposals, brings
   * `to` up to date and sends it TimeoutNow; abandoned after an election timeout. Throws
   * NotLeaderError, or RaftError INVALID_ARGUMENT (`to` is this node or not a voter).
   */
  transferLeadership(to: NodeId): void {
    this.raft.transferLeadership(to);
  }

  /**
   * Registers a linearizable read under `id` (leader only; ReadIndex, thesis §6.4). It is
   * confirmed after a quorum answers a heartbeat round that left after this call, and comes out
   * of {@link takeReads}. Throws NotLeaderError on other nodes.
   */
  readIndex(id: number): void {
    this.raft.readIndex(id);
  }

  /** Reads confirmed or dropped since the last call; safe while a Ready is outstanding. */
  takeReads(): ReadOutcomes {
    const r = this.raft;
    if (r.readStates.length === 0 && r.readsDropped.length === 0)
      return { confirmed: NO_READS, dropped: NO_IDS };
    const out = {
      confirmed: r.readStates.length === 0 ? NO_READS : r.readStates,
      dropped: r.readsDropped.length === 0 ? NO_IDS : r.readsDropped,
    };
    r.readStates = [];
    r.readsDropped = [];
    return out;
  }

  /** True when reads are confirmed or dropped, waiting for {@link takeReads}. */
  hasReads(): boolean {
    return this.raft.readStates.length > 0 || this.raft.readsDropped.length > 0;
  }

  /** True when the commit index holds an entry of the current term (a new leader's first
   *  entry has committed: its commit index is known, thesis §6.4). */
  committedInTerm(): boolean {
    const r = this.raft;
    return r.log.term(r.log.committed) === r.term;
  }

  /** The leader's heartbeat round counter (cheap; for lease bookkeeping). */
  heartbeatRound(): number {
    return this.raft.heartbeatRound;
  }

  /** On the leader: the voter leadership is being handed to, or null. */
  leadTransferee(): NodeId | null {
    return this.raft.role === 'leader' ? this.raft.leadTransferee : null;
  }

  /**
   * Non-null once the leader showed that this node acknowledged entries its log no longer holds
   * (its storage lost durable state). The node must stop taking part: it may have counted toward
   * commits it cannot vouch for and voted in terms it forgot. The runtime fails the node.
   */
  lostState(): {
    readonly leaderId: NodeId;
    readonly acknowledged: LogIndex;
    readonly last: LogIndex;
  } | null {
    return this.raft.lostState;
  }

  /** What a leader lease rests on (see {@link LeaseStatus}). */
  lease(): LeaseStatus {
    return this.raft.lease();
  }

  /** A transport could not reach `peer`: stop pipelining to it (etcd ReportUnreachable). */
  reportUnreachable(peer: NodeId): void {
    this.raft.reportUnreachable(peer);
  }

  /**
   * Messages that may leave at once, taken without a Ready; safe to call while a Ready is
   * outstanding (the caller is awaiting its persistence). What depends on durable state (vote
   * grants, vote requests, append acknowledgements) stays for `messagesAfterPersist`; what does
   * not (heartbeats, appends to followers, heartbeat responses, pre-votes) need not wait for a
   * slow disk (etcd's asynchronous storage writes), so a stalled fsync never costs a leader its
   * followers.
   */
  takeMessages(): readonly RaftMessage[] {
    const r = this.raft;
    r.flushAppends();
    const messages = r.msgs;
    if (messages.length === 0) return NO_MESSAGES;
    r.msgs = [];
    return messages;
  }

  /**
   * The state machine has applied every entry up to `index`. Only for engines configured with
   * `maxApplyingEntries` (which then hand out at most that many entries beyond the last index
   * reported here); otherwise `advance()` reports applying.
   */
  appliedTo(index: LogIndex): void {
    const log = this.raft.log;
    if (index > log.applying) {
      throw new RangeError(`appliedTo(${index}) is past the entries handed out (${log.applying})`);
    }
    log.appliedTo(index);
  }

  /**
   * Followers the leader needs a snapshot streamed to (their log position is compacted away).
   * The runtime streams its latest snapshot and answers each with {@link reportSnapshot}; the
   * leader sends such a follower no appends meanwhile (heartbeats go on). Call after `ready()` or
   * `takeMessages()` (which flush the appends that raise them); safe while a Ready is
   * outstanding.
   */
  takeSnapshotRequests(): readonly SnapshotRequest[] {
    // Requests arise as appends are flushed, which ready() and takeMessages() do.
    const r = this.raft;
    const requests = r.snapshotRequests;
    if (requests.length === 0) return NO_REQUESTS;
    r.snapshotRequests = [];
    return requests;
  }

  /**
   * Streaming a snapshot to `peer` finished (`ok`: the follower stored all of it) or was given
   * up. Either way the leader probes the follower again; after a failure it asks for another
   * transfer when it finds the follower still behind the compacted log.
   */
  reportSnapshot(peer: NodeId, ok: boolean): void {
    this.raft.reportSnapshot(peer, ok);
  }

  /**
   * A snapshot from the leader `from` has been received whole (not yet committed: see
   * {@link SnapshotInstall}). Returns true when the node installs it: the next Ready carries it
   * in `snapshot`, and the acknowledgement to `from` leaves after that Ready is handled. False
   * when the log already covers it (the acknowledgement is queued at once): discard it.
   */
  installSnapshot(meta: SnapshotMeta, from: NodeId): boolean {
    return this.raft.installSnapshot(meta, from);
  }

  /**
   * This node's own snapshot `meta` is durable: the leader may send it to followers, and the
   * in-memory log is compacted up to `compactTo` (at most `meta.index`, bounded by what is
   * applied and durable). Returns the index compacted up to; the runtime may compact the log
   * store as far.
   */
  snapshotTaken(meta: SnapshotMeta, compactTo: LogIndex): LogIndex {
    return this.raft.snapshotTaken(meta, compactTo);
  }

  /** True while this node is the leader (cheap: per proposal). */
  isLeader(): boolean {
    return this.raft.role === 'leader';
  }

  /** Index of the last entry in the log (durable or not). */
  lastIndex(): LogIndex {
    return this.raft.log.lastIndex();
  }

  /** The engine's term and role, without building a full status (cheap enough per message). */
  basicStatus(): BasicStatus {
    const r = this.raft;
    return {
      role: r.role,
      term: r.term,
      termDurable: r.durableTerm === r.term,
      leaderId: r.leaderId,
      commitIndex: r.log.committed,
      lastLogIndex: r.log.lastIndex(),
    };
  }

  /** True when `ready()` would return something to do. */
  hasReady(): boolean {
    if (this.outstanding) return false;
    const r = this.raft;
    r.flushAppends();
    return (
      r.msgs.length > 0 ||
      r.msgsAfterPersist.length > 0 ||
      r.pendingInstall !== null ||
      r.snapshotRequests.length > 0 ||
      r.log.stableIndex < r.log.lastIndex() ||
      r.log.hasNextCommittedEntries() ||
      r.role !== this.prevSoftState.role ||
      r.leaderId !== this.prevSoftState.leaderId ||
      r.term !== this.prevHardState.term ||
      r.votedFor !== this.prevHardState.votedFor
    );
  }

  /** Takes the next batch of work. Call `advance(rd)` once it is handled. */
  ready(): Ready {
    if (this.outstanding)
      throw new Error('RawNode.ready() called before advance() of the previous Ready');
    const r = this.raft;
    r.flushAppends();
    this.outstanding = true;
    // No write is in flight now: whether the store keeps what follows the snapshot can be
    // decided from what is durable (before the entries to write are taken).
    const pending = r.pendingInstall;
    const install =
      pending === null
        ? null
        : { meta: pending.meta, keepLog: r.log.storeKeepsAfter(pending.meta.index, pending.keep) };

    const hs = r.hardState();
    const hardChanged = !sameTermAndVote(hs, this.prevHardState);
    const soft: SoftState = { role: r.role, leaderId: r.leaderId };
    const softChanged =
      soft.role !== this.prevSoftState.role || soft.leaderId !== this.prevSoftState.leaderId;
    const entries = r.log.unstableEntries();
    const committedEntries = r.log.nextCommittedEntries();
    if (committedEntries.length > 0)
      r.log.applying = (committedEntries[committedEntries.length - 1] as LogEntry).index;
    const messages = r.msgs;
    const messagesAfterPersist = r.msgsAfterPersist;
    r.msgs = [];
    r.msgsAfterPersist = [];
    r.pendingInstall = null;
    if (hardChanged) this.prevHardState = hs;
    if (softChanged) this.prevSoftState = soft;

    const rd: Ready = {
      entries,
      committedEntries,
      messages,
      messagesAfterPersist,
      mustSync: entries.length > 0 || hardChanged || install !== null,
      ...(hardChanged ? { hardState: hs } : {}),
      ...(softChanged ? { softState: soft } : {}),
      ...(install !== null ? { snapshot: install } : {}),
    };
    return rd;
  }

  /** The Ready returned by the last `ready()` has been handled: persisted, sent, and its
   *  committed entries handed to the state machine (applying may finish later). */
  advance(rd: Ready): void {
    if (!this.outstanding) throw new Error('RawNode.advance() called without an outstanding Ready');
    this.outstanding = false;
    const r = this.raft;
    if (rd.hardState !== undefined && rd.hardState.term > r.durableTerm)
      r.durableTerm = rd.hardState.term;
    const last = rd.entries[rd.entries.length - 1];
    // An install since this Ready was taken changed nothing this write stored that memory still
    // holds: a kept suffix is unchanged, and entries of a discarded one are gone (stableTo
    // checks the term, and an entry of another prefix cannot have the same index and term).
    if (last) {
      r.log.stableTo(last.index, last.term);
      r.selfPersisted();
    }
    const lastApplied = rd.committedEntries[rd.committedEntries.length - 1];
    if (lastApplied && !this.asyncApply) r.log.appliedTo(lastApplied.index);
  }

  /** The nodes the transport must reach: the configuration in force, and on the leader the
   *  members it removed that have not learned it yet. The same array until it changes. */
  peers(): readonly Member[] {
    return this.raft.peers();
  }

  /** The configuration in force (the latest in the log). The same array until it changes. */
  members(): readonly Member[] {
    return this.raft.membership.members;
  }

  /** A snapshot of the engine's state. */
  status(): EngineStatus {
    return this.raft.status();
  }
}

/** Throws a RangeError naming the invalid engine setting. */
export function validateEngineConfig(config: EngineConfig): void {
  const positiveInt = (name: string, v: number | undefined): void => {
    if (v !== undefined && (!Number.isInteger(v) || v < 1))
      throw new RangeError(`${name} must be a positive integer, got ${v}`);
  };
  if (typeof config.id !== 'string' || config.id.length === 0)
    throw new RangeError('id must be a non-empty string');
  positiveInt('electionTicks', config.electionTicks);
  positiveInt('heartbeatTicks', config.heartbeatTicks);
  positiveInt('maxEntriesPerAppend', config.maxEntriesPerAppend);
  positiveInt('maxBytesPerAppend', config.maxBytesPerAppend);
  positiveInt('maxInflightAppends', config.maxInflightAppends);
  positiveInt('maxApplyingEntries', config.maxApplyingEntries);
  if (config.heartbeatTicks >= config.electionTicks) {
    throw new RangeError(
      `heartbeatTicks (${config.heartbeatTicks}) must be less than electionTicks (${config.electionTicks})`,
    );
  }
  if (typeof config.random !== 'function')
    throw new RangeError('random must be a function returning [0, 1)');
}
