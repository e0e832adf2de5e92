/**
 * Three `createRaftNode`s on a MemoryNetwork, each with its stores in Redis under its own
 * prefix: they elect a leader, commit proposals, take snapshots and compact their logs; then
 * every node stops, the stores close, and a new cluster started from the same prefixes (no
 * bootstrap) comes back with the same state and goes on committing.
 */
import type {
  ApplyContext,
  Membership,
  RaftNode,
  RaftStores,
  SnapshotMeta,
  StateMachine,
} from '@raft/core';
import { createRaftNode, jsonCodec, MemoryNetwork } from '@raft/core';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openRedisStores } from '../src/index.js';
import {
  connectClient,
  deletePrefix,
  ensureSharedRedis,
  SHARED_URL,
  uniquePrefix,
} from './redis-server.js';
import { waitFor } from './support.js';

/** A counter that snapshots its total and the number of commands applied. */
class Counter implements StateMachine<number, number> {
  total = 0;
  applied = 0;
  restoredFrom: SnapshotMeta | null = null;

  apply(command: number, _at: ApplyContext): number {
    this.total += command;
    this.applied++;
    return this.total;
  }

  snapshot(): Uint8Array[] {
    const image = new Uint8Array(16);
    const view = new DataView(image.buffer);
    view.setFloat64(0, this.total);
    view.setFloat64(8, this.applied);
    // Two chunks, so a restore reads across them.
    return [image.slice(0, 5), image.slice(5)];
  }

  async restore(chunks: AsyncIterable<Uint8Array>, meta: SnapshotMeta): Promise<void> {
    const bytes: number[] = [];
    for await (const chunk of chunks) bytes.push(...chunk);
    const view = new DataView(new Uint8Array(bytes).buffer);
    this.total = view.getFloat64(0);
    this.applied = view.getFloat64(8);
    this.restoredFrom = meta;
  }
}

const IDS = ['n1', 'n2', 'n3'] as const;
const MEMBERSHIP: Membership = { members: IDS.map((id) => ({ id, address: id, voter: true })) };

interface Member {
  readonly node: RaftNode<number, number>;
  readonly counter: Counter;
  readonly stores: RaftStores;
}

let raw: Redis;
const prefixes = new Map<string, string>();
const running: Member[] = [];

beforeAll(async () => {
  await ensureSharedRedis();
  raw = await connectClient();
}, 330_000);

afterEach(async () => {
  await stopAll();
  for (const prefix of prefixes.values()) await deletePrefix(prefix);
  prefixes.clear();
});

afterAll(async () => {
  await raw?.quit();
});

async function stopAll(): Promise<void> {
  for (const m of running.splice(0)) {
    await m.node.stop().catch(() => {});
    await m.stores.close();
  }
}

/** Opens every node's stores and starts the nodes (bootstrapping only a new cluster). */
async function startCluster(bootstrap: boolean, network = new MemoryNetwork()): Promise<Member[]> {
  const members: Member[] = [];
  for (const id of IDS) {
    const stores = await openRedisStores({
      prefix: prefixes.get(id) as string,
      url: SHARED_URL,
      snapshotChunkBytes: 7,
    });
    const counter = new Counter();
    const node = createRaftNode<number, number>({
      id,
      stateMachine: counter,
      codec: jsonCodec<number>(),
      logStore: stores.logStore,
      stableStore: stores.stableStore,
      snapshotStore: stores.snapshotStore,
      transport: network.transport(id),
      snapshotThreshold: 20,
      trailingEntries: 5,
    });
    const member = { node, counter, stores };
    members.push(member);
    running.push(member);
  }
  await Promise.all(
    members.map((m) => m.node.start(bootstrap ? { bootstrap: MEMBERSHIP } : undefined)),
  );
  return members;
}

async function proposeAll(members: readonly Member[], values: readonly number[]): Promise<void> {
  const first = members[0] as Member;
  for (const value of values) {
    const { leaderId } = await first.node.waitForLeader({ timeoutMs: 10_000 });
    const leader = members.find((m) => m.node.status().id === leaderId) ?? first;
    await leader.node.propose(value, { timeoutMs: 10_000 });
  }
}

function everyTotal(members: readonly Member[], total: number): boolean {
  return members.every((m) => m.counter.total === total);
}

describe('a 3-node cluster on Redis stores', () => {
  it('commits, stops, and restarts from Redis with its state back', async () => {
    for (const id of IDS) prefixes.set(id, uniquePrefix(`cluster-${id}`));
    const values = Array.from({ length: 50 }, (_, i) => i + 1);
    const expected = values.reduce((a, b) => a + b, 0);

    let members = await startCluster(true);
    await proposeAll(members, values);
    await waitFor('every node to apply every proposal', () => everyTotal(members, expected));
    await waitFor('every node to take a snapshot', () =>
      members.every((m) => m.node.status().snapshotIndex > 0),
    );
    await stopAll();

    // What is in Redis: a snapshot per node, logs compacted behind them, no lock held.
    for (const prefix of prefixes.values()) {
      expect(await raw.zcard(`${prefix}snaps`)).toBeGreaterThanOrEqual(1);
      expect(Number(await raw.hget(`${prefix}meta`, 'first'))).toBeGreaterThan(1);
      expect(await raw.exists(`${prefix}lock`)).toBe(0);
      expect(await raw.hget(`${prefix}hard`, 'term')).not.toBeNull();
    }

    members = await startCluster(false);
    await members[0]?.node.waitForLeader({ timeoutMs: 10_000 });
    await waitFor('every restarted node to have its state back', () =>
      everyTotal(members, expected),
    );
    for (const m of members) {
      expect(m.counter.restoredFrom?.index).toBeGreaterThan(0);
      expect(
        m.node
          .status()
          .members.map((x) => x.id)
          .sort(),
      ).toEqual([...IDS]);
    }
    await proposeAll(members, [1000]);
    await waitFor('every node to apply the proposal after the restart', () =>
      everyTotal(members, expected + 1000),
    );
  }, 90_000);

  it('a follower cut off while the others compact catches up by a snapshot into its Redis store', async () => {
    for (const id of IDS) prefixes.set(id, uniquePrefix(`cluster-${id}`));
    const network = new MemoryNetwork();
    let members = await startCluster(true, network);
    await proposeAll(members, [1, 2, 3]);
    await waitFor('every node to apply the first proposals', () => everyTotal(members, 6));
    const n3 = members.find((m) => m.node.status().id === 'n3') as Member;
    const others = members.filter((m) => m !== n3);
    // n3 must not lead: the others go on without it.
    if (n3.node.status().role === 'leader') await n3.node.transferLeadership('n1');
    network.disconnect('n3');
    const values = Array.from({ length: 60 }, (_, i) => i + 10);
    const expected = 6 + values.reduce((a, b) => a + b, 0);
    await proposeAll(others, values);
    await waitFor('the others to compact past what n3 holds', () =>
      others.every((m) => m.node.status().snapshotIndex > n3.node.status().lastLogIndex + 5),
    );
    network.connect('n3');
    await waitFor('n3 to catch up', () => n3.counter.total === expected, 20_000);
    expect(n3.counter.restoredFrom?.index).toBeGreaterThan(3);

    await stopAll();
    members = await startCluster(false);
    await waitFor('every restarted node to have its state back', () =>
      everyTotal(members, expected),
    );
  }, 90_000);
});
