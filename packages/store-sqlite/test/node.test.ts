/**
 * Nodes of @raft/core on the sqlite stores: a three-node cluster on a MemoryNetwork (real time,
 * short timeouts), each node with its own database in its own directory. It commits, takes
 * snapshots and compacts; every node is stopped and started again from its database alone
 * (new stores, new state machines); a node that was down while the others compacted past its
 * log catches up by a snapshot installed into its sqlite snapshot store.
 */
import {
  type ApplyContext,
  createRaftNode,
  type Membership,
  MemoryNetwork,
  type RaftNode,
  type RaftStores,
  type SnapshotMeta,
  type StateMachine,
} from '@raft/core';
import { describe, expect, it } from 'vitest';
import { perTest } from './helpers.js';

const t = perTest();

/** Every wait is bounded by this much wall time. */
const WAIT_MS = 20_000;

/** Adds numbers; snapshots are the total and the count as text, in 7-byte chunks. */
class Counter implements StateMachine<number, number> {
  total = 0;
  count = 0;
  restoredFrom: SnapshotMeta | null = null;

  apply(command: number, _at: ApplyContext): number {
    this.total += command;
    this.count++;
    return this.total;
  }

  snapshot(): Iterable<Uint8Array> {
    const bytes = new TextEncoder().encode(`${this.total} ${this.count}`.padEnd(40, '.'));
    const chunks: Uint8Array[] = [];
    for (let at = 0; at < bytes.length; at += 7) chunks.push(bytes.slice(at, at + 7));
    return chunks;
  }

  async restore(chunks: AsyncIterable<Uint8Array>, meta: SnapshotMeta): Promise<void> {
    let text = '';
    for await (const c of chunks) text += new TextDecoder().decode(c);
    const [total, count] = text.replace(/\.+$/, '').split(' ').map(Number);
    this.total = total as number;
    this.count = count as number;
    this.restoredFrom = meta;
  }
}

const numberCodec = {
  encode: (n: number) => new TextEncoder().encode(String(n)),
  decode: (bytes: Uint8Array) => Number(new TextDecoder().decode(bytes)),
};

const IDS = ['a', 'b', 'c'] as const;
const MEMBERS: Membership = { members: IDS.map((id) => ({ id, address: id, voter: true })) };

interface Running {
  readonly id: string;
  readonly node: RaftNode<number, number>;
  readonly sm: Counter;
  readonly stores: RaftStores;
}

async function waitUntil(what: string, condition: () => boolean): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${WAIT_MS} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Waits until one of `nodes` leads and every one of them knows it; returns the leader. */
async function leaderOf(nodes: readonly Running[]): Promise<Running> {
  let leader: Running | undefined;
  await waitUntil(`a leader known to ${nodes.map((r) => r.id).join(', ')}`, () => {
    leader = nodes.find((r) => r.node.status().role === 'leader');
    return leader !== undefined && nodes.every((r) => r.node.status().leaderId === leader?.id);
  });
  return leader as Running;
}

describe('a cluster on sqlite stores', () => {
  it('commits, snapshots, restarts every node from disk, and catches a node up by snapshot', async () => {
    const network = new MemoryNetwork();
    const paths = new Map<string, string>(IDS.map((id) => [id, t.dbPath()]));

    const start = async (id: string, bootstrap: boolean): Promise<Running> => {
      const stores = await t.open({ path: paths.get(id) as string, snapshotChunkBytes: 16 });
      const sm = new Counter();
      const node = createRaftNode<number, number>({
        id,
        stateMachine: sm,
        codec: numberCodec,
        transport: network.transport(id),
        logStore: stores.logStore,
        stableStore: stores.stableStore,
        snapshotStore: stores.snapshotStore,
        tickMs: 10,
        heartbeatMs: 30,
        electionTimeoutMs: 300,
        requestTimeoutMs: 10_000,
        snapshotThreshold: 10,
        trailingEntries: 2,
      });
      // After the test, whatever happened: the node stops (closing its stores), then the
      // handle is closed (registered first, so it runs last).
      t.defer(() => node.stop().catch(() => {}));
      await node.start(bootstrap ? { bootstrap: MEMBERS } : {});
      return { id, node, sm, stores };
    };
    const stop = async (r: Running): Promise<void> => {
      await r.node.stop();
      await r.stores.close();
    };
    const propose = async (via: Running, from: number, to: number): Promise<void> => {
      for (let n = from; n < to; n++) await via.node.propose(n, { timeoutMs: WAIT_MS });
    };
    const sum = (to: number): number => ((to - 1) * to) / 2; // 1 + 2 + … + (to - 1)

    // 1. A new cluster: elect, commit 1..30 (snapshots every 10 entries, log compacted).
    let nodes = await Promise.all(IDS.map((id) => start(id, true)));
    await propose(await leaderOf(nodes), 1, 31);
    await waitUntil('every node applied 1..30', () => nodes.every((r) => r.sm.count === 30));
    await waitUntil('every node took a snapshot', () =>
      nodes.every((r) => r.node.status().snapshotIndex > 0),
    );
    const committed = Math.min(...nodes.map((r) => r.node.status().commitIndex));
    for (const r of nodes) expect(r.sm.total).toBe(sum(31));

    // 2. Stop everything; start again from the databases alone.
    for (const r of nodes) await stop(r);
    nodes = await Promise.all(IDS.map((id) => start(id, false)));
    for (const r of nodes) {
      expect(r.sm.restoredFrom).not.toBeNull(); // restored from its sqlite snapshot store
      expect(r.node.status().snapshotIndex).toBeGreaterThan(0);
    }
    await waitUntil('every node re-applied what was committed', () =>
      nodes.every((r) => r.node.status().appliedIndex >= committed && r.sm.count === 30),
    );
    for (const r of nodes) expect(r.sm.total).toBe(sum(31));

    // 3. A follower goes down; the others commit 31..60 and compact far past its log.
    const leader = await leaderOf(nodes);
    const down = nodes.find((r) => r !== leader) as Running;
    await stop(down);
    const alive = nodes.filter((r) => r !== down);
    await propose(await leaderOf(alive), 31, 61);
    await waitUntil('a and b applied 1..60', () => alive.every((r) => r.sm.count === 60));
    await waitUntil('a and b compacted past 40', () =>
      alive.every((r) => r.node.status().snapshotIndex > 40),
    );

    // 4. It starts from its database and catches up by InstallSnapshot into its sqlite store.
    const back = await start(down.id, false);
    nodes = [...alive, back];
    await waitUntil(`${down.id} caught up`, () => back.sm.count === 60);
    expect(back.sm.total).toBe(sum(61));
    expect(back.sm.restoredFrom?.index).toBeGreaterThan(40);
    expect(back.node.status().snapshotIndex).toBeGreaterThan(40);

    // 5. One last full restart shows the installed snapshot and the log after it are durable.
    for (const r of nodes) await stop(r);
    nodes = await Promise.all(IDS.map((id) => start(id, false)));
    const last = await leaderOf(nodes);
    const follower =
      nodes.find((r) => r.id === down.id && r !== last) ?? nodes.find((r) => r !== last);
    await propose(follower as Running, 61, 63); // through a follower, forwarded to the leader
    await waitUntil('every node applied 1..62', () => nodes.every((r) => r.sm.count === 62));
    for (const r of nodes) expect(r.sm.total).toBe(sum(63));
    for (const r of nodes) await stop(r);
  }, 120_000);
});
