import {
  decodeMembership,
  encodeMembership,
  type Logger,
  RaftError,
  type SnapshotMeta,
  type SnapshotSink,
  type SnapshotSource,
  type SnapshotStore,
  StorageError,
  snapshotReadLength,
} from '@raft/core';
import type BetterSqlite3 from 'better-sqlite3';
import { storageCall, toStorageError } from './storage-call.js';

type Database = BetterSqlite3.Database;

/** `snapshot.state`: written, visible to `open()`, or pruned while a source still reads it. */
const WRITING = 0;
const COMMITTED = 1;
const RETIRED = 2;

interface SnapshotRow {
  id: number;
  idx: number;
  term: number;
  membership: Uint8Array;
  size: number;
  chunk_bytes: number;
}

/** Options of a {@link SqliteSnapshotStore}, already validated. */
export interface SqliteSnapshotStoreOptions {
  readonly retain: number;
  readonly chunkBytes: number;
  readonly logger: Logger;
}

/**
 * The SnapshotStore over the `snapshot` and `snapshot_chunk` tables.
 *
 * - A sink inserts its `snapshot` row (state WRITING) at `create()`, then one `snapshot_chunk`
 *   row each time `chunkBytes` have arrived, so a snapshot is never held whole in memory.
 *   `commit()` inserts the last, shorter chunk and flips the row to COMMITTED in one
 *   transaction, then prunes in the same transaction: after a crash the snapshot is there whole
 *   (with the pruning done) or not at all. `abort()` deletes the row and its chunks.
 * - Sources read whole chunks (every chunk but the last has the snapshot's `chunk_bytes`, so
 *   the chunks of a range are found by arithmetic, with one range query) and keep the last one
 *   they read, so sequential reads smaller than a chunk load each chunk once.
 * - A source stays readable after its snapshot is pruned until it is closed: this store keeps
 *   a count of open sources per snapshot (it is the database's only user, under the lock), and
 *   pruning one that is being read only marks it RETIRED; closing its last source deletes it.
 *   A long read transaction per source was the alternative; it is not used because the one
 *   connection would have to hold it across every append, and because a reader that is never
 *   closed would stop WAL checkpoints for good.
 * - Opening the store deletes what a crash or a close left behind: snapshots still WRITING
 *   (their sink never committed), RETIRED ones (their sources died with the process), and
 *   committed ones beyond the retention (which may have been lowered since).
 */
export class SqliteSnapshotStore implements SnapshotStore {
  private closed = false;
  /** Open sources per snapshot id. */
  private readonly readers = new Map<number, number>();
  private readonly link: StoreLink;

  private readonly insertSnapshot: BetterSqlite3.Statement<[number, number, Uint8Array, number]>;
  private readonly selectNewest: BetterSqlite3.Statement<[], SnapshotRow>;
  private readonly selectChunks: BetterSqlite3.Statement<[number, number, number], Uint8Array>;
  private readonly selectState: BetterSqlite3.Statement<[number], number>;
  private readonly commitTransaction: (id: number, size: number, tail: Tail | null) => number[];
  private readonly deleteTransaction: (id: number) => void;
  private readonly pruneTransaction: () => number[];

