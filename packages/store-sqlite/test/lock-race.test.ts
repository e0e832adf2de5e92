/**
 * Many processes finding the same stale lock at once: exactly one may hold the database at any
 * moment. Each round starts eight children that wait at a barrier, then all open the database
 * whose lock names a dead process; the holding intervals of the winners must never overlap.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { openSqliteStores } from '../src/index.js';

const packageDir = fileURLToPath(new URL('..', import.meta.url));
const fixture = fileURLToPath(new URL('./fixtures/race-stores.ts', import.meta.url));
const children = new Set<ChildProcess>();
const dirs: string[] = [];
afterEach(() => {
  for (const c of children) c.kill('SIGKILL');
  children.clear();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A pid that no process has now (a child that has exited). */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  return Number(r.stdout.toString());
}

async function round(path: string, racers: number): Promise<[number, number][]> {
  const ready: Promise<void>[] = [];
  const done: Promise<string>[] = [];
  const started: ChildProcess[] = [];
  for (let k = 0; k < racers; k++) {
    const child = spawn(
      process.execPath,
      ['--conditions=@raft/source', '--import', 'tsx', fixture, path, '300'],
      { cwd: packageDir, stdio: ['pipe', 'pipe', 'inherit'] },
    );
    children.add(child);
    started.push(child);
    let out = '';
    ready.push(
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('a racer did not start in 30 s')), 30_000);
        child.stdout?.on('data', (b: Buffer) => {
          out += b.toString();
          if (out.includes('ready')) {
            clearTimeout(timer);
            resolve();
          }
        });
      }),
    );
    done.push(new Promise((resolve) => child.on('exit', () => resolve(out))));
  }
  await Promise.all(ready);
  for (const c of started) c.stdin?.write('go\n');
  const outs = await Promise.all(done);
  return outs.flatMap((o) => {
    const m = /held (\S+) (\S+)/.exec(o);
    return m === null ? [] : [[Number(m[1]), Number(m[2])] as [number, number]];
  });
}

describe('the lock under a stampede on a stale lock', () => {
  it('never lets two processes hold the database at once', { timeout: 180_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'raft-sqlite-race-'));
    dirs.push(dir);
    const path = join(dir, 'n1.db');
    await (await openSqliteStores({ path })).close();
    for (let r = 0; r < 4; r++) {
      writeFileSync(`${path}.lock`, `${deadPid()}\n`);
      const held = (await round(path, 8)).sort((a, b) => a[0] - b[0]);
      expect(held.length).toBeGreaterThanOrEqual(1);
      for (let k = 1; k < held.length; k++) {
        const [prevStart, prevEnd] = held[k - 1] as [number, number];
        const [start] = held[k] as [number, number];
        expect(
          start,
          `holders overlap: [${prevStart}, ${prevEnd}] and ${start}`,
        ).toBeGreaterThanOrEqual(prevEnd);
      }
    }
  });
});
