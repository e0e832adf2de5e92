/**
 * A simulated disk for one node: a DURABLE layer (what survives a crash) and a PENDING layer
 * (operations issued but not yet completed), behind the core's {@link LogStore},
 * {@link StableStore} and {@link SnapshotStore} interfaces.
 *
 * ```
 *            issue                       completion (seeded delay, issue order)
 * store.x() ──────► pending queue ──────────────────────────────────────────► durable layer
 *                      │                                                      promise resolves
 *                      └── crash(): dropped; their promises never settle
 * ```
 *
 * - Every operation (open, read, append, compact, truncate, load, save, close, and the snapshot
 *   store's create, write, commit, open and read) completes after a seeded virtual delay in
 *   `[minDelayMs, maxDelayMs)`, and never before an operation issued earlier on the same disk:
 *   completion order is issue order, across all three stores. `stall()` and `failNext()` apply
 *   to all of them. (`SnapshotSink.abort()` and `SnapshotSource.close()` touch nothing durable:
 *   they take effect at once and never fail.)
 * - Reads (`open`, `read`, `load`, snapshot `open` and `read`) see the durable layer at their
 *   completion time, which includes every operation issued before them.
 * - An append becomes durable atomically at completion: if it starts at or before the last
 *   durable index, the old suffix is replaced in the same step (LogStore contract), so a crash
 *   leaves either the old log or the new one. `compact` and `truncate` likewise take effect
 *   whole at their completion, or not at all.
 * - A snapshot's chunks are held by its sink (copied at `write`, kept as a list) and become
 *   durable all at once when its `commit` completes: a crash before that loses the whole
 *   snapshot, never a part of it. The commit then prunes the durable snapshots to the newest
 *   `snapshotRetain` by index. A source keeps its snapshot readable even once it is pruned.
 * - `crash()` discards the pending layer. The discarded operations' promises never settle (the
 *   node that awaits them is discarded too) and the store objects die, with their sinks and
 *   sources: any later call rejects with a {@link StorageError}. `reopen()` gives fresh stores
 *   over the durable layer (a restart).
 *
 * The durable log is an array whose position `k` holds index `firstIndex + k`, with `firstIndex`
 * kept beside it (1 until a compaction). Appends push; suffix replacement and truncation set
 * `length`; compaction splices the prefix off in place; nothing copies the whole log.
 */
import type {
  HardState,
  LogBounds,
  LogEntry,
  LogIndex,
  LogStore,
  SnapshotMeta,
  SnapshotSink,
  SnapshotSource,
  SnapshotStore,
  StableStore,
} from '@raft/core';
import { RaftError, StorageError } from '@raft/core';
import type { Prng } from './prng.js';
import type { EventGroup, Scheduler } from './scheduler.js';

/** The operations a {@link SimDisk} performs, for {@link SimDisk.failNext}. */
export type SimDiskOperation =
  | 'open'
  | 'read'
  | 'append'
  | 'compact'
  | 'truncate'
  | 'load'
  | 'save'
  | 'close'
  | 'snapshotCreate'
  | 'snapshotWrite'
  | 'snapshotCommit'
  | 'snapshotOpen'
  | 'snapshotRead';

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
  /** Initial value of {@link SimDisk.onCutIssued}. */
  readonly onCutIssued?: LogCutIssuedListener;
  /** Initial value of {@link SimDisk.onDurableAppend}. */
  readonly onDurableAppend?: DurableAppendListener;
  /** Initial value of {@link SimDisk.onDurableSave}. */
  readonly onDurableSave?: DurableSaveListener;
  /** Initial value of {@link SimDisk.onDurableCompact}. */
  readonly onDurableCompact?: DurableCompactListener;
  /** Initial value of {@link SimDisk.onDurableTruncate}. */
  readonly onDurableTruncate?: DurableTruncateListener;
  /** Initial value of {@link SimDisk.onDurableSnapshot}. */
  readonly onDurableSnapshot?: DurableSnapshotListener;
  /**
   * How many durable snapshots a commit keeps, the newest by index (ties: the one committed
   * last). A positive integer; default 2.
   */
  readonly snapshotRetain?: number;
}