  constructor(
    db: Database,
    private readonly options: SqliteSnapshotStoreOptions,
    private readonly onClose: () => void,
  ) {
    this.insertSnapshot = db.prepare(
      `INSERT INTO snapshot (idx, term, membership, chunk_bytes, state) VALUES (?, ?, ?, ?, ${WRITING})`,
    );
    this.selectNewest = db.prepare(
      `SELECT id, idx, term, membership, size, chunk_bytes FROM snapshot
       WHERE state = ${COMMITTED} ORDER BY idx DESC, commit_seq DESC LIMIT 1`,
    );
    this.selectChunks = db
      .prepare<[number, number, number], Uint8Array>(
        'SELECT data FROM snapshot_chunk WHERE snapshot_id = ? AND seq >= ? AND seq <= ? ORDER BY seq',
      )
      .pluck();
    this.selectState = db
      .prepare<[number], number>('SELECT state FROM snapshot WHERE id = ?')
      .pluck();
    const insertChunk = db.prepare<[number, number, Uint8Array]>(
      'INSERT INTO snapshot_chunk (snapshot_id, seq, data) VALUES (?, ?, ?)',
    );
    const markCommitted = db.prepare<[number, number]>(
      `UPDATE snapshot SET state = ${COMMITTED}, size = ?,
         commit_seq = (SELECT coalesce(max(commit_seq), 0) + 1 FROM snapshot)
       WHERE id = ? AND state = ${WRITING}`,
    );
    const selectBeyondRetention = db
      .prepare<[number], number>(
        `SELECT id FROM snapshot WHERE state = ${COMMITTED}
         ORDER BY idx DESC, commit_seq DESC LIMIT -1 OFFSET ?`,
      )
      .pluck();
    const markRetired = db.prepare<[number]>(`UPDATE snapshot SET state = ${RETIRED} WHERE id = ?`);
    const deleteChunks = db.prepare<[number]>('DELETE FROM snapshot_chunk WHERE snapshot_id = ?');
    const deleteRow = db.prepare<[number]>('DELETE FROM snapshot WHERE id = ?');
    const selectLeftovers = db
      .prepare<[], number>(`SELECT id FROM snapshot WHERE state <> ${COMMITTED}`)
      .pluck();

    const remove = (id: number): void => {
      deleteChunks.run(id);
      deleteRow.run(id);
    };
    /** Deletes (or retires, while read) the committed snapshots past the retention. */
    const prune = (): number[] => {
      const pruned = selectBeyondRetention.all(options.retain);
      for (const id of pruned) {
        if (this.readers.has(id)) markRetired.run(id);
        else remove(id);
      }
      return pruned;
    };
    this.commitTransaction = db.transaction((id: number, size: number, tail: Tail | null) => {
      if (tail !== null) insertChunk.run(id, tail.seq, tail.bytes);
      if (markCommitted.run(size, id).changes !== 1) {
        throw new StorageError(`snapshot ${id} vanished from the database before its commit`);
      }
      return prune();
    });
    this.deleteTransaction = db.transaction(remove);
    const inTransaction = db.transaction((body: () => void) => body());
    this.pruneTransaction = db.transaction(prune);

    this.link = {
      isOpen: () => !this.closed,
      chunkBytes: options.chunkBytes,
      insertChunk: (id, seq, bytes) => {
        insertChunk.run(id, seq, bytes);
      },
      inTransaction: (body) => inTransaction(body),
      commit: (id, size, tail) => {
        const pruned = this.commitTransaction(id, size, tail);
        if (pruned.length > 0) {
          options.logger.debug({ snapshotId: id, pruned }, 'snapshot committed; older ones pruned');
        }
      },
      discard: (id) => this.discard(id),
      readChunks: (id, from, to) => this.selectChunks.all(id, from, to),
      release: (id) => this.release(id),
    };

    storageCall('opening the snapshot store', () => {
      const leftovers = selectLeftovers.all();
      db.transaction(() => {
        for (const id of leftovers) remove(id);
      })();
      const pruned = this.pruneTransaction();
      if (leftovers.length + pruned.length > 0) {
        options.logger.info(
          { leftovers: leftovers.length, pruned: pruned.length },
          'deleted uncommitted and pruned snapshots left by the last run',
        );
      }
    });
  }

  async create(meta: SnapshotMeta): Promise<SnapshotSink> {
    this.check('create()');
    if (
      typeof meta !== 'object' ||
      meta === null ||
      !(Number.isSafeInteger(meta.index) && meta.index >= 0) ||
      !(Number.isSafeInteger(meta.term) && meta.term >= 0) ||
      !Array.isArray(meta.membership?.members)
    ) {
      throw new RaftError(
        'INVALID_ARGUMENT',
        `snapshot meta needs a non-negative integer index and term and a membership, got index ${meta?.index}, term ${meta?.term}`,
      );
    }
    let membership: Uint8Array;
    let copy: SnapshotMeta['membership'];
    try {
      membership = encodeMembership(meta.membership);
      copy = decodeMembership(membership); // what open() will return, detached from the caller
    } catch (err) {
      throw new RaftError(
        'INVALID_ARGUMENT',
        'snapshot meta has a malformed membership: every member needs a string id and address and a boolean voter',
        { cause: err },
      );
    }
    const id = storageCall('create a snapshot', () =>
      Number(
        this.insertSnapshot.run(meta.index, meta.term, membership, this.options.chunkBytes)
          .lastInsertRowid,
      ),
    );
    return new SqliteSnapshotSink(this.link, id, {
      index: meta.index,
      term: meta.term,
      membership: copy,
    });
  }

