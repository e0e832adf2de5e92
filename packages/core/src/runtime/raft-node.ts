/**
 * `createRaftNode()`: the runtime around the pure engine. It owns the clock, the transport,
 * the stores and the state machine, runs the Ready loop, and gives users
 * `await node.propose(command)`.
 *
 * ```
 *   created ──start()──► starting ──► running ──stop()──► stopping ──► stopped
 *                            │           │
 *                            └───────────┴──(storage / state machine error)──► failed
 * ```
 *
 * The Ready loop (DESIGN.md §4) runs serialized: inputs (ticks, messages, proposals) call the
 * engine synchronously and `schedule()` a drain; a running drain picks up everything that
 * arrived while it awaited storage, so all proposals of one event-loop turn become one append,
 * one fsync and one message per follower.
 */

import type { RaftNodeOptions, ResolvedOptions } from '../config.js';
import { validateOptions } from '../config.js';
import type { ProgressStatus } from '../engine/raft.js';
import { RawNode } from '../engine/raw-node.js';
import type { Ready, Role, SoftState } from '../engine/ready.js';
import {
  LeadershipLostError,
  NotLeaderError,
  RaftError,
  StorageError,
  TimeoutError,
} from '../errors.js';
import type { Clock, TimerHandle } from '../interfaces/clock.js';
import type { LogStore } from '../interfaces/log-store.js';
import type { StableStore } from '../interfaces/stable-store.js';
import type { CommandCodec, StateMachine } from '../interfaces/state-machine.js';
import type { Transport } from '../interfaces/transport.js';
import type { Logger } from '../logger.js';
import { childLogger, noopLogger } from '../logger.js';
import { encodeMembership, validateMembership } from '../membership.js';
import type {
  ProposeMessage,
  ProposeRejection,
  ProposeResponseMessage,
  RaftMessage,
} from '../messages.js';
import { hostRandom, queueMicrotask } from '../platform.js';
import type { HardState, LogEntry, LogIndex, Member, Membership, NodeId, Term } from '../types.js';
import type { RaftEvent, RaftEventListener } from './events.js';
import { EventEmitter } from './events.js';
import type { Pending } from './proposals.js';
import { createPending, DeadlineQueue, settle } from './proposals.js';
import { systemClock } from './system-clock.js';

