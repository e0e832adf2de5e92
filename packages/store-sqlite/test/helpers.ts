/**
 * What the adapter tests share: temporary directories and stores that are closed and removed
 * after each test, pass or fail, and a second, independent connection to look inside a database.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LogEntry, Logger, RaftStores, SnapshotMeta } from '@raft/core';
import Database from 'better-sqlite3';
import { afterEach } from 'vitest';
import { openSqliteStores, type SqliteStoresOptions } from '../src/index.js';

/** One log line a {@link RecordingLogger} received. */
export interface LogLine {
  readonly level: 'debug' | 'info' | 'warn' | 'error';
  readonly fields: Record<string, unknown>;
  readonly msg: string | undefined;
}

/** A pino-shaped logger that keeps what it is told. */
export class RecordingLogger implements Logger {
  readonly lines: LogLine[] = [];
  debug(fields: Record<string, unknown>, msg?: string): void {
    this.lines.push({ level: 'debug', fields, msg });
  }
  info(fields: Record<string, unknown>, msg?: string): void {
    this.lines.push({ level: 'info', fields, msg });
  }
  warn(fields: Record<string, unknown>, msg?: string): void {
    this.lines.push({ level: 'warn', fields, msg });
  }
  error(fields: Record<string, unknown>, msg?: string): void {
    this.lines.push({ level: 'error', fields, msg });
  }
}

/**
 * Temporary directories and stores for the tests of one file: call at the top level, then
 * `t.dir()`, `t.open(...)` and `t.inspect(path)` in a test. Everything is closed and deleted
 * after each test.
 */
export function perTest(): {
  dir(): string;
  /** A path for a new database in a new temporary directory. */
  dbPath(): string;
  open(options: SqliteStoresOptions): Promise<RaftStores>;
  /** Registers something to close after the test (a node, a child process). */
  defer(cleanup: () => unknown): void;
  /** A second connection to the database file, outside the stores. Closed after the test. */
  inspect(path: string, options?: { readonly readonly?: boolean }): Database.Database;
} {
  let dirs: string[] = [];
  let cleanups: (() => unknown)[] = [];
  afterEach(async () => {
    const pending = cleanups.reverse();
    cleanups = [];
    for (const cleanup of pending) await cleanup();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    dirs = [];
  });
  const dir = (): string => {
    const d = mkdtempSync(join(tmpdir(), 'raft-sqlite-test-'));
    dirs.push(d);
    return d;
  };
  return {
    dir,
    dbPath: () => join(dir(), 'raft.db'),
    async open(options) {
      const stores = await openSqliteStores(options);
      cleanups.push(() => stores.close());
      return stores;
    },
    defer(cleanup) {
      cleanups.push(cleanup);
    },
    inspect(path, options = {}) {
      const db = new Database(path, { readonly: options.readonly ?? false, fileMustExist: true });
      cleanups.push(() => db.close());
      return db;
    },
  };
}

/** A payload that differs for every (index, term, position). */
export function payload(index: number, term: number, length: number): Uint8Array {
  const data = new Uint8Array(length);
  for (let i = 0; i < length; i++) data[i] = (index * 31 + term * 7 + i * 13) & 0xff;
  return data;
}

/** Entries `[from, to)` of `term`, 8 bytes of data each. */
export function entries(from: number, to: number, term: number, size = 8): LogEntry[] {
  const out: LogEntry[] = [];
  for (let i = from; i < to; i++)
    out.push({ index: i, term, kind: 'command', data: payload(i, term, size) });
  return out;
}

export const MEMBERSHIP = {
  members: [
    { id: 'n1', address: 'n1:7000', voter: true },
    { id: 'n2', address: 'n2:7000', voter: true },
    { id: 'n3', address: 'n3:7000', voter: false },
  ],
};

export function meta(index: number, term = 1): SnapshotMeta {
  return { index, term, membership: MEMBERSHIP };
}

/** Writes and commits a snapshot of `bytes` through `stores`. */
export async function writeSnapshot(
  stores: RaftStores,
  m: SnapshotMeta,
  bytes: Uint8Array,
  pieceBytes = 1000,
): Promise<void> {
  const sink = await stores.snapshotStore.create(m);
  for (let at = 0; at < bytes.length; at += pieceBytes) {
    await sink.write(bytes.subarray(at, at + pieceBytes));
  }
  await sink.commit();
}

/** The whole content of the newest snapshot, or null. */
export async function readNewest(
  stores: RaftStores,
): Promise<{ meta: SnapshotMeta; bytes: Uint8Array } | null> {
  const source = await stores.snapshotStore.open();
  if (source === null) return null;
  try {
    const bytes = source.size === 0 ? new Uint8Array(0) : await source.read(0, source.size);
    return { meta: source.meta, bytes };
  } finally {
    await source.close();
  }
}

/** Rows of `snapshot` by state (0 written, 1 committed, 2 retired), through `db`. */
export function snapshotRows(db: Database.Database): { id: number; idx: number; state: number }[] {
  return db.prepare('SELECT id, idx, state FROM snapshot ORDER BY id').all() as {
    id: number;
    idx: number;
    state: number;
  }[];
}

export function chunkCount(db: Database.Database): number {
  return db.prepare('SELECT count(*) FROM snapshot_chunk').pluck().get() as number;
}
