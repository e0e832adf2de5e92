import { RaftError, StorageError } from '../errors.js';
import type { SnapshotSink, SnapshotSource, SnapshotStore } from '../interfaces/snapshot-store.js';
import { snapshotReadLength } from '../store-arguments.js';
import type { Membership, SnapshotMeta } from '../types.js';

/** Options of a {@link MemorySnapshotStore}. */
export interface MemorySnapshotStoreOptions {
  /**
   * How many committed snapshots to keep, the newest by index (of two with the same index, the
   * one committed last counts as newer). A positive integer; default 2.
   */
  readonly retain?: number;
}

const DEFAULT_RETAIN = 2;

/** A committed snapshot: immutable once built, so a source may keep it after it is pruned. */
interface StoredSnapshot {
  readonly meta: SnapshotMeta;
  readonly chunks: readonly Uint8Array[];
  /** `starts[i]` is the offset of `chunks[i]`; ascending. */
  readonly starts: readonly number[];
  readonly size: number;
}

/**
 * A SnapshotStore in memory, for tests and embedding. As for MemoryLogStore, "durable" means
 * "held by this object": pass the same instance to a restarted node to simulate a restart that
 * keeps its disk.
 *
 * - Chunks are copied as they are written (the caller may reuse its buffer) and kept as a list,
 *   never concatenated: a read assembles only the bytes it asks for.
 * - `close()` is a restart of the process, not the end of the storage: it invalidates every sink
 *   and source opened so far (their calls then reject with a StorageError, except `abort()` and
 *   `SnapshotSource.close()`, which never reject); an uncommitted snapshot is lost. The committed
 *   snapshots stay, and a later `create()` or `open()` works again, as on a restarted node.
 */
export class MemorySnapshotStore implements SnapshotStore {
  private readonly retain: number;
  /** Committed snapshots, oldest first: by index, then by commit order. */
  private snapshots: StoredSnapshot[] = [];
  /** Bumped by `close()`: sinks and sources of an earlier epoch are dead. */
  private epoch = 0;
  /** What sinks and sources may ask of the store, kept off its public surface. */
  private readonly link: StoreLink = {
    isCurrent: (epoch) => epoch === this.epoch,
    commit: (snapshot) => this.add(snapshot),
  };

  constructor(options: MemorySnapshotStoreOptions = {}) {
    const retain = options.retain ?? DEFAULT_RETAIN;
    if (!(Number.isSafeInteger(retain) && retain >= 1)) {
      throw new RaftError('INVALID_ARGUMENT', `retain must be a positive integer, got ${retain}`);
    }
    this.retain = retain;
  }

  async create(meta: SnapshotMeta): Promise<SnapshotSink> {
    if (
      !(Number.isSafeInteger(meta.index) && meta.index >= 0) ||
      !(Number.isSafeInteger(meta.term) && meta.term >= 0)
    ) {
      throw new RaftError(
        'INVALID_ARGUMENT',
        `snapshot meta needs a non-negative integer index and term, got index ${meta.index}, term ${meta.term}`,
      );
    }
    return new MemorySnapshotSink(this.link, copyMeta(meta), this.epoch);
  }

  async open(): Promise<SnapshotSource | null> {
    const latest = this.snapshots[this.snapshots.length - 1];
    return latest === undefined ? null : new MemorySnapshotSource(this.link, latest, this.epoch);
  }

  async close(): Promise<void> {
    this.epoch++;
  }

  /** The committed snapshots, oldest first (by index, then commit order) (tests). */
  list(): readonly SnapshotMeta[] {
    return this.snapshots.map((s) => copyMeta(s.meta));
  }

  /** Adds a committed snapshot, then prunes to the newest `retain`. */
  private add(snapshot: StoredSnapshot): void {
    const list = this.snapshots;
    // After every snapshot with an index <= its own: it is the newest of its index.
    let at = list.length;
    while (at > 0 && (list[at - 1] as StoredSnapshot).meta.index > snapshot.meta.index) at--;
    list.splice(at, 0, snapshot);
    if (list.length > this.retain) list.splice(0, list.length - this.retain);
  }
}

/** The store as its sinks and sources see it. */
interface StoreLink {
  /** Whether sinks and sources created in `epoch` may still be used. */
  isCurrent(epoch: number): boolean;
  commit(snapshot: StoredSnapshot): void;
}

type SinkState = 'open' | 'committed' | 'aborted';

class MemorySnapshotSink implements SnapshotSink {
  private chunks: Uint8Array[] = [];
  private size = 0;
  private state: SinkState = 'open';

  constructor(
    private readonly store: StoreLink,
    private readonly meta: SnapshotMeta,
    private readonly epoch: number,
  ) {}

  async write(chunk: Uint8Array): Promise<void> {
    this.check('write()');
    if (!(chunk instanceof Uint8Array)) {
      throw new StorageError('write() needs a Uint8Array chunk');
    }
    if (chunk.length === 0) return;
    this.chunks.push(chunk.slice());
    this.size += chunk.length;
  }

  async commit(): Promise<void> {
    this.check('commit()');
    const chunks = this.chunks;
    const starts: number[] = [];
    let offset = 0;
    for (const c of chunks) {
      starts.push(offset);
      offset += c.length;
    }
    this.state = 'committed';
    this.chunks = [];
    this.store.commit({ meta: this.meta, chunks, starts, size: this.size });
  }

  async abort(): Promise<void> {
    if (this.state !== 'open') return;
    this.state = 'aborted';
    this.chunks = [];
    this.size = 0;
  }

  private check(what: string): void {
    if (this.state !== 'open') {
      throw new StorageError(`${what} on a snapshot sink that was already ${this.state}`);
    }
    if (!this.store.isCurrent(this.epoch)) {
      throw new StorageError(`${what} on a snapshot sink of a closed store`);
    }
  }
}

class MemorySnapshotSource implements SnapshotSource {
  readonly meta: SnapshotMeta;
  readonly size: number;
  private snapshot: StoredSnapshot | null;

  constructor(
    private readonly store: StoreLink,
    snapshot: StoredSnapshot,
    private readonly epoch: number,
  ) {
    this.meta = copyMeta(snapshot.meta);
    this.size = snapshot.size;
    this.snapshot = snapshot;
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    const snapshot = this.snapshot;
    if (snapshot === null) throw new StorageError('read() on a closed snapshot source');
    if (!this.store.isCurrent(this.epoch)) {
      throw new StorageError('read() on a snapshot source of a closed store');
    }
    return readRange(snapshot, offset, snapshotReadLength(offset, length, snapshot.size));
  }

  async close(): Promise<void> {
    this.snapshot = null;
  }
}

/** Copies bytes `[offset, offset + length)` of `snapshot` out of the chunks that hold them. */
function readRange(snapshot: StoredSnapshot, offset: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  if (length === 0) return out;
  const { chunks, starts } = snapshot;
  // The last chunk starting at or before `offset` (chunks are never empty).
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

function copyMembership(membership: Membership): Membership {
  return {
    members: membership.members.map((m) => ({ id: m.id, address: m.address, voter: m.voter })),
  };
}

function copyMeta(meta: SnapshotMeta): SnapshotMeta {
  return { index: meta.index, term: meta.term, membership: copyMembership(meta.membership) };
}
