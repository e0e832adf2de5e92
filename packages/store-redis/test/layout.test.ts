/**
 * What the stores leave in Redis: the documented keys and entry format, nothing left behind by
 * a crash (uncommitted snapshots, pruned ones, dropped entries, a half-staged append), pruned
 * snapshots kept while a source reads them, and a refusal of another layout version.
 */

import type { LogEntry, RaftStores, SnapshotMeta } from '@raft/core';
import { RaftError } from '@raft/core';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openRedisStoresWith } from '../src/open-redis-stores.js';
import type { RedisStoresOptions } from '../src/options.js';
import type { RedisStoreTuning } from '../src/tuning.js';
import { DEFAULT_TUNING } from '../src/tuning.js';
import {
  connectClient,
  deletePrefix,
  ensureSharedRedis,
  keysUnder,
  SHARED_URL,
  uniquePrefix,
} from './redis-server.js';
import { entries, expectSameEntries, waitFor } from './support.js';

let raw: Redis;
const opened: RaftStores[] = [];
const prefixes: string[] = [];

beforeAll(async () => {
  await ensureSharedRedis();
  raw = await connectClient();
}, 330_000);

afterEach(async () => {
  for (const stores of opened.splice(0)) await stores.close();
  for (const prefix of prefixes.splice(0)) await deletePrefix(prefix);
});

afterAll(async () => {
  await raw?.quit();
});

function newPrefix(): string {
  const prefix = uniquePrefix('layout');
  prefixes.push(prefix);
  return prefix;
}

async function open(
  prefix: string,
  options: Omit<RedisStoresOptions, 'prefix'> = {},
  tuning: RedisStoreTuning = DEFAULT_TUNING,
): Promise<RaftStores> {
  const stores = await openRedisStoresWith({ prefix, url: SHARED_URL, ...options }, tuning);
  opened.push(stores);
  return stores;
}

function meta(index: number): SnapshotMeta {
  return { index, term: 1, membership: { members: [{ id: 'n1', address: 'a', voter: true }] } };
}

/** Keys under `prefix` without the prefix. */
async function names(prefix: string): Promise<string[]> {
  return (await keysUnder(raw, prefix)).map((k) => k.slice(prefix.length));
}

async function writeSnapshot(stores: RaftStores, index: number, bytes: number): Promise<void> {
  const sink = await stores.snapshotStore.create(meta(index));
  await sink.write(new Uint8Array(bytes).fill(index));
  await sink.commit();
}

describe('the key layout', () => {
  it('holds the documented keys, and an entry as kind, term and data', async () => {
    const prefix = newPrefix();
    const stores = await open(prefix, { snapshotChunkBytes: 4 });
    await stores.logStore.open();
    await stores.logStore.append([
      { index: 1, term: 2 ** 40 + 5, kind: 'membership', data: new Uint8Array([0, 13, 10, 255]) },
      { index: 2, term: 7, kind: 'noop', data: new Uint8Array(0) },
    ]);
    await stores.stableStore.save({ term: 7, votedFor: 'n1', commit: 2 });
    await writeSnapshot(stores, 2, 10);
    expect(await names(prefix)).toEqual(
      [
        'hard',
        'lock',
        'log',
        'meta',
        'snap:1',
        'snap:1:0',
        'snap:1:1',
        'snap:1:2',
        'snap:counter',
        'snaps',
      ].sort(),
    );
    const first = await raw.hgetBuffer(`${prefix}log`, '1');
    expect(first).toEqual(Buffer.from([2, 0, 0, 0x01, 0, 0, 0, 0, 5, 0, 13, 10, 255]));
    expect(await raw.hgetall(`${prefix}meta`)).toEqual({
      version: '1',
      first: '1',
      last: '2',
      floor: '1',
      ceiling: '2',
    });
    expect(await raw.hgetall(`${prefix}hard`)).toEqual({
      term: '7',
      voted: '1',
      votedFor: 'n1',
      commit: '2',
    });
    expect(await raw.zrange(`${prefix}snaps`, '0', '-1', 'WITHSCORES')).toEqual([
      '0000000000000002:1',
      '2',
    ]);
    expect(await raw.hgetall(`${prefix}snap:1`)).toEqual({
      meta: JSON.stringify(meta(2)),
      size: '10',
      chunkBytes: '4',
      chunks: '3',
    });
    await stores.close();
    expect(await names(prefix)).not.toContain('lock');
  });

  it('a large append is staged in pieces and applied at once; the stage list is gone after', async () => {
    const prefix = newPrefix();
    const stores = await open(prefix);
    await stores.logStore.open();
    // 3 x 2 MiB: above the 4 MiB batch limit, so two pieces go to the stage list first.
    const big = entries(1, 4, 1, 2 * 1024 * 1024);
    await stores.logStore.append(big);
    expectSameEntries(await stores.logStore.read(1, 4), big);
    expect(await names(prefix)).not.toContain('log:stage');
    // Replacing a suffix with a staged batch works the same way.
    const replacement = entries(2, 5, 2, 3 * 1024 * 1024);
    await stores.logStore.append(replacement);
    expectSameEntries(await stores.logStore.read(1, 5), [big[0] as LogEntry, ...replacement]);
  });

  it('a half-staged append left by a crash is discarded when the prefix opens', async () => {
    const prefix = newPrefix();
    await raw.rpush(`${prefix}log:stage`, 'leftover');
    const stores = await open(prefix);
    expect(await names(prefix)).not.toContain('log:stage');
    expect(await stores.logStore.open()).toEqual({ firstIndex: 1, lastIndex: 0 });
  });
});

