/**
 * One owner per prefix: a second opener fails naming the holder, a store that lost the lock can
 * no longer write, the lock is refreshed while open and released by close(), and a dead holder
 * on this host is taken over at once.
 */
import { spawn } from 'node:child_process';
import { hostname } from 'node:os';
import { RaftError } from '@raft/core';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { RedisPrefixLockedError } from '../src/index.js';
import { RedisLogStore } from '../src/redis-log-store.js';
import { connectClient, ensureSharedRedis, uniquePrefix } from './redis-server.js';
import { entries, RecordingLogger, StoresTracker, waitFor } from './support.js';

const tracker = new StoresTracker();
let raw: Redis;

beforeAll(async () => {
  await ensureSharedRedis();
  raw = await connectClient();
}, 330_000);

afterEach(() => tracker.cleanup());

afterAll(async () => {
  await raw?.quit();
});

/** The pid of a process that ran and exited. */
function deadPid(): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
    child.once('error', reject);
    child.once('exit', () => resolve(child.pid as number));
  });
}

describe('the prefix lock', () => {
  it('a second opener fails with RedisPrefixLockedError naming the pid and host; the first still works', async () => {
    const prefix = uniquePrefix('lock');
    const first = await tracker.open({ prefix });
    const err = await tracker.open({ prefix }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(RedisPrefixLockedError);
    expect(RaftError.is(err, 'STORAGE')).toBe(true);
    const locked = err as RedisPrefixLockedError;
    expect(locked.holder?.pid).toBe(process.pid);
    expect(locked.holder?.host).toBe(hostname());
    expect(locked.prefix).toBe(prefix);
    expect(locked.message).toContain(`pid ${process.pid}`);
    expect(locked.message).toContain(hostname());
    await first.logStore.open();
    await first.logStore.append(entries(1, 3));
    expect(await first.logStore.read(1, 3)).toHaveLength(2);
  });

  it('closing the three stores as a node does, then the bundle, closes once (it used to recurse until the stack overflowed)', async () => {
    const prefix = uniquePrefix('lock');
    const stores = await tracker.open({ prefix });
    const closes = vi.spyOn(RedisLogStore.prototype, 'close');
    try {
      // RaftNode.stop(): the log, stable and snapshot stores, then the bundle's close().
      await stores.logStore.close();
      await stores.stableStore.close();
      await stores.snapshotStore?.close();
      await stores.close();
      // The node's close, and the bundle's own close of an already closed store: no more.
      expect(closes).toHaveBeenCalledTimes(2);
    } finally {
      closes.mockRestore();
    }
    // The prefix was released: it opens again.
    const again = await tracker.open({ prefix });
    await again.logStore.open();
  });

  it('close() releases it: the prefix opens again and holds what was written', async () => {
    const prefix = uniquePrefix('lock');
    const first = await tracker.open({ prefix });
    await first.logStore.open();
    await first.logStore.append(entries(1, 4));
    await first.stableStore.save({ term: 3, votedFor: 'n2', commit: 2 });
    await first.close();
    await first.close(); // idempotent
    expect(await raw.exists(`${prefix}lock`)).toBe(0);
    const second = await tracker.open({ prefix });
    expect(await second.logStore.open()).toEqual({ firstIndex: 1, lastIndex: 3 });
    expect(await second.stableStore.load()).toEqual({ term: 3, votedFor: 'n2', commit: 2 });
  });

  it('a store that lost its lock refuses to write, and leaves the new owner alone', async () => {
    const prefix = uniquePrefix('lock');
    const stale = await tracker.open({ prefix });
    await stale.logStore.open();
    await stale.logStore.append(entries(1, 4));
    // The lock expired (the holder stalled), and another store opened the prefix.
    await raw.del(`${prefix}lock`);
    const owner = await tracker.open({ prefix });
    expect(await owner.logStore.open()).toEqual({ firstIndex: 1, lastIndex: 3 });

    const append = await stale.logStore.append(entries(4, 6)).catch((e: unknown) => e);
    expect(RaftError.is(append, 'STORAGE')).toBe(true);
    expect((append as Error).message).toContain('lost');
    expect((append as Error).message).toContain(`pid ${process.pid}`);
    const save = await stale.stableStore
      .save({ term: 9, votedFor: null, commit: 0 })
      .catch((e: unknown) => e);
    expect(RaftError.is(save, 'STORAGE')).toBe(true);
    const truncate = await stale.logStore.truncate(1).catch((e: unknown) => e);
    expect(RaftError.is(truncate, 'STORAGE')).toBe(true);
    const sink = await stale.snapshotStore
      .create({ index: 3, term: 1, membership: { members: [] } })
      .catch((e: unknown) => e);
    expect(RaftError.is(sink, 'STORAGE')).toBe(true);

    // Nothing of the stale store's reached Redis, and closing it leaves the owner's lock.
    await stale.close();
    expect(await owner.logStore.read(1, 4)).toEqual(entries(1, 4));
    expect(await owner.stableStore.load()).toBeNull();
    await owner.logStore.append(entries(4, 5));
    const third = await tracker.open({ prefix }).catch((e: unknown) => e);
    expect(third).toBeInstanceOf(RedisPrefixLockedError);
  });

  it('is refreshed while the stores are open, and a lost lock is noticed by the refresh', async () => {
    const prefix = uniquePrefix('lock');
    const logger = new RecordingLogger();
    const stores = await tracker.open({ prefix, commandTimeoutMs: 100, lockTtlMs: 1000, logger });
    await stores.logStore.open();
    // Well past the TTL: only refreshes keep it.
    await new Promise((resolve) => setTimeout(resolve, 1600));
    const ttl = await raw.pttl(`${prefix}lock`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(1000);
    await expect(tracker.open({ prefix })).rejects.toBeInstanceOf(RedisPrefixLockedError);
    await stores.logStore.append(entries(1, 2));

    await raw.set(`${prefix}lock`, 'taken by someone else');
    // The next refresh (within a third of the TTL) finds it gone; every call is refused then.
    await waitFor(
      'a refused read after the lock was lost',
      () =>
        stores.stableStore.load().then(
          () => false,
          (e: unknown) => RaftError.is(e, 'STORAGE'),
        ),
      3000,
    );
    expect(logger.messages('error').some((m) => m.includes('was lost'))).toBe(true);
  });

  it('a dead holder on this host is taken over at once', async () => {
    const prefix = uniquePrefix('lock');
    const pid = await deadPid();
    const dead = JSON.stringify({
      token: 'x',
      pid,
      host: hostname(),
      since: new Date().toISOString(),
    });
    tracker.track(prefix);
    await raw.set(`${prefix}lock`, dead, 'PX', 60_000);
    const logger = new RecordingLogger();
    const stores = await tracker.open({ prefix, logger });
    expect(await stores.logStore.open()).toEqual({ firstIndex: 1, lastIndex: 0 });
    expect(logger.messages('warn').some((m) => m.includes(`from pid ${pid}`))).toBe(true);
    const now = JSON.parse((await raw.get(`${prefix}lock`)) as string) as { pid: number };
    expect(now.pid).toBe(process.pid);
  });

  it('a holder on another host blocks the prefix until its TTL ends', async () => {
    const prefix = uniquePrefix('lock');
    tracker.track(prefix);
    const since = new Date().toISOString();
    const other = JSON.stringify({ token: 'y', pid: 4242, host: 'elsewhere.example', since });
    await raw.set(`${prefix}lock`, other, 'PX', 60_000);
    const err = await tracker.open({ prefix }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RedisPrefixLockedError);
    expect((err as RedisPrefixLockedError).holder).toEqual({
      pid: 4242,
      host: 'elsewhere.example',
      since,
    });
    expect((err as Error).message).toContain('pid 4242 on host elsewhere.example');
    // Once it expires, the prefix opens.
    await raw.pexpire(`${prefix}lock`, 1);
    await waitFor('the lock to expire', async () => (await raw.exists(`${prefix}lock`)) === 0);
    await expect(tracker.open({ prefix })).resolves.toBeDefined();
  });

  it('a lock value this package did not write is reported as an unknown holder', async () => {
    const prefix = uniquePrefix('lock');
    tracker.track(prefix);
    await raw.set(`${prefix}lock`, 'not json', 'PX', 60_000);
    const err = await tracker.open({ prefix }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RedisPrefixLockedError);
    expect((err as RedisPrefixLockedError).holder).toBeNull();
    expect((err as Error).message).toContain('unknown holder');
  });

  it('two stores on different prefixes of one Redis do not interfere', async () => {
    const a = await tracker.open({ prefix: uniquePrefix('lock-a') });
    const b = await tracker.open({ prefix: uniquePrefix('lock-b') });
    await a.logStore.open();
    await b.logStore.open();
    await a.logStore.append(entries(1, 6, 1));
    await b.logStore.append(entries(1, 3, 2));
    expect(await a.logStore.read(1, 6)).toEqual(entries(1, 6, 1));
    expect(await b.logStore.read(1, 3)).toEqual(entries(1, 3, 2));
  });
});
