/**
 * A simulated disk for one node: a DURABLE layer (what survives a crash) and a PENDING layer
 * (operations issued but not yet completed), behind the core's {@link LogStore} and
 * {@link StableStore} interfaces.
 *
 * ```
 *            issue                       completion (seeded delay, issue order)
 * store.x() ──────► pending queue ──────────────────────────────────────────► durable layer
 *                      │                                                      promise resolves
 *                      └── crash(): dropped; their promises never settle
 * ```
 *
 * - Every operation (open, read, append, load, save, close) completes after a seeded virtual
 *   delay in `[minDelayMs, maxDelayMs)`, and never before an operation issued earlier on the
 *   same disk: completion order is issue order, across both stores.
 * - Reads (`open`, `read`, `load`) see the durable layer at their completion time, which includes
 *   every operation issued before them.
 * - An append becomes durable atomically at completion: if it starts at or before the last
 *   durable index, the old suffix is replaced in the same step (LogStore contract), so a crash
 *   leaves either the old log or the new one.
 * - `crash()` discards the pending layer. The discarded operations' promises never settle (the
 *   node that awaits them is discarded too) and the store objects die: any later call rejects
 *   with a {@link StorageError}. `reopen()` gives fresh stores over the durable layer (a restart).
 *
 * The durable log is an array with index `i` at position `i - 1` (no compaction yet: `firstIndex`
 * is always 1). Appends push; suffix replacement truncates by setting `length`; nothing copies the
 * whole log.
 */
import type { HardState, LogBounds, LogEntry, LogIndex, LogStore, StableStore } from '@raft/core';
import { RaftError, StorageError } from '@raft/core';
import type { Prng } from './prng.js';
import type { EventGroup, Scheduler } from './scheduler.js';

/** The operations a {@link SimDisk} performs, for {@link SimDisk.failNext}. */
export type SimDiskOperation = 'open' | 'read' | 'append' | 'load' | 'save' | 'close';

/** Options of a {@link SimDisk}. */
export interface SimDiskOptions {
  /** Smallest operation latency in virtual ms. Default 0.5. */
  readonly minDelayMs?: number;
  /** Largest operation latency in virtual ms (exclusive unless equal to `minDelayMs`). Default 3. */
  readonly maxDelayMs?: number;
  /** Label of the completion events in scheduler traces, e.g. `'disk:n1'`. Default `'disk'`. */
  readonly label?: string;
  /** Initial value of {@link SimDisk.onAppendIssued}. */
  readonly onAppendIssued?: AppendIssuedListener;
  /** Initial value of {@link SimDisk.onDurableAppend}. */
  readonly onDurableAppend?: DurableAppendListener;
  /** Initial value of {@link SimDisk.onDurableSave}. */
  readonly onDurableSave?: DurableSaveListener;
}

/**
 * Checker hook: an append was issued (not yet durable). `replacesSuffix` is true when it starts
 * at or before the last index of the log as it will be once every earlier operation completes.
 */
export type AppendIssuedListener = (entries: readonly LogEntry[], replacesSuffix: boolean) => void;
/**
 * Checker hook: an append became durable. `truncatedFrom` is the first index whose old durable
 * entry was replaced, or null when the append only extended the log. Called before the append's
 * promise resolves; an exception thrown here propagates out of the scheduler step.
 */
export type DurableAppendListener = (
  entries: readonly LogEntry[],
  truncatedFrom: LogIndex | null,
) => void;
/** Checker hook: a hard state became durable. Same timing rules as {@link DurableAppendListener}. */
export type DurableSaveListener = (state: HardState) => void;

/** The two stores of one incarnation of a node. */
export interface SimDiskStores {
  readonly logStore: LogStore;
  readonly stableStore: StableStore;
}

type Settle = (value: unknown) => void;

/** An issued, not yet completed operation. One class for all kinds keeps the shape stable. */
class PendingOperation {
  constructor(
    readonly kind: SimDiskOperation,
    readonly fail: boolean,
    readonly entries: readonly LogEntry[] | null,
    readonly state: HardState | null,
    readonly from: LogIndex,
    readonly to: LogIndex,
    readonly resolve: Settle,
    readonly reject: Settle,
  ) {}
}

