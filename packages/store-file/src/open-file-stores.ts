/**
 * `openFileStores(options)`: the durable, embedded storage of one node in one directory.
 *
 * ```
 * <dir>/LOCK          pid and host of the process that has it open
 * <dir>/log/*.seg     the log (file-log-store.ts)
 * <dir>/state         the hard state (file-stable-store.ts)
 * <dir>/snapshots/    snapshots (file-snapshot-store.ts)
 * ```
 */
import { join, resolve } from 'node:path';
import { ConfigError, type Logger, noopLogger, type RaftStores } from '@raft/core';
import { type DirLock, lockDirectory } from './dir-lock.js';
import { asStorageError } from './errors.js';
import { FileLogStore } from './file-log-store.js';
import { FileSnapshotStore } from './file-snapshot-store.js';
import { FileStableStore } from './file-stable-store.js';
import { mkdirDurable } from './fs-io.js';

/** Options of {@link openFileStores}. */
export interface FileStoresOptions {
  /** The node's data directory; created if missing. One directory per node, never shared. */
  readonly dir: string;
  /**
   * A log segment is closed, and the next append starts a new one, once it holds this many
   * bytes. Compaction deletes whole segments, so smaller segments free disk sooner after a
   * snapshot; larger ones mean fewer files. Default 64 MiB; at least 4 KiB, at most 1 GiB
   * (open() reads each segment whole, and Node reads no file past 2 GiB: the cap leaves room
   * for the batch that overshoots it).
   */
  readonly segmentBytes?: number;
  /** Committed snapshots kept (the newest by index). Default 2; at least 1. */
  readonly retainSnapshots?: number;
  /** Where recovery reports what it did (a dropped torn tail is a warning). Default: none. */
  readonly logger?: Logger;
}

/** The three stores over one directory, plus their statistics. */
export interface FileStores extends RaftStores {
  readonly logStore: FileLogStore;
  /** The data directory, absolute. */
  readonly dir: string;
}

export const DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024;
const MIN_SEGMENT_BYTES = 4096;
const MAX_SEGMENT_BYTES = 2 ** 30;
const DEFAULT_RETAIN_SNAPSHOTS = 2;

/**
 * Opens (creating if needed) the data directory `options.dir` and locks it against any other
 * opener, in this process or another, until `close()`, or until all three stores are closed
 * (a node's `stop()` closes them). Pass the result as `createRaftNode({ stores })`, or spread
 * it (`{ ...stores }` holds just the three stores: `close` and `dir` are not enumerable).
 *
 * Rejects with a `ConfigError` for bad options, a `DirectoryLockedError` (a StorageError naming
 * the holder's pid) when the directory is in use, and a StorageError when it cannot be created.
 * The log itself is recovered by `logStore.open()` (the node calls it at start): a torn last
 * append is dropped with a warning, earlier damage fails with a `CorruptLogError` naming the
 * file and offset.
 *
 * @example
 * ```ts
 * const node = createRaftNode({
 *   id: 'n1',
 *   stores: await openFileStores({ dir: './data/n1' }),
 *   stateMachine,
 *   codec,
 *   transport,
 * });
 * await node.start({ bootstrap });
 * // …
 * await node.stop(); // closes the stores and releases the directory
 * ```
 */
export async function openFileStores(options: FileStoresOptions): Promise<FileStores> {
  const { dir, segmentBytes, retainSnapshots, logger } = validate(options);
  let lock: DirLock;
  try {
    // Durably: the stores fsync their files and their own subdirectories, not this one's name.
    await mkdirDurable(dir);
    lock = await lockDirectory(dir);
  } catch (err) {
    throw asStorageError(err, `open ${dir}`);
  }
  // Closing all three stores (as a node's stop() does when they were passed one by one, or
  // spread from this bundle) releases the directory too: nothing else would.
  let open = 3;
  const storeClosed = (): void => {
    open--;
    if (open === 0) bundle.close().catch(() => {});
  };
  const logStore = new FileLogStore(join(dir, 'log'), segmentBytes, logger, storeClosed);
  const stableStore = new FileStableStore(dir, storeClosed);
  const snapshotStore = new FileSnapshotStore(join(dir, 'snapshots'), retainSnapshots, storeClosed);
  let closing: Promise<void> | null = null;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      // Every store is closed before the lock goes, whatever fails: a store left open after
      // the release could still write into a directory another process may hold by then.
      let failure: unknown = null;
      for (const store of [logStore, stableStore, snapshotStore]) {
        try {
          await store.close();
        } catch (err) {
          failure ??= err;
        }
      }
      try {
        await lock.release();
      } catch (err) {
        failure ??= err;
      }
      if (failure !== null) throw asStorageError(failure, `close ${dir}`);
    })();
    return closing;
  };
  // Only the three stores are enumerable, so `createRaftNode({ ...stores, … })` works as well as
  // `createRaftNode({ stores, … })`.
  const bundle = Object.defineProperties(
    { logStore, stableStore, snapshotStore },
    {
      dir: { value: dir, enumerable: false },
      close: { value: close, enumerable: false },
    },
  ) as unknown as FileStores;
  return bundle;
}

function validate(options: FileStoresOptions): {
  dir: string;
  segmentBytes: number;
  retainSnapshots: number;
  logger: Logger;
} {
  if (typeof options !== 'object' || options === null) {
    throw new ConfigError('options', 'expected an object with at least `dir`');
  }
  if (typeof options.dir !== 'string' || options.dir.length === 0) {
    throw new ConfigError('dir', `expected a non-empty path, got ${String(options.dir)}`);
  }
  const segmentBytes = options.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
  if (
    !Number.isSafeInteger(segmentBytes) ||
    segmentBytes < MIN_SEGMENT_BYTES ||
    segmentBytes > MAX_SEGMENT_BYTES
  ) {
    throw new ConfigError(
      'segmentBytes',
      `expected an integer in [${MIN_SEGMENT_BYTES}, ${MAX_SEGMENT_BYTES}], got ${String(options.segmentBytes)}`,
    );
  }
  const retainSnapshots = options.retainSnapshots ?? DEFAULT_RETAIN_SNAPSHOTS;
  if (!Number.isSafeInteger(retainSnapshots) || retainSnapshots < 1) {
    throw new ConfigError(
      'retainSnapshots',
      `expected an integer of at least 1, got ${String(options.retainSnapshots)}`,
    );
  }
  const logger = options.logger ?? noopLogger;
  if (typeof logger.warn !== 'function') {
    throw new ConfigError('logger', 'expected a pino-shaped logger (with warn)');
  }
  return { dir: resolve(options.dir), segmentBytes, retainSnapshots, logger };
}
