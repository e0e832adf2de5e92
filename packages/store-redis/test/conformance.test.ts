/**
 * The Redis stores against the conformance suites of @raft/testing. Each case gets a fresh
 * random prefix on the shared Redis; a reopen is a new `openRedisStores` on the same prefix
 * (after closing the previous stores, which releases the lock: the harness closes only the
 * store it was given), and the clean-up closes the stores and deletes the prefix's keys.
 *
 * Besides the defaults, the suites run with tiny internal limits (staged appends, sweeps and
 * snapshot deletions in many steps) and small snapshot chunks (reads across many chunks).
 */
import type { LogStore, RaftStores, SnapshotStore, StableStore } from '@raft/core';
import type { StoreHarness } from '@raft/testing/conformance';
import {
  describeLogStoreConformance,
  describeSnapshotStoreConformance,
  describeStableStoreConformance,
} from '@raft/testing/vitest';
import { beforeAll } from 'vitest';
import { openRedisStoresWith } from '../src/open-redis-stores.js';
import type { RedisStoresOptions } from '../src/options.js';
import type { RedisStoreTuning } from '../src/tuning.js';
import { DEFAULT_TUNING } from '../src/tuning.js';
import { deletePrefix, ensureSharedRedis, SHARED_URL, uniquePrefix } from './redis-server.js';

beforeAll(() => ensureSharedRedis(), 330_000);

/** Limits small enough that every multi-step path runs in the ordinary cases. */
const TINY: RedisStoreTuning = {
  maxBatchBytes: 64,
  maxBatchEntries: 3,
  sweepBudget: 2,
  readBatchEntries: 4,
  deleteChunkBudget: 3,
};

function harness<S>(
  name: string,
  pick: (stores: RaftStores) => S,
  options: Omit<RedisStoresOptions, 'prefix'> = {},
  tuning: RedisStoreTuning = DEFAULT_TUNING,
): StoreHarness<S> {
  return {
    name,
    create: async () => {
      const prefix = uniquePrefix('conformance');
      const open = () => openRedisStoresWith({ prefix, url: SHARED_URL, ...options }, tuning);
      let stores = await open();
      return {
        store: pick(stores),
        reopen: async () => {
          await stores.close();
          stores = await open();
          return pick(stores);
        },
        cleanup: async () => {
          await stores.close();
          await deletePrefix(prefix);
        },
      };
    },
  };
}

const log = (stores: RaftStores): LogStore => stores.logStore;
const stable = (stores: RaftStores): StableStore => stores.stableStore;
const snapshots = (stores: RaftStores): SnapshotStore => stores.snapshotStore;

describeLogStoreConformance(harness('Redis log store', log));
describeLogStoreConformance(harness('Redis log store (tiny limits)', log, {}, TINY));
describeStableStoreConformance(harness('Redis stable store', stable));
describeSnapshotStoreConformance(harness('Redis snapshot store', snapshots));
describeSnapshotStoreConformance(
  harness(
    'Redis snapshot store (retain 1, 1000-byte chunks, tiny limits)',
    snapshots,
    {
      retainSnapshots: 1,
      snapshotChunkBytes: 1000,
    },
    TINY,
  ),
);
describeSnapshotStoreConformance(
  harness('Redis snapshot store (64-byte chunks)', snapshots, { snapshotChunkBytes: 64 }),
);
