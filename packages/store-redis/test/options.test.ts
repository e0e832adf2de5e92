/**
 * Options are validated before anything connects: each bad value rejects with a ConfigError
 * naming its field. The defaults open against 127.0.0.1:6379.
 */
import { type ConfigError, RaftError } from '@raft/core';
import { Redis } from 'ioredis';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RedisStoresOptions } from '../src/index.js';
import { openRedisStores } from '../src/index.js';
import { ensureSharedRedis, SHARED_URL, uniquePrefix } from './redis-server.js';
import { StoresTracker } from './support.js';

const tracker = new StoresTracker();

beforeAll(() => ensureSharedRedis(), 330_000);
afterEach(() => tracker.cleanup());

/** Nothing listens there: a validation error must come before any connection attempt. */
const UNREACHABLE = 'redis://127.0.0.1:1';

async function configErrorOf(options: unknown): Promise<ConfigError> {
  const err = await openRedisStores(options as RedisStoresOptions).then(
    () => null,
    (e: unknown) => e,
  );
  expect(RaftError.is(err, 'INVALID_CONFIG')).toBe(true);
  return err as ConfigError;
}

describe('options', () => {
  const cases: readonly [string, Record<string, unknown>, string][] = [
    ['no prefix', { url: UNREACHABLE }, 'prefix'],
    ['an empty prefix', { prefix: '', url: UNREACHABLE }, 'prefix'],
    ['a prefix that is not a string', { prefix: 7, url: UNREACHABLE }, 'prefix'],
    ['a url that is not a URL', { prefix: 'p:', url: 'not a url' }, 'url'],
    ['a url of another protocol', { prefix: 'p:', url: 'http://127.0.0.1:6379' }, 'url'],
    ['a url that is not a string', { prefix: 'p:', url: 6379 }, 'url'],
    ['a redis that is not a client', { prefix: 'p:', redis: {} }, 'redis'],
    [
      'commandTimeoutMs 0',
      { prefix: 'p:', url: UNREACHABLE, commandTimeoutMs: 0 },
      'commandTimeoutMs',
    ],
    [
      'a fractional commandTimeoutMs',
      { prefix: 'p:', url: UNREACHABLE, commandTimeoutMs: 1.5 },
      'commandTimeoutMs',
    ],
    [
      'a commandTimeoutMs string',
      { prefix: 'p:', url: UNREACHABLE, commandTimeoutMs: '5000' },
      'commandTimeoutMs',
    ],
    [
      'lockTtlMs below twice commandTimeoutMs',
      { prefix: 'p:', url: UNREACHABLE, commandTimeoutMs: 1000, lockTtlMs: 1500 },
      'lockTtlMs',
    ],
    [
      'lockTtlMs below 1000',
      { prefix: 'p:', url: UNREACHABLE, commandTimeoutMs: 10, lockTtlMs: 999 },
      'lockTtlMs',
    ],
    [
      'retainSnapshots 0',
      { prefix: 'p:', url: UNREACHABLE, retainSnapshots: 0 },
      'retainSnapshots',
    ],
    [
      'snapshotChunkBytes 0',
      { prefix: 'p:', url: UNREACHABLE, snapshotChunkBytes: 0 },
      'snapshotChunkBytes',
    ],
    [
      'snapshotChunkBytes above 64 MiB',
      { prefix: 'p:', url: UNREACHABLE, snapshotChunkBytes: 64 * 1024 * 1024 + 1 },
      'snapshotChunkBytes',
    ],
    [
      'a logger without warn()',
      { prefix: 'p:', url: UNREACHABLE, logger: { debug() {}, info() {}, error() {} } },
      'logger',
    ],
    [
      'requireDurableRedis not a boolean',
      { prefix: 'p:', url: UNREACHABLE, requireDurableRedis: 'yes' },
      'requireDurableRedis',
    ],
    ['an unknown option', { prefix: 'p:', url: UNREACHABLE, prefx: 'q' }, 'prefx'],
  ];

  for (const [name, options, field] of cases) {
    it(`${name} is refused with a ConfigError naming ${field}`, async () => {
      const err = await configErrorOf(options);
      expect(err.field).toBe(field);
      expect(err.message).toContain(field);
    });
  }

  it('options that are not an object are refused', async () => {
    expect((await configErrorOf(null)).field).toBe('options');
  });

  it('url and redis together are refused, and the client is left alone', async () => {
    const client = new Redis(SHARED_URL, { lazyConnect: true });
    try {
      const err = await configErrorOf({ prefix: 'p:', url: SHARED_URL, redis: client });
      expect(err.field).toBe('redis');
      expect(client.status).toBe('wait');
    } finally {
      client.disconnect();
    }
  });

  it('a client with a keyPrefix is refused', async () => {
    const client = new Redis(SHARED_URL, { lazyConnect: true, keyPrefix: 'app:' });
    try {
      const err = await configErrorOf({ prefix: 'p:', redis: client });
      expect(err.field).toBe('redis');
      expect(err.message).toContain('keyPrefix');
    } finally {
      client.disconnect();
    }
  });

  it('the defaults open against redis://127.0.0.1:6379', async () => {
    const stores = await tracker.open({ prefix: uniquePrefix('options') });
    expect(await stores.logStore.open()).toEqual({ firstIndex: 1, lastIndex: 0 });
    expect(await stores.stableStore.load()).toBeNull();
    expect(await stores.snapshotStore.open()).toBeNull();
  });

  it('an unreachable Redis rejects with a StorageError within commandTimeoutMs', async () => {
    const started = performance.now();
    const err = await openRedisStores({
      prefix: 'p:',
      url: UNREACHABLE,
      commandTimeoutMs: 500,
    }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(RaftError.is(err, 'STORAGE')).toBe(true);
    expect((err as Error).message).toContain('could not connect');
    expect((err as Error).cause).toBeInstanceOf(Error);
    expect(performance.now() - started).toBeLessThan(2000);
  });

  it('a client passed as `redis` stays connected after close()', async () => {
    const client = new Redis(SHARED_URL, { lazyConnect: true, enableOfflineQueue: false });
    await client.connect();
    try {
      const stores = await tracker.open({ prefix: uniquePrefix('options'), redis: client });
      await stores.logStore.open();
      await stores.close();
      expect(client.status).toBe('ready');
      expect(await client.ping()).toBe('PONG');
    } finally {
      await client.quit();
    }
  });
});