/** The subset of the standard AbortSignal the runtime uses (core compiles without DOM types). */
export interface AbortSignalLike {
  readonly aborted: boolean;
  readonly reason?: unknown;
  addEventListener(type: 'abort', listener: () => void): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

/** Per-call options. */
export interface CallOptions {
  /** Stop waiting when aborted (rejects with code ABORTED; a proposal may still apply). */
  readonly signal?: AbortSignalLike;
  /** Overrides `requestTimeoutMs` for this call. */
  readonly timeoutMs?: number;
}

/** What `propose()` resolves with. */
export interface ProposeResult<Res> {
  readonly index: LogIndex;
  readonly term: Term;
  /** What the state machine's `apply` returned on this node. */
  readonly result: Res;
}

/** Matches the apps' `GET /v1/status`. */
export interface RaftStatus {
  readonly id: NodeId;
  readonly role: Role;
  readonly term: Term;
  readonly leaderId: NodeId | null;
  readonly commitIndex: LogIndex;
  readonly appliedIndex: LogIndex;
  readonly lastLogIndex: LogIndex;
  readonly members: readonly Member[];
  /** On the leader: replication state of every other member (match = replicated up to). */
  readonly progress?: Readonly<Record<NodeId, ProgressStatus>>;
}

/** Lifecycle of a node; see the module comment. */
export type RaftNodeState = 'created' | 'starting' | 'running' | 'stopping' | 'stopped' | 'failed';

/** A Raft node with its I/O. Create with {@link createRaftNode}. */
export interface RaftNode<Cmd, Res> {
  /**
   * Opens the stores, recovers state, starts the transport and the clock. `bootstrap` is
   * honoured only on empty storage (a brand-new cluster); a restart recovers membership from
   * its log. A node started on empty storage without `bootstrap` waits to be contacted by a
   * leader. Rejects with StorageError if the stores fail; the node is then `failed`.
   */
  start(init?: { readonly bootstrap?: Membership }): Promise<void>;
  /**
   * Stops timers, rejects waiting calls with code SHUTDOWN, waits (bounded by
   * `requestTimeoutMs`) for the in-flight storage write, then closes the transport and the
   * stores. Idempotent.
   */
  stop(): Promise<void>;
  /**
   * Replicates `command` and resolves once it is committed AND applied on this node, with the
   * state machine's result. Rejects with:
   * - NotLeaderError (code NOT_LEADER or NO_LEADER) on a follower in `reject` mode, when no
   *   leader is known, or when the node a proposal was forwarded to was no longer the leader;
   *   nothing was appended;
   * - TimeoutError (outcome unknown: it may still apply);
   * - LeadershipLostError (another leader's entry took its index: it was NOT applied);
   * - RaftError ABORTED (signal; outcome unknown), SHUTDOWN (outcome unknown if it was
   *   pending), ENTRY_TOO_LARGE (here or at the leader), PROPOSAL_DROPPED, INVALID_ARGUMENT
   *   (the codec could not encode the command);
   * - on a failed node, the error that made it fail (code STORAGE or UNAVAILABLE).
   */
  propose(command: Cmd, options?: CallOptions): Promise<ProposeResult<Res>>;
  /** A point-in-time status. Cheap; safe to poll. A node that is not running (stopped or
   *  failed) reports itself as a follower with no leader. */
  status(): RaftStatus;
  /** The lifecycle state. */
  readonly state: RaftNodeState;
  /** Subscribes to events; returns the unsubscribe function. */
  subscribe(listener: RaftEventListener): () => void;
}

type Result<Res> = ProposeResult<Res>;

/** Results kept for forwarded proposals whose answer arrives after the entry applied. */
const RECENT_RESULTS_LIMIT = 4096;
/** Forwarded proposals a leader remembers to answer duplicates (oldest forgotten first). */
const FORWARDED_SEEN_LIMIT = 4096;
/** Committed entries allowed to wait for the state machine before the Ready loop waits too. */
const MAX_APPLY_BACKLOG = 65_536;
/** Hosts' timers overflow past 2^31 - 1 ms (about 24.8 days) and would fire at once. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

function isPromiseLike(v: unknown): v is PromiseLike<unknown> {
  return (
    typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function'
  );
}

class RaftNodeImpl<Cmd, Res> implements RaftNode<Cmd, Res> {
  private readonly opts: ResolvedOptions;
  private readonly id: NodeId;
  private readonly sm: StateMachine<Cmd, Res>;
  private readonly codec: CommandCodec<Cmd>;
  private readonly logStore: LogStore;
  private readonly stableStore: StableStore;
  private readonly transport: Transport;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly logger: Logger;
  private readonly emitter: EventEmitter;

  private lifecycle: RaftNodeState = 'created';
  private engine: RawNode | null = null;
  private draining = false;
  private drainScheduled = false;
  /** Committed batches waiting for the state machine, in order; see enqueueApply(). */
  private applyQueue: (readonly LogEntry[])[] = [];
  private applyBacklog = 0;
  private applyRunning = false;
  private applyPromise: Promise<void> = Promise.resolve();
  private drainPromise: Promise<void> = Promise.resolve();
  private tickTimer: TimerHandle | null = null;
  private stopPromise: Promise<void> | null = null;
  private startPromise: Promise<void> | null = null;
  /** The error that made the node fail, if it did. */
  private fatalError: RaftError | null = null;

  private softState: SoftState = { role: 'follower', leaderId: null };
  private term: Term = 0;
  private applied: LogIndex = 0;
  private peers: readonly Member[] | null = null;

