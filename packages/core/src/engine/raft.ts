/**
 * The Raft state machine: roles, terms, elections and log replication. Pure and synchronous:
 * no clock (time is `tick()`), no randomness but the injected `random`, no I/O, no promises.
 *
 * ```
 *                 election timeout                  pre-vote majority
 *   ┌──────────┐ ─────────────────► ┌──────────────┐ ───────────────► ┌───────────┐
 *   │ follower │                    │ preCandidate │                  │ candidate │
 *   └──────────┘ ◄───────────────── └──────────────┘                  └───────────┘
 *     ▲   ▲  ▲    pre-vote lost /           (preVote: false skips       │      │
 *     │   │  │    leader heard                the preCandidate step)    │      │ vote majority
 *     │   │  └────────────────────────────────────────────────────────────┘      ▼
 *     │   │        vote lost / leader heard / higher term               ┌────────┐
 *     │   └─────────────────────────────────────────────────────────────│ leader │
 *     │        higher term / CheckQuorum failed                         └────────┘
 *     └── any role, on a message with a higher term (§5.1)
 * ```
 *
 * Outputs accumulate in `msgs` / `msgsAfterPersist` and in the log's unstable suffix; the
 * RawNode packages them into a Ready.
 */
import { MembershipChangeInProgressError, NotLeaderError, RaftError } from '../errors.js';
import type { Random } from '../interfaces/clock.js';
import type { Logger } from '../logger.js';
import { noopLogger } from '../logger.js';
import { decodeMembership, encodeMembership } from '../membership.js';
import type {
  AppendMessage,
  AppendResponseMessage,
  HeartbeatMessage,
  HeartbeatResponseMessage,
  InstallSnapshotMessage,
  InstallSnapshotResponseMessage,
  RaftMessage,
  TimeoutNowMessage,
  VoteMessage,
} from '../messages.js';
import type {
  HardState,
  LogEntry,
  LogIndex,
  Member,
  Membership,
  NodeId,
  SnapshotMeta,
  Term,
} from '../types.js';
import type { MembershipChange } from './configuration.js';
import { applyChange } from './configuration.js';
import { Progress } from './progress/progress.js';
import { committedIndex, voteResult } from './quorum/majority.js';
import { RaftLog } from './raft-log.js';
import type { ReadState } from './read-index.js';
import { ReadIndexQueue } from './read-index.js';
import type { Role } from './ready.js';

/** Configuration of the engine. Times are in ticks; the runtime converts milliseconds. */
export interface EngineConfig {
  readonly id: NodeId;
  /** Base election timeout; each term draws a timeout in [electionTicks, 2 * electionTicks). */
  readonly electionTicks: number;
  /** Ticks between heartbeats. Must be less than `electionTicks`. */
  readonly heartbeatTicks: number;
  /** Injected randomness: the engine never calls Math.random. */
  readonly random: Random;
  /** PreVote (thesis §9.6): a node that cannot win does not disrupt the cluster. Default true. */
  readonly preVote?: boolean;
  /** CheckQuorum (thesis §6.2): a leader that has not heard from a majority within an election
   *  timeout steps down. Default true. */
  readonly checkQuorum?: boolean;
  /** Most entries in one AppendEntries. Default 4096. */
  readonly maxEntriesPerAppend?: number;
  /** Most payload bytes in one AppendEntries (the first entry always goes). Default 1 MiB. */
  readonly maxBytesPerAppend?: number;
  /** Most unacknowledged AppendEntries per follower in replicate state. Default 64. */
  readonly maxInflightAppends?: number;
  /**
   * For callers that apply committed entries beside the Ready loop: at most this many entries
   * are handed out in Readies and not yet reported applied with `RawNode.appliedTo()`, so a slow
   * state machine bounds the apply queue without holding back anything else. When set,
   * `advance()` no longer counts a Ready's committed entries as applied. Default: unset (the
   * caller applies them before `advance()`, which reports them applied).
   */
  readonly maxApplyingEntries?: number;
  /**
   * For leader leases (thesis §6.4.1): a node ignores vote requests for `electionTicks` after
   * it starts, as if it had just heard from a leader, so a restart cannot make it forget a
   * leader whose lease it helped confirm. Leadership transfers are exempt. Default false.
   */
  readonly startupVoteGrace?: boolean;
  readonly logger?: Logger;
}

/** What the engine starts from, loaded by the runtime from its stores. */
export interface InitialState {
  readonly hardState: HardState | null;
  /** The latest durable snapshot, already restored into the state machine (absent or null:
   *  none, the log starts at index 1). */
  readonly snapshot?: SnapshotMeta | null;
  /** Every entry in the log store after the snapshot (from `snapshot.index + 1`, or 1). */
  readonly entries: readonly LogEntry[];
  /** Highest index already applied to the state machine (0 on a fresh state machine; at least
   *  the snapshot's index). */
  readonly applied: LogIndex;
}

/** The leader needs the runtime to stream its latest snapshot to `to` (whose log it can no
 *  longer serve from entries): at least up to `index`. Answer with `RawNode.reportSnapshot`. */
export interface SnapshotRequest {
  readonly to: NodeId;
  readonly index: LogIndex;
}

/** Replication state of one follower, as reported by `status()`. */
export interface ProgressStatus {
  readonly match: LogIndex;
  readonly next: LogIndex;
  readonly state: 'probe' | 'replicate' | 'snapshot';
  readonly recentActive: boolean;
  readonly inflight: number;
}

/** The few fields callers need per message, without the cost of {@link EngineStatus}. */
export interface BasicStatus {
  readonly role: Role;
  readonly term: Term;
  /** The current term (and vote) is durable: the runtime persisted the hard state holding it. */
  readonly termDurable: boolean;
  readonly leaderId: NodeId | null;
  readonly commitIndex: LogIndex;
  readonly lastLogIndex: LogIndex;
}

/**
 * What a leader's lease rests on (thesis §6.4.1), for a runtime that serves reads from it: the
 * last heartbeat round that left, the highest round a quorum of voters has answered, and whether
 * the lease is void for the rest of the term (leadership is being handed over: the target may
 * win an election before any timeout).
 */
export interface LeaseStatus {
  readonly round: number;
  readonly confirmedRound: number;
  readonly revoked: boolean;
}

/** A point-in-time view of the engine. */
export interface EngineStatus {
  readonly id: NodeId;
  readonly role: Role;
  readonly term: Term;
  readonly votedFor: NodeId | null;
  readonly leaderId: NodeId | null;
  readonly commitIndex: LogIndex;
  readonly appliedIndex: LogIndex;
  readonly lastLogIndex: LogIndex;
  readonly lastLogTerm: Term;
  readonly stableIndex: LogIndex;
  /** Index of the latest snapshot the engine knows of (0: none). */
  readonly snapshotIndex: LogIndex;
  /** Index of the first entry held in memory (entries before it are compacted). */
  readonly firstIndex: LogIndex;
  readonly members: readonly Member[];
  /** Index of the configuration entry in force (0: the bootstrap or snapshot one). */
  readonly membershipIndex: LogIndex;
  /** On the leader: the voter leadership is being handed to, if any. */
  readonly leadTransferee?: NodeId;
  /** Present on the leader: one entry per other member. */
  readonly progress?: Readonly<Record<NodeId, ProgressStatus>>;
}

