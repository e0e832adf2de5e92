/**
 * Regression tests from an adversarial review of the sqlite stores: each case failed before
 * the fix committed with it.
 */
import { symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { RaftError } from '@raft/core';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { openSqliteStores } from '../src/index.js';
import { perTest } from './helpers.js';

const t = perTest();

/** The error `openSqliteStores` rejects with (fails the test if it resolves). */
async function openFailure(path: string): Promise<RaftError> {
  const err = await openSqliteStores({ path }).then(
    async (stores) => {
      await stores.close();
      throw new Error('expected openSqliteStores to reject');
    },
    (e: unknown) => e,
  );
  expect(RaftError.is(err, 'STORAGE')).toBe(true);
  return err as RaftError;
}

describe('review: one database, one owner', () => {
  it('a second open through a symbolic link to the database file itself is refused', async () => {
    const path = t.dbPath();
    const stores = await t.open({ path });
    await stores.logStore.open();
    const link = join(t.dir(), 'alias.db');
    symlinkSync(path, link, 'file');
    expect((await openFailure(link)).message).toContain('this process');
  });

  it('a symbolic link to a database that does not exist yet names the lock of its target', async () => {
    const path = t.dbPath();
    const link = join(t.dir(), 'alias.db');
    symlinkSync(path, link, 'file');
    const stores = await t.open({ path: link });
    await stores.stableStore.save({ term: 3, votedFor: 'n2', commit: 0 });
    expect((await openFailure(path)).message).toContain('this process');
    await stores.close();
    // SQLite created the target: it is the database, found under its own name.
    const again = await t.open({ path });
    expect(await again.stableStore.load()).toEqual({ term: 3, votedFor: 'n2', commit: 0 });
  });
});

describe('review: a database that is not ours is left as it was', () => {
  it('a foreign database in rollback-journal mode is refused and keeps its journal mode', async () => {
    const path = t.dbPath();
    const other = new Database(path);
    other.exec('CREATE TABLE accounts (id INTEGER PRIMARY KEY, name TEXT)');
    expect(other.pragma('journal_mode', { simple: true })).toBe('delete');
    other.close();
    expect((await openFailure(path)).message).toContain('not one of @raft/store-sqlite');
    const db = t.inspect(path, { readonly: true });
    expect(db.pragma('journal_mode', { simple: true })).toBe('delete');
  });

  it('a new database still ends up in WAL mode, with its schema', async () => {
    const path = t.dbPath();
    const stores = await t.open({ path });
    await stores.stableStore.save({ term: 1, votedFor: null, commit: 0 });
    const db = t.inspect(path, { readonly: true });
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.prepare('SELECT version FROM schema_version').pluck().get()).toBe(1);
  });
});