/**
 * Checker hook: an append was issued (not yet durable). `replacesSuffix` is true when it starts
 * at or before the last index of the log as it will be once every earlier operation completes.
 */
export type AppendIssuedListener = (entries: readonly LogEntry[], replacesSuffix: boolean) => void;
/**
 * Checker hook: a compaction (`compact(upTo)`) or a truncation (`truncate(from)`) of the log was
 * issued (not yet durable): `index` is `upTo` or `from`.
 */
export type LogCutIssuedListener = (kind: 'compact' | 'truncate', index: LogIndex) => void;
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
/**
 * Checker hook: a compaction became durable; every entry before `firstIndex` is gone (the log
 * may now be empty, ending at `firstIndex - 1`). Called only when `firstIndex` moved. Same
 * timing rules as {@link DurableAppendListener}.
 */
export type DurableCompactListener = (firstIndex: LogIndex) => void;
/**
 * Checker hook: a truncation became durable; every entry from `from` on is gone (`from` is at
 * least the first index). Called only when entries were dropped. Same timing rules as
 * {@link DurableAppendListener}.
 */
export type DurableTruncateListener = (from: LogIndex) => void;
/**
 * Checker hook: a snapshot commit became durable. Called once the snapshot is added and the
 * durable snapshots are pruned (see {@link SimDisk.durableSnapshots}). Same timing rules as
 * {@link DurableAppendListener}.
 */
export type DurableSnapshotListener = (snapshot: SimDiskSnapshot) => void;

/** A durable snapshot, as {@link SimDisk.durableSnapshots} shows it. Never mutate it. */
export interface SimDiskSnapshot {
  readonly meta: SnapshotMeta;
  /** Total size in bytes. */
  readonly size: number;
  /** The bytes, as the chunks they were written in (empty writes leave no chunk). */
  readonly chunks: readonly Uint8Array[];
}

/** The three stores of one incarnation of a node. */
export interface SimDiskStores {
  readonly logStore: LogStore;
  readonly stableStore: StableStore;
  readonly snapshotStore: SnapshotStore;
}

type Settle = (value: unknown) => void;

/** A durable snapshot: its public view plus the offsets a read needs. Immutable once committed. */
class StoredSnapshot {
  constructor(
    readonly view: SimDiskSnapshot,
    /** `starts[i]` is the offset of `view.chunks[i]`; ascending. */
    readonly starts: readonly number[],
  ) {}
}

/** An issued, not yet completed operation. One class for all kinds keeps the shape stable. */
class PendingOperation {
  constructor(
    readonly kind: SimDiskOperation,
    readonly fail: boolean,
    readonly entries: readonly LogEntry[] | null,
    readonly state: HardState | null,
    /** `read`: the range `[from, to)`; `compact`: upTo; `truncate`: from; `snapshotRead`: the
     *  offset and the length. */
    readonly from: number,
    readonly to: number,
    /** The sink (`snapshotCreate`, `snapshotWrite`, `snapshotCommit`), source (`snapshotRead`) or
     *  store (`snapshotOpen`) the operation is about. */
    readonly subject: object | null,
    /** The bytes of a `snapshotWrite`, copied at issue. */
    readonly chunk: Uint8Array | null,
    readonly resolve: Settle,
    readonly reject: Settle,
  ) {}
}

