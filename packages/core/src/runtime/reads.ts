/**
 * `node.read()`: when the local state machine may be read, without writing to the log.
 *
 * ```
 *   linearizable, on the leader:   engine.readIndex(id) ─► heartbeat round ─► quorum answered
 *                                  ─► read index = commit at registration ─► applied ≥ index ─► resolve
 *   linearizable, on a follower:   readIndex{session, id} ─► leader does the above ─►
 *                                  readIndexResponse{index} ─► applied here ≥ index ─► resolve
 *   lease, on the leader:          a quorum answered a round sent less than the lease ago
 *                                  ─► read index = commit now ─► applied ≥ index ─► resolve
 *                                  (otherwise as linearizable)
 *   stale:                         resolve at once with the applied index
 * ```
 *
 * Why the lease is safe, and what it assumes: a voter that answered a heartbeat ignores vote
 * requests for an election timeout after it (leader stickiness, CheckQuorum), so no other node
 * can win an election until `electionTimeoutMs` after that heartbeat left, measured on the
 * voters' clocks. The leader counts from the moment the round left (or earlier) on its own
 * clock, and shortens the lease by the drift bound, so the lease holds as long as no clock runs
 * more than `maxClockDrift` slower or faster than another. A node that restarts would forget
 * that it heard the leader, so with leases on, a node ignores vote requests for an election
 * timeout after it starts. Handing leadership over voids the lease for the rest of the term.
 */
import type { RawNode } from '../engine/raw-node.js';
import { NotLeaderError, RaftError, TimeoutError } from '../errors.js';
import type { Clock, TimerHandle } from '../interfaces/clock.js';
import type { RaftMessage, ReadIndexMessage, ReadIndexResponseMessage } from '../messages.js';
import type { LogIndex, NodeId } from '../types.js';
import { DeadlineQueue, Pending, settle } from './proposals.js';
import type { AbortSignalLike } from './raft-node.js';

/**
 * How fresh a read must be:
 * - `linearizable` (default): ReadIndex; reflects every write completed before the call.
 * - `lease`: as linearizable, without a heartbeat round while the leader's lease holds; relies
 *   on bounded clock drift (see the module comment). Needs `leaseReads: true` on every node.
 * - `stale`: this node's state as it is, however far behind.
 */
export type ReadConsistency = 'linearizable' | 'lease' | 'stale';

/** Options of `node.read()`. */
export interface ReadOptions {
  readonly consistency?: ReadConsistency;
  /** Stop waiting when aborted (rejects with code ABORTED). */
  readonly signal?: AbortSignalLike;
  /** Overrides `requestTimeoutMs` for this call. */
  readonly timeoutMs?: number;
}

/** What `node.read()` resolves with: the state machine has applied at least `index`. */
export interface ReadResult {
  readonly index: LogIndex;
}

/** What the reads need from their node. */
export interface ReadsHost {
  /** The engine while the node runs. */
  engine(): RawNode | null;
  applied(): LogIndex;
  send(message: RaftMessage): void;
  /** Lets the Ready loop flush what a call queued (the heartbeat round). */
  schedule(): void;
}

interface RemoteRead {
  readonly from: NodeId;
  readonly session: number;
  readonly requestId: number;
}

const ROUND_HISTORY = 64;

/** See the module comment. */
export class Reads {
  private nextId = 1;
  /** Reads registered with the engine, by engine read id: local callers or followers. */
  private readonly local = new Map<number, Pending<ReadResult>>();
  private readonly remote = new Map<number, RemoteRead>();
  /** This node's reads asked of the leader, by request id. */
  private readonly forwarded = new Map<number, Pending<ReadResult>>();
  /** Confirmed reads waiting for the state machine, by index (ascending). */
  private waitingApply: Pending<ReadResult>[] = [];
  private readonly deadlines: DeadlineQueue<ReadResult>;
  /** (round, time) pairs: the first time this node saw its round counter reach `round`, read
   *  before the messages of that round left. Ascending; the last ROUND_HISTORY. */
  private rounds: { round: number; at: number }[] = [];
  private lastRound = -1;

  constructor(
    private readonly id: NodeId,
    /** Random per incarnation (shared with forwarded proposals). */
    private readonly session: number,
    private readonly clock: Clock,
    private readonly options: {
      readonly requestTimeoutMs: number;
      /** 0: lease reads are off. */
      readonly leaseMs: number;
    },
    private readonly host: ReadsHost,
  ) {
    this.deadlines = new DeadlineQueue(clock, (p) =>
      this.expire(p, new TimeoutError(`read timed out after ${options.requestTimeoutMs} ms`)),
    );
  }

