import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RaftError } from '@raft/core';
import { describe, expect, it } from 'vitest';
import { openSqliteStores } from '../src/index.js';
import { perTest, RecordingLogger } from './helpers.js';

const t = perTest();
const here = dirname(fileURLToPath(import.meta.url));
const packageDir = join(here, '..');

/** The StorageError message `openSqliteStores` rejects with (fails if it resolves). */
async function openFailure(path: string): Promise<string> {
  const err = await openSqliteStores({ path }).then(
    async (stores) => {
      await stores.close();
      throw new Error('expected openSqliteStores to reject');
    },
    (e: unknown) => e,
  );
  expect(RaftError.is(err, 'STORAGE')).toBe(true);
  return (err as Error).message;
}

/** A child process holding the stores at `path` (see fixtures/hold-stores.ts), once ready. */
async function childHolding(path: string): Promise<{ child: ChildProcess; pid: number }> {
  const child = spawn(
    process.execPath,
    [
      '--conditions=@raft/source',
      '--import',
      'tsx',
      join(here, 'fixtures', 'hold-stores.ts'),
      path,
    ],
    { cwd: packageDir, stdio: ['pipe', 'pipe', 'pipe'] },
  );
  t.defer(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    }
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const pid = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`the child was not ready in 20 s: ${stderr}`)),
      20_000,
    );
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const match = /ready (\d+)\n/.exec(out);
      if (match !== null) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the child exited with ${code} before it was ready: ${stderr}`));
    });
  });
  return { child, pid };
}

function waitForExit(child: ChildProcess, timeoutMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the child did not exit in time')), timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** The pid of a process that ran and exited. */
function deadPid(): number {
  const result = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  return Number(result.stdout.toString());
}

describe('one database, one owner', () => {
  it('a second open in the same process fails, naming this process; close() releases', async () => {
    const path = t.dbPath();
    const first = await t.open({ path });
    expect(readFileSync(`${path}.lock`, 'utf8').trim()).toBe(String(process.pid));
    const message = await openFailure(path);
    expect(message).toContain(`this process (pid ${process.pid})`);
    expect(message).toContain(path);
    // The refused open did not disturb the first handle or its lock.
    await first.stableStore.save({ term: 3, votedFor: 'n1', commit: 0 });
    expect(readFileSync(`${path}.lock`, 'utf8').trim()).toBe(String(process.pid));
    await first.close();
    expect(existsSync(`${path}.lock`)).toBe(false);
    const second = await t.open({ path });
    expect(await second.stableStore.load()).toEqual({ term: 3, votedFor: 'n1', commit: 0 });
  });

  it('a second open through another spelling of the path (relative, a symlinked directory) fails too', async () => {
    const path = t.dbPath();
    await t.open({ path });
    const link = join(t.dir(), 'link');
    symlinkSync(dirname(path), link, 'dir');
    expect(await openFailure(join(link, 'raft.db'))).toContain('this process');
    expect(await openFailure(relative(process.cwd(), path))).toContain('this process');
  });

  it('closing the three stores (as a node stop() does) releases the lock too', async () => {
    const path = t.dbPath();
    const stores = await t.open({ path });
    await stores.logStore.close();
    await stores.stableStore.close();
    expect(existsSync(`${path}.lock`)).toBe(true);
    await stores.snapshotStore.close();
    expect(existsSync(`${path}.lock`)).toBe(false);
    await stores.close(); // idempotent, also after the stores closed themselves
    const again = await t.open({ path });
    expect(await again.logStore.open()).toEqual({ firstIndex: 1, lastIndex: 0 });
  });

  it('a database held by another process is refused with that pid; free once it closes', async () => {
    const path = t.dbPath();
    const { child, pid } = await childHolding(path);
    expect(pid).not.toBe(process.pid);
    const message = await openFailure(path);
    expect(message).toContain(`process ${pid}`);
    child.stdin?.write('close\n');
    await waitForExit(child);
    expect(child.exitCode).toBe(0);
    const stores = await t.open({ path });
    expect(await stores.stableStore.load()).toEqual({ term: 7, votedFor: 'child', commit: 1 });
    expect(await stores.logStore.open()).toEqual({ firstIndex: 1, lastIndex: 1 });
  });

  it('the lock of a process killed with SIGKILL is stale: removed, and its writes are there', async () => {
    const path = t.dbPath();
    const { child, pid } = await childHolding(path);
    child.kill('SIGKILL');
    await waitForExit(child);
    expect(readFileSync(`${path}.lock`, 'utf8').trim()).toBe(String(pid));
    const logger = new RecordingLogger();
    const stores = await t.open({ path, logger });
    const warning = logger.lines.find((l) => l.level === 'warn');
    expect(warning?.fields.pid).toBe(pid);
    expect(readFileSync(`${path}.lock`, 'utf8').trim()).toBe(String(process.pid));
    expect(await stores.stableStore.load()).toEqual({ term: 7, votedFor: 'child', commit: 1 });
    expect(await stores.logStore.read(1, 2)).toEqual([
      { index: 1, term: 1, kind: 'command', data: new Uint8Array([1, 2, 3]) },
    ]);
  });

  it('a lock naming a pid that no longer runs is removed', async () => {
    const path = t.dbPath();
    const pid = deadPid();
    expect(pid).toBeGreaterThan(0);
    writeFileSync(`${path}.lock`, `${pid}\n`);
    const stores = await t.open({ path });
    expect(await stores.logStore.open()).toEqual({ firstIndex: 1, lastIndex: 0 });
    expect(readFileSync(`${path}.lock`, 'utf8').trim()).toBe(String(process.pid));
  });

  it("a lock naming this process's pid that this process does not hold is stale (a restarted container)", async () => {
    const path = t.dbPath();
    writeFileSync(`${path}.lock`, `${process.pid}\n`);
    const stores = await t.open({ path });
    await stores.stableStore.save({ term: 1, votedFor: null, commit: 0 });
    // Now it is held: the same content means "in use".
    expect(await openFailure(path)).toContain('this process');
  });

  it('a lock naming a live process other than this one is respected', async () => {
    const path = t.dbPath();
    writeFileSync(`${path}.lock`, `${process.ppid}\n`);
    expect(await openFailure(path)).toContain(`process ${process.ppid}`);
    expect(readFileSync(`${path}.lock`, 'utf8').trim()).toBe(String(process.ppid));
    expect(existsSync(path)).toBe(false);
  });

  it('a lock file that names no process is refused, with what to do', async () => {
    const path = t.dbPath();
    for (const content of ['', 'garbage', '0', '-1']) {
      writeFileSync(`${path}.lock`, content);
      const message = await openFailure(path);
      expect(message).toContain('names no process');
      expect(message).toContain('delete the lock file');
    }
  });
});
