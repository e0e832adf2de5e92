/**
 * `createRaftNode()`: the runtime around the pure engine. It owns the clock, the transport,
 * the stores and the state machine, and gives users `await node.propose(command)`.
 *
 * ```
 *   created ──start()──► starting ──► running ──stop()──► stopping ──► stopped
 *                            │           │
 *                            └───────────┴──(storage error)──► failed
 * ```
 *
 * This file is the façade that wires the pieces, each a concern of its own:
 * - recovery.ts: what start() reads from the stores, and the bootstrap write;
 * - ready-loop.ts: persist, send and advance the engine's Ready batches, in order;
 * - applier.ts: the state machine, beside the loop, and the policy on exceptions;
 * - proposals.ts: callers waiting for their entries, and their deadlines;
 * - forwarding.ts: proposals forwarded from followers, at most once;
 * - snapshotter.ts: this node's own snapshots and the log compaction behind them;
 * - snapshot-sender.ts / snapshot-receiver.ts: InstallSnapshot, streamed in chunks;
 * - reads.ts: `read()`, ReadIndex and leases, without writing to the log;
 * - membership-changes.ts: `addMember`, `removeMember`, `promote`, `demote`;
 * - leadership-transfer.ts: `transferLeadership`.
 */

import type { RaftNodeOptions, ResolvedOptions } from '../config.js';
import { validateOptions } from '../config.js';
import type { MembershipChange } from '../engine/configuration.js';
import type { ProgressStatus } from '../engine/raft.js';
import { RawNode } from '../engine/raw-node.js';
import type { Ready, Role, SnapshotInstall, SoftState } from '../engine/ready.js';
import type { ApplyError } from '../errors.js';
import {
  ConfigError,
  LeadershipLostError,
  NotLeaderError,
  RaftError,
  StorageError,
  TimeoutError,
} from '../errors.js';
import type { Clock, TimerHandle } from '../interfaces/clock.js';
import type { LogStore } from '../interfaces/log-store.js';
import type { SnapshotSource, SnapshotStore } from '../interfaces/snapshot-store.js';
import type { StableStore } from '../interfaces/stable-store.js';
import type { CommandCodec, StateMachine } from '../interfaces/state-machine.js';
import type { RaftStores } from '../interfaces/stores.js';
import type { Transport } from '../interfaces/transport.js';
import type { Logger } from '../logger.js';
import { childLogger, noopLogger } from '../logger.js';
import { validateMembership } from '../membership.js';
import type { ProposeMessage, ProposeResponseMessage, RaftMessage } from '../messages.js';
import { hostRandom, queueMicrotask } from '../platform.js';
import type {
  LogEntry,
  LogIndex,
  Member,
  Membership,
  NodeId,
  SnapshotMeta,
  Term,
} from '../types.js';
import { Applier } from './applier.js';
import type { RaftEvent, RaftEventListener } from './events.js';
import { EventEmitter } from './events.js';
import { ForwardedProposals, ForwardLedger, rejectionError } from './forwarding.js';
import type { TransferOptions, TransferResult } from './leadership-transfer.js';
import { LeadershipTransfers } from './leadership-transfer.js';
import type { MembershipCallOptions, PromoteOptions } from './membership-changes.js';
import { MembershipChanges } from './membership-changes.js';
import { DeadlineQueue, Pending, PositionedProposals, settle, watchPending } from './proposals.js';
import type { ReadOptions, ReadResult } from './reads.js';
import { Reads } from './reads.js';
import { ReadyLoop } from './ready-loop.js';
import { recover } from './recovery.js';
import { malformedChunk, SnapshotReceiver } from './snapshot-receiver.js';
import { SnapshotSender } from './snapshot-sender.js';
import { Pacer, readChunks } from './snapshot-stream.js';
import { compactionPoint, Snapshotter } from './snapshotter.js';
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