  /** Reads waiting for anything. */
  get size(): number {
    return this.local.size + this.forwarded.size + this.waitingApply.length;
  }

  /** Starts a read; options and lifecycle are checked by the caller. */
  read(consistency: ReadConsistency, options: ReadOptions | undefined): Promise<ReadResult> {
    const engine = this.host.engine();
    if (engine === null) return Promise.reject(new RaftError('UNAVAILABLE', 'not running'));
    if (consistency === 'stale') return Promise.resolve({ index: this.host.applied() });
    if (consistency === 'lease' && this.options.leaseMs === 0) {
      return Promise.reject(
        new RaftError(
          'INVALID_ARGUMENT',
          "lease reads are off: set leaseReads: true on every node, or read with consistency 'linearizable'",
        ),
      );
    }
    const timeoutMs = options?.timeoutMs ?? this.options.requestTimeoutMs;
    const p = new Pending<ReadResult>(Math.ceil(this.clock.now() + timeoutMs));
    this.watch(p, options?.timeoutMs, options?.signal);
    if (engine.isLeader()) {
      if (consistency === 'lease' && this.leaseHolds(engine)) {
        this.waitApplied(p, engine.basicStatus().commitIndex);
        return p.promise;
      }
      const id = this.nextId++;
      this.local.set(id, p);
      engine.readIndex(id);
      this.poll();
      this.host.schedule();
      return p.promise;
    }
    const leaderId = engine.basicStatus().leaderId;
    if (leaderId === null) {
      settle(
        p,
        false,
        new NotLeaderError(null, null, { message: 'no leader is known to read from' }),
      );
      return p.promise;
    }
    const requestId = this.nextId++;
    p.requestId = requestId;
    p.forwardedTo = leaderId;
    this.forwarded.set(requestId, p);
    this.host.send({
      type: 'readIndex',
      from: this.id,
      to: leaderId,
      term: engine.basicStatus().term,
      session: this.session,
      requestId,
    });
    return p.promise;
  }

  /** As leader: a follower asks for a read index. */
  onRequest(m: ReadIndexMessage): void {
    const engine = this.host.engine();
    if (engine === null) return;
    const id = this.nextId++;
    try {
      engine.readIndex(id);
    } catch (err) {
      const leaderId = err instanceof NotLeaderError ? err.leaderId : null;
      this.host.send(this.answer(engine, m, 0, { leaderId }));
      return;
    }
    this.remote.set(id, { from: m.from, session: m.session, requestId: m.requestId });
    this.poll();
    this.host.schedule();
  }

  /** The leader answered one of this node's forwarded reads. */
  onResponse(m: ReadIndexResponseMessage): void {
    if (m.session !== this.session) return;
    const p = this.forwarded.get(m.requestId);
    if (p === undefined || p.forwardedTo !== m.from) return;
    this.forwarded.delete(m.requestId);
    if (p.settled) return;
    if (m.rejected !== undefined) {
      settle(p, false, new NotLeaderError(m.rejected.leaderId));
      return;
    }
    this.waitApplied(p, m.index);
  }

  /** Takes what the engine confirmed or dropped. Call after stepping it. */
  poll(): void {
    const engine = this.host.engine();
    if (engine === null || !engine.hasReads()) return;
    const { confirmed, dropped } = engine.takeReads();
    for (const r of confirmed) {
      const p = this.local.get(r.id);
      if (p !== undefined) {
        this.local.delete(r.id);
        if (!p.settled) this.waitApplied(p, r.index);
        continue;
      }
      const remote = this.remote.get(r.id);
      if (remote !== undefined) {
        this.remote.delete(r.id);
        this.host.send(this.answer(engine, remote, r.index, undefined));
      }
    }
    if (dropped.length === 0) return;
    const leaderId = engine.basicStatus().leaderId;
    for (const id of dropped) {
      const p = this.local.get(id);
      if (p !== undefined) {
        this.local.delete(id);
        settle(
          p,
          false,
          new NotLeaderError(leaderId, null, {
            message: 'leadership was lost before the read was confirmed',
          }),
        );
        continue;
      }
      const remote = this.remote.get(id);
      if (remote !== undefined) {
        this.remote.delete(id);
        this.host.send(this.answer(engine, remote, 0, { leaderId }));
      }
    }
  }

