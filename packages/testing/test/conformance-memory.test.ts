/**
 * The in-memory implementations of @raft/core against the conformance suites. "Durable" means
 * "held by this object" for them, so a reopen is close() followed by reuse of the same instance.
 */
import { MemoryLogStore, MemoryNetwork, MemoryStableStore } from '@raft/core';
import type {
  LogStoreHarness,
  StableStoreHarness,
  TransportHarness,
} from '@raft/testing/conformance';
import {
  describeLogStoreConformance,
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

const memoryNetwork: TransportHarness = {
  name: 'MemoryNetwork',
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
describeTransportConformance(memoryNetwork);