/** The disk's state, shared by the facade and the store objects (module-internal). */
class DiskCore {
  /** Durable log. Invariant: `log[i].index === i + 1`. */
  readonly log: LogEntry[] = [];
  /** Durable hard state. */
  hardState: HardState | null = null;
  /** Bumped by every crash and reopen; stores of an older incarnation are dead. */
  incarnation = 0;
  /** Last index once every pending operation has completed. Invariant: >= 0. */
  pendingLastIndex = 0;
  /** Completion time of the latest issued operation: later ones never complete earlier. */
  lastCompletion = 0;
  /** Nothing issued completes before this time (a stalled disk). */
  stalledUntil = 0;
  /** One-shot failures armed by failNext(), consumed in issue order. */
  readonly failures: (SimDiskOperation | 'any')[] = [];
  readonly group: EventGroup;

  constructor(
    readonly scheduler: Scheduler,
    readonly prng: Prng,
    readonly minDelayMs: number,
    readonly maxDelayMs: number,
    readonly label: string,
    readonly hooks: SimDisk,
  ) {
    this.group = scheduler.createGroup();
  }

  submit(
    kind: SimDiskOperation,
    entries: readonly LogEntry[] | null,
    state: HardState | null,
    from: LogIndex,
    to: LogIndex,
  ): Promise<unknown> {
    let resolve: Settle = noop;
    let reject: Settle = noop;
    const promise = new Promise<unknown>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const op = new PendingOperation(
      kind,
      this.takeFailure(kind),
      entries,
      state,
      from,
      to,
      resolve,
      reject,
    );
    const scheduler = this.scheduler;
    let at = scheduler.now + this.prng.range(this.minDelayMs, this.maxDelayMs);
    if (at < this.stalledUntil) at = this.stalledUntil;
    if (at < this.lastCompletion) {
      at = this.lastCompletion; // same time: the sequence number keeps issue order
    }
    this.lastCompletion = at;
    scheduler.scheduleAt(at, () => this.complete(op), this.label, this.group);
    return promise;
  }

  private takeFailure(kind: SimDiskOperation): boolean {
    const failures = this.failures;
    for (let i = 0; i < failures.length; i++) {
      const armed = failures[i];
      if (armed === kind || armed === 'any') {
        failures.splice(i, 1);
        return true;
      }
    }
    return false;
  }

  private complete(op: PendingOperation): void {
    if (op.fail) {
      op.reject(new StorageError(`simulated ${op.kind} failure (${this.label})`));
      return;
    }
    const log = this.log;
    switch (op.kind) {
      case 'open': {
        const bounds: LogBounds = { firstIndex: 1, lastIndex: log.length };
        op.resolve(bounds);
        return;
      }
      case 'read': {
        const { from, to } = op;
        if (!(from >= 1 && from <= to && to <= log.length + 1)) {
          op.reject(
            new RaftError(
              'INVALID_ARGUMENT',
              `read [${from}, ${to}) is outside the log [1, ${log.length + 1})`,
            ),
          );
          return;
        }
        op.resolve(log.slice(from - 1, to - 1));
        return;
      }
      case 'append': {
        const entries = op.entries as readonly LogEntry[];
        const first = entries[0];
        if (first === undefined) {
          op.resolve(undefined);
          return;
        }
        if (first.index > log.length + 1) {
          op.reject(
            new StorageError(
              `append at ${first.index} would leave a gap after durable index ${log.length}`,
            ),
          );
          return;
        }
        let truncatedFrom: LogIndex | null = null;
        if (first.index <= log.length) {
          truncatedFrom = first.index;
          log.length = first.index - 1;
        }
        for (let i = 0; i < entries.length; i++) {
          log.push(entries[i] as LogEntry);
        }
        const listener = this.hooks.onDurableAppend;
        if (listener !== undefined) {
          listener(entries, truncatedFrom);
        }
        op.resolve(undefined);
        return;
      }
      case 'load':
        op.resolve(this.hardState);
        return;
      case 'save': {
        const state = op.state as HardState;
        this.hardState = state;
        const listener = this.hooks.onDurableSave;
        if (listener !== undefined) {
          listener(state);
        }
        op.resolve(undefined);
        return;
      }
      case 'close':
        op.resolve(undefined);
        return;
    }
  }

