/**
 * The sqlite stores against the conformance suites of @raft/testing. Each case gets a fresh
 * temporary directory; a harness instance opens all three stores over it and hands out one. A
 * reopen is a restart that keeps the disk: the whole handle is closed (which closes the other
 * two stores and drops the lock) and `openSqliteStores` runs again on the same path.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RaftStores } from '@raft/core';
import type { StoreHarness, StoreHarnessInstance } from '@raft/testing/conformance';
import {
  describeLogStoreConformance,
  describeSnapshotStoreConformance,
  describeStableStoreConformance,
} from '@raft/testing/vitest';
import { openSqliteStores, type SqliteStoresOptions } from '../src/index.js';

type Pick<S> = (stores: RaftStores) => S;

function sqliteHarness<S>(
  name: string,
  pick: Pick<S>,
  options: Omit<SqliteStoresOptions, 'path'> = {},
): StoreHarness<S> {
  return {
    name,
    create: async (): Promise<StoreHarnessInstance<S>> => {
      const dir = await mkdtemp(join(tmpdir(), 'raft-sqlite-conformance-'));
      const path = join(dir, 'raft.db');
      let stores = await openSqliteStores({ ...options, path });
      return {
        store: pick(stores),
        reopen: async () => {
          // The case closed only the store it was given: close the rest, and the lock, too.
          await stores.close();
          stores = await openSqliteStores({ ...options, path });
          return pick(stores);
        },
        cleanup: async () => {
          await stores.close();
          await rm(dir, { recursive: true, force: true });
        },
      };
    },
  };
}

describeLogStoreConformance(sqliteHarness('sqlite log store', (s) => s.logStore));
describeStableStoreConformance(sqliteHarness('sqlite stable store', (s) => s.stableStore));
describeSnapshotStoreConformance(sqliteHarness('sqlite snapshot store', (s) => s.snapshotStore));
// Retaining only the newest snapshot prunes at every commit: the tightest retention allowed.
describeSnapshotStoreConformance(
  sqliteHarness('sqlite snapshot store (retain 1)', (s) => s.snapshotStore, {
    retainSnapshots: 1,
  }),
);
// Rows of 7 bytes: every read and write crosses row boundaries, and chunks split across rows.
describeSnapshotStoreConformance(
  sqliteHarness('sqlite snapshot store (7-byte rows)', (s) => s.snapshotStore, {
    snapshotChunkBytes: 7,
  }),
);