  /** Proposals with a known log position, by index. */
  private readonly byIndex = new Map<LogIndex, Pending<Result<Res>>>();
  /** Rare: a second proposal at an index already waited on (a forwarded one after a term change). */
  private collisions: Pending<Result<Res>>[] = [];
  /** Forwarded proposals waiting for the leader's proposeResponse, by request id. */
  private readonly forwarded = new Map<number, Pending<Result<Res>>>();
  /** Starts at a random point so ids never repeat across restarts (a late answer to a forward
   *  made before a restart must not settle a new proposal). */
  private nextRequestId: number;
  /** Leader side: forwarded proposals already appended, by sender and request id, so a
   *  duplicated `propose` message is answered with the first position, not appended twice. */
  private readonly forwardedSeen = new Map<string, { index: LogIndex; term: Term }>();
  private readonly recentResults = new Map<LogIndex, { term: Term; result: Res | undefined }>();
  private readonly deadlines: DeadlineQueue<Result<Res>>;

  constructor(options: RaftNodeOptions<Cmd, Res>) {
    this.opts = validateOptions(options);
    this.id = options.id;
    this.sm = options.stateMachine;
    this.codec = options.codec;
    this.logStore = options.logStore;
    this.stableStore = options.stableStore;
    this.transport = options.transport;
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? hostRandom;
    this.logger = childLogger(options.logger ?? noopLogger, { nodeId: options.id });
    this.emitter = new EventEmitter((err) => this.logger.error({ err }, 'event listener threw'));
    this.nextRequestId = 1 + Math.floor(this.random() * 2 ** 48);
    this.deadlines = new DeadlineQueue(this.clock, (p) =>
      this.expire(p, new TimeoutError(`proposal timed out after ${this.opts.requestTimeoutMs} ms`)),
    );
  }

  get state(): RaftNodeState {
    return this.lifecycle;
  }

  subscribe(listener: RaftEventListener): () => void {
    return this.emitter.subscribe(listener);
  }

  // ------------------------------------------------------------------ lifecycle

  start(init?: { readonly bootstrap?: Membership }): Promise<void> {
    if (this.lifecycle !== 'created') {
      return Promise.reject(
        new RaftError(
          'INVALID_ARGUMENT',
          `start() called on a node that is ${this.lifecycle}: create a new node over the same stores to restart`,
        ),
      );
    }
    try {
      if (init?.bootstrap !== undefined) validateMembership(init.bootstrap);
    } catch (err) {
      return Promise.reject(err);
    }
    this.lifecycle = 'starting';
    this.startPromise = this.doStart(init);
    return this.startPromise;
  }

  /** After each await of start-up: give up if stop() was called meanwhile. */
  private checkStarting(): void {
    if (this.lifecycle !== 'starting')
      throw new RaftError('SHUTDOWN', 'stop() was called during start()');
  }