const EMPTY = new Uint8Array(0);
/** A departing member that has not learned its removal after this many election timeouts is
 *  dropped (it is unreachable, or gone). */
const DEPARTING_ELECTIONS = 4;

/**
 * Why `m` cannot have come from a correct peer, or null. An append carries the slice of the
 * leader's log that follows `prevIndex` (§5.3), so entry `i` has index `prevIndex + 1 + i`, and
 * terms never decrease along a log and never exceed the term of the leader that sends them.
 */
function malformation(m: RaftMessage): string | null {
  if (m.type !== 'append') return null;
  let term = m.prevTerm;
  for (let i = 0; i < m.entries.length; i++) {
    const e = m.entries[i] as LogEntry;
    if (e.index !== m.prevIndex + 1 + i)
      return `entries[${i}] has index ${e.index}, expected ${m.prevIndex + 1 + i}`;
    if (e.term < term || e.term > m.term)
      return `entries[${i}] has term ${e.term}, outside [${term}, ${m.term}]`;
    term = e.term;
  }
  return null;
}

/** See the module comment. Used through {@link RawNode}. */
export class Raft {
  readonly id: NodeId;
  term: Term;
  votedFor: NodeId | null;
  role: Role = 'follower';
  leaderId: NodeId | null = null;
  readonly log: RaftLog;
  /** The latest configuration in the log (it takes effect when appended, thesis §4.1). */
  membership: Membership = { members: [] };
  voters: NodeId[] = [];
  private membershipIndex: LogIndex = 0;
  /** The latest durable snapshot (this node's own or one installed from the leader). */
  snapshot: SnapshotMeta | null;
  /** A snapshot installed from the leader that the next Ready hands to the runtime, and whether
   *  the memory log kept its suffix after it. */
  pendingInstall: { readonly meta: SnapshotMeta; readonly keep: boolean } | null = null;
  /** Leader only: followers the runtime must stream a snapshot to (taken by RawNode). */
  snapshotRequests: SnapshotRequest[] = [];

  /** Leader only: replication state of every member, this node included. */
  readonly progress = new Map<NodeId, Progress>();
  /** Candidate only: votes received in the current campaign. */
  private readonly votes = new Map<NodeId, boolean>();
  /** Leader only: followers to send appends to at the next flush; value = send even if empty. */
  private readonly dirty = new Map<NodeId, boolean>();
  /** Leader only: proposals were appended since the last flush. */
  private newEntries = false;

  /** Leader only: the voter leadership is being handed to (thesis §3.10), or null. */
  leadTransferee: NodeId | null = null;
  /** Ticks since the transfer began; it is abandoned after an election timeout. */
  private transferElapsed = 0;
  /** The TimeoutNow of the current transfer has left. */
  private timeoutNowSent = false;
  /** Leader only: a TimeoutNow left this term, so another node may win an election before any
   *  timeout: no lease for the rest of the term. */
  private leaseRevoked = false;
  /** Leader only: a configuration without this node as a voter committed; it hands over (a
   *  transfer to the most up-to-date voter) and steps down. */
  private stepDownPending = false;
  /**
   * Leader only: members the configuration in force removed, still replicated to until they
   * know it (they hold the entry that removes them, and a heartbeat told them it committed), so
   * that a removed node stops campaigning instead of disrupting; dropped after
   * DEPARTING_TICKS elections' worth of ticks if unreachable.
   */
  private readonly departing = new Map<
    NodeId,
    { readonly member: Member; readonly index: LogIndex; round: number; ticks: number }
  >();
  /** Members and departing members: the nodes the transport must reach (cached). */
  private peerList: readonly Member[] | null = null;

  /** The last heartbeat round this node broadcast as leader (ReadIndex; never decreases). */
  private round = 0;
  /** A read waits for a round that has not left yet: broadcast one at the next flush. */
  private roundWanted = false;
  private readonly reads = new ReadIndexQueue();
  /** Reads confirmed (taken by RawNode). */
  readStates: ReadState[] = [];
  /** Reads dropped because this node stopped leading (taken by RawNode). */
  readsDropped: number[] = [];
  /**
   * Set when the leader knows this node acknowledged entries its log no longer holds: its
   * storage lost durable state (a wiped disk, an old backup). The node must stop: see
   * {@link handleHeartbeat}.
   */
  lostState: {
    readonly leaderId: NodeId;
    readonly acknowledged: LogIndex;
    readonly last: LogIndex;
  } | null = null;

  /** The term of the last hard state the runtime reported durable (RawNode.advance). */
  durableTerm: Term;

  electionElapsed = 0;
  private heartbeatElapsed = 0;
  /** Ticks since this node started (a logical clock for per-follower flow control). */
  private ticks = 0;
  private randomizedElectionTimeout = 0;

  msgs: RaftMessage[] = [];
  msgsAfterPersist: RaftMessage[] = [];

  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  private readonly random: Random;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  private readonly maxEntriesPerAppend: number;
  private readonly maxBytesPerAppend: number;
  private readonly maxInflightAppends: number;
  /** Vote requests are ignored until `ticks` reaches this (startupVoteGrace). */
  private readonly voteGraceTicks: number;
  private readonly logger: Logger;

  constructor(config: EngineConfig, initial: InitialState) {
    this.id = config.id;
    this.electionTicks = config.electionTicks;
    this.heartbeatTicks = config.heartbeatTicks;
    this.random = config.random;
    this.preVote = config.preVote ?? true;
    this.checkQuorum = config.checkQuorum ?? true;
    this.maxEntriesPerAppend = config.maxEntriesPerAppend ?? 4096;
    this.maxBytesPerAppend = config.maxBytesPerAppend ?? 1024 * 1024;
    this.maxInflightAppends = config.maxInflightAppends ?? 64;
    this.voteGraceTicks = config.startupVoteGrace === true ? config.electionTicks : 0;
    this.logger = config.logger ?? noopLogger;

    const hs = initial.hardState;
    this.snapshot = initial.snapshot ?? null;
    this.log = new RaftLog(
      initial.entries,
      hs?.commit ?? 0,
      initial.applied,
      this.snapshot ?? undefined,
    );
    // A crash between persisting entries and persisting the hard state can leave entries of a
    // term the hard state does not record yet; never run at a term below our own log's.
    this.term = Math.max(hs?.term ?? 0, this.log.lastTerm());
    this.votedFor = hs && hs.term === this.term ? hs.votedFor : null;
    this.durableTerm = hs?.term ?? 0;
    this.refreshMembership(true);
    this.resetTimers();
  }

  // ---------------------------------------------------------------- membership

