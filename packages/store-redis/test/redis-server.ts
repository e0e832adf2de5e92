/**
 * Redis servers for the tests, and clean-up of the keys they write.
 *
 * - `ensureSharedRedis()` makes sure a Redis answers on 127.0.0.1:6379 (the one the machine
 *   runs, or one it starts daemonized with no persistence; `apt-get install -y redis-server`
 *   once if the binary is missing). Tests share it with unique prefixes and delete their keys
 *   with SCAN + UNLINK on the prefix, never FLUSHALL: other tests and people use it too.
 * - `startPrivateRedis()` spawns a redis-server of the test's own on a free port (to kill it,
 *   pause it, or give it another configuration); `stop()` kills it and removes its directory.
 *
 * Every wait is bounded.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';

export const SHARED_PORT = 6379;
export const SHARED_URL = `redis://127.0.0.1:${SHARED_PORT}`;

const PING_TIMEOUT_MS = 1000;
const START_TIMEOUT_MS = 15_000;
const INSTALL_TIMEOUT_MS = 300_000;

/** Whether a Redis on 127.0.0.1:`port` answers PING within `timeoutMs`. */
export function ping(port: number, timeoutMs = PING_TIMEOUT_MS): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    let answer = '';
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.once('error', () => done(false));
    socket.on('data', (data) => {
      answer += data.toString('latin1');
      if (answer.includes('\r\n')) done(answer.startsWith('+PONG'));
    });
    socket.connect(port, '127.0.0.1', () => socket.write('PING\r\n'));
  });
}

/** Polls `ping(port)` until it answers, for at most `timeoutMs`. */
async function waitForPing(port: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await ping(port, 500)) return true;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return false;
}

let binaryChecked = false;

/** Makes sure `redis-server` is installed, installing it with apt-get (once) if not. */
function ensureBinary(): void {
  if (binaryChecked) return;
  const probe = spawnSync('redis-server', ['--version'], { timeout: 10_000 });
  if (probe.error !== undefined) {
    const install = spawnSync('apt-get', ['install', '-y', 'redis-server'], {
      timeout: INSTALL_TIMEOUT_MS,
      stdio: 'ignore',
    });
    const again = spawnSync('redis-server', ['--version'], { timeout: 10_000 });
    if (again.error !== undefined) {
      throw new Error(
        `redis-server is not installed and apt-get install -y redis-server failed (status ${install.status}, ${install.error?.message ?? 'no error'})`,
      );
    }
  }
  binaryChecked = true;
}

let shared: Promise<void> | null = null;

/** Resolves once a Redis answers on 127.0.0.1:6379, starting one if none does. */
export function ensureSharedRedis(): Promise<void> {
  shared ??= (async () => {
    if (await ping(SHARED_PORT)) return;
    ensureBinary();
    const started = spawnSync(
      'redis-server',
      ['--daemonize', 'yes', '--port', String(SHARED_PORT), '--save', '', '--appendonly', 'no'],
      { timeout: START_TIMEOUT_MS, stdio: 'ignore' },
    );
    if (started.status !== 0 || !(await waitForPing(SHARED_PORT, START_TIMEOUT_MS))) {
      throw new Error(
        `could not start redis-server on port ${SHARED_PORT} (status ${started.status})`,
      );
    }
  })();
  return shared;
}

/** A redis-server of one test's own. */
export interface PrivateRedis {
  readonly port: number;
  readonly url: string;
  /** SIGSTOP: the server keeps its connections but answers nothing. */
  pause(): void;
  /** SIGCONT after `pause()`. */
  resume(): void;
  /** Kills it (SIGKILL), waits for it to exit, removes its directory. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Starts a redis-server on a free port with no persistence, then `extraArgs` (which may turn
 * persistence on: `['--appendonly', 'yes', '--appendfsync', 'always']`, later arguments win).
 */
export async function startPrivateRedis(extraArgs: readonly string[] = []): Promise<PrivateRedis> {
  ensureBinary();
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), 'raft-redis-'));
  const child: ChildProcess = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      dir,
      ...extraArgs,
    ],
    { stdio: 'ignore' },
  );
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    child.once('exit', () => resolve());
    child.once('error', () => resolve());
  });
  let stopped: Promise<void> | null = null;
  const server: PrivateRedis = {
    port,
    url: `redis://127.0.0.1:${port}`,
    pause: () => {
      child.kill('SIGSTOP');
    },
    resume: () => {
      child.kill('SIGCONT');
    },
    stop: () => {
      stopped ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5000))]);
        await rm(dir, { recursive: true, force: true });
      })();
      return stopped;
    },
  };
  if (!(await waitForPing(port, START_TIMEOUT_MS))) {
    await server.stop();
    throw new Error(`redis-server on port ${port} did not answer within ${START_TIMEOUT_MS} ms`);
  }
  return server;
}

/** A TCP port nothing listens on right now. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** A key prefix no other test uses: `raft-test:<tag>:<random>:`. */
export function uniquePrefix(tag: string): string {
  return `raft-test:${tag}:${randomUUID().slice(0, 12)}:`;
}

/** A plain client for a test to look at keys; the caller quits it (see `withClient`). */
export async function connectClient(url = SHARED_URL): Promise<Redis> {
  const client = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 1,
    connectTimeout: 5000,
    commandTimeout: 5000,
    retryStrategy: () => null,
  });
  await client.connect();
  return client;
}

/** Runs `body` with a plain client, quitting it afterwards. */
export async function withClient<T>(url: string, body: (client: Redis) => Promise<T>): Promise<T> {
  const client = await connectClient(url);
  try {
    return await body(client);
  } finally {
    await client.quit().catch(() => client.disconnect());
  }
}

/** Every key under `prefix`, sorted (SCAN, so it never blocks Redis). */
export function keysUnder(client: Redis, prefix: string): Promise<string[]> {
  return scanKeys(client, prefix).then((keys) => keys.sort());
}

async function scanKeys(client: Redis, prefix: string): Promise<string[]> {
  const pattern = `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`;
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, found] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    keys.push(...found);
  } while (cursor !== '0');
  return keys;
}

/** Deletes every key under `prefix` (SCAN + UNLINK). */
export async function deletePrefix(prefix: string, url = SHARED_URL): Promise<void> {
  await withClient(url, async (client) => {
    const keys = await scanKeys(client, prefix);
    for (let i = 0; i < keys.length; i += 500) await client.unlink(...keys.slice(i, i + 500));
  });
}
