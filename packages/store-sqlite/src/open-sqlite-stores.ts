import { lstatSync, readlinkSync, realpathSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type { Logger, RaftStores } from '@raft/core';
import { StorageError } from '@raft/core';
import Database from 'better-sqlite3';
import { acquireLockFile, type HeldLock } from './lock-file.js';
import { migrate } from './schema.js';
import { SqliteLogStore } from './sqlite-log-store.js';
import { SqliteSnapshotStore } from './sqlite-snapshot-store.js';
import { SqliteStableStore } from './sqlite-stable-store.js';
import {
  type ResolvedSqliteStoresOptions,
  resolveSqliteStoresOptions,
  type SqliteStoresOptions,
} from './sqlite-stores-options.js';
import { storageCall, toStorageError } from './storage-call.js';

/**
 * Opens (creating it when missing) the SQLite database at `options.path` and returns the three
 * durable stores of one node over it: pass `logStore`, `stableStore` and `snapshotStore` to
 * `createRaftNode`, and call `close()` once the node has stopped.
 *
 * - The database is in WAL mode with `PRAGMA synchronous = FULL` by default: every call that
 *   writes (an appended batch, a saved hard state, a snapshot commit) is one SQLite transaction,
 *   durable when its promise resolves.
 * - The database belongs to this handle until `close()`: a lock file `<path>.lock` holds this
 *   process's pid, and a second open, from this process or another, fails with a StorageError
 *   naming the pid that holds it. A lock left by a process that died is removed.
 * - The schema is created or migrated at open, in one transaction; a database written by a
 *   newer release of this package (a newer schema version) is refused with a StorageError.
 * - Closing all three stores (as a node's `stop()` does) closes the database and releases the
 *   lock too, as `close()` does; `close()` is idempotent.
 * - better-sqlite3 is synchronous: each call runs to completion before its promise resolves
 *   (resolved promises, no worker thread), so calls are short (one statement or one
 *   transaction) and never interleave.
 *
 * Rejects with a ConfigError naming the field for a bad option, and with a StorageError when
 * the lock is held, the file is not a database of this package, its schema is too new, or the
 * driver fails (the driver's error is the `cause`).
 *
 * @example
 * ```ts
 * const stores = await openSqliteStores({ path: './data/n1.db' });
 * const node = createRaftNode({ id: 'n1', ...stores, stateMachine, codec, transport });
 * ```
 */
export async function openSqliteStores(options: SqliteStoresOptions): Promise<RaftStores> {
  const resolved = resolveSqliteStoresOptions(options);
  const path = canonicalPath(resolved.path);
  const logger = childOf(resolved.logger, { store: 'sqlite', path });
  const lock = acquireLockFile(path, logger);
  let db: Database.Database | undefined;
  try {
    db = storageCall(`opening the database ${path}`, () => new Database(path));
    const opened = db;
    storageCall('configuring the database', () => configure(opened, resolved.synchronous));
    // The schema first, WAL after: the journal mode is stored in the file, so switching it
    // before migrate() has refused a database of something else (or of a newer release) would
    // convert that database to WAL, which its owner may not be able to use.
    const { from, to } = storageCall('migrating the schema', () => migrate(opened));
    storageCall('switching the database to WAL', () => enableWal(opened));
    if (from !== to) logger.info({ from, to }, `schema migrated from version ${from} to ${to}`);
    const stores = new SqliteStores(opened, lock, resolved, logger);
    logger.info({ synchronous: resolved.synchronous, schemaVersion: to }, 'sqlite stores opened');
    // Only the three stores are enumerable, so `createRaftNode({ ...stores, … })` works as well
    // as `createRaftNode({ stores, … })` (the node's stop() closes all three: that releases the
    // database too).
    return Object.defineProperties(
      {
        logStore: stores.logStore,
        stableStore: stores.stableStore,
        snapshotStore: stores.snapshotStore,
      },
      { close: { value: () => stores.close(), enumerable: false } },
    ) as unknown as RaftStores;
  } catch (err) {
    try {
      db?.close();
    } catch {
      // The open failed already; that failure is the one to report.
    }
    lock.release();
    throw toStorageError(`opening the sqlite stores at ${path}`, err);
  }
}

/**
 * Durability, set before anything is read or written. These settings belong to the connection
 * and change nothing in the file.
 */
function configure(db: Database.Database, synchronous: 'full' | 'normal'): void {
  db.pragma(`synchronous = ${synchronous === 'full' ? 'FULL' : 'NORMAL'}`);
  // macOS only (a no-op elsewhere): fsync there does not flush the drive's cache, F_FULLFSYNC
  // does. Durable means durable, so FULL asks for it.
  if (synchronous === 'full') db.pragma('fullfsync = ON');
}

/**
 * WAL mode, once the database is known to be ours (it is stored in the file and outlives the
 * connection). A no-op for a database of ours after its first open.
 */
function enableWal(db: Database.Database): void {
  const mode = db.pragma('journal_mode = WAL', { simple: true });
  if (String(mode).toLowerCase() !== 'wal') {
    throw new StorageError(
      `the database could not switch to WAL mode (journal_mode is ${String(mode)}); is the file on a file system without shared memory, such as a network mount?`,
    );
  }
}

/**
 * The stores of one database. Owns the connection and the lock; each store only flags itself
 * closed, and the last one to close (or `close()`) closes the connection and drops the lock.
 */
class SqliteStores implements RaftStores {
  readonly logStore: SqliteLogStore;
  readonly stableStore: SqliteStableStore;
  readonly snapshotStore: SqliteSnapshotStore;
  private open = 3;
  private closed = false;

  constructor(
    private readonly db: Database.Database,
    private readonly lock: HeldLock,
    options: ResolvedSqliteStoresOptions,
    private readonly logger: Logger,
  ) {
    const storeClosed = (): void => {
      this.open--;
      if (this.open === 0) this.release();
    };
    this.logStore = new SqliteLogStore(db, storeClosed);
    this.stableStore = new SqliteStableStore(db, storeClosed);
    this.snapshotStore = new SqliteSnapshotStore(
      db,
      { retain: options.retainSnapshots, chunkBytes: options.snapshotChunkBytes, logger },
      storeClosed,
    );
  }

  async close(): Promise<void> {
    this.release();
  }

  /** Closes every store, then the connection, then drops the lock. Idempotent. */
  private release(): void {
    if (this.closed) return;
    this.closed = true;
    this.logStore.detach();
    this.stableStore.detach();
    this.snapshotStore.detach();
    let failure: unknown;
    try {
      this.db.close();
    } catch (err) {
      failure = err;
    }
    // Even a failed close leaves nothing of ours writing: the lock can go.
    this.lock.release();
    if (failure !== undefined) throw toStorageError('closing the database', failure);
    this.logger.info({}, 'sqlite stores closed');
  }
}

/**
 * The absolute path with every symbolic link resolved, the file's own included, so that every
 * spelling of one database (a relative path, a symlinked directory, a symbolic link to the file)
 * names the same lock file: SQLite follows a link to the file and writes the target (its `-wal`
 * beside it), so a lock beside the link would let a second writer in. A link whose target does
 * not exist yet is followed too (SQLite creates the target). A missing directory is left as it
 * is: taking the lock then fails, saying so.
 */
function canonicalPath(path: string): string {
  let current = resolve(path);
  // Bounded like the kernel's own limit on nested links (ELOOP), so a link cycle ends.
  for (let hops = 0; hops < 40; hops++) {
    let target: string;
    try {
      if (!lstatSync(current).isSymbolicLink()) break;
      target = readlinkSync(current);
    } catch {
      break; // missing (a new database) or unreadable: the path as it is
    }
    current = resolve(dirname(current), target);
  }
  try {
    return join(realpathSync(dirname(current)), basename(current));
  } catch {
    return current;
  }
}

function childOf(logger: Logger, bindings: Record<string, unknown>): Logger {
  return logger.child ? logger.child(bindings) : logger;
}