  private async doStart(init?: { readonly bootstrap?: Membership }): Promise<void> {
    try {
      const bounds = await this.storage('open log store', () => this.logStore.open());
      this.checkStarting();
      let hardState = await this.storage('load hard state', () => this.stableStore.load());
      this.checkStarting();
      if (bounds.firstIndex !== 1) {
        throw new StorageError(
          `log starts at ${bounds.firstIndex}: compacted logs need snapshot support`,
        );
      }
      let entries =
        bounds.lastIndex >= bounds.firstIndex
          ? await this.storage('read log', () =>
              this.logStore.read(bounds.firstIndex, bounds.lastIndex + 1),
            )
          : [];
      this.checkStarting();
      if (entries.length === 0 && hardState === null && init?.bootstrap !== undefined) {
        // A brand-new cluster: every bootstrapping node writes the same first entry, so their
        // logs match from the start (etcd bootstraps the same way).
        const entry: LogEntry = {
          index: 1,
          term: 1,
          kind: 'membership',
          data: encodeMembership(init.bootstrap),
        };
        hardState = { term: 1, votedFor: null, commit: 1 };
        await this.storage('append bootstrap entry', () => this.logStore.append([entry]));
        await this.storage('save hard state', () => this.stableStore.save(hardState as HardState));
        this.checkStarting();
        entries = [entry];
      }
      this.engine = new RawNode(
        {
          id: this.id,
          electionTicks: Math.round(this.opts.electionTimeoutMs / this.opts.tickMs),
          heartbeatTicks: Math.max(1, Math.round(this.opts.heartbeatMs / this.opts.tickMs)),
          random: this.random,
          preVote: this.opts.preVote,
          checkQuorum: this.opts.checkQuorum,
          maxEntriesPerAppend: this.opts.maxEntriesPerAppend,
          maxBytesPerAppend: this.opts.maxBytesPerAppend,
          maxInflightAppends: this.opts.maxInflightAppends,
          logger: this.logger,
        },
        { hardState, entries, applied: 0 },
      );
      this.term = this.engine.status().term;
      this.updatePeers();
      await this.transport.start({
        onMessage: (m) => this.onMessage(m),
        onUnreachable: (peer) => this.onUnreachable(peer),
      });
      this.checkStarting();
    } catch (err) {
      const error = RaftError.is(err)
        ? err
        : new RaftError('UNAVAILABLE', 'start() failed', { cause: err });
      if (this.lifecycle === 'starting') {
        this.lifecycle = 'failed';
        this.fatalError = error;
      }
      throw error;
    }
    this.lifecycle = 'running';
    this.armTick();
    this.schedule();
  }

  stop(): Promise<void> {
    if (this.stopPromise === null) this.stopPromise = this.doStop();
    return this.stopPromise;
  }

  private async doStop(): Promise<void> {
    const previous = this.lifecycle;
    this.lifecycle = 'stopping';
    this.tickTimer?.cancel();
    this.tickTimer = null;
    this.rejectAll(new RaftError('SHUTDOWN', 'the node is shutting down'));
    if (previous === 'created') {
      this.lifecycle = 'stopped';
      return;
    }
    // A start() in flight sees the new state at its next step and gives up; wait for that.
    if (this.startPromise !== null)
      await this.withTimeout(this.startPromise, this.opts.requestTimeoutMs);
    // Let an in-flight storage write and apply finish (bounded) before closing under them.
    await this.withTimeout(
      Promise.all([this.drainPromise, this.applyPromise]),
      this.opts.requestTimeoutMs,
    );
    const errors: unknown[] = [];
    const close = async (what: string, fn: () => Promise<void>): Promise<void> => {
      try {
        await this.withTimeout(fn(), this.opts.requestTimeoutMs);
      } catch (err) {
        errors.push(err);
        this.logger.error({ err }, `closing the ${what} failed`);
      }
    };
    // A failed node closed its transport already (fail()).
    if (previous === 'running' || previous === 'starting')
      await close('transport', () => this.transport.close());
    await close('log store', () => this.logStore.close());
    await close('stable store', () => this.stableStore.close());
    this.lifecycle = 'stopped';
    if (errors.length > 0) throw new StorageError('closing the node failed', { cause: errors[0] });
  }

