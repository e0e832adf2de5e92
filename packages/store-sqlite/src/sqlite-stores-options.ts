import { ConfigError, type Logger, noopLogger } from '@raft/core';

/**
 * Options of {@link openSqliteStores}. Plain data apart from `logger`, so a JSON config (a path
 * and a few numbers) is enough to open the stores from any process.
 */
export interface SqliteStoresOptions {
  /**
   * The database file; created (with its schema) when missing. Its directory MUST exist. Beside
   * it live SQLite's `<path>-wal` and `<path>-shm` files and this package's `<path>.lock`: keep
   * them together, and back up or move them together. Required; `':memory:'` is refused
   * (nothing in memory is durable).
   */
  readonly path: string;
  /**
   * SQLite's `PRAGMA synchronous`. Default `'full'`: every commit (each appended batch, each
   * saved vote, each snapshot commit) is fsynced to the write-ahead log before the call resolves,
   * and on macOS `fullfsync` is on too, so the drive flushes its cache.
   *
   * `'normal'` skips that fsync: in WAL mode a power loss or an OS crash (not a process crash)
   * MAY then lose the last transactions, which here means acknowledged appends and votes. Raft
   * is only safe if neither is ever lost: a forgotten vote lets a node vote twice in one term,
   * and a forgotten acknowledged entry can undo a commit. Use `'normal'` only where losing the
   * whole node's disk on a power loss is acceptable (a test bed, or a machine whose id is
   * retired after any unclean shutdown).
   */
  readonly synchronous?: 'full' | 'normal';
  /**
   * How many committed snapshots to keep, the newest by index (of two with the same index, the
   * one committed last counts as newer). An integer >= 1; default 2. Older ones are deleted at
   * the commit that pushes them out (or, if a source still reads one, when it is closed).
   */
  readonly retainSnapshots?: number;
  /**
   * Size of the rows a snapshot is stored in, in bytes: a sink buffers up to this much before it
   * inserts a row, and a read loads whole rows. An integer in [1, 256 MiB]; default 1 MiB (the
   * runtime's default `snapshotChunkBytes`, so one transfer message reads one row).
   */
  readonly snapshotChunkBytes?: number;
  /** Where the stores report opening, migrations and clean-ups. Pino-shaped; default a no-op. */
  readonly logger?: Logger;
}

/** {@link SqliteStoresOptions} with every default applied. */
export interface ResolvedSqliteStoresOptions {
  readonly path: string;
  readonly synchronous: 'full' | 'normal';
  readonly retainSnapshots: number;
  readonly snapshotChunkBytes: number;
  readonly logger: Logger;
}

/** The defaults of the optional fields of {@link SqliteStoresOptions}. */
export const SQLITE_STORES_DEFAULTS = {
  synchronous: 'full',
  retainSnapshots: 2,
  snapshotChunkBytes: 1024 * 1024,
} as const;

/** The largest `snapshotChunkBytes`: far below SQLite's 1 GB limit on one value. */
export const MAX_SNAPSHOT_CHUNK_BYTES = 256 * 1024 * 1024;

const KNOWN_FIELDS = new Set([
  'path',
  'synchronous',
  'retainSnapshots',
  'snapshotChunkBytes',
  'logger',
]);

/**
 * Checks `options` and applies the defaults. Throws a ConfigError naming the offending field and
 * what it accepts, before anything touches the disk.
 */
export function resolveSqliteStoresOptions(options: unknown): ResolvedSqliteStoresOptions {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new ConfigError('options', 'expected an object such as { path: "./raft.db" }');
  }
  const o = options as Record<string, unknown>;
  for (const field of Object.keys(o)) {
    // A misspelt option (`retainSnapshot`) would otherwise silently keep its default.
    if (!KNOWN_FIELDS.has(field)) {
      throw new ConfigError(
        field,
        `unknown option; the options are ${[...KNOWN_FIELDS].join(', ')}`,
      );
    }
  }
  const { path } = o;
  if (typeof path !== 'string' || path.length === 0) {
    throw new ConfigError('path', 'required: the path of the database file, a non-empty string');
  }
  if (path === ':memory:' || path.startsWith('file:')) {
    throw new ConfigError(
      'path',
      `must name a file on disk (got ${JSON.stringify(path)}: an in-memory or URI database is not supported)`,
    );
  }
  if (path.includes('\0')) throw new ConfigError('path', 'must not contain a NUL character');

  const synchronous = o.synchronous ?? SQLITE_STORES_DEFAULTS.synchronous;
  if (synchronous !== 'full' && synchronous !== 'normal') {
    throw new ConfigError(
      'synchronous',
      `must be 'full' or 'normal', got ${JSON.stringify(synchronous)}`,
    );
  }

  const retainSnapshots = o.retainSnapshots ?? SQLITE_STORES_DEFAULTS.retainSnapshots;
  if (!(Number.isSafeInteger(retainSnapshots) && (retainSnapshots as number) >= 1)) {
    throw new ConfigError(
      'retainSnapshots',
      `must be an integer >= 1, got ${String(retainSnapshots)}`,
    );
  }

  const snapshotChunkBytes = o.snapshotChunkBytes ?? SQLITE_STORES_DEFAULTS.snapshotChunkBytes;
  if (
    !(
      Number.isSafeInteger(snapshotChunkBytes) &&
      (snapshotChunkBytes as number) >= 1 &&
      (snapshotChunkBytes as number) <= MAX_SNAPSHOT_CHUNK_BYTES
    )
  ) {
    throw new ConfigError(
      'snapshotChunkBytes',
      `must be an integer in [1, ${MAX_SNAPSHOT_CHUNK_BYTES}], got ${String(snapshotChunkBytes)}`,
    );
  }

  const logger = o.logger ?? noopLogger;
  if (!isLogger(logger)) {
    throw new ConfigError('logger', 'must have debug, info, warn and error methods (pino-shaped)');
  }

  return {
    path,
    synchronous,
    retainSnapshots: retainSnapshots as number,
    snapshotChunkBytes: snapshotChunkBytes as number,
    logger,
  };
}

function isLogger(value: unknown): value is Logger {
  if (typeof value !== 'object' || value === null) return false;
  const l = value as Record<string, unknown>;
  return (
    typeof l.debug === 'function' &&
    typeof l.info === 'function' &&
    typeof l.warn === 'function' &&
    typeof l.error === 'function'
  );
}