  /** Discards the pending layer and kills the current stores. */
  crash(): void {
    this.incarnation++;
    this.group.cancelAll();
    this.pendingLastIndex = this.log.length;
  }
}

function noop(): void {}

function deadStoreError(what: string, closed: boolean): StorageError {
  return new StorageError(
    closed ? `${what} is closed` : `${what} is dead: its disk crashed or was reopened`,
  );
}

/** Shared liveness checks of the two store classes. */
abstract class SimStoreBase {
  protected readonly core: DiskCore;
  protected readonly incarnation: number;
  protected closed = false;

  constructor(core: DiskCore) {
    this.core = core;
    this.incarnation = core.incarnation;
  }

  /** A rejection if the store may not be used, else null. */
  protected deadError(what: string): StorageError | null {
    if (this.closed || this.incarnation !== this.core.incarnation) {
      return deadStoreError(what, this.closed);
    }
    return null;
  }

  protected closeStore(what: string): Promise<void> {
    const dead = this.deadError(what);
    if (dead !== null) {
      return Promise.reject(dead);
    }
    this.closed = true;
    return this.core.submit('close', null, null, 0, 0) as Promise<void>;
  }
}

class SimLogStore extends SimStoreBase implements LogStore {
  private opened = false;

  open(): Promise<LogBounds> {
    const dead = this.deadError('log store');
    if (dead !== null) {
      return Promise.reject(dead);
    }
    this.opened = true;
    return this.core.submit('open', null, null, 0, 0) as Promise<LogBounds>;
  }

  read(from: LogIndex, to: LogIndex): Promise<LogEntry[]> {
    const dead = this.deadError('log store') ?? this.notOpened();
    if (dead !== null) {
      return Promise.reject(dead);
    }
    return this.core.submit('read', null, null, from, to) as Promise<LogEntry[]>;
  }

  append(entries: readonly LogEntry[]): Promise<void> {
    const dead = this.deadError('log store') ?? this.notOpened();
    if (dead !== null) {
      return Promise.reject(dead);
    }
    const core = this.core;
    const first = entries[0];
    if (first !== undefined) {
      const invalid = validateAppend(entries, core.pendingLastIndex);
      if (invalid !== null) {
        return Promise.reject(new StorageError(invalid));
      }
      const replacesSuffix = first.index <= core.pendingLastIndex;
      core.pendingLastIndex = first.index + entries.length - 1;
      const listener = core.hooks.onAppendIssued;
      if (listener !== undefined) {
        listener(entries, replacesSuffix);
      }
    }
    return core.submit('append', entries, null, 0, 0) as Promise<void>;
  }

  close(): Promise<void> {
    return this.closeStore('log store');
  }

  private notOpened(): StorageError | null {
    return this.opened ? null : new StorageError('log store used before open()');
  }
}

/** Null if `entries` (non-empty) may follow a log ending at `lastIndex`, else why not. */
function validateAppend(entries: readonly LogEntry[], lastIndex: LogIndex): string | null {
  const firstIndex = (entries[0] as LogEntry).index;
  if (!(Number.isInteger(firstIndex) && firstIndex >= 1)) {
    return `append starts at invalid index ${firstIndex}`;
  }
  if (firstIndex > lastIndex + 1) {
    return `append at ${firstIndex} would leave a gap after last index ${lastIndex}`;
  }
  for (let i = 1; i < entries.length; i++) {
    if ((entries[i] as LogEntry).index !== firstIndex + i) {
      return `append entries are not contiguous at position ${i}`;
    }
  }
  return null;
}

class SimStableStore extends SimStoreBase implements StableStore {
  load(): Promise<HardState | null> {
    const dead = this.deadError('stable store');
    if (dead !== null) {
      return Promise.reject(dead);
    }
    return this.core.submit('load', null, null, 0, 0) as Promise<HardState | null>;
  }

  save(state: HardState): Promise<void> {
    const dead = this.deadError('stable store');
    if (dead !== null) {
      return Promise.reject(dead);
    }
    return this.core.submit('save', null, state, 0, 0) as Promise<void>;
  }

  close(): Promise<void> {
    return this.closeStore('stable store');
  }
}

