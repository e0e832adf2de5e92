/**
 * Regression tests from an adversarial review of the sqlite stores: each case failed before
 * the fix committed with it.
 */
import { readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { RaftError } from '@raft/core';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { openSqliteStores } from '../src/index.js';
import { perTest } from './helpers.js';

const t = perTest();
const packageDir = fileURLToPath(new URL('..', import.meta.url));
const rootDir = join(packageDir, '..', '..');

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

  it('a second open from a worker thread of this process is refused while the first holds it', async () => {
    const path = t.dbPath();
    const stores = await t.open({ path });
    await stores.stableStore.save({ term: 1, votedFor: null, commit: 0 });
    const result = await inWorker(path);
    expect(result).toMatch(/^refused: .*in use by this process/);
    // The first handle still owns the database: the worker neither took nor deleted its lock.
    expect(readFileSync(`${path}.lock`, 'utf8')).toBe(`${process.pid}\n`);
    expect((await openFailure(path)).message).toContain('this process');
    await stores.stableStore.save({ term: 2, votedFor: 'n1', commit: 0 });
    expect(await stores.stableStore.load()).toEqual({ term: 2, votedFor: 'n1', commit: 0 });
  });
});

/**
 * Opens the stores at `path` in a worker thread of this process (the sources, through tsx as
 * the child-process fixtures do) and says what happened: 'opened' or 'refused: <message>'.
 */
async function inWorker(path: string): Promise<string> {
  const tsx = pathToFileURL(
    join(rootDir, 'node_modules', 'tsx', 'dist', 'esm', 'api', 'index.mjs'),
  );
  const entry = pathToFileURL(join(packageDir, 'src', 'index.ts'));
  const code = `
    import { parentPort, workerData } from 'node:worker_threads';
    const { register } = await import(${JSON.stringify(tsx.href)});
    register();
    const { openSqliteStores } = await import(${JSON.stringify(entry.href)});
    try {
      const stores = await openSqliteStores({ path: workerData });
      await stores.close();
      parentPort.postMessage('opened');
    } catch (err) {
      parentPort.postMessage('refused: ' + err.message);
    }
  `;
  const worker = new Worker(new URL(`data:text/javascript,${encodeURIComponent(code)}`), {
    workerData: path,
    execArgv: ['--conditions=@raft/source'],
  });
  t.defer(() => worker.terminate());
  return await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the worker did not answer in 20 s')), 20_000);
    worker.once('message', (m: string) => {
      clearTimeout(timer);
      resolve(m);
    });
    worker.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

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
