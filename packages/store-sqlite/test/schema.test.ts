import { existsSync } from 'node:fs';
import { RaftError } from '@raft/core';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { openSqliteStores } from '../src/index.js';
import { MIGRATIONS, type Migration, migrate, SCHEMA_VERSION } from '../src/schema.js';
import { perTest, RecordingLogger } from './helpers.js';

const t = perTest();

function version(db: Database.Database): number | undefined {
  return db.prepare('SELECT version FROM schema_version WHERE id = 1').pluck().get() as
    | number
    | undefined;
}

function tables(db: Database.Database): string[] {
  return db
    .prepare(
      "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
    )
    .pluck()
    .all() as string[];
}

/** A fresh in-memory database for the migration runner (the runner does not care where). */
function memoryDb(): Database.Database {
  const db = new Database(':memory:');
  t.defer(() => db.close());
  return db;
}

describe('schema and migrations', () => {
  it('the migrations are numbered 1, 2, 3, … and SCHEMA_VERSION is the last', () => {
    expect(MIGRATIONS.map((m) => m.version)).toEqual(MIGRATIONS.map((_, i) => i + 1));
    expect(SCHEMA_VERSION).toBe(MIGRATIONS.length);
    expect(SCHEMA_VERSION).toBe(1);
  });

  it('a new database gets the current schema and records its version', async () => {
    const path = t.dbPath();
    const logger = new RecordingLogger();
    const stores = await t.open({ path, logger });
    await stores.close();
    expect(logger.lines.some((l) => l.fields.from === 0 && l.fields.to === 1)).toBe(true);
    const db = t.inspect(path, { readonly: true });
    expect(version(db)).toBe(SCHEMA_VERSION);
    expect(tables(db)).toEqual([
      'hard_state',
      'log_entry',
      'log_meta',
      'schema_version',
      'snapshot',
      'snapshot_chunk',
    ]);
  });

  it('an empty version-0 database file (no tables) is migrated to the current version', async () => {
    const path = t.dbPath();
    const empty = new Database(path);
    empty.pragma('user_version = 0');
    empty.close();
    expect(existsSync(path)).toBe(true);
    const stores = await t.open({ path });
    expect(await stores.logStore.open()).toEqual({ firstIndex: 1, lastIndex: 0 });
    await stores.close();
    expect(version(t.inspect(path, { readonly: true }))).toBe(SCHEMA_VERSION);
  });

  it('a database with an empty schema_version table counts as version 0', async () => {
    const path = t.dbPath();
    const db = new Database(path);
    db.exec(
      'CREATE TABLE schema_version (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)',
    );
    db.close();
    const stores = await t.open({ path });
    await stores.stableStore.save({ term: 1, votedFor: 'n1', commit: 0 });
    await stores.close();
    expect(version(t.inspect(path, { readonly: true }))).toBe(SCHEMA_VERSION);
  });

  it('reopening a current database runs no migration and keeps the data', async () => {
    const path = t.dbPath();
    const first = await t.open({ path });
    await first.stableStore.save({ term: 4, votedFor: 'n2', commit: 3 });
    await first.close();
    const logger = new RecordingLogger();
    const second = await t.open({ path, logger });
    expect(logger.lines.some((l) => l.msg?.includes('migrated'))).toBe(false);
    expect(await second.stableStore.load()).toEqual({ term: 4, votedFor: 'n2', commit: 3 });
  });

  it('a database newer than this code knows is refused with a StorageError, untouched', async () => {
    const path = t.dbPath();
    const stores = await t.open({ path });
    await stores.stableStore.save({ term: 9, votedFor: 'n3', commit: 5 });
    await stores.close();
    const db = new Database(path);
    db.prepare('UPDATE schema_version SET version = ?').run(SCHEMA_VERSION + 41);
    db.close();
    const err = await openSqliteStores({ path }).catch((e: unknown) => e);
    expect(RaftError.is(err, 'STORAGE')).toBe(true);
    const message = (err as Error).message;
    expect(message).toContain(`schema version ${SCHEMA_VERSION + 41}`);
    expect(message).toContain('newer');
    expect(message).toContain(`knows (${SCHEMA_VERSION})`);
    // The lock went with the failed open, and nothing was written.
    expect(existsSync(`${path}.lock`)).toBe(false);
    const check = t.inspect(path, { readonly: true });
    expect(version(check)).toBe(SCHEMA_VERSION + 41);
    expect(check.prepare('SELECT term FROM hard_state').pluck().get()).toBe(9);
  });

  describe('migrate()', () => {
    const applied: number[] = [];
    const step = (version: number, sql: string): Migration => ({
      version,
      description: `step ${version}`,
      up(db) {
        applied.push(version);
        db.exec(sql);
      },
    });
    const three = [
      step(1, 'CREATE TABLE a (x INTEGER)'),
      step(2, 'CREATE TABLE b (y INTEGER)'),
      step(3, 'ALTER TABLE b ADD COLUMN z TEXT'),
    ];

    it('applies every pending migration in order, and only those', () => {
      applied.length = 0;
      const db = memoryDb();
      expect(migrate(db, three.slice(0, 1))).toEqual({ from: 0, to: 1 });
      expect(applied).toEqual([1]);
      expect(migrate(db, three)).toEqual({ from: 1, to: 3 });
      expect(applied).toEqual([1, 2, 3]);
      expect(version(db)).toBe(3);
      expect(tables(db)).toEqual(['a', 'b', 'schema_version']);
      expect(migrate(db, three)).toEqual({ from: 3, to: 3 });
      expect(applied).toEqual([1, 2, 3]);
    });

    it('a failing migration rolls back every step of the open: the version stays', () => {
      applied.length = 0;
      const db = memoryDb();
      migrate(db, three.slice(0, 1));
      const broken = [...three.slice(0, 2), step(3, 'ALTER TABLE no_such_table ADD COLUMN z TEXT')];
      let caught: unknown;
      try {
        migrate(db, broken);
      } catch (err) {
        caught = err;
      }
      expect(RaftError.is(caught, 'STORAGE')).toBe(true);
      expect((caught as Error).message).toContain('schema version 3 (step 3)');
      expect(version(db)).toBe(1);
      expect(tables(db)).toEqual(['a', 'schema_version']); // b, from step 2, rolled back
    });

    it('a database newer than the list is refused', () => {
      const db = memoryDb();
      migrate(db, three);
      expect(() => migrate(db, three.slice(0, 2))).toThrow(
        /schema version 3, newer .* knows \(2\)/,
      );
      expect(version(db)).toBe(3);
    });

    it('a list with a gap or out of order is a bug, refused before anything runs', () => {
      applied.length = 0;
      const db = memoryDb();
      expect(() => migrate(db, [three[0] as Migration, three[2] as Migration])).toThrow(
        /numbered 1, 2, 3/,
      );
      expect(() => migrate(db, [three[1] as Migration])).toThrow(/numbered 1, 2, 3/);
      expect(applied).toEqual([]);
      expect(tables(db)).toEqual([]);
    });
  });
});
