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
import type { Clock } from '../interfaces/clock.js';
import type { RaftMessage, ReadIndexMessage, ReadIndexResponseMessage } from '../messages.js';
import { queueMicrotask } from '../platform.js';
import type { LogIndex, NodeId } from '../types.js';
import { DeadlineQueue, Pending, settle, watchPending } from './proposals.js';
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
  /** clock.now(), cached for the turn. */
  now(): number;
  send(message: RaftMessage): void;
  /** Lets the Ready loop flush what a call queued (the heartbeat round). */
  schedule(): void;
}

interface RemoteRead {
  readonly from: NodeId;
  readonly session: number;
  readonly requestId: number;
}

/** Reads that share one read index: those of one event-loop turn on one node. */
type Batch = Pending<ReadResult>[];

/** Confirmed reads waiting for the state machine to apply `index`. */
interface Waiting {
  readonly index: LogIndex;
  readonly reads: Batch;
}

const ROUND_HISTORY = 64;

const readTimedOut = (ms: number): RaftError => new TimeoutError(`read timed out after ${ms} ms`);
const readAborted = (reason: unknown): RaftError =>
  new RaftError('ABORTED', 'the caller stopped waiting for the read', { cause: reason });

/**
 * See the module comment. The reads of one event-loop turn form one batch: one engine read (one
 * heartbeat round, or one request to the leader), one lease check, one result object. A read
 * only creates its promise and joins the batch; the batch is registered on a microtask, after
 * every read of the turn was called (registering later than asked is always safe).
 */