/** The disk's state, shared by the facade and the store objects (module-internal). */
class DiskCore {
  /** Durable log. Invariant: `log[k].index === firstIndex + k`. */
  readonly log: LogEntry[] = [];
  /** Durable first index (that of the next append when the log is empty). Invariant: >= 1. */
  firstIndex: LogIndex = 1;
  /** Durable hard state. */
  hardState: HardState | null = null;
  /** Durable snapshots, oldest first: by index, then by commit order. */
  readonly snapshots: StoredSnapshot[] = [];
  /** Bumped by every crash and reopen; stores of an older incarnation are dead. */
  incarnation = 0;
  /** First index once every pending operation has completed. Invariant: >= 1. */
  pendingFirstIndex: LogIndex = 1;
  /** Last index once every pending operation has completed. Invariant: >= pendingFirstIndex - 1. */
  pendingLastIndex: LogIndex = 0;
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
    readonly snapshotRetain: number,
    readonly hooks: SimDisk,
  ) {
    this.group = scheduler.createGroup();
  }

  /** Durable last index. */
  get lastIndex(): LogIndex {
    return this.firstIndex + this.log.length - 1;
  }

  submit(
    kind: SimDiskOperation,
    entries: readonly LogEntry[] | null,
    state: HardState | null,
    from: number,
    to: number,
    subject: object | null = null,
    chunk: Uint8Array | null = null,
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
      subject,
      chunk,
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
      if (op.kind === 'snapshotWrite') {
        // The sink's bytes are in doubt: it can only be aborted now.
        (op.subject as SimSnapshotSink).broken = true;
      } else if (op.kind === 'snapshotCommit') {
        (op.subject as SimSnapshotSink).state = 'failed';
      }
      op.reject(new StorageError(`simulated ${op.kind} failure (${this.label})`));
      return;
    }
    const log = this.log;
    switch (op.kind) {
      case 'open': {
        const bounds: LogBounds = { firstIndex: this.firstIndex, lastIndex: this.lastIndex };
        op.resolve(bounds);
        return;
      }
      case 'read': {
        const { from, to } = op;
        const first = this.firstIndex;
        const end = this.lastIndex + 1;
        if (
          !(
            Number.isInteger(from) &&
            Number.isInteger(to) &&
            from >= first &&
            from <= to &&
            to <= end
          )
        ) {
          op.reject(
            new RaftError(
              'INVALID_ARGUMENT',
              `read [${from}, ${to}) is outside the log [${first}, ${end})`,
            ),
          );
          return;
        }
        op.resolve(log.slice(from - first, to - first));
        return;
      }
      case 'append':
        this.completeAppend(op);
        return;
      case 'compact': {
        const upTo = op.from;
        const first = this.firstIndex;
        if (upTo >= first) {
          const count = upTo - first + 1;
          if (count >= log.length) log.length = 0;
          else log.splice(0, count);
          this.firstIndex = upTo + 1;
          const listener = this.hooks.onDurableCompact;
          if (listener !== undefined) {
            listener(this.firstIndex);
          }
        }
        op.resolve(undefined);
        return;
      }
      case 'truncate': {
        const from = op.from;
        const keep = from - this.firstIndex;
        if (keep < log.length) {
          log.length = Math.max(keep, 0);
          const listener = this.hooks.onDurableTruncate;
          if (listener !== undefined) {
            listener(keep < 0 ? this.firstIndex : from);
          }
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
      case 'snapshotCreate':
        op.resolve(op.subject);
        return;
      case 'snapshotWrite':
        (op.subject as SimSnapshotSink).received(op.chunk as Uint8Array);
        op.resolve(undefined);
        return;
      case 'snapshotCommit':
        this.completeCommit(op);
        return;
      case 'snapshotOpen': {
        const latest = this.snapshots[this.snapshots.length - 1];
        op.resolve(
          latest === undefined
            ? null
            : new SimSnapshotSource(op.subject as SimSnapshotStore, latest),
        );
        return;
      }
      case 'snapshotRead': {
        const source = op.subject as SimSnapshotSource;
        const offset = op.from;
        const length = op.to;
        const size = source.size;
        if (!(Number.isSafeInteger(offset) && offset >= 0 && offset <= size)) {
          op.reject(
            new RaftError(
              'INVALID_ARGUMENT',
              `read offset ${offset} is outside the snapshot [0, ${size}]`,
            ),
          );
          return;
        }
        if (!(Number.isSafeInteger(length) && length >= 1)) {
          op.reject(
            new RaftError(
              'INVALID_ARGUMENT',
              `read length must be a positive integer, got ${length}`,
            ),
          );
          return;
        }
        op.resolve(readRange(source.stored, offset, Math.min(length, size - offset)));
        return;
      }
    }
  }

  private completeAppend(op: PendingOperation): void {
    const log = this.log;
    const entries = op.entries as readonly LogEntry[];
    const first = entries[0];
    if (first === undefined) {
      op.resolve(undefined);
      return;
    }
    const last = this.lastIndex;
    if (first.index > last + 1) {
      op.reject(
        new StorageError(`append at ${first.index} would leave a gap after durable index ${last}`),
      );
      return;
    }
    if (first.index < this.firstIndex) {
      op.reject(
        new StorageError(
          `append at ${first.index} is before the durable first index ${this.firstIndex}`,
        ),
      );
      return;
    }
    let truncatedFrom: LogIndex | null = null;
    if (first.index <= last) {
      truncatedFrom = first.index;
      log.length = first.index - this.firstIndex;
    }
    for (let i = 0; i < entries.length; i++) {
      log.push(entries[i] as LogEntry);
    }
    const listener = this.hooks.onDurableAppend;
    if (listener !== undefined) {
      listener(entries, truncatedFrom);
    }
    op.resolve(undefined);
  }

  /** The whole snapshot becomes durable in this one step, then the list is pruned. */
  private completeCommit(op: PendingOperation): void {
    const sink = op.subject as SimSnapshotSink;
    if (sink.broken) {
      sink.state = 'failed';
      op.reject(new StorageError(`a write to snapshot ${sink.meta.index} failed (${this.label})`));
      return;
    }
    const stored = sink.seal();
    const list = this.snapshots;
    // After every snapshot with an index <= its own: it is the newest of its index.
    let at = list.length;
    while (at > 0 && (list[at - 1] as StoredSnapshot).view.meta.index > stored.view.meta.index)
      at--;
    list.splice(at, 0, stored);
    if (list.length > this.snapshotRetain) list.splice(0, list.length - this.snapshotRetain);
    const listener = this.hooks.onDurableSnapshot;
    if (listener !== undefined) {
      listener(stored.view);
    }
    op.resolve(undefined);
  }

  /** Discards the pending layer and kills the current stores. */
  crash(): void {
    this.incarnation++;
    this.group.cancelAll();
    this.pendingFirstIndex = this.firstIndex;
    this.pendingLastIndex = this.lastIndex;
  }
}

