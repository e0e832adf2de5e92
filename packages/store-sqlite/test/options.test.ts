import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type ConfigError, RaftError } from '@raft/core';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { openSqliteStores, type SqliteStoresOptions } from '../src/index.js';
import { perTest, RecordingLogger } from './helpers.js';

const t = perTest();

/** Opens with `options` and returns the ConfigError it must reject with. */
async function configError(options: unknown): Promise<ConfigError> {
  const err = await openSqliteStores(options as SqliteStoresOptions).then(
    () => {
      throw new Error('expected openSqliteStores to reject');
    },
    (e: unknown) => e,
  );
  expect(RaftError.is(err, 'INVALID_CONFIG')).toBe(true);
  return err as ConfigError;
}

describe('openSqliteStores options', () => {
  it('rejects (never throws) with a ConfigError naming the field', async () => {
    const path = t.dbPath();
    const cases: [unknown, string][] = [
      [undefined, 'options'],
      [null, 'options'],
      ['./raft.db', 'options'],
      [{}, 'path'],
      [{ path: '' }, 'path'],
      [{ path: 42 }, 'path'],
      [{ path: ':memory:' }, 'path'],
      [{ path: 'file:raft.db?mode=memory' }, 'path'],
      [{ path: 'a\0b' }, 'path'],
      [{ path, synchronous: 'off' }, 'synchronous'],
      [{ path, synchronous: 'FULL' }, 'synchronous'],
      [{ path, retainSnapshots: 0 }, 'retainSnapshots'],
      [{ path, retainSnapshots: 1.5 }, 'retainSnapshots'],
      [{ path, retainSnapshots: '2' }, 'retainSnapshots'],
      [{ path, snapshotChunkBytes: 0 }, 'snapshotChunkBytes'],
      [{ path, snapshotChunkBytes: 256 * 1024 * 1024 + 1 }, 'snapshotChunkBytes'],
      [{ path, snapshotChunkBytes: Number.NaN }, 'snapshotChunkBytes'],
      [{ path, logger: console.log }, 'logger'],
      [{ path, logger: { info: () => {} } }, 'logger'],
      [{ path, retainSnapshot: 3 }, 'retainSnapshot'],
    ];
    for (const [options, field] of cases) {
      const err = await configError(options);
      expect(err.field, JSON.stringify(options)).toBe(field);
      expect(err.message.startsWith(`${field}: `)).toBe(true);
    }
    // Validation comes before anything touches the disk.
    expect(existsSync(path)).toBe(false);
    expect(existsSync(`${path}.lock`)).toBe(false);
  });

  it('names the allowed range in the message', async () => {
    const path = t.dbPath();
    expect((await configError({ path, retainSnapshots: 0 })).message).toContain('>= 1');
    expect((await configError({ path, snapshotChunkBytes: 0 })).message).toContain(
      `[1, ${256 * 1024 * 1024}]`,
    );
    expect((await configError({ path, synchronous: 'off' })).message).toContain(
      "'full' or 'normal'",
    );
  });

  it('defaults: synchronous full, and the limits at their edges are accepted', async () => {
    const logger = new RecordingLogger();
    const stores = await t.open({ path: t.dbPath(), logger });
    const opened = logger.lines.find((l) => l.msg === 'sqlite stores opened');
    expect(opened?.fields).toEqual({ synchronous: 'full', schemaVersion: 1 });
    await stores.close();
    for (const options of [
      { synchronous: 'normal' },
      { retainSnapshots: 1 },
      { snapshotChunkBytes: 1 },
      { snapshotChunkBytes: 256 * 1024 * 1024 },
      // From JavaScript or a JSON-ish config, an absent field may be present as undefined.
      { synchronous: undefined, retainSnapshots: undefined, logger: undefined },
    ]) {
      const s = await t.open({ path: t.dbPath(), ...options } as SqliteStoresOptions);
      await s.stableStore.save({ term: 1, votedFor: null, commit: 0 });
      expect(await s.stableStore.load()).toEqual({ term: 1, votedFor: null, commit: 0 });
      await s.close();
    }
  });

  it('the database is in WAL mode, seen from another connection', async () => {
    const path = t.dbPath();
    await t.open({ path });
    const db = t.inspect(path, { readonly: true });
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
  });

  it('a missing directory fails with a StorageError, and leaves nothing behind', async () => {
    const path = join(t.dir(), 'no', 'such', 'dir', 'raft.db');
    const err = await openSqliteStores({ path }).catch((e: unknown) => e);
    expect(RaftError.is(err, 'STORAGE')).toBe(true);
    expect((err as Error).message).toContain('does the directory exist');
  });

  it('a file that is not a database fails with a StorageError wrapping the driver error', async () => {
    const path = t.dbPath();
    writeFileSync(path, 'this is not a database, just some text that is long enough'.repeat(100));
    const err = await openSqliteStores({ path }).catch((e: unknown) => e);
    expect(RaftError.is(err, 'STORAGE')).toBe(true);
    expect((err as Error).cause).toBeInstanceOf(Database.SqliteError);
    // The failed open released its lock: a second try fails the same way, not on the lock.
    expect(existsSync(`${path}.lock`)).toBe(false);
    const again = await openSqliteStores({ path }).catch((e: unknown) => e);
    expect((again as Error).message).not.toContain('in use');
  });

  it('a database of something else (tables, no schema_version) is refused', async () => {
    const path = t.dbPath();
    const other = new Database(path);
    other.exec('CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)');
    other.close();
    const err = await openSqliteStores({ path }).catch((e: unknown) => e);
    expect(RaftError.is(err, 'STORAGE')).toBe(true);
    expect((err as Error).message).toContain('not one of @raft/store-sqlite');
    expect((err as Error).message).toContain('"users"');
    const db = t.inspect(path, { readonly: true });
    const tables = db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table'").pluck().all();
    expect(tables).toEqual(['users']);
  });

  it('a relative path is resolved against the working directory', async () => {
    const dir = t.dir();
    const cwd = process.cwd();
    process.chdir(dir);
    try {
      const stores = await t.open({ path: 'relative.db' });
      await stores.stableStore.save({ term: 2, votedFor: 'n1', commit: 1 });
      await stores.close();
    } finally {
      process.chdir(cwd);
    }
    const stores = await t.open({ path: join(dir, 'relative.db') });
    expect(await stores.stableStore.load()).toEqual({ term: 2, votedFor: 'n1', commit: 1 });
  });
});