  async open(): Promise<SnapshotSource | null> {
    this.check('open()');
    const row = storageCall('open the latest snapshot', () => this.selectNewest.get());
    if (row === undefined) return null;
    let meta: SnapshotMeta;
    try {
      meta = { index: row.idx, term: row.term, membership: decodeMembership(row.membership) };
    } catch (err) {
      throw new StorageError(`snapshot ${row.idx} has a damaged membership`, { cause: err });
    }
    if (!(Number.isSafeInteger(row.chunk_bytes) && row.chunk_bytes >= 1)) {
      throw new StorageError(`snapshot ${row.idx} is damaged (chunk size ${row.chunk_bytes})`);
    }
    this.readers.set(row.id, (this.readers.get(row.id) ?? 0) + 1);
    return new SqliteSnapshotSource(this.link, row.id, meta, row.size, row.chunk_bytes);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.onClose();
  }

  /** Marks the store closed without telling the owner (the owner is closing everything). */
  detach(): void {
    this.closed = true;
  }

  /** Deletes an aborted snapshot. Never throws: a leftover is deleted at the next open. */
  private discard(id: number): void {
    if (this.closed) return;
    try {
      this.deleteTransaction(id);
    } catch (err) {
      this.options.logger.warn(
        { snapshotId: id, err },
        'could not delete an aborted snapshot; it will be deleted at the next open',
      );
    }
  }

  /** A source closed: the last one of a retired snapshot deletes it. Never throws. */
  private release(id: number): void {
    const count = (this.readers.get(id) ?? 0) - 1;
    if (count > 0) {
      this.readers.set(id, count);
      return;
    }
    this.readers.delete(id);
    if (this.closed) return;
    try {
      if (this.selectState.get(id) === RETIRED) this.deleteTransaction(id);
    } catch (err) {
      this.options.logger.warn(
        { snapshotId: id, err },
        'could not delete a pruned snapshot; it will be deleted at the next open',
      );
    }
  }

  private check(what: string): void {
    if (this.closed) throw new StorageError(`${what} on a closed sqlite snapshot store`);
  }
}

/** The chunk a commit inserts: what the sink buffered since its last full chunk. */
interface Tail {
  readonly seq: number;
  readonly bytes: Uint8Array;
}

/** The store as its sinks and sources see it. Every method but `discard`/`release` may throw. */
interface StoreLink {
  isOpen(): boolean;
  readonly chunkBytes: number;
  insertChunk(id: number, seq: number, bytes: Uint8Array): void;
  /** Runs `body` in one transaction: the rows of one `write()` cost one commit (one fsync). */
  inTransaction(body: () => void): void;
  commit(id: number, size: number, tail: Tail | null): void;
  discard(id: number): void;
  readChunks(id: number, fromSeq: number, toSeq: number): Uint8Array[];
  release(id: number): void;
}

type SinkState = 'open' | 'committed' | 'aborted' | 'failed';

class SqliteSnapshotSink implements SnapshotSink {
  private state: SinkState = 'open';
  /** Bytes not yet inserted: `buffer[0, fill)`. Allocated at the first partial chunk. */
  private buffer: Uint8Array | null = null;
  private fill = 0;
  /** `seq` of the next chunk row. */
  private seq = 0;
  private size = 0;

  constructor(
    private readonly store: StoreLink,
    private readonly id: number,
    private readonly meta: SnapshotMeta,
  ) {}

  async write(chunk: Uint8Array): Promise<void> {
    this.check('write()');
    if (!(chunk instanceof Uint8Array)) {
      throw new StorageError('write() needs a Uint8Array chunk');
    }
    try {
      // A write that completes no row only buffers; one that does inserts in one transaction.
      if (this.fill + chunk.length < this.store.chunkBytes) this.take(chunk);
      else this.store.inTransaction(() => this.take(chunk));
    } catch (err) {
      // Some rows may be in, some not: the sink cannot go on. abort() (or the next open)
      // deletes what it wrote.
      this.state = 'failed';
      throw toStorageError(`writing snapshot ${this.meta.index}`, err);
    }
  }

  async commit(): Promise<void> {
    this.check('commit()');
    const tail =
      this.fill > 0
        ? { seq: this.seq, bytes: (this.buffer as Uint8Array).subarray(0, this.fill) }
        : null;
    try {
      this.store.commit(this.id, this.size, tail);
    } catch (err) {
      this.state = 'failed';
      throw toStorageError(`committing snapshot ${this.meta.index}`, err);
    }
    this.state = 'committed';
    this.buffer = null;
  }