/** What `waitForLeader()` resolves with. */
export interface LeaderInfo {
  readonly leaderId: NodeId;
  readonly term: Term;
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
  /** Index of the latest snapshot this node holds (0: none); the log before it may be
   *  compacted. */
  readonly snapshotIndex: LogIndex;
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
   * honoured only on empty storage (a brand-new cluster: give every node the same membership,
   * which must list this node); a restart recovers membership from its log. A node started on
   * empty storage without `bootstrap` waits to be contacted by a leader.
   *
   * Rejects with StorageError if the stores fail or hold an inconsistent state (the node is then
   * `failed`), with ConfigError for a bad `bootstrap`, and when called twice.
   */
  start(init?: { readonly bootstrap?: Membership }): Promise<void>;
  /**
   * Stops timers, rejects waiting calls with code SHUTDOWN (pending proposals with outcome
   * `unknown`: they may still commit), waits (bounded by `requestTimeoutMs`) for the in-flight
   * storage write and apply, then closes the transport and the stores. Idempotent. Rejects
   * with StorageError (the node is `stopped` anyway) when that write, or closing a store,
   * failed.
   */
  stop(): Promise<void>;
  /**
   * Replicates `command` and resolves once it is committed AND applied on this node, with the
   * state machine's result. Every rejection is a RaftError whose `outcome` says whether the
   * command may still apply (`unknown`) or never will (`notApplied`):
   *
   * | code | outcome | when |
   * | --- | --- | --- |
   * | NOT_LEADER, NO_LEADER | notApplied | a follower in `reject` mode, no leader known, or the node it was forwarded to is not the leader of that term (NotLeaderError, with `leaderId`) |
   * | LEADERSHIP_LOST | notApplied | another leader's entry took its index |
   * | PROPOSAL_DROPPED | notApplied | the leader holds `maxPendingEntries` unapplied entries, or cannot take forwards now (retryable) |
   * | ENTRY_TOO_LARGE, INVALID_ARGUMENT | notApplied | checked before anything is appended (size, codec round trip, options) |
   * | SHUTDOWN, UNAVAILABLE, STORAGE | notApplied | the node is not running when called |
   * | TIMEOUT | unknown | no outcome within the timeout (TimeoutError) |
   * | ABORTED | unknown | the caller's signal fired after the proposal left |
   * | SHUTDOWN | unknown | `stop()` was called while it was pending |
   * | STORAGE | unknown | the node failed (a store failed) while it was pending |
   * | APPLY_FAILED | (applied) | the state machine threw for this command on this node (ApplyError, `cause`): every replica recorded the same |
   */
  propose(command: Cmd, options?: CallOptions): Promise<ProposeResult<Res>>;
  /**
   * Resolves once this node knows a leader (at once if it does), with its id and term. Rejects
   * with TimeoutError after `timeoutMs` (default `requestTimeoutMs`), ABORTED, or SHUTDOWN.
   */
  waitForLeader(options?: CallOptions): Promise<LeaderInfo>;
  /**
   * Resolves once the local state machine may be read at the requested consistency, with the
   * index it has applied at least; then read the state machine directly.
   *
   * - `linearizable` (default): ReadIndex (thesis §6.4). The read reflects every write that
   *   completed before the call. On the leader it costs one heartbeat round, shared by every
   *   read that arrives meanwhile, and no log write; a follower asks the leader for the index
   *   and serves the read itself once it has applied that far.
   * - `lease` (needs `leaseReads: true` on every node): on the leader, no heartbeat round while
   *   its lease holds; it relies on clocks drifting by at most `maxClockDrift`. Falls back to
   *   ReadIndex when the lease has lapsed, and on followers.
   * - `stale`: at once, with whatever this node has applied.
   *
   * Rejects with NOT_LEADER / NO_LEADER (retryable, `leaderId` hint) when this node cannot
   * confirm a leader (it lost leadership, or knows none), TIMEOUT after `timeoutMs` (default
   * `requestTimeoutMs`), ABORTED, INVALID_ARGUMENT (bad options, or `lease` without
   * `leaseReads`), and SHUTDOWN / UNAVAILABLE when the node is not running.
   */
  read(options?: ReadOptions): Promise<ReadResult>;
  /**
   * Adds a member (leader only). Add it as a learner (`voter: false`) first, let it catch up,
   * then `promote()` it: a voter that must first catch up slows every commit. Resolves with the
   * new membership once the change is committed and applied here. Rejects with NOT_LEADER
   * (`leaderId` hint), MEMBERSHIP_CHANGE_PENDING (another change is not committed yet; retry),
   * TRANSFER_IN_PROGRESS, INVALID_ARGUMENT (the id is already a member: ids are never reused),
   * TIMEOUT (outcome unknown: the change may still commit) and ABORTED.
   */
  addMember(member: Member, options?: MembershipCallOptions): Promise<Membership>;
  /**
   * Removes a member (leader only); as `addMember`. The leader keeps replicating to the removed
   * node until it knows it was removed (at most four election timeouts), so it stops
   * campaigning. Removing the leader itself: it leads until the change commits, then hands
   * leadership to the most up-to-date voter (refusing proposals meanwhile) and steps down.
   */
  removeMember(id: NodeId, options?: MembershipCallOptions): Promise<Membership>;
  /**
   * Makes a learner a voter (leader only). Refused with LEARNER_LAGGING (retryable) while its
   * log lags the leader's by more than `maxPromotionLag` entries, unless `force`.
   */
  promote(id: NodeId, options?: PromoteOptions): Promise<Membership>;
  /** Makes a voter a learner (leader only); as `removeMember` for the voter set. */
  demote(id: NodeId, options?: MembershipCallOptions): Promise<Membership>;
  /**
   * Hands leadership to the voter `to` (default: the most up-to-date one), thesis §3.10. The
   * leader refuses proposals meanwhile (TRANSFER_IN_PROGRESS), brings the target up to date and
   * tells it to campaign at once. Resolves with the new leader once another node leads (usually
   * `to`). Rejects with NOT_LEADER, INVALID_ARGUMENT (`to` is this node, unknown or a learner),
   * TIMEOUT (the transfer was abandoned after an election timeout, or `timeoutMs` passed: this
   * node may still lead) and ABORTED.
   */
  transferLeadership(to?: NodeId, options?: TransferOptions): Promise<TransferResult>;
  /**
   * Takes a snapshot of the state machine now (or joins the one in flight), and compacts the
   * log behind it, keeping `trailingEntries`. Resolves with its meta once it is durable; with
   * the latest one at once when nothing was applied since. Rejects with UNAVAILABLE when the
   * node cannot take snapshots (no `snapshotStore`, or a state machine without `snapshot()` and
   * `restore()`) or has applied nothing yet, with TIMEOUT after `timeoutMs` (the snapshot may
   * still complete), and with the error that made the snapshot fail (the previous snapshot and
   * the log are then intact).
   */
  takeSnapshot(options?: CallOptions): Promise<SnapshotMeta>;
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
/** Hosts' timers overflow past 2^31 - 1 ms (about 24.8 days) and would fire at once. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/**
 * How long a leader's lease lasts after the heartbeat round that confirmed it left. A voter that
 * answered the round ignores vote requests until `electionTicks` of its ticks have passed (the
 * engine counts whole ticks, and the first one may come right after the heartbeat), so at least
 * `(electionTicks - 1) * tickMs` on its clock; shortened by the drift bound.
 */
function leaseMs(opts: ResolvedOptions): number {
  const electionTicks = Math.round(opts.electionTimeoutMs / opts.tickMs);
  return (electionTicks - 1) * opts.tickMs * (1 - opts.maxClockDrift);
}

const proposalTimedOut = (ms: number): RaftError =>
  new TimeoutError(`proposal timed out after ${ms} ms`);
const proposalAborted = (reason: unknown): RaftError =>
  new RaftError('ABORTED', 'the caller stopped waiting; the proposal may still apply', {
    cause: reason,
    outcome: 'unknown',
  });

/** An error for a call made before anything was appended. */
function notApplied(
  code: 'SHUTDOWN' | 'UNAVAILABLE' | 'INVALID_ARGUMENT' | 'ENTRY_TOO_LARGE' | 'ABORTED',
  message: string,
  options?: { readonly cause?: unknown; readonly retryable?: boolean },
): RaftError {
  return new RaftError(code, message, { ...options, outcome: 'notApplied' });
}

function checkTimeout(timeoutMs: number | undefined): RaftError | null {
  if (
    timeoutMs !== undefined &&
    (!Number.isFinite(timeoutMs) || timeoutMs <= 0 || timeoutMs > MAX_TIMEOUT_MS)
  ) {
    return notApplied(
      'INVALID_ARGUMENT',
      `timeoutMs must be a positive number of at most ${MAX_TIMEOUT_MS}, got ${timeoutMs}`,
    );
  }
  return null;
}

interface LeaderWaiter {
  readonly resolve: (info: LeaderInfo) => void;
  readonly reject: (err: unknown) => void;
  cleanup: () => void;
}

class RaftNodeImpl<Cmd, Res> implements RaftNode<Cmd, Res> {
  private readonly opts: ResolvedOptions;
  private readonly id: NodeId;
  private readonly codec: CommandCodec<Cmd>;
  private readonly logStore: LogStore;
  private readonly stableStore: StableStore;
  private readonly snapshotStore: SnapshotStore | null;
  /** The adapter's bundle when the stores came as `stores`: closed last by stop(). */
  private readonly stores: RaftStores | null;
  private readonly stateMachine: StateMachine<Cmd, Res>;
  private readonly transport: Transport;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly logger: Logger;
  private readonly emitter: EventEmitter;
  private readonly applier: Applier<Cmd, Res>;
  private readonly snapshotter: Snapshotter<Cmd, Res>;
  private readonly sender: SnapshotSender;
  private readonly receiver: SnapshotReceiver;
  private readonly reads: Reads;
  private readonly changes: MembershipChanges;
  private readonly transfers: LeadershipTransfers;