  private withTimeout(p: Promise<unknown>, ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = this.clock.setTimer(ms, () => {
        this.logger.warn({ ms }, 'gave up waiting during stop()');
        resolve();
      });
      p.then(
        () => {
          timer.cancel();
          resolve();
        },
        () => {
          timer.cancel();
          resolve();
        },
      );
    });
  }

  private async storage<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw RaftError.is(err, 'STORAGE') ? err : new StorageError(`${what} failed`, { cause: err });
    }
  }

  private fail(err: unknown): void {
    if (this.lifecycle !== 'running') return;
    const error = RaftError.is(err)
      ? err
      : new StorageError('storage operation failed', { cause: err });
    this.lifecycle = 'failed';
    this.fatalError = error;
    this.tickTimer?.cancel();
    this.tickTimer = null;
    this.logger.error({ err: error }, 'fatal error: the node stopped participating');
    this.rejectAll(error);
    this.transport
      .close()
      .catch((closeErr: unknown) =>
        this.logger.error({ err: closeErr }, 'closing the transport failed'),
      );
    this.emitter.emit({ type: 'fatal', error });
  }

  private rejectAll(err: unknown): void {
    for (const p of this.byIndex.values()) settle(p, false, err);
    this.byIndex.clear();
    for (const p of this.collisions) settle(p, false, err);
    this.collisions = [];
    for (const p of this.forwarded.values()) settle(p, false, err);
    this.forwarded.clear();
    for (const p of this.deadlines.drain()) settle(p, false, err);
  }

  private armTick(): void {
    this.tickTimer = this.clock.setTimer(this.opts.tickMs, () => {
      if (this.lifecycle !== 'running' || this.engine === null) return;
      this.engine.tick();
      this.schedule();
      this.armTick();
    });
  }

  // ------------------------------------------------------------------ inputs

  private onMessage(m: RaftMessage): void {
    const engine = this.engine;
    if (this.lifecycle !== 'running' || engine === null || m.to !== this.id) return;
    if (m.type === 'propose') {
      this.onForwardedProposal(engine, m);
      return;
    }
    if (m.type === 'proposeResponse') {
      this.onProposeResponse(m);
      return;
    }
    try {
      engine.step(m);
    } catch (err) {
      // Only a malformed message (or a bug) gets here; drop it rather than stop the node.
      this.logger.error(
        { err, from: m.from, type: m.type },
        'dropped a message the engine rejected',
      );
    }
    this.schedule();
  }

  private onUnreachable(peer: NodeId): void {
    if (this.lifecycle !== 'running' || this.engine === null) return;
    this.engine.reportUnreachable(peer);
    this.schedule();
  }

  propose(command: Cmd, options?: CallOptions): Promise<ProposeResult<Res>> {
    const engine = this.engine;
    if (this.lifecycle === 'failed' && this.fatalError !== null)
      return Promise.reject(this.fatalError);
    if (this.lifecycle !== 'running' || engine === null) {
      return Promise.reject(
        new RaftError(
          this.lifecycle === 'created' || this.lifecycle === 'starting'
            ? 'UNAVAILABLE'
            : 'SHUTDOWN',
          `the node is ${this.lifecycle}`,
        ),
      );
    }
    let data: Uint8Array;
    try {
      data = this.codec.encode(command);
    } catch (err) {
      return Promise.reject(
        new RaftError('INVALID_ARGUMENT', 'the codec could not encode the command', { cause: err }),
      );
    }
    if (!(data instanceof Uint8Array)) {
      return Promise.reject(
        new RaftError('INVALID_ARGUMENT', 'codec.encode() must return a Uint8Array'),
      );
    }
    if (data.byteLength > this.opts.maxCommandBytes) {
      return Promise.reject(
        new RaftError(
          'ENTRY_TOO_LARGE',
          `command is ${data.byteLength} bytes; the limit is ${this.opts.maxCommandBytes}`,
        ),
      );
    }
    const timeoutMs = options?.timeoutMs;
    if (
      timeoutMs !== undefined &&
      (!Number.isFinite(timeoutMs) || timeoutMs <= 0 || timeoutMs > MAX_TIMEOUT_MS)
    ) {
      return Promise.reject(
        new RaftError(
          'INVALID_ARGUMENT',
          `timeoutMs must be a positive number of at most ${MAX_TIMEOUT_MS}, got ${timeoutMs}`,
        ),
      );
    }
    const signal = options?.signal;
    if (signal?.aborted)
      return Promise.reject(
        new RaftError('ABORTED', 'aborted before proposing', { cause: signal.reason }),
      );

    return new Promise<ProposeResult<Res>>((resolve, reject) => {
      const p = createPending<Result<Res>>(
        resolve,
        reject,
        this.clock.now() + (timeoutMs ?? this.opts.requestTimeoutMs),
      );
      this.watch(p, timeoutMs, signal);
      let position: { index: LogIndex; term: Term };
      try {
        position = engine.propose(data);
      } catch (err) {
        if (
          err instanceof NotLeaderError &&
          err.leaderId !== null &&
          this.opts.followerProposals === 'forward'
        ) {
          this.forward(p, err.leaderId, data);
        } else {
          settle(p, false, err);
        }
        return;
      }
      this.track(p, position.index, position.term);
      this.schedule();
    });
  }

  /** Arms the deadline (shared FIFO for the default timeout) and the abort listener. */
  private watch(
    p: Pending<Result<Res>>,
    timeoutMs: number | undefined,
    signal: AbortSignalLike | undefined,
  ): void {
    let timer: TimerHandle | null = null;
    let onAbort: (() => void) | null = null;
    if (timeoutMs === undefined) {
      this.deadlines.push(p);
    } else {
      timer = this.clock.setTimer(timeoutMs, () =>
        this.expire(p, new TimeoutError(`proposal timed out after ${timeoutMs} ms`)),
      );
    }
    if (signal) {
      onAbort = () =>
        this.expire(
          p,
          new RaftError('ABORTED', 'the caller stopped waiting; the proposal may still apply', {
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

  private expire(p: Pending<Result<Res>>, err: RaftError): void {
    if (p.settled) return;
    if (p.index !== 0 && this.byIndex.get(p.index) === p) this.byIndex.delete(p.index);
    if (p.requestId !== 0) this.forwarded.delete(p.requestId);
    settle(p, false, err);
  }

  private track(p: Pending<Result<Res>>, index: LogIndex, term: Term): void {
    p.index = index;
    p.term = term;
    if (this.byIndex.has(index)) this.collisions.push(p);
    else this.byIndex.set(index, p);
  }

  private forward(p: Pending<Result<Res>>, leaderId: NodeId, data: Uint8Array): void {
    p.requestId = this.nextRequestId++;
    p.forwardedTo = leaderId;
    this.forwarded.set(p.requestId, p);
    const msg: ProposeMessage = {
      type: 'propose',
      from: this.id,
      to: leaderId,
      term: this.term,
      requestId: p.requestId,
      data,
    };
    this.transport.send([msg]);
  }

  private onForwardedProposal(engine: RawNode, m: ProposeMessage): void {
    const reply = (
      index: LogIndex,
      entryTerm: Term,
      rejected?: { leaderId: NodeId | null; reason: ProposeRejection },
    ): void => {
      const base = {
        type: 'proposeResponse',
        from: this.id,
        to: m.from,
        term: this.term,
        requestId: m.requestId,
        index,
        entryTerm,
      } as const;
      const msg: ProposeResponseMessage = rejected === undefined ? base : { ...base, rejected };
      this.transport.send([msg]);
    };
    if (m.data.byteLength > this.opts.maxCommandBytes) {
      reply(0, 0, { leaderId: this.id, reason: 'entryTooLarge' });
      return;
    }
    // A duplicated message (transports may duplicate) gets the first answer again: appending
    // it twice would apply the command twice.
    const key = `${m.from}\u0000${m.requestId}`;
    const seen = this.forwardedSeen.get(key);
    if (seen !== undefined) {
      reply(seen.index, seen.term);
      return;
    }
    try {
      const { index, term } = engine.propose(m.data);
      this.forwardedSeen.set(key, { index, term });
      if (this.forwardedSeen.size > FORWARDED_SEEN_LIMIT) {
        this.forwardedSeen.delete(this.forwardedSeen.keys().next().value as string);
      }
      reply(index, term);
      this.schedule();
    } catch (err) {
      if (err instanceof NotLeaderError)
        reply(0, 0, { leaderId: err.leaderId, reason: 'notLeader' });
      else reply(0, 0, { leaderId: this.id, reason: 'dropped' });
    }
  }

  private onProposeResponse(m: ProposeResponseMessage): void {
    const p = this.forwarded.get(m.requestId);
    if (p === undefined || m.from !== p.forwardedTo) return;
    this.forwarded.delete(m.requestId);
    if (p.settled) return;
    if (m.rejected !== undefined) {
      settle(p, false, rejectionError(m.from, m.rejected.leaderId, m.rejected.reason));
      return;
    }
    if (m.index <= this.applied) {
      // The entry applied here before the answer arrived (messages reorder).
      const recent = this.recentResults.get(m.index);
      if (recent === undefined) {
        settle(
          p,
          false,
          new TimeoutError(
            'the proposal applied before its position was known; its result is no longer available',
          ),
        );
      } else if (recent.term === m.entryTerm) {
        settle(p, true, { index: m.index, term: m.entryTerm, result: recent.result });
      } else {
        settle(p, false, new LeadershipLostError());
      }
      return;
    }
    this.track(p, m.index, m.entryTerm);
  }

  // ------------------------------------------------------------------ the Ready loop

  /**
   * Starts a drain on a microtask, so that every input of the current turn (all proposals,
   * all delivered messages) lands in the same Ready: one append, one fsync, one message per
   * follower. A drain already running picks new inputs up by itself.
   */
  private schedule(): void {
    if (this.draining || this.drainScheduled || this.lifecycle !== 'running') return;
    this.drainScheduled = true;
    queueMicrotask(() => {
      this.drainScheduled = false;
      if (this.draining || this.lifecycle !== 'running') return;
      this.draining = true;
      this.drainPromise = this.drain();
    });
  }

  private async drain(): Promise<void> {
    const engine = this.engine as RawNode;
    try {
      while (this.lifecycle === 'running' && engine.hasReady()) {
        const rd = engine.ready();
        this.observe(rd);
        if (rd.messages.length > 0) this.transport.send(rd.messages);
        if (rd.entries.length > 0)
          await this.storage('append', () => this.logStore.append(rd.entries));
        if (rd.hardState !== undefined) {
          const hs = rd.hardState;
          await this.storage('save hard state', () => this.stableStore.save(hs));
        }
        if (this.lifecycle !== 'running') return;
        if (rd.messagesAfterPersist.length > 0) this.transport.send(rd.messagesAfterPersist);
        if (rd.committedEntries.length > 0) {
          // Back pressure: never let more than a bounded backlog wait for the state machine.
          if (this.applyBacklog > MAX_APPLY_BACKLOG) await this.applyPromise;
          this.enqueueApply(rd.committedEntries);
        }
        engine.advance(rd);
        if (this.lifecycle === 'running') this.updatePeers();
      }
    } catch (err) {
      this.fail(err);
    } finally {
      this.draining = false;
    }
  }

  private observe(rd: Ready): void {
    if (rd.hardState !== undefined && rd.hardState.term !== this.term) {
      this.term = rd.hardState.term;
      this.emitter.emit({ type: 'termChanged', term: this.term });
    }
    const s = rd.softState;
    if (s === undefined) return;
    const prev = this.softState;
    this.softState = s;
    if (s.role !== prev.role)
      this.emitter.emit({ type: 'roleChanged', role: s.role, term: this.term });
    if (s.leaderId !== prev.leaderId)
      this.emitter.emit({ type: 'leaderChanged', leaderId: s.leaderId, term: this.term });
  }

  /**
   * Applying runs beside the Ready loop, not inside it (as etcd's server does): a slow state
   * machine then never holds back heartbeats, votes or acknowledgements, which would cost the
   * leader its leadership. Batches apply strictly in order.
   */
  private enqueueApply(entries: readonly LogEntry[]): void {
    this.applyQueue.push(entries);
    this.applyBacklog += entries.length;
    if (this.applyRunning) return;
    this.applyRunning = true;
    this.applyPromise = this.runApplies();
  }

  private async runApplies(): Promise<void> {
    try {
      for (
        let batch = this.applyQueue.shift();
        batch !== undefined;
        batch = this.applyQueue.shift()
      ) {
        this.applyBacklog -= batch.length;
        if (this.lifecycle !== 'running') break;
        await this.apply(batch);
      }
    } catch (err) {
      this.fail(err);
    } finally {
      this.applyQueue = [];
      this.applyBacklog = 0;
      this.applyRunning = false;
    }
  }

  private async apply(entries: readonly LogEntry[]): Promise<void> {
    const remember = this.forwarded.size > 0;
    for (const e of entries) {
      if (this.lifecycle !== 'running') return;
      let result: Res | undefined;
      if (e.kind === 'command') {
        try {
          const out = this.sm.apply(this.codec.decode(e.data), { index: e.index, term: e.term });
          result = isPromiseLike(out) ? await out : out;
        } catch (err) {
          throw new RaftError(
            'UNAVAILABLE',
            `the state machine failed to apply entry ${e.index}; the node stopped`,
            { cause: err },
          );
        }
      }
      this.applied = e.index;
      const p = this.byIndex.get(e.index);
      if (p !== undefined) {
        this.byIndex.delete(e.index);
        this.settleApplied(p, e, result);
      }
      if (this.collisions.length > 0) this.settleCollisions(e, result);
      if (remember && e.kind === 'command') {
        this.recentResults.set(e.index, { term: e.term, result });
        if (this.recentResults.size > RECENT_RESULTS_LIMIT) {
          this.recentResults.delete(this.recentResults.keys().next().value as LogIndex);
        }
      }
    }
    this.deadlines.compact();
  }

  private settleApplied(p: Pending<Result<Res>>, e: LogEntry, result: Res | undefined): void {
    if (p.term === e.term) settle(p, true, { index: e.index, term: e.term, result: result as Res });
    // Another leader's entry holds this index: ours was overwritten and will never apply.
    else settle(p, false, new LeadershipLostError());
  }

  private settleCollisions(e: LogEntry, result: Res | undefined): void {
    const rest: Pending<Result<Res>>[] = [];
    for (const p of this.collisions) {
      if (p.settled) continue;
      if (p.index === e.index) this.settleApplied(p, e, result);
      else rest.push(p);
    }
    this.collisions = rest;
  }

  private updatePeers(): void {
    const members = (this.engine as RawNode).members();
    if (members === this.peers) return;
    this.peers = members;
    this.transport.setPeers(members.filter((m) => m.id !== this.id));
  }

  // ------------------------------------------------------------------ status

  status(): RaftStatus {
    if (this.engine === null) {
      return {
        id: this.id,
        role: 'follower',
        term: 0,
        leaderId: null,
        commitIndex: 0,
        appliedIndex: 0,
        lastLogIndex: 0,
        members: [],
      };
    }
    const s = this.engine.status();
    // A node that is not running takes no part in the cluster: never report it as leader.
    const running = this.lifecycle === 'running';
    const base = {
      id: s.id,
      role: running ? s.role : ('follower' as const),
      term: s.term,
      leaderId: running ? s.leaderId : null,
      commitIndex: s.commitIndex,
      appliedIndex: this.applied,
      lastLogIndex: s.lastLogIndex,
      members: s.members,
    };
    return s.progress === undefined || !running ? base : { ...base, progress: s.progress };
  }
}

/** The error a forwarded proposal's rejection becomes; nothing was appended in any case. */
function rejectionError(
  from: NodeId,
  leaderId: NodeId | null,
  reason: ProposeRejection,
): RaftError {
  switch (reason) {
    case 'entryTooLarge':
      return new RaftError(
        'ENTRY_TOO_LARGE',
        `the leader ${from} refused the command: larger than its maxCommandBytes`,
      );
    case 'dropped':
      return new RaftError(
        'PROPOSAL_DROPPED',
        `the leader ${from} could not take the proposal now`,
        { retryable: true },
      );
    default:
      return new NotLeaderError(leaderId);
  }
}

/**
 * Creates a Raft node. Validates every option at once (ConfigError naming the field); the
 * node does nothing until `start()`.
 */
export function createRaftNode<Cmd, Res>(options: RaftNodeOptions<Cmd, Res>): RaftNode<Cmd, Res> {
  return new RaftNodeImpl(options);
}

export type { RaftEvent };