  async abort(): Promise<void> {
    if (this.state === 'committed' || this.state === 'aborted') return;
    this.state = 'aborted';
    this.buffer = null;
    this.store.discard(this.id);
  }

  /** Cuts `chunk` into rows of exactly `chunkBytes`, buffering the remainder. */
  private take(chunk: Uint8Array): void {
    const rowBytes = this.store.chunkBytes;
    let at = 0;
    while (at < chunk.length) {
      if (this.fill === 0 && chunk.length - at >= rowBytes) {
        // A whole row straight from the caller's bytes: the driver copies them as it binds.
        this.store.insertChunk(this.id, this.seq, chunk.subarray(at, at + rowBytes));
        this.seq++;
        at += rowBytes;
        continue;
      }
      if (this.buffer === null) this.buffer = new Uint8Array(rowBytes);
      const take = Math.min(rowBytes - this.fill, chunk.length - at);
      this.buffer.set(chunk.subarray(at, at + take), this.fill);
      this.fill += take;
      at += take;
      if (this.fill === rowBytes) {
        this.store.insertChunk(this.id, this.seq, this.buffer);
        this.seq++;
        this.fill = 0;
      }
    }
    this.size += chunk.length;
  }

  private check(what: string): void {
    if (this.state !== 'open') {
      throw new StorageError(`${what} on a snapshot sink that was already ${this.state}`);
    }
    if (!this.store.isOpen()) {
      throw new StorageError(`${what} on a snapshot sink of a closed sqlite snapshot store`);
    }
  }
}

class SqliteSnapshotSource implements SnapshotSource {
  private closed = false;
  /** The chunk the last read ended in. */
  private cached: { readonly seq: number; readonly bytes: Uint8Array } | null = null;

  constructor(
    private readonly store: StoreLink,
    private readonly id: number,
    readonly meta: SnapshotMeta,
    readonly size: number,
    private readonly chunkBytes: number,
  ) {}

  async read(offset: number, length: number): Promise<Uint8Array> {
    if (this.closed) throw new StorageError('read() on a closed snapshot source');
    if (!this.store.isOpen()) {
      throw new StorageError('read() on a snapshot source of a closed sqlite snapshot store');
    }
    const size = this.size;
    const n = snapshotReadLength(offset, length, size);
    const out = new Uint8Array(n);
    if (n === 0) return out;
    const rowBytes = this.chunkBytes;
    const firstSeq = Math.floor(offset / rowBytes);
    const lastSeq = Math.floor((offset + n - 1) / rowBytes);
    const chunks = this.chunks(firstSeq, lastSeq);
    let written = 0;
    for (let i = 0; i < chunks.length; i++) {
      const chunk = chunks[i] as Uint8Array;
      const from = i === 0 ? offset - firstSeq * rowBytes : 0;
      const take = Math.min(chunk.length - from, n - written);
      out.set(chunk.subarray(from, from + take), written);
      written += take;
    }
    return out;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.cached = null;
    this.store.release(this.id);
  }

  /** Chunks `[firstSeq, lastSeq]`, from the cache or one query, checked for size. */
  private chunks(firstSeq: number, lastSeq: number): Uint8Array[] {
    const cached = this.cached;
    if (cached !== null && firstSeq === lastSeq && cached.seq === firstSeq) return [cached.bytes];
    const chunks = storageCall(`read snapshot ${this.meta.index}`, () =>
      this.store.readChunks(this.id, firstSeq, lastSeq),
    );
    if (chunks.length !== lastSeq - firstSeq + 1) {
      throw new StorageError(
        `snapshot ${this.meta.index} is damaged: chunks ${firstSeq} to ${lastSeq} are not all there`,
      );
    }
    for (let i = 0; i < chunks.length; i++) {
      const seq = firstSeq + i;
      const expected = Math.min(this.chunkBytes, this.size - seq * this.chunkBytes);
      if ((chunks[i] as Uint8Array).length !== expected) {
        throw new StorageError(
          `snapshot ${this.meta.index} is damaged: chunk ${seq} has ${(chunks[i] as Uint8Array).length} bytes, expected ${expected}`,
        );
      }
    }
    this.cached = { seq: lastSeq, bytes: chunks[chunks.length - 1] as Uint8Array };
    return chunks;
  }
}
