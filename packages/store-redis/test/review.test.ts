/**
 * Regression tests for defects an adversarial review of the Redis stores found; each test
 * failed before its fix.
 */
import type { RaftStores, SnapshotMeta } from '@raft/core';
import { RaftError } from '@raft/core';
import type { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { openRedisStores } from '../src/index.js';
import { SWEEP_LOG } from '../src/lua-scripts.js';
import { openRedisStoresWith } from '../src/open-redis-stores.js';
import { DEFAULT_TUNING } from '../src/tuning.js';
import {
  connectClient,
  type PrivateRedis,
  startPrivateRedis,
  uniquePrefix,
} from './redis-server.js';
import { waitFor } from './support.js';

const servers: PrivateRedis[] = [];
const stores: RaftStores[] = [];
const clients: Redis[] = [];

afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
  for (const c of clients.splice(0)) c.disconnect();
  for (const s of servers.splice(0)) await s.stop();
});

async function privateServer(extraArgs: readonly string[] = []): Promise<PrivateRedis> {
  const server = await startPrivateRedis(extraArgs);
  servers.push(server);
  return server;
}

async function client(url: string): Promise<Redis> {
  const c = await connectClient(url);
  clients.push(c);
  return c;
}

async function open(
  url: string,
  prefix: string,
  extra: { commandTimeoutMs?: number; snapshotChunkBytes?: number } = {},
): Promise<RaftStores> {
  const opened = await openRedisStores({ prefix, url, ...extra });
  stores.push(opened);
  return opened;
}

function meta(index: number): SnapshotMeta {
  return { index, term: 1, membership: { members: [{ id: 'n1', address: 'a', voter: true }] } };
}

describe('a snapshot commit that timed out after Redis applied it', () => {
  it('is not destroyed by the abort() that follows (the runtime aborts a failed commit)', async () => {
    const server = await privateServer(['--enable-debug-command', 'yes']);
    const raw = await client(server.url);
    const prefix = uniquePrefix('review');
    // 4-byte chunks and 8-byte snapshots: write() sends every chunk, so commit() sends only
    // the commit script.
    const s = await open(server.url, prefix, { commandTimeoutMs: 200, snapshotChunkBytes: 4 });
    const first = await s.snapshotStore.create(meta(5));
    await first.write(new Uint8Array(8).fill(5));
    await first.commit();

    const second = await s.snapshotStore.create(meta(10));
    await second.write(new Uint8Array(8).fill(10));
    // Redis is busy (another client's slow command): the commit runs after the store gave up.
    const busy = raw.call('DEBUG', 'SLEEP', '0.6');
    await new Promise((resolve) => setTimeout(resolve, 50));
    const outcome = await second.commit().then(
      () => 'resolved',
      (err: unknown) => err,
    );
    expect(RaftError.is(outcome, 'STORAGE')).toBe(true);
    await busy;
    await waitFor('the late commit applied', async () => (await raw.zcard(`${prefix}snaps`)) === 2);
    // What writeSnapshot() and the snapshot receiver do after a failed commit.
    await second.abort();

    const source = await s.snapshotStore.open();
    expect(source?.meta.index).toBe(10);
    expect(Array.from((await source?.read(0, 8)) ?? [])).toEqual(new Array(8).fill(10));
    await source?.close();
    await s.close();
    // A restart finds a readable snapshot too (it used to find a record without its data).
    const again = await open(server.url, prefix);
    const reopened = await again.snapshotStore.open();
    expect(reopened?.meta.index).toBe(10);
    expect(reopened?.size).toBe(8);
    await reopened?.close();
  });
});

describe('append() with an index that is not an integer', () => {
  it('is refused with a StorageError and stores nothing, instead of overwriting an entry', async () => {
    const server = await privateServer();
    const prefix = uniquePrefix('review');
    const s = await open(server.url, prefix);
    await s.logStore.open();
    const stored = [1, 2].map((index) => ({
      index,
      term: 1,
      kind: 'command' as const,
      data: new Uint8Array([index]),
    }));
    await s.logStore.append(stored);
    const bad = { index: 2.5, term: 1, kind: 'command' as const, data: new Uint8Array([99]) };
    const outcome = await s.logStore.append([bad]).then(
      () => 'resolved',
      (err: unknown) => err,
    );
    expect(RaftError.is(outcome, 'STORAGE')).toBe(true);
    const read = await s.logStore.read(1, 3);
    expect(read.map((e) => Array.from(e.data))).toEqual([[1], [2]]);
    await s.close();
    // And what a restart reads back.
    const again = await open(server.url, prefix);
    expect(await again.logStore.open()).toEqual({ firstIndex: 1, lastIndex: 2 });
    expect((await again.logStore.read(1, 3)).map((e) => Array.from(e.data))).toEqual([[1], [2]]);
  });
});

