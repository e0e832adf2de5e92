/**
 * `createRaftNode({ ...stores })`: the bundle spreads into just its three stores (its `close` is
 * not enumerable), and a node stopped on them releases the prefix and the connection (closing
 * all three does), so the prefix opens again at once.
 */
import { createRaftNode, MemoryNetwork, utf8Codec } from '@raft/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRedisStores } from '../src/index.js';
import { deletePrefix, ensureSharedRedis, SHARED_URL, uniquePrefix } from './redis-server.js';

beforeAll(() => ensureSharedRedis(), 330_000);
const prefix = uniquePrefix('spread');
afterAll(() => deletePrefix(prefix));

describe('spreading the bundle', () => {
  it('{ ...stores } holds just the three stores; a node stopped on them releases the prefix', async () => {
    const stores = await openRedisStores({ prefix, url: SHARED_URL });
    expect(Object.keys({ ...stores }).sort()).toEqual(['logStore', 'snapshotStore', 'stableStore']);
    const lines: string[] = [];
    const node = createRaftNode<string, number>({
      id: 'n1',
      stateMachine: { apply: (line) => lines.push(line) },
      codec: utf8Codec,
      ...stores,
      transport: new MemoryNetwork().transport('n1'),
    });
    await node.start({ bootstrap: { members: [{ id: 'n1', address: 'n1', voter: true }] } });
    await node.waitForLeader({ timeoutMs: 5000 });
    await node.propose('hello');
    await node.stop();
    // Released: a second open of the prefix, in this process, is not refused.
    let again: Awaited<ReturnType<typeof openRedisStores>> | undefined;
    for (let k = 0; k < 100 && again === undefined; k++) {
      again = await openRedisStores({ prefix, url: SHARED_URL }).catch(() => undefined);
      if (again === undefined) await new Promise((r) => setTimeout(r, 20));
    }
    expect(again).toBeDefined();
    expect((await again?.logStore.open())?.lastIndex).toBeGreaterThanOrEqual(3);
    await again?.close();
  });
});