  /** Re-reads the latest membership entry when the log changed under it. */
  private refreshMembership(full: boolean, appended: readonly LogEntry[] = []): void {
    let found: LogEntry | undefined;
    if (full) {
      for (let i = this.log.lastIndex(); i >= this.log.firstIndex(); i--) {
        const e = this.log.entry(i) as LogEntry;
        if (e.kind === 'membership') {
          found = e;
          break;
        }
      }
    } else {
      // Only a configuration newer than the one in force: an append may repeat entries this log
      // already holds (a duplicate or a late one), and an older configuration among them must
      // not roll the membership back. Reverting happens only when the newer entry is truncated.
      for (let i = appended.length - 1; i >= 0; i--) {
        const e = appended[i] as LogEntry;
        if (e.index <= this.membershipIndex) break;
        if (e.kind === 'membership') {
          found = e;
          break;
        }
      }
      if (!found) return;
    }
    // No configuration entry in memory: the one in force at the compaction point, which the
    // snapshot records (compaction never passes the latest snapshot).
    this.setMembership(
      found ? decodeMembership(found.data) : (this.snapshot?.membership ?? { members: [] }),
      found?.index ?? 0,
    );
  }

  private setMembership(membership: Membership, index: LogIndex): void {
    const previous = this.membership;
    this.membership = membership;
    this.membershipIndex = index;
    this.voters = membership.members.filter((m) => m.voter).map((m) => m.id);
    this.peerList = null;
    if (this.role === 'leader') this.syncProgress(previous);
  }

  /** Members of the configuration in force, and members it removed that the leader still
   *  replicates to (see `departing`). The same array until it changes. */
  peers(): readonly Member[] {
    if (this.peerList === null) {
      const list = [...this.membership.members];
      for (const d of this.departing.values())
        if (!list.some((m) => m.id === d.member.id)) list.push(d.member);
      this.peerList = list;
    }
    return this.peerList;
  }

  /** Leader: one Progress per member of the configuration in force (the leader's included),
   *  and per departing member; `previous` is the configuration just replaced. */
  private syncProgress(previous: Membership): void {
    const members = this.membership.members;
    for (const m of members) {
      if (this.departing.delete(m.id)) this.peerList = null;
      if (this.progress.has(m.id)) continue;
      this.progress.set(m.id, new Progress(this.log.lastIndex() + 1, this.maxInflightAppends));
      this.dirty.set(m.id, true);
    }
    for (const id of [...this.progress.keys()]) {
      if (id === this.id || members.some((m) => m.id === id) || this.departing.has(id)) continue;
      if (this.leadTransferee === id) this.leadTransferee = null;
      const member = previous.members.find((m) => m.id === id);
      if (member === undefined) {
        this.progress.delete(id);
        this.dirty.delete(id);
        continue;
      }
      this.departing.set(id, {
        member,
        index: this.membershipIndex,
        round: Number.POSITIVE_INFINITY,
        ticks: 0,
      });
      this.peerList = null;
    }
  }

  /** A departing member's match or the commit index moved: is it time to tell it, or done? */
  private updateDeparting(id: NodeId, answeredRound: number): void {
    const d = this.departing.get(id);
    const pr = this.progress.get(id);
    if (d === undefined || pr === undefined) return;
    if (answeredRound >= d.round) {
      // It answered a heartbeat that carried commit >= the entry that removes it: it knows.
      this.dropDeparting(id);
      return;
    }
    if (
      d.round === Number.POSITIVE_INFINITY &&
      pr.match >= d.index &&
      this.log.committed >= d.index
    )
      d.round = this.round + 1;
  }

  private dropDeparting(id: NodeId): void {
    this.departing.delete(id);
    this.progress.delete(id);
    this.dirty.delete(id);
    this.peerList = null;
  }

  /**
   * Appends a single-server configuration change as leader (see configuration.ts). It takes
   * effect at once; the caller learns it committed when the entry applies. `maxLag`: a promoted
   * learner may lag the leader's last index by at most that many entries (undefined: no check).
   * Throws NotLeaderError, MembershipChangeInProgressError (a change is uncommitted, or this
   * leader has not committed an entry of its term yet: retry), RaftError TRANSFER_IN_PROGRESS,
   * LEARNER_LAGGING or INVALID_ARGUMENT.
   */
  proposeMembership(
    change: MembershipChange,
    maxLag: number | undefined,
  ): { index: LogIndex; term: Term; membership: Membership } {
    if (this.role !== 'leader') throw new NotLeaderError(this.leaderId);
    this.refuseDuringTransfer();
    if (this.membershipIndex > this.log.committed) {
      throw new MembershipChangeInProgressError(
        `the configuration change at index ${this.membershipIndex} is not committed yet`,
      );
    }
    if (this.log.term(this.log.committed) !== this.term) {
      // Ongaro's fix for single-server changes: a change proposed before the new leader's first
      // entry commits could overlap an uncommitted change of the previous leader's term.
      throw new MembershipChangeInProgressError(
        'this leader has not committed an entry of its term yet; retry in a moment',
      );
    }
    const next = applyChange(this.membership, change);
    if (change.type === 'promote' && maxLag !== undefined) {
      const lag = this.log.lastIndex() - (this.progress.get(change.id)?.match ?? 0);
      if (lag > maxLag) {
        throw new RaftError(
          'LEARNER_LAGGING',
          `${change.id} is ${lag} entries behind the leader (at most ${maxLag} allowed): let it catch up, or force the promotion`,
          { retryable: true, outcome: 'notApplied' },
        );
      }
    }
    const index = this.log.lastIndex() + 1;
    this.log.append({ index, term: this.term, kind: 'membership', data: encodeMembership(next) });
    this.newEntries = true;
    this.setMembership(next, index);
    this.logger.info(
      { index, change: change.type },
      `${this.id} proposed a configuration change at ${index}: ${change.type} ${change.type === 'add' ? change.member.id : change.id}`,
    );
    return { index, term: this.term, membership: next };
  }

  private refuseDuringTransfer(): void {
    if (this.leadTransferee !== null) {
      throw new RaftError(
        'TRANSFER_IN_PROGRESS',
        `leadership is being handed to ${this.leadTransferee}; retry on the new leader`,
        { retryable: true, outcome: 'notApplied' },
      );
    }
  }

  private isVoter(): boolean {
    return this.voters.includes(this.id);
  }

  /**
   * May this node start an election? A voter may. So may a node that the latest configuration,
   * still uncommitted, demotes or removes, if it was a voter before: it may hold that entry
   * alone among the nodes that can elect anyone (with two voters, the removed leader restarted
   * before the change committed: the other one still counts it as a voter, and refuses to vote
   * for itself over the longer log), and only its election commits the change. It counts votes
   * in the latest configuration, where its own does not count, and once the change commits it
   * hands over and steps down like any leader that is no longer a voter.
   */
  private promotable(): boolean {
    if (this.isVoter()) return true;
    if (this.membershipIndex <= this.log.committed) return false;
    for (let i = this.membershipIndex - 1; i > this.log.compactedIndex(); i--) {
      const e = this.log.entry(i) as LogEntry;
      if (e.kind === 'membership')
        return decodeMembership(e.data).members.some((m) => m.id === this.id && m.voter);
    }
    return this.snapshot?.membership.members.some((m) => m.id === this.id && m.voter) ?? false;
  }

