/**
 * The database schema and its migrations.
 *
 * The version lives in the one-row table `schema_version`. At open, every migration above the
 * stored version runs in order, all of them in ONE transaction with the new version number: a
 * crash or a failing migration leaves the database at its old version, never half-migrated. A
 * database whose version is newer than the last migration here was written by a newer release
 * of this package, and opening it fails rather than guess at tables it does not know.
 *
 * Version 0 is a database without a `schema_version` row: a new, empty file. A file that holds
 * other tables but no `schema_version` belongs to something else and is refused.
 *
 * Rules for new migrations: append only (never edit a released one), one version each,
 * numbered from 1 without gaps; a migration must work inside a transaction (no `VACUUM`, no
 * `PRAGMA journal_mode`).
 */
import { StorageError } from '@raft/core';
import type BetterSqlite3 from 'better-sqlite3';

type Database = BetterSqlite3.Database;

/** One step of the schema. */
export interface Migration {
  /** The version the database has after this step: the previous one plus 1. */
  readonly version: number;
  /** What it changes, for the log. */
  readonly description: string;
  /** Applies the step. Runs inside the open transaction; throws to abort the whole open. */
  up(db: Database): void;
}

/**
 * Every migration, in order. The tables (version 1):
 *
 * - `log_meta` (one row): `first_index`, the index of the first entry the log holds or, when it
 *   is empty, of the next append. It is what a compaction past the last entry leaves behind:
 *   `lastIndex` is the largest `idx` in `log_entry`, or `first_index - 1` when there is none.
 * - `log_entry`: `idx` (the rowid: entries are stored in index order), `term`, `kind`
 *   (0 command, 1 noop, 2 membership) and `data`.
 * - `hard_state` (at most one row): `term`, `voted_for` (NULL: no vote), `commit_index`.
 * - `snapshot`: one row per snapshot, `state` 0 while written, 1 once committed, 2 once pruned
 *   while a source still reads it (deleted when the source closes). `commit_seq` orders
 *   snapshots committed with the same index. `chunk_bytes` is the size of every chunk but the
 *   last, so a read finds its chunks by arithmetic.
 * - `snapshot_chunk`: the bytes, `seq` from 0.
 */
export const MIGRATIONS: readonly Migration[] = Object.freeze([
  {
    version: 1,
    description: 'log, hard state and snapshot tables',
    up(db: Database): void {
      db.exec(`
        CREATE TABLE log_meta (
          id INTEGER PRIMARY KEY CHECK (id = 1),
          first_index INTEGER NOT NULL
        );
        INSERT INTO log_meta (id, first_index) VALUES (1, 1);
        CREATE TABLE log_entry (
          idx INTEGER PRIMARY KEY,
          term INTEGER NOT NULL,
          kind INTEGER NOT NULL,
          data BLOB NOT NULL
        );
        CREATE TABLE hard_state (
          id INTEGER PRIMARY KEY CHECK (id = 1),
          term INTEGER NOT NULL,
          voted_for TEXT,
          commit_index INTEGER NOT NULL
        );
        CREATE TABLE snapshot (
          id INTEGER PRIMARY KEY AUTOINCREMENT,
          idx INTEGER NOT NULL,
          term INTEGER NOT NULL,
          membership BLOB NOT NULL,
          size INTEGER NOT NULL DEFAULT 0,
          chunk_bytes INTEGER NOT NULL,
          state INTEGER NOT NULL,
          commit_seq INTEGER
        );
        CREATE INDEX snapshot_newest ON snapshot (state, idx, commit_seq);
        CREATE TABLE snapshot_chunk (
          snapshot_id INTEGER NOT NULL,
          seq INTEGER NOT NULL,
          data BLOB NOT NULL,
          PRIMARY KEY (snapshot_id, seq)
        );
      `);
    },
  },
]);

/** The schema version this code writes: the last migration's. */
export const SCHEMA_VERSION: number = MIGRATIONS[MIGRATIONS.length - 1]?.version ?? 0;

/** What {@link migrate} did. */
export interface MigrationResult {
  /** The version found. */
  readonly from: number;
  /** The version now (equal to `from` when nothing ran). */
  readonly to: number;
}

/**
 * Brings the database to the last version of `migrations`, in one immediate transaction.
 * Throws a StorageError when the database is newer than `migrations` knows, when it is not a
 * database of this package, or when a migration fails (nothing is changed then).
 */
export function migrate(
  db: Database,
  migrations: readonly Migration[] = MIGRATIONS,
): MigrationResult {
  checkMigrationList(migrations);
  const latest = migrations[migrations.length - 1]?.version ?? 0;
  const run = db.transaction((): MigrationResult => {
    const from = readVersion(db);
    if (from > latest) {
      throw new StorageError(
        `the database has schema version ${from}, newer than this version of @raft/store-sqlite knows (${latest}): it was written by a newer release; open it with that release or a later one`,
      );
    }
    for (const m of migrations) {
      if (m.version <= from) continue;
      try {
        m.up(db);
      } catch (err) {
        throw new StorageError(
          `migration to schema version ${m.version} (${m.description}) failed: ${(err as Error)?.message ?? String(err)}`,
          { cause: err },
        );
      }
    }
    if (latest !== from) {
      db.prepare(
        `INSERT INTO schema_version (id, version) VALUES (1, ?)
         ON CONFLICT (id) DO UPDATE SET version = excluded.version`,
      ).run(latest);
    }
    return { from, to: latest };
  });
  return run.immediate();
}

/** The stored version (0 for a new database), creating `schema_version` when it is missing. */
function readVersion(db: Database): number {
  const hasTable =
    db
      .prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'schema_version'")
      .get() !== undefined;
  if (!hasTable) {
    const other = db
      .prepare(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' LIMIT 1",
      )
      .pluck()
      .get() as string | undefined;
    if (other !== undefined) {
      throw new StorageError(
        `the database is not one of @raft/store-sqlite: it has tables (such as ${JSON.stringify(other)}) but no schema_version table`,
      );
    }
    db.exec(
      'CREATE TABLE schema_version (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)',
    );
    return 0;
  }
  const version = db.prepare('SELECT version FROM schema_version WHERE id = 1').pluck().get();
  if (version === undefined) return 0;
  if (!(typeof version === 'number' && Number.isSafeInteger(version) && version >= 0)) {
    throw new StorageError(`the schema_version table holds ${String(version)}, not a version`);
  }
  return version;
}

/** Versions must run 1, 2, 3, …: a gap or a repeat is a bug in this package. */
function checkMigrationList(migrations: readonly Migration[]): void {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) {
      throw new StorageError(
        `migration ${i} has version ${m.version}: migrations must be numbered 1, 2, 3, … in order`,
      );
    }
  });
}
