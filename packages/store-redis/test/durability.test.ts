/**
 * The durability check at open: a Redis without `appendonly yes` and `appendfsync always` (or
 * with eviction) gets a warning saying acknowledged writes can be lost, or a refusal with
 * `requireDurableRedis`; one that has them gets neither; one that hides CONFIG gets a warning
 * that durability could not be checked.
 */
import type { RaftStores } from '@raft/core';
import { RaftError } from '@raft/core';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openRedisStores } from '../src/index.js';
import {
  connectClient,
  ensureSharedRedis,
  type PrivateRedis,
  startPrivateRedis,
  uniquePrefix,
} from './redis-server.js';
import { RecordingLogger, StoresTracker } from './support.js';

const tracker = new StoresTracker();
const servers: PrivateRedis[] = [];
const opened: RaftStores[] = [];

beforeAll(() => ensureSharedRedis(), 330_000);

afterEach(async () => {
  for (const stores of opened.splice(0)) await stores.close();
  await tracker.cleanup();
  for (const server of servers.splice(0)) await server.stop();
});

async function privateRedis(args: readonly string[]): Promise<PrivateRedis> {
  const server = await startPrivateRedis(args);
  servers.push(server);
  return server;
}

const DURABLE = ['--appendonly', 'yes', '--appendfsync', 'always'];

/** Opens with a recording logger on `url` (closing at the end of the test). */
async function openLogged(url: string | undefined, requireDurableRedis = false) {
  const logger = new RecordingLogger();
  const prefix = uniquePrefix('durability');
  const stores = await openRedisStores({
    prefix,
    ...(url === undefined ? {} : { url }),
    logger,
    requireDurableRedis,
  });
  opened.push(stores);
  if (url === undefined) tracker.track(prefix);
  return { stores, logger, prefix };
}

describe('the durability check', () => {
  it('warns on the default Redis (appendonly no) that acknowledged writes can be lost', async () => {
    const { stores, logger } = await openLogged(undefined);
    await stores.close();
    const warnings = logger.messages('warn');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('appendonly is no (needs yes)');
    expect(warnings[0]).toContain('can be lost on a Redis crash');
  });

  it('with requireDurableRedis refuses the default Redis, before taking the lock', async () => {
    const prefix = uniquePrefix('durability');
    const err = await openRedisStores({ prefix, requireDurableRedis: true }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(RaftError.is(err, 'STORAGE')).toBe(true);
    expect((err as Error).message).toContain('requireDurableRedis');
    expect((err as Error).message).toContain('appendfsync');
    const raw = await connectClient();
    try {
      expect(await raw.exists(`${prefix}lock`)).toBe(0);
    } finally {
      await raw.quit();
    }
  });

  it('gives no warning on a Redis with appendonly yes and appendfsync always', async () => {
    const server = await privateRedis(DURABLE);
    const { stores, logger } = await openLogged(server.url, true);
    await stores.logStore.open();
    await stores.logStore.append([{ index: 1, term: 1, kind: 'noop', data: new Uint8Array(0) }]);
    await stores.close();
    expect(logger.messages('warn')).toEqual([]);
  });

  it('warns about appendfsync alone when appendonly is on but fsync is everysec', async () => {
    const server = await privateRedis(['--appendonly', 'yes', '--appendfsync', 'everysec']);
    const { stores, logger } = await openLogged(server.url);
    await stores.close();
    const warnings = logger.messages('warn');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('appendfsync is everysec (needs always)');
    expect(warnings[0]).not.toContain('appendonly is');
  });

  it('warns about eviction: a maxmemory with an evicting policy deletes entries', async () => {
    const server = await privateRedis([
      ...DURABLE,
      '--maxmemory',
      '100mb',
      '--maxmemory-policy',
      'allkeys-lru',
    ]);
    const { stores, logger } = await openLogged(server.url);
    await stores.close();
    const warnings = logger.messages('warn');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('maxmemory-policy is allkeys-lru');
  });

  it('warns that durability could not be checked when CONFIG is disabled, and refuses with requireDurableRedis', async () => {
    const server = await privateRedis([...DURABLE, '--rename-command', 'CONFIG', '']);
    const { stores, logger } = await openLogged(server.url);
    await stores.logStore.open();
    await stores.close();
    const warnings = logger.messages('warn');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('could not check');
    expect(warnings[0]).toContain('acknowledged writes can be lost');
    const err = await openLogged(server.url, true).then(
      () => null,
      (e: unknown) => e,
    );
    expect(RaftError.is(err, 'STORAGE')).toBe(true);
    expect((err as Error).message).toContain('requireDurableRedis');
  });
});