function noop(): void {}

/** Copies bytes `[offset, offset + length)` out of the chunks that hold them. */
function readRange(stored: StoredSnapshot, offset: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  if (length === 0) return out;
  const chunks = stored.view.chunks;
  const starts = stored.starts;
  // The last chunk starting at or before `offset` (stored chunks are never empty).
  let lo = 0;
  let hi = starts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if ((starts[mid] as number) <= offset) lo = mid;
    else hi = mid - 1;
  }
  let written = 0;
  for (let i = lo; written < length; i++) {
    const chunk = chunks[i] as Uint8Array;
    const from = i === lo ? offset - (starts[i] as number) : 0;
    const take = Math.min(chunk.length - from, length - written);
    out.set(chunk.subarray(from, from + take), written);
    written += take;
  }
  return out;
}

function deadStoreError(what: string, closed: boolean): StorageError {
  return new StorageError(
    closed ? `${what} is closed` : `${what} is dead: its disk crashed or was reopened`,
  );
}

/** Shared liveness checks of the store classes. */
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
      const invalid = validateAppend(entries, core.pendingFirstIndex, core.pendingLastIndex);
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

  compact(upTo: LogIndex): Promise<void> {
    const dead = this.deadError('log store') ?? this.notOpened() ?? invalidIndex('compact', upTo);
    if (dead !== null) {
      return Promise.reject(dead);
    }
    const core = this.core;
    if (upTo >= core.pendingFirstIndex) {
      core.pendingFirstIndex = upTo + 1;
      if (upTo > core.pendingLastIndex) core.pendingLastIndex = upTo;
    }
    core.hooks.onCutIssued?.('compact', upTo);
    return core.submit('compact', null, null, upTo, 0) as Promise<void>;
  }

  truncate(from: LogIndex): Promise<void> {
    const dead = this.deadError('log store') ?? this.notOpened() ?? invalidIndex('truncate', from);
    if (dead !== null) {
      return Promise.reject(dead);
    }
    const core = this.core;
    if (from <= core.pendingLastIndex) {
      core.pendingLastIndex = Math.max(from, core.pendingFirstIndex) - 1;
    }
    core.hooks.onCutIssued?.('truncate', from);
    return core.submit('truncate', null, null, from, 0) as Promise<void>;
  }

  close(): Promise<void> {
    return this.closeStore('log store');
  }

  private notOpened(): StorageError | null {
    return this.opened ? null : new StorageError('log store used before open()');
  }
}