  // ---------------------------------------------------------------- roles

  private resetTimers(): void {
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.randomizedElectionTimeout =
      this.electionTicks + Math.floor(this.random() * this.electionTicks);
  }

  private reset(term: Term): void {
    if (this.term !== term) {
      this.term = term;
      this.votedFor = null;
      // Promises of an earlier term not yet handed out in a Ready (vote requests and grants,
      // append acknowledgements) would leave only after a LATER write, which may already have
      // undone them (entries acknowledged here were truncated by the new term's leader before
      // they were ever durable). Nobody needs them any more: drop them (loss is always allowed).
      if (this.msgsAfterPersist.length > 0)
        this.msgsAfterPersist = this.msgsAfterPersist.filter((m) => m.term >= term);
    }
    this.leaderId = null;
    this.resetTimers();
    this.votes.clear();
    this.progress.clear();
    this.dirty.clear();
    this.newEntries = false;
    this.snapshotRequests = [];
    this.leadTransferee = null;
    this.timeoutNowSent = false;
    this.leaseRevoked = false;
    this.stepDownPending = false;
    if (this.departing.size > 0) {
      this.departing.clear();
      this.peerList = null;
    }
    this.roundWanted = false;
    if (this.reads.size > 0) for (const id of this.reads.drain()) this.readsDropped.push(id);
  }

  becomeFollower(term: Term, leaderId: NodeId | null): void {
    const wasLeader = this.role === 'leader';
    this.reset(term);
    this.role = 'follower';
    this.leaderId = leaderId;
    if (wasLeader) this.logger.info({ term }, `${this.id} stepped down at term ${term}`);
  }

  private becomePreCandidate(): void {
    // Thesis §9.6: no term change and no vote: a pre-campaign that fails leaves no trace.
    this.role = 'preCandidate';
    this.leaderId = null;
    this.votes.clear();
    this.logger.info({ term: this.term }, `${this.id} became pre-candidate at term ${this.term}`);
  }

  private becomeCandidate(): void {
    this.reset(this.term + 1);
    this.role = 'candidate';
    this.votedFor = this.id;
    this.logger.info({ term: this.term }, `${this.id} became candidate at term ${this.term}`);
  }

  private becomeLeader(): void {
    this.reset(this.term);
    this.role = 'leader';
    this.leaderId = this.id;
    const last = this.log.lastIndex();
    for (const m of this.membership.members) {
      const pr = new Progress(last + 1, this.maxInflightAppends);
      if (m.id === this.id) {
        pr.match = this.log.stableIndex;
        pr.becomeReplicate();
        // Only the leader itself counts as recently active (etcd): a leader cut off right after
        // its election then steps down after one election timeout, not two (thesis §6.2).
        pr.recentActive = true;
      }
      this.progress.set(m.id, pr);
    }
    // §5.4.2 / thesis §3.6.2: a no-op of the new term lets earlier entries commit.
    this.log.append({ index: last + 1, term: this.term, kind: 'noop', data: EMPTY });
    for (const id of this.progress.keys()) if (id !== this.id) this.dirty.set(id, true);
    this.logger.info({ term: this.term }, `${this.id} became leader at term ${this.term}`);
  }

  // ---------------------------------------------------------------- inputs