  /** The state machine applied up to `applied`: serve the reads it covers. */
  appliedTo(applied: LogIndex): void {
    const waiting = this.waitingApply;
    if (waiting.length === 0 || (waiting[0] as Pending<ReadResult>).index > applied) return;
    let n = 0;
    while (n < waiting.length && (waiting[n] as Pending<ReadResult>).index <= applied) {
      const p = waiting[n] as Pending<ReadResult>;
      settle(p, true, { index: p.index });
      n++;
    }
    this.waitingApply = waiting.slice(n);
    this.deadlines.compact();
  }

  /** The leader known to this node changed: forwarded reads to another node will not be
   *  answered by the new leader. */
  leaderChanged(leaderId: NodeId | null): void {
    for (const [requestId, p] of this.forwarded) {
      if (p.forwardedTo === leaderId) continue;
      this.forwarded.delete(requestId);
      settle(
        p,
        false,
        new NotLeaderError(leaderId, null, {
          message: 'the leader changed before it answered the read',
        }),
      );
    }
  }

  /** Records when this node's heartbeat round counter reached `round` (before it left). */
  noteRound(round: number): void {
    if (round <= this.lastRound || this.options.leaseMs === 0) return;
    this.lastRound = round;
    this.rounds.push({ round, at: this.clock.now() });
    if (this.rounds.length > ROUND_HISTORY * 2) this.rounds = this.rounds.slice(-ROUND_HISTORY);
  }

  /** Rejects every read (shutdown, failure). */
  rejectAll(error: RaftError): void {
    const all = [
      ...this.local.values(),
      ...this.forwarded.values(),
      ...this.waitingApply,
      ...this.deadlines.drain(),
    ];
    this.local.clear();
    this.remote.clear();
    this.forwarded.clear();
    this.waitingApply = [];
    for (const p of all) settle(p, false, error);
  }

  private leaseHolds(engine: RawNode): boolean {
    const lease = engine.lease();
    if (lease.revoked || !engine.committedInTerm()) return false;
    // The first recorded time at which the confirmed round had left: no earlier than its send.
    let sentAt = -1;
    for (const r of this.rounds) {
      if (r.round >= lease.confirmedRound) {
        sentAt = r.at;
        break;
      }
    }
    return sentAt >= 0 && this.clock.now() < sentAt + this.options.leaseMs;
  }

  private waitApplied(p: Pending<ReadResult>, index: LogIndex): void {
    p.index = index;
    if (index <= this.host.applied()) {
      settle(p, true, { index });
      return;
    }
    const waiting = this.waitingApply;
    let i = waiting.length;
    while (i > 0 && (waiting[i - 1] as Pending<ReadResult>).index > index) i--;
    waiting.splice(i, 0, p);
  }

  private answer(
    engine: RawNode,
    to: { readonly from: NodeId; readonly session: number; readonly requestId: number },
    index: LogIndex,
    rejected: { readonly leaderId: NodeId | null } | undefined,
  ): ReadIndexResponseMessage {
    const m: ReadIndexResponseMessage = {
      type: 'readIndexResponse',
      from: this.id,
      to: to.from,
      term: engine.basicStatus().term,
      session: to.session,
      requestId: to.requestId,
      index,
    };
    return rejected === undefined ? m : { ...m, rejected };
  }

  private watch(
    p: Pending<ReadResult>,
    timeoutMs: number | undefined,
    signal: AbortSignalLike | undefined,
  ): void {
    let timer: TimerHandle | null = null;
    let onAbort: (() => void) | null = null;
    if (timeoutMs === undefined) this.deadlines.push(p);
    else
      timer = this.clock.setTimer(timeoutMs, () =>
        this.expire(p, new TimeoutError(`read timed out after ${timeoutMs} ms`)),
      );
    if (signal) {
      onAbort = () =>
        this.expire(
          p,
          new RaftError('ABORTED', 'the caller stopped waiting for the read', {
            cause: signal.reason,
          }),
        );
      signal.addEventListener('abort', onAbort);
    }
    if (timer !== null || onAbort !== null) {
      p.cleanup = () => {
        timer?.cancel();
        if (onAbort) signal?.removeEventListener('abort', onAbort);
      };
    }
  }

  private expire(p: Pending<ReadResult>, err: RaftError): void {
    if (p.settled) return;
    settle(p, false, err);
    // Its entries in the maps are dropped when found settled, or here for the cheap cases.
    if (p.requestId !== 0) this.forwarded.delete(p.requestId);
    if (p.index !== 0) {
      const i = this.waitingApply.indexOf(p);
      if (i >= 0) this.waitingApply.splice(i, 1);
    }
  }
}
