/**
 * Applies committed entries to the state machine, beside the Ready loop and strictly in order.
 *
 * ```
 *   Ready loop ──enqueue(batch)──► queue ──► apply entry by entry ──► host.onApplied(entry, …)
 *                                              │ sync result: next entry at once
 *                                              │ promise: resume when it settles
 *                                              └─ batch done ──► host.onProgress(applied)
 * ```
 *
 * - A state machine that returns plain values is applied synchronously, with no promise per
 *   entry or per batch; one that returns a promise is awaited before the next entry.
 * - Applying never holds back the Ready loop (as etcd's server applies beside raft): heartbeats,
 *   votes and acknowledgements keep flowing while a slow state machine works. The engine bounds
 *   the queue (it hands out at most `maxPendingEntries` entries beyond the applied index).
 * - Work that needs the state machine between two applies (capturing a snapshot, restoring one)
 *   runs through {@link Applier.betweenApplies}: at the next entry boundary, with applying held
 *   back until the work's promise settles. After a restore, queued entries the snapshot covers
 *   are skipped.
 * - The policy on exceptions: `apply()` is deterministic, so an exception it throws is that
 *   command's result on every replica: it becomes an {@link ApplyError} for the proposer and the
 *   node goes on. A command the codec cannot decode is the same kind of result. Only a
 *   {@link StorageError} (the state machine's own storage failed) is fatal.
 */
import { ApplyError, RaftError } from '../errors.js';
import type { CommandCodec, MaybePromise, StateMachine } from '../interfaces/state-machine.js';
import type { Logger } from '../logger.js';
import { decodeMembership } from '../membership.js';
import type { LogEntry, LogIndex, Membership, SnapshotMeta, Term } from '../types.js';

/** What the applier reports to its node. */
export interface ApplierHost<Res> {
  /** False once the node stops or fails: nothing more is applied. */
  isRunning(): boolean;
  /** `entry` was applied, with `result` or `error` (commands only; both undefined otherwise). */
  onApplied(entry: LogEntry, result: Res | undefined, error: ApplyError | undefined): void;
  /** Everything up to `applied` is applied (called after each batch). */
  onProgress(applied: LogIndex): void;
  /** The state machine hit a fatal fault. */
  fail(err: unknown): void;
  /** The node's clock (milliseconds), to notice a long synchronous stretch of applies. */
  now(): number;
  /** Runs `callback` on a later turn of the event loop (the node's clock, delay 0). */
  defer(callback: () => void): void;
}

/** A synchronous stretch of applies longer than this yields to the event loop. */
const YIELD_AFTER_MS = 10;
/** How many entries apply between two looks at the clock. */
const ENTRIES_PER_CLOCK_CHECK = 32;

function isPromiseLike(v: unknown): v is PromiseLike<unknown> {
  return (
    typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function'
  );
}

/** Work queued by {@link Applier.betweenApplies}. */
interface Barrier {
  /** Runs the work; returns its promise when it returned one (never throws). */
  run(): PromiseLike<unknown> | undefined;
  cancel(err: unknown): void;
}