  tick(): void {
    this.ticks++;
    if (this.role === 'leader') this.tickHeartbeat();
    else this.tickElection();
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      // No word from the leader for an election timeout: it is no longer one this node hears.
      // (A node that may not campaign would otherwise keep it for ever, and with it the leader
      // stickiness that ignores every vote request.)
      if (this.role === 'follower') this.leaderId = null;
      this.hup();
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.leadTransferee !== null && ++this.transferElapsed >= this.electionTicks) {
      // Thesis §3.10: a transfer that has not completed within an election timeout is abandoned
      // and the leader takes proposals again.
      this.logger.info(
        { to: this.leadTransferee },
        `${this.id} abandoned the leadership transfer to ${this.leadTransferee}`,
      );
      this.leadTransferee = null;
      this.timeoutNowSent = false;
      // A leader that is no longer a voter steps down anyway.
      if (this.stepDownPending) {
        this.stepDown();
        return;
      }
    }
    if (this.departing.size > 0) {
      for (const [id, d] of this.departing)
        if (++d.ticks >= DEPARTING_ELECTIONS * this.electionTicks) this.dropDeparting(id);
    }
    if (this.electionElapsed >= this.electionTicks) {
      this.electionElapsed = 0;
      // Thesis §6.2: a leader that cannot reach a majority steps down, so clients of a
      // partitioned leader learn it quickly instead of waiting forever.
      if (this.checkQuorum && !this.quorumActive()) {
        this.logger.warn(
          { term: this.term },
          `${this.id} lost contact with a quorum at term ${this.term}`,
        );
        this.becomeFollower(this.term, null);
        return;
      }
    }
    if (this.heartbeatElapsed >= this.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      this.broadcastHeartbeat();
    }
  }

  private quorumActive(): boolean {
    let active = 0;
    for (const id of this.voters) {
      const pr = this.progress.get(id);
      if (id === this.id || pr?.recentActive) active++;
      if (pr && id !== this.id) pr.recentActive = false;
    }
    return active >= Math.floor(this.voters.length / 2) + 1;
  }

  /** Starts an election now (if this node is a voter and not the leader). */
  hup(transfer = false): void {
    if (this.role === 'leader' || !this.promotable()) return;
    if (transfer) {
      // TimeoutNow: the leader asked for this election, so PreVote would only delay it.
      this.becomeCandidate();
      this.campaign(false, true);
    } else if (this.preVote) {
      this.becomePreCandidate();
      this.campaign(true);
    } else {
      this.becomeCandidate();
      this.campaign(false);
    }
  }

  private campaign(preVote: boolean, transfer = false): void {
    const term = preVote ? this.term + 1 : this.term;
    const lastLogIndex = this.log.lastIndex();
    const lastLogTerm = this.log.lastTerm();
    for (const id of this.voters) {
      if (id === this.id) continue;
      const msg: VoteMessage = {
        type: 'vote',
        from: this.id,
        to: id,
        term,
        preVote,
        lastLogIndex,
        lastLogTerm,
        ...(transfer ? { transfer: true } : {}),
      };
      // A real vote request depends on our new term and self-vote being durable: if we crashed
      // after winning with an unrecorded self-vote, we could vote again in the same term.
      if (preVote) this.msgs.push(msg);
      else this.msgsAfterPersist.push(msg);
    }
    this.recordVote(this.id, true);
  }

  private recordVote(from: NodeId, granted: boolean): void {
    if (!this.votes.has(from)) this.votes.set(from, granted);
    const result = voteResult(this.voters, this.votes);
    if (result === 'won') {
      if (this.role === 'preCandidate') {
        this.becomeCandidate();
        this.campaign(false);
      } else {
        this.becomeLeader();
      }
    } else if (result === 'lost') {
      this.becomeFollower(this.term, null);
    }
  }

  /** Appends a command as leader. Throws NotLeaderError elsewhere. */
  propose(data: Uint8Array): { index: LogIndex; term: Term } {
    if (this.role !== 'leader') throw new NotLeaderError(this.leaderId);
    if (this.leadTransferee !== null) this.refuseDuringTransfer();
    const index = this.log.lastIndex() + 1;
    this.log.append({ index, term: this.term, kind: 'command', data });
    // Resolved once per flush, not per proposal: a turn's proposals leave as one batch.
    this.newEntries = true;
    return { index, term: this.term };
  }

  step(m: RaftMessage): void {
    if (m.to !== this.id || m.type === 'propose' || m.type === 'proposeResponse') return;
    if (m.type === 'installSnapshot' || m.type === 'installSnapshotResponse') {
      this.stepSnapshotTraffic(m);
      return;
    }
    // Messages come from the network: a malformed one is dropped before it can touch state.
    const malformed = malformation(m);
    if (malformed !== null) {
      this.logger.warn(
        { from: m.from, type: m.type, term: m.term },
        `${this.id} dropped a malformed ${m.type} from ${m.from}: ${malformed}`,
      );
      return;
    }
    if (
      m.type === 'vote' &&
      !m.transfer &&
      this.leaderId !== null &&
      this.electionElapsed < this.electionTicks &&
      !this.voters.includes(m.from)
    ) {
      // A node that is not a voter in our configuration (removed, or a learner) campaigning
      // while we hear a leader must not bump our term or cost us the leader (hashicorp/raft
      // #524), CheckQuorum or not. Without a leader we listen: our configuration may be stale
      // (a lagging node, or one holding an uncommitted change), and the candidate may be the
      // only one the others can elect (the simulator and a review found both).
      this.logger.debug(
        { from: m.from, term: m.term },
        `${this.id} ignored a vote request from ${m.from}, not a voter here`,
      );
      return;
    }
    if (m.term > this.term) {
      if (m.type === 'vote') {
        // Thesis §4.2.3: while we hear from a leader, ignore (pre)votes: a node rejoining from
        // a partition must not depose a healthy leader. A transfer the leader asked for is the
        // exception (§3.10).
        if (
          !m.transfer &&
          ((this.checkQuorum &&
            this.leaderId !== null &&
            this.electionElapsed < this.electionTicks) ||
            this.ticks < this.voteGraceTicks)
        )
          return;
        if (!m.preVote) this.becomeFollower(m.term, null);
      } else if (m.type === 'voteResponse' && m.preVote && m.granted) {
        // A granted pre-vote carries the term we would campaign at: not a newer term.
      } else {
        const leader = m.type === 'append' || m.type === 'heartbeat' ? m.from : null;
        this.becomeFollower(m.term, leader);
      }
    } else if (m.term < this.term) {
      if (m.type === 'append' || m.type === 'heartbeat') {
        // §5.1: tell the stale leader about the newer term so it steps down.
        this.send({
          type: 'appendResponse',
          from: this.id,
          to: m.from,
          term: this.term,
          success: false,
          matchIndex: 0,
        });
      } else if (m.type === 'vote' && m.preVote) {
        this.send({
          type: 'voteResponse',
          from: this.id,
          to: m.from,
          term: this.term,
          preVote: true,
          granted: false,
        });
      }
      return;
    }

    if (m.type === 'vote') {
      this.handleVote(m);
      return;
    }
    switch (this.role) {
      case 'leader':
        this.stepLeader(m);
        return;
      case 'candidate':
      case 'preCandidate':
        this.stepCandidate(m);
        return;
      case 'follower':
        this.stepFollower(m);
        return;
    }
  }

  /**
   * Snapshot chunks and their answers carry data the runtime handles; the engine takes what
   * they say about terms and leadership: a chunk from the leader is leader contact (the follower
   * keeps its election timer reset however long the transfer takes), and an answer counts as
   * the follower's activity for CheckQuorum.
   */
  private stepSnapshotTraffic(m: InstallSnapshotMessage | InstallSnapshotResponseMessage): void {
    if (m.term > this.term) {
      this.becomeFollower(m.term, m.type === 'installSnapshot' ? m.from : null);
    } else if (m.term < this.term) {
      // §5.1: tell a stale leader about the newer term so it steps down.
      if (m.type === 'installSnapshot') {
        this.send({
          type: 'appendResponse',
          from: this.id,
          to: m.from,
          term: this.term,
          success: false,
          matchIndex: 0,
        });
      }
      return;
    }
    if (m.type === 'installSnapshot') {
      if (this.role === 'candidate' || this.role === 'preCandidate')
        this.becomeFollower(this.term, m.from);
      if (this.role === 'follower') {
        this.electionElapsed = 0;
        this.leaderId = m.from;
      }
    } else if (this.role === 'leader') {
      const pr = this.progress.get(m.from);
      if (pr) pr.recentActive = true;
    }
  }

  /**
   * A snapshot received from `from` is durable in the snapshot store. If it is past the commit
   * index the node installs it: the log up to its index goes (and the rest too unless it
   * matches), and the next Ready carries it for the runtime to restore the state machine and fix
   * the log store; the acknowledgement to `from` leaves after that (messagesAfterPersist).
   * Returns whether it is installed (false: the log already covers it; acknowledged at once).
   */
  installSnapshot(meta: SnapshotMeta, from: NodeId): boolean {
    // A leader's log holds every committed entry (Leader Completeness): it never needs one.
    if (this.role === 'leader') return false;
    if (meta.index <= this.log.committed) {
      this.send({
        type: 'appendResponse',
        from: this.id,
        to: from,
        term: this.term,
        success: true,
        matchIndex: this.log.committed,
      });
      return false;
    }
    // An install not yet handed out that discarded the log leaves stableIndex at its index,
    // below this one's: the store is then emptied after this one too (storeKeepsAfter).
    const keep = this.log.restore(meta.index, meta.term);
    this.snapshot = meta;
    this.pendingInstall = { meta, keep };
    this.refreshMembership(true);
    this.logger.info(
      { index: meta.index, term: meta.term, from },
      `${this.id} installs a snapshot at ${meta.index} from ${from}`,
    );
    // Only the snapshot's index: a kept suffix matches the leader's log at that index, which
    // says nothing about the entries after it (they may be of an older leader).
    this.send({
      type: 'appendResponse',
      from: this.id,
      to: from,
      term: this.term,
      success: true,
      matchIndex: meta.index,
    });
    return true;
  }

  /**
   * This node's own snapshot `meta` is durable: remember it (a leader sends it to followers the
   * log cannot serve) and drop the in-memory log up to `compactTo` (bounded by what is applied
   * and durable). Returns the new compacted index.
   */
  snapshotTaken(meta: SnapshotMeta, compactTo: LogIndex): LogIndex {
    if (this.snapshot === null || meta.index > this.snapshot.index) this.snapshot = meta;
    const upTo = Math.min(compactTo, meta.index);
    // The memory log may already start later (a snapshot installed from the leader, perhaps not
    // durable yet): the store may drop only what this durable snapshot covers.
    return Math.min(this.log.compact(upTo), upTo);
  }

  /** The runtime finished (ok) or gave up on streaming a snapshot to `peer`. */
  reportSnapshot(peer: NodeId, ok: boolean): void {
    const pr = this.progress.get(peer);
    if (this.role !== 'leader' || !pr || pr.state !== 'snapshot') return;
    if (!ok) pr.pendingSnapshot = 0;
    // Probe after it: the follower's answer to the next append (or heartbeat) tells the rest.
    pr.becomeProbe();
    this.dirty.set(peer, true);
  }

  private handleVote(m: VoteMessage): void {
    // A node that knows no configuration has an empty log: it was just added and waits for the
    // leader, or it lost its storage and may have voted in this very term before. For one
    // election timeout after it starts it refuses to vote, which gives a leader's heartbeat the
    // time to show a lost storage (handleHeartbeat); after that it votes (a voter added directly,
    // not as a learner first, may be needed to elect the next leader before it hears of one).
    const canVote =
      (this.membership.members.length > 0 || this.ticks >= this.electionTicks) &&
      (this.votedFor === m.from ||
        (this.votedFor === null && this.leaderId === null) ||
        (m.preVote && m.term > this.term));
    // §5.4.1 election restriction.
    if (canVote && this.log.isUpToDate(m.lastLogIndex, m.lastLogTerm)) {
      if (!m.preVote) {
        this.votedFor = m.from;
        this.electionElapsed = 0;
      }
      this.send({
        type: 'voteResponse',
        from: this.id,
        to: m.from,
        term: m.term,
        preVote: m.preVote,
        granted: true,
      });
    } else {
      this.send({
        type: 'voteResponse',
        from: this.id,
        to: m.from,
        term: this.term,
        preVote: m.preVote,
        granted: false,
      });
    }
  }

  private stepLeader(m: RaftMessage): void {
    if (m.type === 'appendResponse') this.handleAppendResponse(m);
    else if (m.type === 'heartbeatResponse') this.handleHeartbeatResponse(m);
    else if (m.type === 'append' || m.type === 'heartbeat') {
      // Election Safety makes this impossible; never act on it.
      this.logger.error(
        { term: this.term, from: m.from },
        `${this.id} saw another leader ${m.from} at term ${this.term}`,
      );
    }
  }

  private stepCandidate(m: RaftMessage): void {
    switch (m.type) {
      case 'append':
        this.becomeFollower(this.term, m.from);
        this.handleAppend(m);
        return;
      case 'heartbeat':
        this.becomeFollower(this.term, m.from);
        this.handleHeartbeat(m);
        return;
      case 'voteResponse':
        if (m.preVote === (this.role === 'preCandidate')) this.recordVote(m.from, m.granted);
        return;
      default:
        return;
    }
  }

  private stepFollower(m: RaftMessage): void {
    if (m.type === 'append') {
      this.electionElapsed = 0;
      this.leaderId = m.from;
      this.handleAppend(m);
    } else if (m.type === 'heartbeat') {
      this.electionElapsed = 0;
      this.leaderId = m.from;
      this.handleHeartbeat(m);
    } else if (m.type === 'timeoutNow') {
      this.handleTimeoutNow(m);
    }
  }

  private handleTimeoutNow(m: TimeoutNowMessage): void {
    if (!this.isVoter()) return;
    this.logger.info(
      { from: m.from, term: this.term },
      `${this.id} campaigns at once: ${m.from} hands leadership over`,
    );
    this.hup(true);
  }

  // ---------------------------------------------------------------- follower side

  private handleAppend(m: AppendMessage): void {
    const reply = (
      success: boolean,
      matchIndex: LogIndex,
      conflict?: { index: LogIndex; term: Term },
    ): void => {
      const msg: AppendResponseMessage = {
        type: 'appendResponse',
        from: this.id,
        to: m.from,
        term: this.term,
        success,
        matchIndex,
      };
      this.send(conflict === undefined ? msg : { ...msg, conflict });
    };
    if (m.prevIndex < this.log.committed) {
      reply(true, this.log.committed);
      return;
    }
    // §5.3 consistency check.
    if (this.log.matchTerm(m.prevIndex, m.prevTerm)) {
      this.log.truncatedFrom = Number.POSITIVE_INFINITY;
      const lastNew = this.log.appendAfter(m.prevIndex, m.entries);
      if (this.log.truncatedFrom <= this.membershipIndex) {
        // The configuration entry we were using was overwritten: fall back to an older one.
        this.refreshMembership(true);
      } else if (m.entries.length > 0) {
        this.refreshMembership(false, m.entries);
      }
      this.log.commitTo(Math.min(m.commit, lastNew));
      reply(true, lastNew);
      return;
    }
    // Fast backtracking: point the leader at the last entry whose term could still match.
    const hintIndex = this.log.findConflictByTerm(
      Math.min(m.prevIndex, this.log.lastIndex()),
      m.prevTerm,
    );
    reply(false, m.prevIndex, { index: hintIndex, term: this.log.term(hintIndex) ?? 0 });
  }

  private handleHeartbeat(m: HeartbeatMessage): void {
    // The leader sends min(our match, its commit), and our match is what we acknowledged in
    // this term, durably: a commit past our last index means our storage lost entries we had
    // acknowledged (etcd panics here: "Was the raft log corrupted, truncated, or lost?"). Such a
    // node may have counted toward a commit it no longer holds, and may have voted in a term it
    // no longer remembers: it must not take part any more.
    if (m.commit > this.log.lastIndex()) {
      if (this.lostState === null) {
        this.lostState = { leaderId: m.from, acknowledged: m.commit, last: this.log.lastIndex() };
        this.logger.error(
          { leader: m.from, commit: m.commit, lastIndex: this.log.lastIndex() },
          `${this.id} lost entries it had acknowledged: ${m.from} knows it holds ${m.commit}, its log ends at ${this.log.lastIndex()}`,
        );
      }
      return;
    }
    this.log.commitTo(m.commit);
    const reply: HeartbeatResponseMessage = {
      type: 'heartbeatResponse',
      from: this.id,
      to: m.from,
      term: this.term,
      round: m.round,
    };
    this.send(reply);
  }

  // ---------------------------------------------------------------- leader side

  private handleAppendResponse(m: AppendResponseMessage): void {
    const pr = this.progress.get(m.from);
    if (!pr || m.from === this.id) return;
    if (m.success && m.matchIndex > this.log.lastIndex()) {
      // No follower can match entries this leader never had: not from a correct peer.
      this.logger.warn(
        { from: m.from, matchIndex: m.matchIndex },
        `${this.id} ignored an acknowledgement of ${m.matchIndex} from ${m.from}, past its last index ${this.log.lastIndex()}`,
      );
      return;
    }
    pr.recentActive = true;
    if (!m.success) {
      let hint = m.conflict?.index ?? m.matchIndex - 1;
      if (m.conflict && m.conflict.term > 0)
        hint = this.log.findConflictByTerm(m.conflict.index, m.conflict.term);
      if (pr.maybeDecrTo(m.matchIndex, hint)) {
        if (pr.state === 'replicate') {
          pr.becomeProbe();
          pr.fellBackAt = this.ticks;
        }
        this.dirty.set(m.from, true);
      }
      return;
    }
    if (pr.state === 'snapshot') {
      // The follower installed the snapshot (or holds everything it covers): probe after it.
      pr.maybeUpdate(m.matchIndex);
      if (pr.match >= pr.pendingSnapshot) {
        pr.becomeProbe();
        if (this.maybeCommit()) this.markAllDirty(true);
        else this.dirty.set(m.from, true);
      }
      return;
    }
    // etcd's rule: an ack that only confirms the known match still ends probing.
    if (pr.maybeUpdate(m.matchIndex) || (pr.state === 'probe' && pr.match === m.matchIndex)) {
      // Back to streaming, but not in the tick in which a rejection stopped it: on a network
      // that reorders, acknowledgements of the appends sent before keep arriving, and turning
      // each into a new full window multiplies the appends in flight (a message storm). Until
      // the next tick the follower catches up one probe at a time.
      if (pr.state === 'probe') {
        if (pr.fellBackAt !== this.ticks) pr.becomeReplicate();
      } else pr.inflights.freeLE(m.matchIndex);
      if (this.maybeCommit()) this.markAllDirty(true);
      else if (!this.dirty.has(m.from)) this.dirty.set(m.from, false);
      if (m.from === this.leadTransferee) this.maybeSendTimeoutNow(m.from, pr);
      if (this.departing.size > 0 && this.departing.has(m.from)) this.updateDeparting(m.from, 0);
    } else if (pr.state === 'replicate') {
      pr.inflights.freeLE(m.matchIndex);
      if (!this.dirty.has(m.from)) this.dirty.set(m.from, false);
    }
  }

  private handleHeartbeatResponse(m: HeartbeatResponseMessage): void {
    const pr = this.progress.get(m.from);
    if (!pr || m.from === this.id) return;
    pr.recentActive = true;
    pr.probeSent = false;
    if (m.round > pr.round) {
      pr.round = m.round;
      if (this.reads.size > 0) this.releaseReads();
    }
    if (this.departing.size > 0 && this.departing.has(m.from)) {
      this.updateDeparting(m.from, m.round);
      if (!this.progress.has(m.from)) return;
    }
    // If acknowledgements were lost the window stays full forever: free one slot so the next
    // append goes out, and a rejection (gap) moves the follower back to probing.
    if (pr.state === 'replicate' && pr.inflights.isFull()) pr.inflights.freeFirst();
    // A lagging follower gets an append even if nothing new is left to send: if the appends
    // in flight to it were lost, its answer (a rejection past its log end) restarts probing.
    // So does a probing one (etcd): a caught-up follower's answer to that empty append moves
    // it back to replicate at once, not at the next proposal.
    if (pr.state !== 'snapshot' && (pr.match < this.log.lastIndex() || pr.state === 'probe'))
      this.dirty.set(m.from, true);
  }

  /** The follower could not be reached: stop streaming to it and probe instead. */
  reportUnreachable(peer: NodeId): void {
    const pr = this.progress.get(peer);
    if (this.role === 'leader' && pr && pr.state === 'replicate' && peer !== this.id)
      pr.becomeProbe();
  }

  /**
   * Advances the commit index to the highest index stored on a majority, but only if that
   * entry is of the current term: Figure 8 / §5.4.2, entries of earlier terms commit only
   * indirectly.
   */
  maybeCommit(): boolean {
    const index = committedIndex(this.voters, (id) => this.progress.get(id)?.match ?? 0);
    if (index > this.log.committed && this.log.term(index) === this.term) {
      if (!this.log.commitTo(index)) return false;
      if (this.reads.hasWaiting) {
        // The first entry of this term committed: the commit index is now known (§6.4 step 1).
        this.reads.releaseWaiting(this.log.committed, this.round + 1);
        this.roundWanted = true;
        this.releaseReads();
      }
      // Thesis §4.2.2: a leader removed from the voters leads until that change commits.
      if (!this.isVoter() && this.membershipIndex <= this.log.committed)
        this.stepDownPending = true;
      if (this.departing.size > 0)
        for (const id of this.departing.keys()) this.updateDeparting(id, 0);
      return true;
    }
    return false;
  }

  // ---------------------------------------------------------------- reads

  /**
   * Registers a linearizable read (leader only); it comes out of `readStates` once confirmed,
   * or `readsDropped` if this node stops leading first. Throws NotLeaderError elsewhere.
   */
  readIndex(id: number): void {
    if (this.role !== 'leader') throw new NotLeaderError(this.leaderId);
    if (this.log.term(this.log.committed) !== this.term) {
      this.reads.wait(id);
      return;
    }
    this.reads.add(id, this.log.committed, this.round + 1);
    this.roundWanted = true;
    // Only a lone voter confirms a round that has not left yet (it is its own quorum).
    if (this.voters.length === 1) this.releaseReads();
  }

  /** The highest heartbeat round a quorum of voters has answered (the leader counts as every
   *  round). */
  confirmedRound(): number {
    return committedIndex(this.voters, (id) =>
      id === this.id ? Number.POSITIVE_INFINITY : (this.progress.get(id)?.round ?? 0),
    );
  }

  private releaseReads(): void {
    this.reads.confirm(this.confirmedRound(), this.readStates);
  }

  /** The last heartbeat round broadcast. */
  get heartbeatRound(): number {
    return this.round;
  }

  lease(): LeaseStatus {
    return {
      round: this.round,
      confirmedRound: this.role === 'leader' ? this.confirmedRound() : 0,
      revoked: this.leaseRevoked || this.role !== 'leader',
    };
  }

  // ---------------------------------------------------------------- leadership transfer

  /**
   * Hands leadership to the voter `to` (thesis §3.10): proposals are refused meanwhile, `to`
   * is brought up to date and then told to campaign at once. Abandoned after an election timeout
   * if no new leader appears. Throws NotLeaderError, or RaftError INVALID_ARGUMENT when `to` is
   * this node or not a voter.
   */
  transferLeadership(to: NodeId): void {
    if (this.role !== 'leader') throw new NotLeaderError(this.leaderId);
    if (to === this.id)
      throw new RaftError('INVALID_ARGUMENT', `${to} is already the leader`, {
        outcome: 'notApplied',
      });
    const pr = this.progress.get(to);
    if (!this.voters.includes(to) || pr === undefined) {
      throw new RaftError('INVALID_ARGUMENT', `${to} is not a voter: it cannot lead`, {
        outcome: 'notApplied',
      });
    }
    if (this.leadTransferee === to) return;
    this.leadTransferee = to;
    this.transferElapsed = 0;
    this.timeoutNowSent = false;
    this.logger.info({ to }, `${this.id} hands leadership to ${to}`);
    this.maybeSendTimeoutNow(to, pr);
    if (!this.timeoutNowSent) this.dirty.set(to, true);
  }

  private maybeSendTimeoutNow(to: NodeId, pr: Progress): void {
    if (this.timeoutNowSent || pr.match !== this.log.lastIndex()) return;
    this.timeoutNowSent = true;
    this.leaseRevoked = true;
    this.send({ type: 'timeoutNow', from: this.id, to, term: this.term });
    if (this.stepDownPending) this.stepDown();
  }

  /**
   * The leader's removal committed: hand leadership to the most up-to-date voter, as a transfer
   * (proposals are refused from now on, the target is caught up, then TimeoutNow and the step
   * down); without a voter to hand to, or once the transfer gives up, it just steps down.
   */
  private handOver(): void {
    let best: NodeId | null = null;
    let bestMatch = -1;
    for (const id of this.voters) {
      const match = this.progress.get(id)?.match ?? 0;
      if (id !== this.id && match > bestMatch) {
        best = id;
        bestMatch = match;
      }
    }
    const pr = best === null ? undefined : this.progress.get(best);
    if (best === null || pr === undefined) {
      this.stepDown();
      return;
    }
    this.leadTransferee = best;
    this.transferElapsed = 0;
    this.timeoutNowSent = false;
    this.logger.info(
      { to: best },
      `${this.id} is no longer a voter: it hands leadership to ${best}`,
    );
    this.maybeSendTimeoutNow(best, pr);
    if (this.role === 'leader') this.dirty.set(best, true);
  }

  private stepDown(): void {
    this.logger.info({ term: this.term }, `${this.id} steps down: it is no longer a voter`);
    this.becomeFollower(this.term, null);
  }

  private markAllDirty(sendIfEmpty: boolean): void {
    for (const id of this.progress.keys())
      if (id !== this.id) this.dirty.set(id, sendIfEmpty || this.dirty.get(id) === true);
  }

  private broadcastHeartbeat(): void {
    const round = ++this.round;
    this.roundWanted = false;
    for (const [id, pr] of this.progress) {
      if (id === this.id) continue;
      const commit = Math.min(pr.match, this.log.committed);
      this.send({ type: 'heartbeat', from: this.id, to: id, term: this.term, commit, round });
    }
  }

  /** Sends the appends queued since the last flush: one batch per follower per Ready. */
  flushAppends(): void {
    if (this.roundWanted && this.role === 'leader') this.broadcastHeartbeat();
    if (this.newEntries) {
      this.newEntries = false;
      for (const id of this.progress.keys())
        if (id !== this.id && !this.dirty.has(id)) this.dirty.set(id, false);
    }
    if (this.dirty.size > 0 && this.role === 'leader') {
      for (const [id, sendIfEmpty] of this.dirty) {
        const pr = this.progress.get(id);
        if (!pr) continue;
        let sent = this.maybeSendAppend(id, pr, sendIfEmpty);
        // Pipelining: in replicate state keep streaming until caught up or the window is full.
        while (sent && pr.state === 'replicate') sent = this.maybeSendAppend(id, pr, false);
      }
    }
    this.dirty.clear();
    if (this.stepDownPending && this.role === 'leader' && this.leadTransferee === null)
      this.handOver();
  }

  private maybeSendAppend(to: NodeId, pr: Progress, sendIfEmpty: boolean): boolean {
    if (pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    const prevTerm = this.log.term(prevIndex);
    if (prevTerm === undefined || prevIndex < this.log.compactedIndex()) {
      // The follower needs entries compacted away: it gets the snapshot instead (§7).
      this.requestSnapshot(to, pr);
      return false;
    }
    const entries = this.log.slice(
      pr.next,
      this.log.lastIndex() + 1,
      this.maxEntriesPerAppend,
      this.maxBytesPerAppend,
    );
    if (entries.length === 0 && !sendIfEmpty) return false;
    this.send({
      type: 'append',
      from: this.id,
      to,
      term: this.term,
      prevIndex,
      prevTerm,
      entries,
      commit: this.log.committed,
    });
    if (pr.state === 'probe') {
      pr.probeSent = true;
    } else if (entries.length > 0) {
      const last = (entries[entries.length - 1] as LogEntry).index;
      pr.next = last + 1;
      pr.inflights.add(last);
    }
    return true;
  }

  private requestSnapshot(to: NodeId, pr: Progress): void {
    const snapshot = this.snapshot;
    if (snapshot === null) {
      // Compaction never passes the latest snapshot, so this cannot happen.
      this.logger.error({ to }, `${this.id} needs a snapshot for ${to} but has none`);
      return;
    }
    pr.becomeSnapshot(snapshot.index);
    this.snapshotRequests.push({ to, index: snapshot.index });
    this.logger.info(
      { to, index: snapshot.index },
      `${this.id} sends ${to} the snapshot at ${snapshot.index}: its log is compacted past ${to}'s`,
    );
  }

  /** Our own entries up to `index` are durable: count ourselves toward the quorum. */
  selfPersisted(): void {
    if (this.role !== 'leader') return;
    const pr = this.progress.get(this.id);
    if (pr?.maybeUpdate(this.log.stableIndex) && this.maybeCommit()) this.markAllDirty(true);
  }

  // ---------------------------------------------------------------- output

  private send(m: RaftMessage): void {
    // Answers that vouch for durable state (a granted vote, an append acknowledgement) leave
    // only after that state is persisted (§5.1 "before responding to RPCs"). So does everything
    // a leader sends before its term is durable: a lone voter elects itself in one step, with
    // no vote request to wait for, and a restart that lost its term would let it lead the same
    // term again, with other entries at the same (index, term) as those it sent.
    if (
      m.type === 'voteResponse' ||
      m.type === 'appendResponse' ||
      (this.role === 'leader' && this.durableTerm < this.term)
    )
      this.msgsAfterPersist.push(m);
    else this.msgs.push(m);
  }

  hardState(): HardState {
    return { term: this.term, votedFor: this.votedFor, commit: this.log.committed };
  }

  status(): EngineStatus {
    const base = {
      id: this.id,
      role: this.role,
      term: this.term,
      votedFor: this.votedFor,
      leaderId: this.leaderId,
      commitIndex: this.log.committed,
      appliedIndex: this.log.applied,
      lastLogIndex: this.log.lastIndex(),
      lastLogTerm: this.log.lastTerm(),
      stableIndex: this.log.stableIndex,
      snapshotIndex: this.snapshot?.index ?? 0,
      firstIndex: this.log.firstIndex(),
      members: this.membership.members,
      membershipIndex: this.membershipIndex,
      ...(this.role === 'leader' && this.leadTransferee !== null
        ? { leadTransferee: this.leadTransferee }
        : {}),
    };
    if (this.role !== 'leader') return base;
    const progress: Record<NodeId, ProgressStatus> = {};
    for (const [id, pr] of this.progress) {
      if (id === this.id) continue;
      progress[id] = {
        match: pr.match,
        next: pr.next,
        state: pr.state,
        recentActive: pr.recentActive,
        inflight: pr.inflights.size,
      };
    }
    return { ...base, progress };
  }
}