/** `real`, with the replies of the commands `delay` picks held back by `ms`. */
function delaying(
  real: Redis,
  delay: (command: string, args: unknown[]) => boolean,
  ms: number,
): Redis {
  return new Proxy(real, {
    get(target, prop) {
      if (prop === 'call' || prop === 'callBuffer') {
        const method = prop === 'call' ? target.call : target.callBuffer;
        return (command: string, args: unknown[]) => {
          const reply = (method as (c: string, a: unknown[]) => Promise<unknown>).call(
            target,
            command,
            args,
          );
          if (!delay(command, args)) return reply;
          return reply.then(
            (value) => new Promise((resolve) => setTimeout(() => resolve(value), ms)),
          );
        };
      }
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

describe('an open() whose SET of the lock timed out after Redis applied it', () => {
  it('leaves no lock behind: opening again at once succeeds', async () => {
    const server = await privateServer();
    const real = await client(server.url);
    const prefix = uniquePrefix('review');
    const slow = delaying(
      real,
      (command, args) => command === 'SET' && args[0] === `${prefix}lock`,
      500,
    );
    const outcome = await openRedisStores({ prefix, redis: slow, commandTimeoutMs: 200 }).then(
      (opened) => {
        stores.push(opened);
        return 'opened';
      },
      (err: unknown) => err,
    );
    expect(RaftError.is(outcome, 'STORAGE')).toBe(true);
    // The retry of a supervisor in the same process: the lock names this pid, so only its TTL
    // (10 s here) would free it.
    const again = await open(server.url, prefix, { commandTimeoutMs: 200 });
    await again.logStore.open();
    await again.logStore.append([{ index: 1, term: 1, kind: 'command', data: new Uint8Array(1) }]);
  });
});

describe('a sweep step that failed after a compaction past the end of the log', () => {
  it('does not make the next append walk every index up to the new first one', async () => {
    const server = await privateServer();
    const real = await client(server.url);
    const prefix = uniquePrefix('review');
    let sweeps = 0;
    let slowSweeps = 0;
    const counting = delaying(
      real,
      (command, args) => {
        if (command !== 'EVALSHA' || args[0] !== SWEEP_LOG.sha) return false;
        sweeps++;
        if (slowSweeps === 0) return false;
        slowSweeps--;
        return true;
      },
      400,
    );
    const s = await openRedisStoresWith(
      { prefix, redis: counting, commandTimeoutMs: 200 },
      { ...DEFAULT_TUNING, sweepBudget: 4 },
    );
    stores.push(s);
    await s.logStore.open();
    await s.logStore.append(
      Array.from({ length: 20 }, (_, i) => ({
        index: i + 1,
        term: 1,
        kind: 'command' as const,
        data: new Uint8Array([i]),
      })),
    );
    // A follower installs a snapshot far beyond its log: the first sweep step after the
    // compaction's own gets no answer in time (a latency spike), which compact() tolerates.
    slowSweeps = 1;
    await s.logStore.compact(4000);
    await new Promise((resolve) => setTimeout(resolve, 500));
    sweeps = 0;
    const started = performance.now();
    await s.logStore.append([{ index: 4001, term: 2, kind: 'command', data: new Uint8Array(1) }]);
    const elapsed = performance.now() - started;
    // 12 entries were left (the compaction's step deleted 4, the slow step 4 more): 3 steps of
    // 4, not one step per 4 indexes up to 4000.
    expect(sweeps, `sweep steps (${Math.round(elapsed)} ms)`).toBeLessThanOrEqual(4);
    expect(await real.hlen(`${prefix}log`)).toBe(1);
    expect(await s.logStore.read(4001, 4002)).toHaveLength(1);
  });
});
