/**
 * The in-memory implementations of @raft/core against the conformance suites. "Durable" means
 * "held by this object" for them, so a reopen is close() followed by reuse of the same instance.
 */
import { MemoryLogStore, MemoryNetwork, MemorySnapshotStore, MemoryStableStore } from '@raft/core';
import type {
  LogStoreHarness,
  SnapshotStoreHarness,
  StableStoreHarness,
  TransportHarness,
} from '@raft/testing/conformance';
import {
  describeLogStoreConformance,
  describeSnapshotStoreConformance,
  describeStableStoreConformance,
  describeTransportConformance,
} from '@raft/testing/vitest';

const memoryLogStore: LogStoreHarness = {
  name: 'MemoryLogStore',
  create: () => {
    const store = new MemoryLogStore();
    return { store, reopen: () => store, cleanup: () => {} };
  },
};

const memoryStableStore: StableStoreHarness = {
  name: 'MemoryStableStore',
  create: () => {
    const store = new MemoryStableStore();
    return { store, reopen: () => store, cleanup: () => {} };
  },
};

const memorySnapshotStore: SnapshotStoreHarness = {
  name: 'MemorySnapshotStore',
  create: () => {
    const store = new MemorySnapshotStore();
    return { store, reopen: () => store, cleanup: () => {} };
  },
};

/** Retaining only the newest snapshot prunes at every commit: the tightest retention allowed. */
const memorySnapshotStoreRetainOne: SnapshotStoreHarness = {
  name: 'MemorySnapshotStore (retain 1)',
  create: () => {
    const store = new MemorySnapshotStore({ retain: 1 });
    return { store, reopen: () => store, cleanup: () => {} };
  },
};

const memoryNetwork: TransportHarness = {
  name: 'MemoryNetwork',
  // A restarted node's network.transport(id) registers again (closing the old one does not
  // unregister it); no cluster ids, secrets or raw connections in process.
  features: { restart: true },
  create: () => {
    const network = new MemoryNetwork();
    return {
      endpoint: (id) => ({
        transport: network.transport(id),
        member: { id, address: id, voter: true },
      }),
      cleanup: () => {},
    };
  },
};

describeLogStoreConformance(memoryLogStore);
describeStableStoreConformance(memoryStableStore);
describeSnapshotStoreConformance(memorySnapshotStore);
describeSnapshotStoreConformance(memorySnapshotStoreRetainOne);
describeTransportConformance(memoryNetwork);
