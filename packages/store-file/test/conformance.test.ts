/**
 * The file stores against the shared conformance suites of @raft/testing: each case gets a new
 * directory; "reopen" closes every store and opens the directory again, as a restart would.
 */
import type { LogStore, SnapshotStore, StableStore } from '@raft/core';
import type { StoreHarness, StoreHarnessInstance } from '@raft/testing/conformance';
import {
  describeLogStoreConformance,
  describeSnapshotStoreConformance,
  describeStableStoreConformance,
} from '@raft/testing/vitest';
import { type FileStores, openFileStores } from '../src/index.js';
import { removeDir, tempDir } from './temp-dir.js';

function harness<S>(
  name: string,
  pick: (stores: FileStores) => S,
  options: { segmentBytes?: number; retainSnapshots?: number } = {},
): StoreHarness<S> {
  return {
    name,
    async create(): Promise<StoreHarnessInstance<S>> {
      const dir = tempDir('conformance');
      let stores = await openFileStores({ dir, ...options });
      return {
        store: pick(stores),
        async reopen() {
          await stores.close();
          stores = await openFileStores({ dir, ...options });
          return pick(stores);
        },
        async cleanup() {
          await stores.close();
          removeDir(dir);
        },
      };
    },
  };
}

describeLogStoreConformance(harness<LogStore>('FileLogStore', (s) => s.logStore));
// Tiny segments: every case rolls over many segments and compaction deletes whole ones.
describeLogStoreConformance(
  harness<LogStore>('FileLogStore (4 KiB segments)', (s) => s.logStore, { segmentBytes: 4096 }),
);
describeStableStoreConformance(harness<StableStore>('FileStableStore', (s) => s.stableStore));
describeSnapshotStoreConformance(
  harness<SnapshotStore>('FileSnapshotStore', (s) => s.snapshotStore),
);
describeSnapshotStoreConformance(
  harness<SnapshotStore>('FileSnapshotStore (retain 1)', (s) => s.snapshotStore, {
    retainSnapshots: 1,
  }),
);
