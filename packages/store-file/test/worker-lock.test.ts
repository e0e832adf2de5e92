/**
 * The directory lock across worker threads: each thread loads its own copy of the package (its
 * own in-memory registry of held directories), and every thread has this process's pid, so a
 * LOCK naming our pid is not by itself "an earlier life of this pid". A second open from a
 * worker thread must be refused while the main thread holds the directory.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { openFileStores } from '../src/index.js';
import { removeDir, tempDir } from './temp-dir.js';

const packageDir = fileURLToPath(new URL('..', import.meta.url));
const rootDir = join(packageDir, '..', '..');
const workers: Worker[] = [];

afterEach(async () => {
  for (const w of workers.splice(0)) await w.terminate();
  removeDir();
});

/** Opens `dir` in a worker thread of this process: 'opened' or 'refused: <message>'. */
async function openInWorker(dir: string): Promise<string> {
  const tsx = pathToFileURL(
    join(rootDir, 'node_modules', 'tsx', 'dist', 'esm', 'api', 'index.mjs'),
  );
  const entry = pathToFileURL(join(packageDir, 'src', 'index.ts'));
  const code = `
    import { parentPort, workerData } from 'node:worker_threads';
    const { register } = await import(${JSON.stringify(tsx.href)});
    register();
    const { openFileStores } = await import(${JSON.stringify(entry.href)});
    try {
      const stores = await openFileStores({ dir: workerData });
      await stores.close();
      parentPort.postMessage('opened');
    } catch (err) {
      parentPort.postMessage('refused: ' + err.message);
    }
  `;
  const worker = new Worker(new URL(`data:text/javascript,${encodeURIComponent(code)}`), {
    workerData: dir,
    execArgv: ['--conditions=@raft/source'],
  });
  workers.push(worker);
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

describe('the directory lock and worker threads', () => {
  it('a worker thread cannot open a directory the main thread holds', {
    timeout: 30_000,
  }, async () => {
    const dir = tempDir('worker-lock');
    const stores = await openFileStores({ dir });
    try {
      await stores.logStore.open();
      expect(await openInWorker(dir)).toMatch(/^refused: /);
      // The main thread still holds it: its LOCK is in place and its stores still work.
      expect(readFileSync(join(dir, 'LOCK'), 'utf8')).toContain(String(process.pid));
      await stores.logStore.append([
        { index: 1, term: 1, kind: 'command', data: new Uint8Array(1) },
      ]);
    } finally {
      await stores.close();
    }
    // Released: now the worker may open it.
    expect(await openInWorker(dir)).toBe('opened');
  });

  it('a LOCK naming this pid that no descriptor holds is an earlier life of the pid: taken over', async () => {
    // A container restart: the node runs as the same pid as before the crash.
    const dir = tempDir('worker-lock');
    writeFileSync(join(dir, 'LOCK'), `${process.pid} ${hostname()}\n`);
    const stores = await openFileStores({ dir });
    try {
      expect(await stores.logStore.open()).toEqual({ firstIndex: 1, lastIndex: 0 });
    } finally {
      await stores.close();
    }
  });
});