  private lifecycle: RaftNodeState = 'created';
  private engine: RawNode | null = null;
  private loop: ReadyLoop | null = null;
  private tickTimer: TimerHandle | null = null;
  private stopPromise: Promise<void> | null = null;
  private startPromise: Promise<void> | null = null;
  /** The error that made the node fail, if it did. */
  private fatalError: RaftError | null = null;
  /** A storage failure while stop() waited for the last write: stop() rejects with it. */
  private stopFailure: unknown = undefined;

  private softState: SoftState = { role: 'follower', leaderId: null };
  private term: Term = 0;
  private peers: readonly Member[] | null = null;
  private members: readonly Member[] | null = null;
  private leaderWaiters: LeaderWaiter[] = [];

  /** Proposals with a known log position. */
  private readonly positioned = new PositionedProposals<Result<Res>>();
  /** This node's forwards waiting for the leader's answer. */
  private readonly forwarded: ForwardedProposals<Result<Res>>;
  /** As leader: the forwards taken this term. */
  private readonly ledger: ForwardLedger;
  private readonly recentResults = new Map<
    LogIndex,
    { term: Term; result: Res | undefined; error: ApplyError | undefined }
  >();
  private readonly deadlines: DeadlineQueue<Result<Res>>;
  /** clock.now(), read once per turn. */
  private nowCache = -1;

  constructor(options: RaftNodeOptions<Cmd, Res>) {
    this.opts = validateOptions(options);
    this.id = options.id;
    this.codec = options.codec;
    // validateOptions checked that these exist, from `stores` or given one by one.
    this.logStore = (options.stores?.logStore ?? options.logStore) as LogStore;
    this.stableStore = (options.stores?.stableStore ?? options.stableStore) as StableStore;
    this.snapshotStore = options.stores?.snapshotStore ?? options.snapshotStore ?? null;
    this.stores = options.stores ?? null;
    this.stateMachine = options.stateMachine;
    this.transport = options.transport;
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? hostRandom;
    this.logger = childLogger(options.logger ?? noopLogger, { nodeId: options.id });
    this.emitter = new EventEmitter((err) => this.logger.error({ err }, 'event listener threw'));
    this.forwarded = new ForwardedProposals(this.random, this.clock.now());
    this.ledger = new ForwardLedger(this.id, this.opts.maxCommandBytes);
    this.deadlines = new DeadlineQueue(this.clock, this.opts.requestTimeoutMs, (p) =>
      this.expire(p, proposalTimedOut(this.opts.requestTimeoutMs)),
    );
    this.applier = new Applier(options.stateMachine, this.codec, this.logger, {
      isRunning: () => this.lifecycle === 'running',
      onApplied: (entry, result, error) => this.onApplied(entry, result, error),
      onProgress: (applied) => this.onApplyProgress(applied),
      fail: (err) => this.fail(err),
      now: () => this.clock.now(),
      defer: (callback) => void this.clock.setTimer(0, callback),
    });
    this.snapshotter = new Snapshotter(
      options.stateMachine,
      this.snapshotStore,
      this.applier,
      { entries: this.opts.snapshotThreshold, bytes: this.opts.snapshotThresholdBytes },
      this.logger,
      {
        isRunning: () => this.lifecycle === 'running',
        now: () => this.clock.now(),
        pacer: () => new Pacer(this.clock),
        taken: (meta) => this.onSnapshotTaken(meta),
        failed: (error) => this.emitter.emit({ type: 'snapshotFailed', error }),
      },
    );
    const host = {
      isRunning: () => this.lifecycle === 'running',
      engine: () => (this.lifecycle === 'running' ? this.engine : null),
      schedule: () => this.loop?.schedule(),
    };
    this.sender = new SnapshotSender(
      this.id,
      this.snapshotStore,
      this.transport,
      this.clock,
      this.logger,
      {
        chunkBytes: this.opts.snapshotChunkBytes,
        resendMs: this.opts.electionTimeoutMs,
        giveUpMs: this.opts.snapshotTransferTimeoutMs,
      },
      host,
    );
    this.receiver = new SnapshotReceiver(
      this.id,
      // Installing needs somewhere to write the chunks and a state machine to restore them.
      options.stateMachine.restore === undefined ? null : this.snapshotStore,
      this.transport,
      this.clock,
      this.logger,
      this.opts.snapshotTransferTimeoutMs,
      {
        ...host,
        restore: (source) => this.restoreFrom(source),
        installed: (meta) => this.onSnapshotInstalled(meta),
      },
    );
    this.reads = new Reads(
      this.id,
      this.forwarded.session,
      this.clock,
      {
        requestTimeoutMs: this.opts.requestTimeoutMs,
        leaseMs: this.opts.leaseReads ? leaseMs(this.opts) : 0,
      },
      {
        engine: host.engine,
        applied: () => this.applier.applied,
        now: () => this.now(),
        send: (m) => this.transport.send([m]),
        schedule: host.schedule,
      },
    );
    this.changes = new MembershipChanges(this.clock, this.opts.requestTimeoutMs, {
      engine: host.engine,
      changed: () => this.updatePeers(),
      schedule: host.schedule,
    });
    this.transfers = new LeadershipTransfers(
      this.id,
      this.clock,
      this.opts.requestTimeoutMs,
      host.engine,
      host.schedule,
    );
    if (!this.snapshotter.enabled) {
      this.logger.warn(
        {},
        this.snapshotStore === null
          ? 'no snapshotStore: the log is never compacted and grows without bound'
          : 'the state machine has no snapshot() and restore(): the log is never compacted and grows without bound',
      );
    }
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
      const message =
        this.lifecycle === 'starting' || this.lifecycle === 'running'
          ? 'start() was already called on this node'
          : `this node is ${this.lifecycle}: create a new node over the same stores to restart it`;
      return Promise.reject(new RaftError('INVALID_ARGUMENT', message));
    }
    const bootstrap = init?.bootstrap;
    if (bootstrap !== undefined) {
      try {
        validateMembership(bootstrap);
      } catch (err) {
        return Promise.reject(new ConfigError('bootstrap', (err as Error).message));
      }
      if (!bootstrap.members.some((m) => m.id === this.id)) {
        // A cluster bootstrapped without this node would never elect it, and it would never
        // hear from a leader: it would wait forever.
        return Promise.reject(
          new ConfigError(
            'bootstrap',
            `does not list this node (${this.id}); every node of a new cluster is started with the same membership, which includes it`,
          ),
        );
      }
    }
    this.lifecycle = 'starting';
    this.startPromise = this.doStart(bootstrap);
    return this.startPromise;
  }