/**
 * One node's simulated disk. Create one per node and keep it across restarts: it IS the node's
 * persistent state.
 *
 * Entries and hard states are stored by reference (they are immutable values, types.ts).
 */
export class SimDisk {
  private readonly core: DiskCore;
  private stores: SimDiskStores;

  /** Checker hook, see {@link AppendIssuedListener}. */
  onAppendIssued: AppendIssuedListener | undefined;
  /** Checker hook, see {@link DurableAppendListener}. */
  onDurableAppend: DurableAppendListener | undefined;
  /** Checker hook, see {@link DurableSaveListener}. */
  onDurableSave: DurableSaveListener | undefined;

  /**
   * @param prng a stream for this disk alone (e.g. `root.fork('disk:n1')`): one draw per
   *   operation.
   */
  constructor(scheduler: Scheduler, prng: Prng, options: SimDiskOptions = {}) {
    const minDelayMs = options.minDelayMs ?? 0.5;
    const maxDelayMs = options.maxDelayMs ?? Math.max(3, minDelayMs);
    if (!(Number.isFinite(minDelayMs) && minDelayMs >= 0)) {
      throw new RangeError(`minDelayMs must be finite and >= 0, got ${minDelayMs}`);
    }
    if (!(Number.isFinite(maxDelayMs) && maxDelayMs >= minDelayMs)) {
      throw new RangeError(`maxDelayMs must be finite and >= minDelayMs, got ${maxDelayMs}`);
    }
    this.onAppendIssued = options.onAppendIssued;
    this.onDurableAppend = options.onDurableAppend;
    this.onDurableSave = options.onDurableSave;
    this.core = new DiskCore(
      scheduler,
      prng,
      minDelayMs,
      maxDelayMs,
      options.label ?? 'disk',
      this,
    );
    this.stores = this.createStores();
  }

  /** The log store of the current incarnation (dead after {@link crash}, until {@link reopen}). */
  get logStore(): LogStore {
    return this.stores.logStore;
  }

  /** The stable store of the current incarnation (dead after {@link crash}, until {@link reopen}). */
  get stableStore(): StableStore {
    return this.stores.stableStore;
  }

  /** Operations issued and not yet completed. */
  get pendingOperations(): number {
    return this.core.group.size;
  }

  /**
   * Power loss: every pending operation is discarded (its promise never settles) and the current
   * store objects die (later calls reject with a StorageError). The durable layer is untouched.
   */
  crash(): void {
    this.core.crash();
  }

  /**
   * Restart: returns fresh stores over the durable layer, and makes them the current ones.
   * Previous stores die; if operations are still pending they are discarded as by
   * {@link crash} (after a graceful stop there are none).
   */
  reopen(): SimDiskStores {
    this.core.crash();
    this.stores = this.createStores();
    return this.stores;
  }

  /**
   * The durable log, entry with index `i` at position `i - 1`. A live view, not a copy: it
   * changes as appends complete; never mutate it.
   */
  durableEntries(): readonly LogEntry[] {
    return this.core.log;
  }

  /** The durable hard state, or null if none was ever saved durably. */
  durableHardState(): HardState | null {
    return this.core.hardState;
  }

  /**
   * A disk that hangs: every operation issued from now until `durationMs` later completes no
   * earlier than that (in issue order, as always). Operations already issued keep their times.
   */
  stall(durationMs: number): void {
    if (!(Number.isFinite(durationMs) && durationMs >= 0)) {
      throw new RangeError(`durationMs must be finite and >= 0, got ${durationMs}`);
    }
    const until = this.core.scheduler.now + durationMs;
    if (until > this.core.stalledUntil) this.core.stalledUntil = until;
  }

  /**
   * Makes the next issued operation of kind `op` (default: of any kind) fail: it completes in
   * its turn by rejecting with a StorageError, without touching the durable layer. Calls add up:
   * two calls fail the next two matching operations.
   */
  failNext(op: SimDiskOperation | 'any' = 'any'): void {
    this.core.failures.push(op);
  }

  private createStores(): SimDiskStores {
    return {
      logStore: new SimLogStore(this.core),
      stableStore: new SimStableStore(this.core),
    };
  }
}
