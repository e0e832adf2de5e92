/**
 * `createRaftNode({ stores })`: a storage adapter's bundle given whole. The node uses its three
 * stores, and stop() closes them and then the bundle (which releases the adapter's lock).
 */
import { describe, expect, it } from 'vitest';
import {
  createRaftNode,
  MemoryLogStore,
  MemoryNetwork,
  MemorySnapshotStore,
  MemoryStableStore,
  RaftError,
  type RaftStores,
} from '../../src/index.js';
import { Counter, decimalCodec, ManualClock, TIMING } from './helpers.js';

function bundle(log: string[]): RaftStores {
  const logStore = new MemoryLogStore();
  const stableStore = new MemoryStableStore();
  const snapshotStore = new MemorySnapshotStore();
  const closing = <T extends { close(): Promise<void> }>(store: T, name: string): T => {
    const close = store.close.bind(store);
    store.close = async () => {
      log.push(name);
      await close();
    };
    return store;
  };
  return {
    logStore: closing(logStore, 'log'),
    stableStore: closing(stableStore, 'stable'),
    snapshotStore: closing(snapshotStore, 'snapshot'),
    close: async () => {
      log.push('bundle');
    },
  };
}

describe('the stores option', () => {
  it('runs a node on the bundle; stop() closes the three stores, then the bundle', async () => {
    const closed: string[] = [];
    const network = new MemoryNetwork();
    const clock = new ManualClock();
    const node = createRaftNode({
      id: 'n1',
      stateMachine: new Counter(),
      codec: decimalCodec,
      stores: bundle(closed),
      transport: network.transport('n1'),
      clock,
      ...TIMING,
    });
    await node.start({ bootstrap: { members: [{ id: 'n1', address: 'n1', voter: true }] } });
    for (let k = 0; k < 100 && node.status().role !== 'leader'; k++)
      await clock.advance(TIMING.tickMs);
    expect(node.status().role).toBe('leader');
    const proposal = node.propose(7);
    await clock.advance(TIMING.tickMs);
    expect((await proposal).result).toBe(7);
    await node.stop();
    expect(closed).toEqual(['log', 'stable', 'snapshot', 'bundle']);
  });

  it.each(['logStore', 'stableStore', 'snapshotStore'] as const)(
    'refuses stores together with %s',
    (field) => {
      const network = new MemoryNetwork();
      const separate = {
        logStore: new MemoryLogStore(),
        stableStore: new MemoryStableStore(),
        snapshotStore: new MemorySnapshotStore(),
      };
      let err: unknown;
      try {
        createRaftNode({
          id: 'n1',
          stateMachine: new Counter(),
          codec: decimalCodec,
          stores: bundle([]),
          [field]: separate[field],
          transport: network.transport('n1'),
        });
      } catch (e) {
        err = e;
      }
      expect(RaftError.is(err, 'INVALID_CONFIG')).toBe(true);
      expect(err).toMatchObject({ field });
    },
  );

  it('names the missing method of a bundled store', () => {
    const network = new MemoryNetwork();
    const stores = { ...bundle([]), stableStore: {} } as unknown as RaftStores;
    let err: unknown;
    try {
      createRaftNode({
        id: 'n1',
        stateMachine: new Counter(),
        codec: decimalCodec,
        stores,
        transport: network.transport('n1'),
      });
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: 'INVALID_CONFIG', field: 'stores.stableStore' });
  });

  it('without stores, logStore and stableStore are still required', () => {
    const network = new MemoryNetwork();
    let err: unknown;
    try {
      createRaftNode({
        id: 'n1',
        stateMachine: new Counter(),
        codec: decimalCodec,
        stableStore: new MemoryStableStore(),
        transport: network.transport('n1'),
      });
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: 'INVALID_CONFIG', field: 'logStore' });
  });
});