  /** After each await of start-up: give up if stop() was called meanwhile. */
  private readonly checkStarting = (): void => {
    if (this.lifecycle !== 'starting')
      throw new RaftError('SHUTDOWN', 'stop() was called during start()');
  };

  private async doStart(bootstrap: Membership | undefined): Promise<void> {
    try {
      const { hardState, snapshot, entries } = await recover(
        this.logStore,
        this.stableStore,
        this.snapshotStore,
        this.stateMachine.restore === undefined ? null : (source) => this.restoreFrom(source),
        bootstrap,
        this.checkStarting,
      );
      if (snapshot !== null) this.snapshotter.adopt(snapshot);
      const engine = new RawNode(
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
          maxApplyingEntries: this.opts.maxPendingEntries,
          startupVoteGrace: this.opts.leaseReads,
          logger: this.logger,
        },
        { hardState, snapshot, entries, applied: snapshot?.index ?? 0 },
      );
      this.engine = engine;
      this.loop = new ReadyLoop(engine, this.logStore, this.stableStore, this.transport, {
        isRunning: () => this.lifecycle === 'running',
        observe: (rd) => this.observe(rd),
        sending: () => this.reads.noteRound(engine.heartbeatRound()),
        apply: (committed) => this.applier.enqueue(committed),
        advanced: () => this.afterAdvance(),
        sendSnapshots: (requests) => {
          const term = engine.basicStatus().term;
          for (const r of requests) this.sender.start(r.to, term);
        },
        installSnapshot: (install) => this.installSnapshot(install),
        fail: (err) => this.fail(err),
      });
      this.term = engine.basicStatus().term;
      this.ledger.begin(this.term);
      this.updatePeers();
      await this.transport.start({
        onMessage: (m) => this.onMessage(m),
        onUnreachable: (peer) => this.onUnreachable(peer),
      });
      this.checkStarting();
    } catch (err) {
      const error = RaftError.is(err)
        ? err
        : new RaftError('UNAVAILABLE', `start() failed: ${(err as Error)?.message ?? err}`, {
            cause: err,
          });
      if (this.lifecycle === 'starting') {
        this.lifecycle = 'failed';
        this.fatalError = error;
      }
      this.rejectLeaderWaiters(this.failedError());
      throw error;
    }
    this.lifecycle = 'running';
    this.armTick();
    this.loop.schedule();
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
    this.rejectAll(
      () =>
        new RaftError(
          'SHUTDOWN',
          'the node is shutting down; the proposal may still commit on the other nodes',
          { outcome: 'unknown' },
        ),
    );
    this.rejectLeaderWaiters(notApplied('SHUTDOWN', 'the node is shutting down'));
    this.rejectCalls(
      (maybeApplied) =>
        new RaftError('SHUTDOWN', 'the node is shutting down', {
          outcome: maybeApplied ? 'unknown' : 'notApplied',
        }),
    );
    this.sender.abandonAll();
    this.receiver.abandonAll();
    this.applier.cancelAll(notApplied('SHUTDOWN', 'the node is shutting down'));
    if (previous === 'created') {
      this.lifecycle = 'stopped';
      return;
    }
    // A start() in flight sees the new state at its next step and gives up; wait for that.
    if (this.startPromise !== null)
      await this.withTimeout(this.startPromise, this.opts.requestTimeoutMs);
    // Let an in-flight storage write and apply finish (bounded) before closing under them.
    await this.withTimeout(
      Promise.all([this.loop?.idle(), this.applier.whenIdle(), this.snapshotter.idle()]),
      this.opts.requestTimeoutMs,
    );
    const errors: unknown[] = [];
    const close = async (what: string, fn: () => Promise<void>): Promise<void> => {
      const closing = Promise.resolve()
        .then(fn)
        .catch((err: unknown) => {
          errors.push(err);
          this.logger.error({ err }, `closing the ${what} failed`);
        });
      await this.withTimeout(closing, this.opts.requestTimeoutMs);
    };
    // A failed node closed its transport already (fail()).
    if (previous === 'running' || previous === 'starting')
      await close('transport', () => this.transport.close());
    await close('log store', () => this.logStore.close());
    await close('stable store', () => this.stableStore.close());
    const snapshotStore = this.snapshotStore;
    if (snapshotStore !== null) await close('snapshot store', () => snapshotStore.close());
    // Last: what the storage adapter holds besides the three stores (its lock, its connection).
    const stores = this.stores;
    if (stores !== null) await close('storage', () => stores.close());
    this.lifecycle = 'stopped';
    if (this.stopFailure !== undefined) {
      throw RaftError.is(this.stopFailure, 'STORAGE')
        ? this.stopFailure
        : new StorageError('a storage operation failed while the node was stopping', {
            cause: this.stopFailure,
          });
    }
    if (errors.length > 0) throw new StorageError('closing the node failed', { cause: errors[0] });
  }

  /** Resolves when `p` settles or after `ms`, whichever is first; never rejects. */
  private withTimeout(p: Promise<unknown>, ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = this.clock.setTimer(ms, () => {
        this.logger.warn({ ms }, 'gave up waiting during stop()');
        resolve();
      });
      const done = (): void => {
        timer.cancel();
        resolve();
      };
      p.then(done, done);
    });
  }

  private fail(err: unknown): void {
    if (this.lifecycle === 'stopping') {
      // The last write (or apply) failed while stop() waited for it: stop() reports it.
      this.logger.error({ err }, 'a storage operation failed while the node was stopping');
      this.stopFailure ??= err;
      return;
    }
    if (this.lifecycle !== 'running') return;
    const error = RaftError.is(err)
      ? err
      : new StorageError('storage operation failed', { cause: err });
    this.lifecycle = 'failed';
    this.fatalError = error;
    this.tickTimer?.cancel();
    this.tickTimer = null;
    this.logger.error({ err: error }, 'fatal error: the node stopped participating');
    // The entries of pending proposals may have reached the followers before the failure.
    this.rejectAll(
      () =>
        new StorageError(`the node failed: ${error.message}`, {
          cause: error,
          outcome: 'unknown',
        }),
    );
    this.rejectLeaderWaiters(this.failedError());
    this.rejectCalls((maybeApplied) =>
      maybeApplied
        ? new StorageError(`the node failed: ${error.message}`, {
            cause: error,
            outcome: 'unknown',
          })
        : this.failedError(),
    );
    this.sender.abandonAll();
    this.receiver.abandonAll();
    this.applier.cancelAll(this.failedError());
    this.transport
      .close()
      .catch((closeErr: unknown) =>
        this.logger.error({ err: closeErr }, 'closing the transport failed'),
      );
    this.emitter.emit({ type: 'fatal', error });
  }

  /** The error calls to a failed node get: nothing of theirs was appended. */
  private failedError(): RaftError {
    const cause = this.fatalError;
    const message = `the node failed and takes no calls: ${cause?.message ?? 'unknown error'}`;
    return RaftError.is(cause, 'STORAGE')
      ? new StorageError(message, { cause, outcome: 'notApplied' })
      : notApplied('UNAVAILABLE', message, { cause });
  }

  private rejectAll(error: () => RaftError): void {
    const pending = [
      ...this.positioned.drain(),
      ...this.forwarded.drain(),
      ...this.deadlines.drain(),
    ];
    if (pending.length === 0) return;
    const err = error();
    for (const p of pending) settle(p, false, err);
  }

  /** Rejects reads, membership changes and transfers (`maybeApplied`: a change was appended). */
  private rejectCalls(error: (maybeApplied: boolean) => RaftError): void {
    this.reads.rejectAll(error(false));
    this.changes.rejectAll(error);
    this.transfers.rejectAll(error(false));
  }

  private armTick(): void {
    this.tickTimer = this.clock.setTimer(this.opts.tickMs, () => {
      if (this.lifecycle !== 'running' || this.engine === null) return;
      this.engine.tick();
      this.reads.poll();
      this.transfers.tick();
      this.changes.progress();
      this.loop?.schedule();
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
    if (m.type === 'readIndex') {
      this.reads.onRequest(m);
      return;
    }
    if (m.type === 'readIndexResponse') {
      this.reads.onResponse(m);
      return;
    }
    if (m.type === 'installSnapshot') {
      // Checked before the engine sees it: a malformed chunk is not leader contact.
      const bad = malformedChunk(m);
      if (bad !== null) {
        this.logger.warn({ from: m.from }, `dropped a malformed snapshot chunk: ${bad}`);
        return;
      }
    }
    try {
      engine.step(m);
      if (m.type === 'installSnapshot') this.receiver.onChunk(m);
      else if (m.type === 'installSnapshotResponse') this.sender.onResponse(m);
      this.reads.poll();
      const lost = engine.lostState();
      if (lost !== null) {
        this.fail(
          new StorageError(
            `this node's storage lost entries it had acknowledged: the leader ${lost.leaderId} knows it holds entries up to ${lost.acknowledged}, but its log ends at ${lost.last} (a wiped or replaced disk, or an old backup). A node that lost its state must not rejoin under the same id: remove it (removeMember('${this.id}')), start it on an empty disk under a new id, add that id as a learner and promote it`,
          ),
        );
        return;
      }
    } catch (err) {
      // The engine drops malformed messages itself: only a bug gets here. Keep the node up.
      this.logger.error(
        { err, from: m.from, type: m.type },
        'dropped a message the engine rejected',
      );
    }
    this.loop?.schedule();
  }

  private onUnreachable(peer: NodeId): void {
    if (this.lifecycle !== 'running' || this.engine === null) return;
    this.engine.reportUnreachable(peer);
    this.loop?.schedule();
  }

  /** Why a call cannot be taken in the current lifecycle state, or null when running. */
  private lifecycleError(): RaftError | null {
    switch (this.lifecycle) {
      case 'running':
        return null;
      case 'failed':
        return this.failedError();
      case 'created':
        return notApplied('UNAVAILABLE', 'the node has not been started: call start() first');
      case 'starting':
        return notApplied('UNAVAILABLE', 'the node is starting: wait for start() to resolve', {
          retryable: true,
        });
      default:
        return notApplied('SHUTDOWN', `the node is ${this.lifecycle}`);
    }
  }

  propose(command: Cmd, options?: CallOptions): Promise<ProposeResult<Res>> {
    const engine = this.engine;
    const refused = this.lifecycleError();
    if (refused !== null || engine === null)
      return Promise.reject(refused ?? this.lifecycleError());
    let data: Uint8Array;
    try {
      data = this.codec.encode(command);
    } catch (err) {
      return Promise.reject(
        notApplied('INVALID_ARGUMENT', 'the codec could not encode the command', { cause: err }),
      );
    }
    if (!(data instanceof Uint8Array)) {
      return Promise.reject(
        notApplied('INVALID_ARGUMENT', 'codec.encode() must return a Uint8Array'),
      );
    }
    if (this.opts.validateCommands) {
      // A command no replica could decode would fail on every one of them: refuse it here.
      try {
        this.codec.decode(data);
      } catch (err) {
        return Promise.reject(
          notApplied(
            'INVALID_ARGUMENT',
            'the codec cannot decode what it encoded for this command (decode(encode(command)) threw)',
            { cause: err },
          ),
        );
      }
    }
    if (data.byteLength > this.opts.maxCommandBytes) {
      return Promise.reject(
        notApplied(
          'ENTRY_TOO_LARGE',
          `command is ${data.byteLength} bytes; the limit is ${this.opts.maxCommandBytes}`,
        ),
      );
    }
    const timeoutMs = options?.timeoutMs;
    const badTimeout = checkTimeout(timeoutMs);
    if (badTimeout !== null) return Promise.reject(badTimeout);
    const signal = options?.signal;
    if (signal?.aborted)
      return Promise.reject(
        notApplied('ABORTED', 'aborted before proposing', { cause: signal.reason }),
      );
    // Back-pressure: a leader whose state machine is this far behind takes no more work (it
    // refuses forwards the same way; a follower leaves the decision to its leader).
    if (engine.isLeader() && this.unapplied(engine) >= this.opts.maxPendingEntries) {
      return Promise.reject(
        new RaftError(
          'PROPOSAL_DROPPED',
          `the leader holds ${this.opts.maxPendingEntries} entries its state machine has not applied yet; retry later`,
          { retryable: true, outcome: 'notApplied' },
        ),
      );
    }

    // Whole milliseconds (a small integer needs no heap number), never earlier than asked.
    const p = new Pending<Result<Res>>(
      Math.ceil(this.now() + (timeoutMs ?? this.opts.requestTimeoutMs)),
    );
    watchPending(
      p,
      this.deadlines,
      this.clock,
      timeoutMs,
      signal,
      this.expireBound,
      proposalTimedOut,
      proposalAborted,
    );
    // A follower that knows its leader forwards without asking the engine first: the engine's
    // answer would be a NotLeaderError, and building one (its stack trace) per forwarded
    // proposal cost a follower 2% of its CPU under load.
    const basic = engine.basicStatus();
    if (
      basic.role !== 'leader' &&
      basic.leaderId !== null &&
      this.opts.followerProposals === 'forward'
    ) {
      this.transport.send([this.forwarded.forward(p, this.id, basic.leaderId, basic.term, data)]);
      return p.promise;
    }
    let position: { index: LogIndex; term: Term };
    try {
      position = engine.propose(data);
    } catch (err) {
      if (
        err instanceof NotLeaderError &&
        err.leaderId !== null &&
        this.opts.followerProposals === 'forward'
      ) {
        const term = engine.basicStatus().term;
        this.transport.send([this.forwarded.forward(p, this.id, err.leaderId, term, data)]);
      } else {
        settle(p, false, err);
      }
      return p.promise;
    }
    p.index = position.index;
    p.term = position.term;
    this.positioned.add(p);
    this.loop?.schedule();
    return p.promise;
  }

  /** Entries in the log the state machine has not applied yet. */
  private unapplied(engine: RawNode): number {
    return engine.lastIndex() - this.applier.applied;
  }

  /** clock.now(), read at most once per event-loop turn (proposals of a turn share it). */
  private now(): number {
    if (this.nowCache < 0) {
      this.nowCache = this.clock.now();
      queueMicrotask(this.clearNow);
    }
    return this.nowCache;
  }

  private readonly clearNow = (): void => {
    this.nowCache = -1;
  };

  private readonly expireBound = (p: Pending<Result<Res>>, err: RaftError): void =>
    this.expire(p, err);

  private expire(p: Pending<Result<Res>>, err: RaftError): void {
    if (p.settled) return;
    if (p.index !== 0) this.positioned.delete(p);
    if (p.requestId !== 0) this.forwarded.delete(p);
    settle(p, false, err);
  }

  /** Why a call with `options` cannot begin now (lifecycle, a bad timeout, an aborted signal). */
  private refuseCall(options: CallOptions | undefined, duringStart: boolean): RaftError | null {
    if (!(duringStart && this.lifecycle === 'starting')) {
      const refused = this.lifecycleError();
      if (refused !== null) return refused;
    }
    const badTimeout = checkTimeout(options?.timeoutMs);
    if (badTimeout !== null) return badTimeout;
    const signal = options?.signal;
    if (signal?.aborted) return notApplied('ABORTED', 'aborted', { cause: signal.reason });
    return null;
  }

  waitForLeader(options?: CallOptions): Promise<LeaderInfo> {
    const refused = this.refuseCall(options, true);
    if (refused !== null) return Promise.reject(refused);
    const signal = options?.signal;
    const known = this.softState.leaderId;
    if (this.lifecycle === 'running' && known !== null)
      return Promise.resolve({ leaderId: known, term: this.term });
    const timeoutMs = options?.timeoutMs ?? this.opts.requestTimeoutMs;
    return new Promise<LeaderInfo>((resolve, reject) => {
      const waiter: LeaderWaiter = { resolve, reject, cleanup: () => {} };
      const remove = (): void => {
        this.leaderWaiters = this.leaderWaiters.filter((w) => w !== waiter);
        waiter.cleanup();
      };
      const timer = this.clock.setTimer(timeoutMs, () => {
        remove();
        reject(new TimeoutError(`no leader known within ${timeoutMs} ms`));
      });
      const onAbort = (): void => {
        remove();
        reject(
          notApplied('ABORTED', 'aborted while waiting for a leader', { cause: signal?.reason }),
        );
      };
      signal?.addEventListener('abort', onAbort);
      waiter.cleanup = () => {
        timer.cancel();
        signal?.removeEventListener('abort', onAbort);
      };
      this.leaderWaiters.push(waiter);
    });
  }

  // ------------------------------------------------------------------ reads

  read(options?: ReadOptions): Promise<ReadResult> {
    const refused = this.refuseCall(options, false);
    if (refused !== null) return Promise.reject(refused);
    const consistency = options?.consistency ?? 'linearizable';
    if (consistency !== 'linearizable' && consistency !== 'lease' && consistency !== 'stale') {
      return Promise.reject(
        notApplied(
          'INVALID_ARGUMENT',
          `consistency must be 'linearizable', 'lease' or 'stale', got ${String(consistency)}`,
        ),
      );
    }
    return this.reads.read(consistency, options);
  }

  // ------------------------------------------------------------------ membership

  addMember(member: Member, options?: MembershipCallOptions): Promise<Membership> {
    return this.changeMembership({ type: 'add', member }, undefined, options);
  }

  removeMember(id: NodeId, options?: MembershipCallOptions): Promise<Membership> {
    return this.changeMembership({ type: 'remove', id }, undefined, options);
  }

  promote(id: NodeId, options?: PromoteOptions): Promise<Membership> {
    const maxLag = options?.force === true ? undefined : this.opts.maxPromotionLag;
    return this.changeMembership({ type: 'promote', id }, maxLag, options);
  }

  demote(id: NodeId, options?: MembershipCallOptions): Promise<Membership> {
    return this.changeMembership({ type: 'demote', id }, undefined, options);
  }

  private changeMembership(
    change: MembershipChange,
    maxLag: number | undefined,
    options: MembershipCallOptions | undefined,
  ): Promise<Membership> {
    const refused = this.refuseCall(options, false);
    if (refused !== null) return Promise.reject(refused);
    if (change.type === 'add') {
      const m = change.member as Partial<Member> | undefined;
      if (typeof m !== 'object' || m === null || typeof m.id !== 'string' || m.id.length === 0)
        return Promise.reject(notApplied('INVALID_ARGUMENT', 'member needs a non-empty string id'));
      if (typeof m.address !== 'string' || typeof m.voter !== 'boolean')
        return Promise.reject(
          notApplied(
            'INVALID_ARGUMENT',
            `member ${m.id} needs a string address and a boolean voter`,
          ),
        );
    } else if (typeof change.id !== 'string' || change.id.length === 0) {
      return Promise.reject(notApplied('INVALID_ARGUMENT', 'id must be a non-empty string'));
    }
    return this.changes.propose(change, maxLag, options);
  }

  // ------------------------------------------------------------------ leadership transfer

  transferLeadership(to?: NodeId, options?: TransferOptions): Promise<TransferResult> {
    const refused = this.refuseCall(options, false);
    if (refused !== null) return Promise.reject(refused);
    if (to !== undefined && (typeof to !== 'string' || to.length === 0))
      return Promise.reject(notApplied('INVALID_ARGUMENT', 'to must be a non-empty string'));
    return this.transfers.start(to, options);
  }

  private notifyLeaderWaiters(leaderId: NodeId, term: Term): void {
    const waiters = this.leaderWaiters;
    this.leaderWaiters = [];
    for (const w of waiters) {
      w.cleanup();
      w.resolve({ leaderId, term });
    }
  }

  private rejectLeaderWaiters(err: RaftError): void {
    const waiters = this.leaderWaiters;
    this.leaderWaiters = [];
    for (const w of waiters) {
      w.cleanup();
      w.reject(err);
    }
  }

  // ------------------------------------------------------------------ forwarding

  private onForwardedProposal(engine: RawNode, m: ProposeMessage): void {
    const verdict = this.ledger.check(
      m,
      engine,
      this.unapplied(engine),
      this.opts.maxPendingEntries,
    );
    if (verdict.kind === 'ignore') {
      this.logger.debug(
        { from: m.from, requestId: m.requestId },
        'ignored a forward that may have been taken before',
      );
      return;
    }
    if (verdict.kind === 'answer') {
      this.transport.send([verdict.message]);
      return;
    }
    let answer: ProposeResponseMessage;
    try {
      const { index, term } = engine.propose(m.data);
      answer = this.ledger.recordAppended(m, index, term);
      this.loop?.schedule();
    } catch (err) {
      answer = this.ledger.refused(m, engine, err);
    }
    this.transport.send([answer]);
  }

  private onProposeResponse(m: ProposeResponseMessage): void {
    const p = this.forwarded.take(m);
    if (p === undefined || p.settled) return;
    if (m.rejected !== undefined) {
      settle(p, false, rejectionError(m));
      return;
    }
    if (m.index <= this.applier.applied) {
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
      } else if (recent.term !== m.entryTerm) {
        settle(p, false, new LeadershipLostError());
      } else if (recent.error !== undefined) {
        settle(p, false, recent.error);
      } else {
        settle(p, true, { index: m.index, term: m.entryTerm, result: recent.result });
      }
      return;
    }
    p.index = m.index;
    p.term = m.entryTerm;
    this.positioned.add(p);
  }

  // ------------------------------------------------------------------ applying

  private onApplied(entry: LogEntry, result: Res | undefined, error: ApplyError | undefined): void {
    if (this.changes.waiting) this.changes.applied(entry);
    const p = this.positioned.take(entry.index);
    if (p !== undefined) this.settleApplied(p, entry, result, error);
    if (this.positioned.hasOverflow) {
      for (const q of this.positioned.takeOverflowAt(entry.index))
        this.settleApplied(q, entry, result, error);
    }
    if (this.forwarded.size > 0 && entry.kind === 'command') {
      this.recentResults.set(entry.index, { term: entry.term, result, error });
      if (this.recentResults.size > RECENT_RESULTS_LIMIT)
        this.recentResults.delete(this.recentResults.keys().next().value as LogIndex);
    }
  }

  private settleApplied(
    p: Pending<Result<Res>>,
    entry: LogEntry,
    result: Res | undefined,
    error: ApplyError | undefined,
  ): void {
    // Another leader's entry holds this index: ours was overwritten and will never apply.
    if (p.term !== entry.term) settle(p, false, new LeadershipLostError());
    else if (error !== undefined) settle(p, false, error);
    else settle(p, true, { index: entry.index, term: entry.term, result: result as Res });
  }

  private onApplyProgress(applied: LogIndex): void {
    this.deadlines.compact();
    if (this.lifecycle !== 'running' || this.engine === null) return;
    this.engine.appliedTo(applied);
    this.reads.appliedTo(applied);
    this.snapshotter.maybeTake();
    this.loop?.schedule();
  }

  // ------------------------------------------------------------------ snapshots

  takeSnapshot(options?: CallOptions): Promise<SnapshotMeta> {
    const refused = this.refuseCall(options, false);
    if (refused !== null) return Promise.reject(refused);
    const signal = options?.signal;
    const timeoutMs = options?.timeoutMs ?? this.opts.requestTimeoutMs;
    const taking = this.snapshotter.take();
    return new Promise<SnapshotMeta>((resolve, reject) => {
      const cleanup = (): void => {
        timer.cancel();
        signal?.removeEventListener('abort', onAbort);
      };
      const timer = this.clock.setTimer(timeoutMs, () => {
        cleanup();
        reject(new TimeoutError(`the snapshot did not complete within ${timeoutMs} ms`));
      });
      const onAbort = (): void => {
        cleanup();
        reject(
          new RaftError('ABORTED', 'the caller stopped waiting; the snapshot may still complete', {
            cause: signal?.reason,
            outcome: 'unknown',
          }),
        );
      };
      signal?.addEventListener('abort', onAbort);
      taking.then(
        (meta) => {
          cleanup();
          resolve(meta);
        },
        (err: unknown) => {
          cleanup();
          reject(err);
        },
      );
    });
  }

  /** Restores the state machine from a stored snapshot, between two applies. */
  private restoreFrom(source: SnapshotSource): Promise<void> {
    const sm = this.stateMachine;
    const meta = source.meta;
    return this.applier.betweenApplies(async () => {
      try {
        await (sm.restore as NonNullable<typeof sm.restore>).call(
          sm,
          readChunks(source, this.opts.snapshotChunkBytes, new Pacer(this.clock)),
          meta,
        );
      } catch (err) {
        throw RaftError.is(err, 'STORAGE')
          ? err
          : new StorageError(`the state machine failed to restore the snapshot at ${meta.index}`, {
              cause: err,
            });
      }
      this.applier.restored(meta);
    });
  }

  private installSnapshot(install: SnapshotInstall): Promise<void> {
    return this.receiver.install(install, this.logStore);
  }

  private onSnapshotTaken(meta: SnapshotMeta): void {
    const engine = this.engine;
    if (engine === null) return;
    const compacted = engine.snapshotTaken(
      meta,
      compactionPoint(meta.index, this.opts.trailingEntries),
    );
    this.loop?.compactLog(compacted);
    this.emitter.emit({ type: 'snapshotTaken', meta });
  }

  private onSnapshotInstalled(meta: SnapshotMeta): void {
    this.snapshotter.adopt(meta);
    this.changes.coveredBy(meta.index);
    // Proposals at positions the snapshot covers: their entries are committed, but which
    // entries they were (ours, or another leader's) this node cannot tell any more.
    for (const p of this.positioned.takeUpTo(meta.index)) {
      settle(
        p,
        false,
        new TimeoutError(
          'a snapshot from the leader covered the proposal before it applied here; whether it applied is unknown',
        ),
      );
    }
    this.emitter.emit({ type: 'snapshotInstalled', meta });
  }

  // ------------------------------------------------------------------ Ready observation

  private observe(rd: Ready): void {
    // Before this Ready's messages leave: the transport must know a member just added.
    this.updatePeers();
    if (rd.hardState !== undefined && rd.hardState.term !== this.term) {
      this.term = rd.hardState.term;
      this.emitter.emit({ type: 'termChanged', term: this.term });
    }
    const s = rd.softState;
    if (s === undefined) return;
    const prev = this.softState;
    this.softState = s;
    if (s.role !== prev.role) {
      if (prev.role === 'leader') this.sender.abandonAll();
      this.emitter.emit({ type: 'roleChanged', role: s.role, term: this.term });
    }
    if (s.leaderId !== prev.leaderId) {
      this.emitter.emit({ type: 'leaderChanged', leaderId: s.leaderId, term: this.term });
      if (s.leaderId !== null) this.notifyLeaderWaiters(s.leaderId, this.term);
      this.reads.leaderChanged(s.leaderId);
      this.transfers.leaderChanged(s.leaderId, this.term);
    }
  }

  private afterAdvance(): void {
    this.updatePeers();
    // A commit (an acknowledgement counted at advance) may confirm reads or open the way for
    // membership changes waiting for the term's first commit.
    this.reads.poll();
    this.changes.progress();
  }

  private updatePeers(): void {
    if (this.lifecycle !== 'running' && this.lifecycle !== 'starting') return;
    const engine = this.engine as RawNode;
    const peers = engine.peers();
    if (peers !== this.peers) {
      this.peers = peers;
      this.transport.setPeers(peers.filter((m) => m.id !== this.id));
      this.sender.keepOnly(peers);
    }
    const members = engine.members();
    if (members === this.members) return;
    const first = this.members === null;
    this.members = members;
    if (!first) {
      this.emitter.emit({
        type: 'membershipChanged',
        membership: { members },
        index: engine.status().membershipIndex,
      });
    }
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
        snapshotIndex: 0,
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
      appliedIndex: this.applier.applied,
      lastLogIndex: s.lastLogIndex,
      snapshotIndex: s.snapshotIndex,
      members: s.members,
    };
    return s.progress === undefined || !running ? base : { ...base, progress: s.progress };
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