describe('clean-up', () => {
  it('compaction and truncation delete the dropped fields, in steps of the sweep budget', async () => {
    const prefix = newPrefix();
    const tiny = { ...DEFAULT_TUNING, sweepBudget: 3 };
    const stores = await open(prefix, {}, tiny);
    await stores.logStore.open();
    await stores.logStore.append(entries(1, 41));
    await stores.logStore.compact(17);
    await stores.logStore.truncate(30);
    expect(await raw.hlen(`${prefix}log`)).toBe(12);
    await stores.logStore.append(entries(25, 26, 2));
    expect(await raw.hlen(`${prefix}log`)).toBe(8);
    expect(await raw.hmget(`${prefix}meta`, 'first', 'last', 'floor', 'ceiling')).toEqual([
      '18',
      '25',
      '18',
      '25',
    ]);
  });

  it('entries a crash left outside the bounds are deleted by the next open', async () => {
    const prefix = newPrefix();
    let stores = await open(prefix);
    await stores.logStore.open();
    await stores.logStore.append(entries(1, 11));
    await stores.close();
    // As if a crash came between moving the bounds and deleting: garbage below and above.
    await raw.hset(`${prefix}meta`, 'first', '4', 'last', '8');
    stores = await open(prefix);
    expect(await stores.logStore.open()).toEqual({ firstIndex: 4, lastIndex: 8 });
    expect((await raw.hkeys(`${prefix}log`)).map(Number).sort((a, b) => a - b)).toEqual([
      4, 5, 6, 7, 8,
    ]);
    expect(await stores.logStore.read(4, 9)).toEqual(entries(4, 9));
  });

  it('a snapshot never committed (a crash mid-write) is deleted when the prefix opens', async () => {
    const prefix = newPrefix();
    let stores = await open(prefix, { snapshotChunkBytes: 16 });
    await writeSnapshot(stores, 3, 40);
    const sink = await stores.snapshotStore.create(meta(9));
    await sink.write(new Uint8Array(100).fill(9));
    // The process dies: nothing aborts the sink.
    await stores.close();
    expect(await names(prefix)).toContain('snap:3:5');
    expect(await raw.hgetall(`${prefix}snap:pending`)).toEqual({ '3': '6' });
    stores = await open(prefix, { snapshotChunkBytes: 16 });
    const left = await names(prefix);
    expect(left.filter((k) => k.startsWith('snap:3'))).toEqual([]);
    expect(left).not.toContain('snap:pending');
    const source = await stores.snapshotStore.open();
    expect(source?.meta).toEqual(meta(3));
    await source?.close();
  });

  it('abort() deletes what a sink wrote', async () => {
    const prefix = newPrefix();
    const stores = await open(prefix, { snapshotChunkBytes: 16 });
    const sink = await stores.snapshotStore.create(meta(9));
    await sink.write(new Uint8Array(100));
    await sink.abort();
    expect((await names(prefix)).filter((k) => k.startsWith('snap:1'))).toEqual([]);
  });
});

describe('pruning', () => {
  it('keeps a pruned snapshot while a source reads it, and deletes it when the source closes', async () => {
    const prefix = newPrefix();
    const stores = await open(prefix, { retainSnapshots: 1, snapshotChunkBytes: 8 });
    await writeSnapshot(stores, 1, 20);
    const source = await stores.snapshotStore.open();
    expect(source?.meta.index).toBe(1);
    await writeSnapshot(stores, 2, 20);
    expect(await raw.smembers(`${prefix}snap:doomed`)).toEqual(['1']);
    expect(await names(prefix)).toContain('snap:1:2');
    expect(await source?.read(0, 20)).toEqual(new Uint8Array(20).fill(1));
    await source?.close();
    await waitFor('the pruned snapshot to be deleted', async () =>
      (await names(prefix)).every((k) => !k.startsWith('snap:1')),
    );
    expect(await raw.exists(`${prefix}snap:doomed`)).toBe(0);
    expect(await raw.zrange(`${prefix}snaps`, '0', '-1')).toEqual(['0000000000000004:3']);
  });

  it('deletes a pruned snapshot nobody reads right away', async () => {
    const prefix = newPrefix();
    const stores = await open(prefix, { retainSnapshots: 2, snapshotChunkBytes: 8 });
    for (let index = 1; index <= 4; index++) await writeSnapshot(stores, index, 20);
    await waitFor('two pruned snapshots to be deleted', async () =>
      (await names(prefix)).every((k) => !k.startsWith('snap:1') && !k.startsWith('snap:3')),
    );
    expect(await raw.zcard(`${prefix}snaps`)).toBe(2);
  });

  it('a pruned snapshot still read when the prefix was closed is deleted by the next open', async () => {
    const prefix = newPrefix();
    let stores = await open(prefix, { retainSnapshots: 1 });
    await writeSnapshot(stores, 1, 20);
    const source = await stores.snapshotStore.open();
    await writeSnapshot(stores, 2, 20);
    await stores.close();
    // A source of closed stores refuses to read.
    const read = await source?.read(0, 1).catch((e: unknown) => e);
    expect(RaftError.is(read, 'STORAGE')).toBe(true);
    expect(await raw.smembers(`${prefix}snap:doomed`)).toEqual(['1']);
    stores = await open(prefix, { retainSnapshots: 1 });
    expect((await names(prefix)).filter((k) => k.startsWith('snap:1'))).toEqual([]);
    expect(await raw.exists(`${prefix}snap:doomed`)).toBe(0);
  });
});

describe('versions', () => {
  it('a prefix written by another layout version is refused, and its lock released', async () => {
    const prefix = newPrefix();
    await raw.hset(`${prefix}meta`, 'version', '99');
    const err = await open(prefix).catch((e: unknown) => e);
    expect(RaftError.is(err, 'STORAGE')).toBe(true);
    expect((err as Error).message).toContain('layout version 99');
    expect(await raw.exists(`${prefix}lock`)).toBe(0);
  });
});