function invalidIndex(what: string, index: LogIndex): RaftError | null {
  return Number.isSafeInteger(index)
    ? null
    : new RaftError('INVALID_ARGUMENT', `${what}(${index}): the index must be an integer`);
}

/**
 * Null if `entries` (non-empty) may follow a log `[firstIndex, lastIndex]`, else why not: no
 * gap after `lastIndex`, nothing before `firstIndex` (compacted entries are never rewritten).
 */
function validateAppend(
  entries: readonly LogEntry[],
  firstIndex: LogIndex,
  lastIndex: LogIndex,
): string | null {
  const head = (entries[0] as LogEntry).index;
  if (!(Number.isInteger(head) && head >= 1)) {
    return `append starts at invalid index ${head}`;
  }
  if (head > lastIndex + 1) {
    return `append at ${head} would leave a gap after last index ${lastIndex}`;
  }
  if (head < firstIndex) {
    return `append at ${head} is before the first index ${firstIndex}`;
  }
  for (let i = 1; i < entries.length; i++) {
    if ((entries[i] as LogEntry).index !== head + i) {
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

class SimSnapshotStore extends SimStoreBase implements SnapshotStore {
  create(meta: SnapshotMeta): Promise<SnapshotSink> {
    const dead = this.deadError('snapshot store');
    if (dead !== null) {
      return Promise.reject(dead);
    }
    if (
      !(Number.isSafeInteger(meta.index) && meta.index >= 0) ||
      !(Number.isSafeInteger(meta.term) && meta.term >= 0)
    ) {
      return Promise.reject(
        new RaftError(
          'INVALID_ARGUMENT',
          `snapshot meta needs a non-negative integer index and term, got index ${meta.index}, term ${meta.term}`,
        ),
      );
    }
    const sink = new SimSnapshotSink(this, this.core, meta);
    return this.core.submit('snapshotCreate', null, null, 0, 0, sink) as Promise<SnapshotSink>;
  }

  open(): Promise<SnapshotSource | null> {
    const dead = this.deadError('snapshot store');
    if (dead !== null) {
      return Promise.reject(dead);
    }
    return this.core.submit(
      'snapshotOpen',
      null,
      null,
      0,
      0,
      this,
    ) as Promise<SnapshotSource | null>;
  }

  close(): Promise<void> {
    return this.closeStore('snapshot store');
  }

  /** A rejection if sinks and sources of this store may not be used, else null. */
  liveError(what: string): StorageError | null {
    return this.deadError(what);
  }

  /** Issues a source's read (module-internal). */
  submitRead(source: SimSnapshotSource, offset: number, length: number): Promise<Uint8Array> {
    return this.core.submit(
      'snapshotRead',
      null,
      null,
      offset,
      length,
      source,
    ) as Promise<Uint8Array>;
  }
}

type SinkState = 'open' | 'committing' | 'committed' | 'aborted' | 'failed';

/** A snapshot being written: its chunks live here, in no durable layer, until commit completes. */
class SimSnapshotSink implements SnapshotSink {
  state: SinkState = 'open';
  /** A write failed: the bytes are in doubt, and only abort() is left. */
  broken = false;
  private chunks: Uint8Array[] = [];
  private size = 0;

  constructor(
    private readonly store: SimSnapshotStore,
    private readonly core: DiskCore,
    readonly meta: SnapshotMeta,
  ) {}

  write(chunk: Uint8Array): Promise<void> {
    const refused = this.refusal('write()');
    if (refused !== null) {
      return Promise.reject(refused);
    }
    // Copied now: the caller may reuse its buffer once the write resolves.
    return this.core.submit(
      'snapshotWrite',
      null,
      null,
      0,
      0,
      this,
      chunk.slice(),
    ) as Promise<void>;
  }

  commit(): Promise<void> {
    const refused = this.refusal('commit()');
    if (refused !== null) {
      return Promise.reject(refused);
    }
    this.state = 'committing';
    return this.core.submit('snapshotCommit', null, null, 0, 0, this) as Promise<void>;
  }

  abort(): Promise<void> {
    if (this.state === 'open') {
      this.state = 'aborted';
      this.chunks = [];
      this.size = 0;
    }
    return Promise.resolve();
  }

  /** A write's bytes arrived (module-internal): kept unless the sink was aborted meanwhile. */
  received(chunk: Uint8Array): void {
    if (this.state === 'aborted' || chunk.length === 0) return;
    this.chunks.push(chunk);
    this.size += chunk.length;
  }

  /** Hands the chunks over as a durable snapshot (module-internal). */
  seal(): StoredSnapshot {
    const chunks = this.chunks;
    const starts: number[] = [];
    let offset = 0;
    for (const c of chunks) {
      starts.push(offset);
      offset += c.length;
    }
    this.state = 'committed';
    this.chunks = [];
    return new StoredSnapshot({ meta: this.meta, size: this.size, chunks }, starts);
  }

  private refusal(what: string): StorageError | null {
    const dead = this.store.liveError('snapshot store');
    if (dead !== null) return dead;
    if (this.state !== 'open') {
      return new StorageError(`${what} on a snapshot sink that is ${this.state}`);
    }
    if (this.broken) return new StorageError(`${what} on a snapshot sink whose write failed`);
    return null;
  }
}

/** A committed snapshot opened for reading: it keeps the snapshot even once it is pruned. */
class SimSnapshotSource implements SnapshotSource {
  readonly meta: SnapshotMeta;
  readonly size: number;
  private closed = false;

  constructor(
    private readonly store: SimSnapshotStore,
    readonly stored: StoredSnapshot,
  ) {
    this.meta = stored.view.meta;
    this.size = stored.view.size;
  }

  read(offset: number, length: number): Promise<Uint8Array> {
    const dead =
      this.store.liveError('snapshot store') ??
      (this.closed ? new StorageError('read() on a closed snapshot source') : null);
    if (dead !== null) {
      return Promise.reject(dead);
    }
    return this.store.submitRead(this, offset, length);
  }

  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }
}

/**
 * One node's simulated disk. Create one per node and keep it across restarts: it IS the node's
 * persistent state.
 *
 * Entries, hard states and snapshot metas are stored by reference (they are immutable values,
 * types.ts); snapshot chunks are copied as they are written.
 */
export class SimDisk {
  private readonly core: DiskCore;
  private stores: SimDiskStores;

  /** Checker hook, see {@link AppendIssuedListener}. */
  onAppendIssued: AppendIssuedListener | undefined;
  /** Checker hook, see {@link LogCutIssuedListener}. */
  onCutIssued: LogCutIssuedListener | undefined;
  /** Checker hook, see {@link DurableAppendListener}. */
  onDurableAppend: DurableAppendListener | undefined;
  /** Checker hook, see {@link DurableSaveListener}. */
  onDurableSave: DurableSaveListener | undefined;
  /** Checker hook, see {@link DurableCompactListener}. */
  onDurableCompact: DurableCompactListener | undefined;
  /** Checker hook, see {@link DurableTruncateListener}. */
  onDurableTruncate: DurableTruncateListener | undefined;
  /** Checker hook, see {@link DurableSnapshotListener}. */
  onDurableSnapshot: DurableSnapshotListener | undefined;

  /**
   * @param prng a stream for this disk alone (e.g. `root.fork('disk:n1')`): one draw per
   *   operation.
   */
  constructor(scheduler: Scheduler, prng: Prng, options: SimDiskOptions = {}) {
    const minDelayMs = options.minDelayMs ?? 0.5;
    const maxDelayMs = options.maxDelayMs ?? Math.max(3, minDelayMs);
    const snapshotRetain = options.snapshotRetain ?? 2;
    if (!(Number.isFinite(minDelayMs) && minDelayMs >= 0)) {
      throw new RangeError(`minDelayMs must be finite and >= 0, got ${minDelayMs}`);
    }
    if (!(Number.isFinite(maxDelayMs) && maxDelayMs >= minDelayMs)) {
      throw new RangeError(`maxDelayMs must be finite and >= minDelayMs, got ${maxDelayMs}`);
    }
    if (!(Number.isSafeInteger(snapshotRetain) && snapshotRetain >= 1)) {
      throw new RangeError(`snapshotRetain must be a positive integer, got ${snapshotRetain}`);
    }
    this.onAppendIssued = options.onAppendIssued;
    this.onCutIssued = options.onCutIssued;
    this.onDurableAppend = options.onDurableAppend;
    this.onDurableSave = options.onDurableSave;
    this.onDurableCompact = options.onDurableCompact;
    this.onDurableTruncate = options.onDurableTruncate;
    this.onDurableSnapshot = options.onDurableSnapshot;
    this.core = new DiskCore(
      scheduler,
      prng,
      minDelayMs,
      maxDelayMs,
      options.label ?? 'disk',
      snapshotRetain,
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

  /** The snapshot store of the current incarnation (dead after {@link crash}, until {@link reopen}). */
  get snapshotStore(): SnapshotStore {
    return this.stores.snapshotStore;
  }

  /** Operations issued and not yet completed. */
  get pendingOperations(): number {
    return this.core.group.size;
  }

  /**
   * Power loss: every pending operation is discarded (its promise never settles) and the current
   * store objects die, with their snapshot sinks and sources (later calls reject with a
   * StorageError). The durable layer is untouched: a snapshot whose commit had not completed is
   * lost whole.
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
   * The durable log: the entry with index `durableFirstIndex() + k` at position `k` (so index
   * `i` at position `i - 1` until a compaction completes). A live view, not a copy: it changes
   * as appends, compactions and truncations complete; never mutate it.
   */
  durableEntries(): readonly LogEntry[] {
    return this.core.log;
  }

  /** The durable first index: 1 until a compaction completes, then the compaction's `upTo + 1`. */
  durableFirstIndex(): LogIndex {
    return this.core.firstIndex;
  }

  /** The durable last index (`durableFirstIndex() - 1` when the durable log is empty). */
  durableLastIndex(): LogIndex {
    return this.core.lastIndex;
  }

  /** The durable hard state, or null if none was ever saved durably. */
  durableHardState(): HardState | null {
    return this.core.hardState;
  }

  /**
   * The durable snapshots, oldest first (by index, then commit order): the last one is what the
   * snapshot store's `open()` returns. A fresh array each call; never mutate its snapshots.
   */
  durableSnapshots(): readonly SimDiskSnapshot[] {
    return this.core.snapshots.map((s) => s.view);
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
   * two calls fail the next two matching operations. A failed `snapshotWrite` or
   * `snapshotCommit` leaves its sink good only for `abort()`.
   */
  failNext(op: SimDiskOperation | 'any' = 'any'): void {
    this.core.failures.push(op);
  }

  private createStores(): SimDiskStores {
    return {
      logStore: new SimLogStore(this.core),
      stableStore: new SimStableStore(this.core),
      snapshotStore: new SimSnapshotStore(this.core),
    };
  }
}
