/**
 * `createRaftNode({ ...stores })`: the bundle spreads into just its three stores (its `close` is
 * not enumerable), and a node stopped on them releases the database (closing all three does).
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRaftNode, MemoryNetwork, utf8Codec } from '@raft/core';
import { afterEach, describe, expect, it } from 'vitest';
import { openSqliteStores } from '../src/index.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('spreading the bundle', () => {
  it('{ ...stores } holds just the three stores; a node stopped on them releases the database', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'raft-sqlite-spread-'));
    dirs.push(dir);
    const path = join(dir, 'n1.db');
    const stores = await openSqliteStores({ path });
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
    expect(existsSync(`${path}.lock`)).toBe(false);
    const again = await openSqliteStores({ path });
    expect((await again.logStore.open()).lastIndex).toBeGreaterThanOrEqual(3);
    await again.close();
  });
});