/** See the module comment. */
export class Applier<Cmd, Res> {
  /** Highest index applied. */
  applied: LogIndex = 0;
  /** Term of the entry at `applied`. */
  appliedTerm: Term = 0;
  /** The configuration in force at `applied` (the latest applied configuration entry). */
  appliedMembership: Membership = { members: [] };
  /** Payload bytes applied since start-up (snapshot thresholds compare differences). */
  appliedBytes = 0;
  private barriers: Barrier[] = [];
  private queue: (readonly LogEntry[] | undefined)[] = [];
  private head = 0;
  /** Position in the batch at `head`. */
  private pos = 0;
  private running = false;
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly sm: StateMachine<Cmd, Res>,
    private readonly codec: CommandCodec<Cmd>,
    private readonly logger: Logger,
    private readonly host: ApplierHost<Res>,
  ) {}

  /** Queues a batch of committed entries (in log order, following the previous batch). */
  enqueue(entries: readonly LogEntry[]): void {
    this.queue.push(entries);
    if (this.running) return;
    this.running = true;
    this.pump();
  }

  /**
   * Runs `work` between two applies: at once when the applier is idle or at an entry boundary,
   * else right after the entry in progress. No entry applies until `work` (or the promise it
   * returns) settles. Rejects with `err` from `cancelAll`, or with what `work` throws.
   */
  betweenApplies<T>(work: () => MaybePromise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.barriers.push({
        run: () => {
          let out: MaybePromise<T>;
          try {
            out = work();
          } catch (err) {
            reject(err);
            return undefined;
          }
          if (!isPromiseLike(out)) {
            resolve(out);
            return undefined;
          }
          return Promise.resolve(out).then(resolve, reject);
        },
        cancel: reject,
      });
      if (this.running) return;
      this.running = true;
      this.pump();
    });
  }

  /** The state machine now holds the snapshot `meta` (restored): applying goes on after it. */
  restored(meta: SnapshotMeta): void {
    this.applied = meta.index;
    this.appliedTerm = meta.term;
    this.appliedMembership = meta.membership;
  }

  /** Rejects the work waiting in {@link betweenApplies} (the node stops). */
  cancelAll(err: unknown): void {
    const barriers = this.barriers;
    this.barriers = [];
    for (const b of barriers) b.cancel(err);
  }

  /** Resolves once nothing is being applied (at once when idle). */
  whenIdle(): Promise<void> {
    if (!this.running) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Applies synchronously until an entry returns a promise, or until the stretch has taken
   * YIELD_AFTER_MS (a slow synchronous state machine must not starve the timers that send
   * heartbeats); resumes when the promise settles, or on a later turn.
   */
  private readonly pump = (): void => {
    const started = this.host.now();
    let sinceCheck = 0;
    for (;;) {
      if (this.barriers.length > 0) {
        // Runs while the node starts too (restoring its snapshot); stop() cancels what waits.
        const pending = (this.barriers.shift() as Barrier).run();
        if (pending !== undefined) {
          pending.then(this.pump, this.pump);
          return;
        }
        continue;
      }
      const batch = this.queue[this.head];
      if (batch === undefined || !this.host.isRunning()) {
        this.stopRunning();
        return;
      }
      if (this.pos >= batch.length) {
        this.queue[this.head++] = undefined;
        this.pos = 0;
        if (this.head === this.queue.length) {
          this.queue = [];
          this.head = 0;
        }
        this.host.onProgress(this.applied);
        continue;
      }
      if (++sinceCheck === ENTRIES_PER_CLOCK_CHECK) {
        sinceCheck = 0;
        if (this.host.now() - started >= YIELD_AFTER_MS) {
          this.host.defer(this.pump);
          return;
        }
      }
      const entry = batch[this.pos++] as LogEntry;
      // A restored snapshot covers it.
      if (entry.index <= this.applied) continue;
      let pending: PromiseLike<unknown> | undefined;
      try {
        pending = this.applyOne(entry);
      } catch (err) {
        this.stopRunning();
        this.host.fail(err);
        return;
      }
      if (pending !== undefined) {
        // Promise.resolve: a thenable that calls back twice (or throws) cannot apply twice.
        Promise.resolve(pending).then(
          (result) => this.resume(() => this.finish(entry, result as Res, undefined)),
          (err: unknown) =>
            this.resume(() => this.finish(entry, undefined, this.toApplyError(entry, err))),
        );
        return;
      }
    }
  };

  /** Finishes the entry a promise held up, then goes on; a fault stops the applier. */
  private resume(finish: () => void): void {
    try {
      finish();
    } catch (fatal) {
      this.stopRunning();
      this.host.fail(fatal);
      return;
    }
    this.pump();
  }

  /** Applies one entry; returns the state machine's promise when it returned one. */
  private applyOne(entry: LogEntry): PromiseLike<unknown> | undefined {
    if (entry.kind !== 'command') {
      if (entry.kind === 'membership') this.appliedMembership = decodeMembership(entry.data);
      this.finish(entry, undefined, undefined);
      return undefined;
    }
    let out: Res | Promise<Res>;
    try {
      // The entry is its own ApplyContext (it has `index` and `term`, and is immutable): no
      // object per apply.
      out = this.sm.apply(this.codec.decode(entry.data), entry);
    } catch (err) {
      this.finish(entry, undefined, this.toApplyError(entry, err));
      return undefined;
    }
    if (isPromiseLike(out)) return out;
    this.finish(entry, out, undefined);
    return undefined;
  }

  private finish(entry: LogEntry, result: Res | undefined, error: ApplyError | undefined): void {
    this.applied = entry.index;
    this.appliedTerm = entry.term;
    this.appliedBytes += entry.data.byteLength;
    this.host.onApplied(entry, result, error);
  }

  /** The command's deterministic result, or a rethrow when the fault is the node's own. */
  private toApplyError(entry: LogEntry, err: unknown): ApplyError {
    if (RaftError.is(err, 'STORAGE')) throw err;
    this.logger.warn(
      { err, index: entry.index, term: entry.term },
      `the state machine threw applying entry ${entry.index}; recorded as the command's result`,
    );
    return new ApplyError(entry.index, entry.term, { cause: err });
  }

  private stopRunning(): void {
    this.running = false;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }
}