export class Reads {
  private nextId = 1;
  /** This turn's reads, not registered yet. */
  private batch: Batch = [];
  private leaseBatch: Batch = [];
  private flushQueued = false;
  /** Batches registered with the engine, by engine read id. */
  private readonly local = new Map<number, Batch>();
  /** Followers' requests registered with the engine, by engine read id. */
  private readonly remote = new Map<number, RemoteRead>();
  /** This node's batches asked of the leader, by request id. */
  private readonly forwarded = new Map<number, { readonly to: NodeId; readonly reads: Batch }>();
  /** Confirmed batches waiting for the state machine, by index (ascending). */
  private waitingApply: Waiting[] = [];
  private readonly deadlines: DeadlineQueue<ReadResult>;
  /** (round, time) pairs: the first time this node saw its round counter reach `round`, read
   *  before the messages of that round left. Ascending; the last ROUND_HISTORY. */
  private rounds: { round: number; at: number }[] = [];
  private lastRound = -1;
  /** The highest round whose record was dropped from `rounds` (0: none). */
  private droppedUpTo = 0;

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
    this.deadlines = new DeadlineQueue(clock, options.requestTimeoutMs, (p) =>
      this.expire(p, readTimedOut(options.requestTimeoutMs)),
    );
  }

  /** Starts a read; options and lifecycle are checked by the caller. */
  read(consistency: ReadConsistency, options: ReadOptions | undefined): Promise<ReadResult> {
    if (consistency === 'stale') return Promise.resolve({ index: this.host.applied() });
    if (consistency === 'lease' && this.options.leaseMs === 0) {
      return Promise.reject(
        new RaftError(
          'INVALID_ARGUMENT',
          "lease reads are off: set leaseReads: true on every node, or read with consistency 'linearizable'",
          { outcome: 'notApplied' },
        ),
      );
    }
    const timeoutMs = options?.timeoutMs;
    const p = new Pending<ReadResult>(
      Math.ceil(this.host.now() + (timeoutMs ?? this.options.requestTimeoutMs)),
    );
    watchPending(
      p,
      this.deadlines,
      this.clock,
      timeoutMs,
      options?.signal,
      this.expireBound,
      readTimedOut,
      readAborted,
    );
    if (consistency === 'lease') this.leaseBatch.push(p);
    else this.batch.push(p);
    if (!this.flushQueued) {
      this.flushQueued = true;
      queueMicrotask(this.flush);
    }
    return p.promise;
  }

  /** Registers this turn's batch: with the engine on the leader, with the leader elsewhere. */
  private readonly flush = (): void => {
    this.flushQueued = false;
    let reads = this.batch;
    const lease = this.leaseBatch;
    this.batch = [];
    this.leaseBatch = [];
    const engine = this.host.engine();
    if (engine === null) {
      // stop() and failures reject waiting reads themselves; these were taken out of the batch.
      const err = new RaftError('UNAVAILABLE', 'the node stopped before the read was registered');
      for (const p of reads) settle(p, false, err);
      for (const p of lease) settle(p, false, err);
      return;
    }
    if (engine.isLeader()) {
      if (lease.length > 0) {
        if (this.leaseHolds(engine)) this.confirmed(lease, engine.basicStatus().commitIndex);
        else reads = reads.length === 0 ? lease : reads.concat(lease);
      }
      if (reads.length === 0) return;
      const id = this.nextId++;
      for (const p of reads) p.requestId = id;
      this.local.set(id, reads);
      engine.readIndex(id);
      this.poll();
      this.host.schedule();
      return;
    }
    if (lease.length > 0) reads = reads.length === 0 ? lease : reads.concat(lease);
    const { leaderId, term } = engine.basicStatus();
    if (leaderId === null) {
      const err = new NotLeaderError(null, null, { message: 'no leader is known to read from' });
      for (const p of reads) settle(p, false, err);
      return;
    }
    const requestId = this.nextId++;
    for (const p of reads) p.requestId = requestId;
    this.forwarded.set(requestId, { to: leaderId, reads });
    this.host.send({
      type: 'readIndex',
      from: this.id,
      to: leaderId,
      term,
      session: this.session,
      requestId,
    });
  };

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

  /** The leader answered one of this node's forwarded batches. */
  onResponse(m: ReadIndexResponseMessage): void {
    if (m.session !== this.session) return;
    const f = this.forwarded.get(m.requestId);
    if (f === undefined || f.to !== m.from) return;
    this.forwarded.delete(m.requestId);
    if (m.rejected !== undefined) {
      const err = new NotLeaderError(m.rejected.leaderId);
      for (const p of f.reads) settle(p, false, err);
      return;
    }
    this.confirmed(f.reads, m.index);
  }

  /** Takes what the engine confirmed or dropped. Call after stepping it. */
  poll(): void {
    const engine = this.host.engine();
    if (engine === null || !engine.hasReads()) return;
    const { confirmed, dropped } = engine.takeReads();
    for (const r of confirmed) {
      const reads = this.local.get(r.id);
      if (reads !== undefined) {
        this.local.delete(r.id);
        this.confirmed(reads, r.index);
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
      const reads = this.local.get(id);
      if (reads !== undefined) {
        this.local.delete(id);
        const err = new NotLeaderError(leaderId, null, {
          message: 'leadership was lost before the read was confirmed',
        });
        for (const p of reads) settle(p, false, err);
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
    if (waiting.length === 0 || (waiting[0] as Waiting).index > applied) return;
    let n = 0;
    while (n < waiting.length && (waiting[n] as Waiting).index <= applied) {
      const w = waiting[n] as Waiting;
      this.serve(w.reads, w.index);
      n++;
    }
    this.waitingApply = waiting.slice(n);
  }

  /** The leader known to this node changed: batches asked of another node will not be
   *  answered by the new leader. */
  leaderChanged(leaderId: NodeId | null): void {
    for (const [requestId, f] of this.forwarded) {
      if (f.to === leaderId) continue;
      this.forwarded.delete(requestId);
      const err = new NotLeaderError(leaderId, null, {
        message: 'the leader changed before it answered the read',
      });
      for (const p of f.reads) settle(p, false, err);
    }
  }

  /** Records when this node's heartbeat round counter reached `round` (before it left). */
  noteRound(round: number): void {
    if (round <= this.lastRound || this.options.leaseMs === 0) return;
    this.lastRound = round;
    this.rounds.push({ round, at: this.clock.now() });
    if (this.rounds.length > ROUND_HISTORY * 2) {
      const cut = this.rounds.length - ROUND_HISTORY;
      this.droppedUpTo = (this.rounds[cut - 1] as { round: number }).round;
      this.rounds = this.rounds.slice(cut);
    }
  }

  /** Rejects every read (shutdown, failure). */
  rejectAll(error: RaftError): void {
    const all: Pending<ReadResult>[] = [...this.batch, ...this.leaseBatch];
    for (const reads of this.local.values()) all.push(...reads);
    for (const f of this.forwarded.values()) all.push(...f.reads);
    for (const w of this.waitingApply) all.push(...w.reads);
    all.push(...this.deadlines.drain());
    this.batch = [];
    this.leaseBatch = [];
    this.local.clear();
    this.remote.clear();
    this.forwarded.clear();
    this.waitingApply = [];
    for (const p of all) settle(p, false, error);
  }

  private leaseHolds(engine: RawNode): boolean {
    const lease = engine.lease();
    if (lease.revoked || !engine.committedInTerm()) return false;
    // The record of the confirmed round (or of the first round noted after it) may have been
    // dropped: then the oldest kept record is a later round, which says nothing. No lease.
    if (lease.confirmedRound <= this.droppedUpTo) return false;
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

  /** A batch's read index is known: serve it now, or once the state machine gets there. */
  private confirmed(reads: Batch, index: LogIndex): void {
    if (index <= this.host.applied()) {
      this.serve(reads, index);
      return;
    }
    const waiting = this.waitingApply;
    let i = waiting.length;
    while (i > 0 && (waiting[i - 1] as Waiting).index > index) i--;
    waiting.splice(i, 0, { index, reads });
  }

  private serve(reads: Batch, index: LogIndex): void {
    // One result for the batch: results are read-only.
    const result: ReadResult = Object.freeze({ index });
    for (const p of reads) settle(p, true, result);
    this.deadlines.compact();
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

  private readonly expireBound = (p: Pending<ReadResult>, err: RaftError): void =>
    this.expire(p, err);

  /** Settles `p` with `err`; a batch whose reads all gave up is forgotten (the engine or the
   *  leader may still answer it: the answer is then ignored). */
  private expire(p: Pending<ReadResult>, err: RaftError): void {
    settle(p, false, err);
    const id = p.requestId;
    if (id === 0) return;
    if (this.local.get(id)?.every((r) => r.settled)) this.local.delete(id);
    if (this.forwarded.get(id)?.reads.every((r) => r.settled)) this.forwarded.delete(id);
  }
}
