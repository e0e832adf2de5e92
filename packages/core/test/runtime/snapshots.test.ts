/**
 * Snapshots through the public API: automatic and forced snapshots, log compaction, restart from
 * a snapshot, and followers that lag past the compaction point and catch up by InstallSnapshot.
 */
import { describe, expect, it } from 'vitest';
import type { RaftEvent, SnapshotMeta } from '../../src/index.js';
import {
  ConfigError,
  createRaftNode,
  MemoryLogStore,
  MemoryNetwork,
  MemorySnapshotStore,
  MemoryStableStore,
  RaftError,
  readSnapshot,
  writeSnapshot,
} from '../../src/index.js';
import type { TestNode } from './helpers.js';
import {
  ascii,
  Cluster,
  decimalCodec,
  FakeAbortSignal,
  ManualClock,
  membershipOf,
  SnapCounter,
  seededRandom,
  TIMING,
  track,
} from './helpers.js';

const SNAP_OPTIONS = { snapshotThreshold: 20, trailingEntries: 5, snapshotChunkBytes: 16 };

async function snapCluster(
  options: Record<string, unknown> = {},
  ids: readonly string[] = ['a', 'b', 'c'],
): Promise<Cluster> {
  return Cluster.create({
    ids,
    snapshots: true,
    stateMachine: () => new SnapCounter(),
    options: { ...SNAP_OPTIONS, ...options },
  });
}

function sm(n: TestNode): SnapCounter {
  return n.sm as SnapCounter;
}

function eventsOf(n: TestNode, type: RaftEvent['type']): RaftEvent[] {
  return n.events.filter((e) => e.type === type);
}

async function proposeMany(c: Cluster, leader: TestNode, n: number, value = 1): Promise<void> {
  for (let i = 0; i < n; i++) await c.settle(leader.node.propose(value));
}

describe('taking snapshots', () => {
  it('takes a snapshot every snapshotThreshold applied entries and compacts the log behind it', async () => {
    const c = await snapCluster();
    const leader = await c.electLeader();
    await proposeMany(c, leader, 50);
    await c.run(5);
    for (const n of c.nodes) {
      const status = n.node.status();
      expect(status.snapshotIndex).toBeGreaterThanOrEqual(40);
      const taken = eventsOf(n, 'snapshotTaken');
      expect(taken.length).toBeGreaterThanOrEqual(2);
      const { firstIndex, lastIndex } = await n.logStore.inner.open();
      // Compacted to the snapshot minus trailingEntries.
      expect(firstIndex).toBe(status.snapshotIndex - 5 + 1);
      expect(lastIndex).toBe(status.lastLogIndex);
      expect(n.snapshotStore?.list().length).toBeLessThanOrEqual(2);
    }
    await c.settle(leader.node.propose(1));
    expect(leader.sm.total).toBe(51);
  });

  it('takeSnapshot() forces one at the applied index, and returns it again when nothing applied since', async () => {
    const c = await snapCluster({ snapshotThreshold: 0 });
    const leader = await c.electLeader();
    await proposeMany(c, leader, 7);
    const meta = await c.settle(leader.node.takeSnapshot());
    expect(meta.index).toBe(leader.node.status().appliedIndex);
    expect(meta.term).toBe(leader.node.status().term);
    expect(meta.membership.members.map((m) => m.id)).toEqual(['a', 'b', 'c']);
    expect(leader.node.status().snapshotIndex).toBe(meta.index);
    expect(await c.settle(leader.node.takeSnapshot())).toEqual(meta);
    expect(sm(leader).snapshots).toBe(1);
    const latest = await leader.snapshotStore?.open();
    expect(latest?.meta).toEqual(meta);
    await latest?.close();
    // No automatic snapshot with snapshotThreshold 0.
    const follower = c.followersOf(leader)[0] as TestNode;
    expect(follower.node.status().snapshotIndex).toBe(0);
  });

  it('a failing snapshot leaves the previous snapshot and the log intact, and reports why', async () => {
    const c = await snapCluster({ snapshotThreshold: 0 });
    const leader = await c.electLeader();
    await proposeMany(c, leader, 5);
    const first = await c.settle(leader.node.takeSnapshot());
    await proposeMany(c, leader, 5);
    sm(leader).failNextSnapshot = true;
    const failed = await c.settle(leader.node.takeSnapshot()).catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(Error);
    expect(eventsOf(leader, 'snapshotFailed')).toHaveLength(1);
    expect(leader.node.status().snapshotIndex).toBe(first.index);
    expect(leader.snapshotStore?.list()).toEqual([first]);
    const bounds = await leader.logStore.inner.open();
    expect(bounds.lastIndex).toBe(leader.node.status().lastLogIndex);
    // The next one works.
    const second = await c.settle(leader.node.takeSnapshot());
    expect(second.index).toBeGreaterThan(first.index);
  });

  it('takeSnapshot() is bounded: bad options, an aborted signal, a snapshot that never starts', async () => {
    const c = await snapCluster({ snapshotThreshold: 0 });
    const leader = await c.electLeader();
    await proposeMany(c, leader, 3);
    const bad = await leader.node.takeSnapshot({ timeoutMs: -1 }).catch((e: unknown) => e);
    expect(RaftError.is(bad, 'INVALID_ARGUMENT')).toBe(true);
    const signal = new FakeAbortSignal();
    signal.abort();
    const aborted = await leader.node.takeSnapshot({ signal }).catch((e: unknown) => e);
    expect(RaftError.is(aborted, 'ABORTED')).toBe(true);
    // A state machine whose snapshot() never settles: the call times out, the node goes on.
    sm(leader).snapshot = () => new Promise<never>(() => {}) as never;
    const slow = track(leader.node.takeSnapshot({ timeoutMs: 50 }));
    await c.runUntil(() => slow.settled, 20, 'the timeout');
    expect(RaftError.is(slow.error, 'TIMEOUT')).toBe(true);
    expect((slow.error as RaftError).outcome).toBe('unknown');
    // Applies are held back while a snapshot() promise is pending (its point in time): the
    // proposal waits, and stop() gives up on the snapshot (after requestTimeoutMs) and returns.
    const pending = track(leader.node.propose(1));
    await c.run(5);
    expect(pending.settled).toBe(false);
    await c.settle(Promise.all(c.nodes.map((n) => n.node.stop())), 200);
    expect(RaftError.is(pending.error, 'SHUTDOWN')).toBe(true);
    const stopped = await leader.node.takeSnapshot().catch((e: unknown) => e);
    expect(RaftError.is(stopped, 'SHUTDOWN')).toBe(true);
  });

  it('a state machine without snapshot() and restore() keeps working, without compaction', async () => {
    const warnings: string[] = [];
    const logger = {
      debug() {},
      info() {},
      warn(_f: Record<string, unknown>, msg?: string) {
        warnings.push(msg ?? '');
      },
      error() {},
    };
    const c = await Cluster.create({
      snapshots: true,
      options: { snapshotThreshold: 5, logger },
    });
    const leader = await c.electLeader();
    await proposeMany(c, leader, 20);
    expect(leader.node.status().snapshotIndex).toBe(0);
    expect((await leader.logStore.inner.open()).firstIndex).toBe(1);
    expect(warnings.filter((w) => w.includes('never compacted'))).toHaveLength(3);
    const refused = await leader.node.takeSnapshot().catch((e: unknown) => e);
    expect(RaftError.is(refused, 'UNAVAILABLE')).toBe(true);
  });

  it('refuses a state machine with only one of snapshot() and restore()', () => {
    const network = new MemoryNetwork();
    expect(() =>
      createRaftNode({
        id: 'a',
        stateMachine: { apply: () => 0, snapshot: () => [] },
        codec: decimalCodec,
        logStore: new MemoryLogStore(),
        stableStore: new MemoryStableStore(),
        transport: network.transport('a'),
      }),
    ).toThrow(ConfigError);
  });
});

describe('restart from a snapshot', () => {
  it('restores the latest snapshot and replays only the log after it', async () => {
    const c = await snapCluster({ snapshotThreshold: 0 });
    const leader = await c.electLeader();
    await proposeMany(c, leader, 12, 2);
    const follower = c.followersOf(leader)[0] as TestNode;
    await c.run(3);
    const meta = await c.settle(follower.node.takeSnapshot());
    await proposeMany(c, leader, 3, 2);
    await c.run(3);
    const again = await c.restart(follower);
    await again.node.start();
    expect(sm(again).restores).toEqual([meta]);
    expect(again.node.status().snapshotIndex).toBe(meta.index);
    await c.run(10);
    expect(again.sm.total).toBe(30);
    // Only the entries after the snapshot were applied after the restart.
    expect(again.sm.applied.every((a) => a.index > meta.index)).toBe(true);
    expect(again.sm.applied.length).toBe(3);
  });

  it('refuses a log store that starts past 1 without a snapshot to cover the gap', async () => {
    const logStore = new MemoryLogStore();
    await logStore.append([{ index: 1, term: 1, kind: 'noop', data: new Uint8Array(0) }]);
    await logStore.compact(5);
    const network = new MemoryNetwork();
    const node = createRaftNode({
      id: 'a',
      stateMachine: new SnapCounter(),
      codec: decimalCodec,
      logStore,
      stableStore: new MemoryStableStore(),
      snapshotStore: new MemorySnapshotStore(),
      transport: network.transport('a'),
      clock: new ManualClock(),
      random: seededRandom(1),
      ...TIMING,
    });
    const err = await node.start().catch((e: unknown) => e);
    expect(RaftError.is(err, 'STORAGE')).toBe(true);
    expect((err as Error).message).toMatch(/starts at 6/);
  });
});

describe('followers behind the compacted log', () => {
  it('a follower stopped while the leader compacts past it rejoins by snapshot and converges', async () => {
    const c = await snapCluster();
    const leader = await c.electLeader();
    await proposeMany(c, leader, 3);
    const lagging = c.followersOf(leader)[0] as TestNode;
    await c.run(3);
    const again = await c.restart(lagging);
    await proposeMany(c, leader, 60);
    expect(leader.node.status().snapshotIndex).toBeGreaterThan(
      lagging.node.status().lastLogIndex + 5,
    );
    await again.node.start();
    await c.runUntil(() => again.sm.total === 63, 300, 'the lagging follower converges');
    const installed = eventsOf(again, 'snapshotInstalled');
    expect(installed.length).toBeGreaterThanOrEqual(1);
    expect(sm(again).restores.length).toBeGreaterThanOrEqual(1);
    // It goes on replicating from the log afterwards.
    await proposeMany(c, leader, 4);
    await c.runUntil(() => again.sm.total === 67, 100, 'replication after the install');
    expect(again.node.status().snapshotIndex).toBeGreaterThanOrEqual(
      (installed[0] as { meta: SnapshotMeta }).meta.index,
    );
    // Its log store starts after the installed snapshot.
    const bounds = await again.logStore.inner.open();
    expect(bounds.firstIndex).toBeGreaterThan(1);
  });

  it('a partitioned follower catches up by snapshot, in many small chunks', async () => {
    const c = await snapCluster({ snapshotChunkBytes: 7 });
    const leader = await c.electLeader();
    await proposeMany(c, leader, 2, 3);
    const follower = c.followersOf(leader)[0] as TestNode;
    await c.run(3);
    c.network.disconnect(follower.id);
    await proposeMany(c, leader, 40, 3);
    expect(leader.node.status().snapshotIndex).toBeGreaterThan(
      follower.node.status().lastLogIndex + 5,
    );
    c.network.connect(follower.id);
    await c.runUntil(() => follower.sm.total === 126, 400, 'the partitioned follower converges');
    const installed = eventsOf(follower, 'snapshotInstalled');
    expect(installed.length).toBeGreaterThanOrEqual(1);
    // 64 bytes in chunks of 7: the transfer took ten chunks, and the restore read them all.
    expect(sm(follower).restores.length).toBe(installed.length);
    expect(follower.node.status().members.map((m) => m.id)).toEqual(
      membershipOf(c.ids).members.map((m) => m.id),
    );
  });
});

describe('writeSnapshot and readSnapshot', () => {
  const meta: SnapshotMeta = { index: 7, term: 2, membership: membershipOf(['a', 'b']) };

  it('stream a snapshot into a store and back, in chunks of the size asked', async () => {
    const store = new MemorySnapshotStore();
    expect(await readSnapshot(store)).toBeNull();
    const parts = [ascii('hello '), ascii(''), ascii('snapshot '), ascii('world')];
    const size = await writeSnapshot(store, meta, parts);
    expect(size).toBe(20);
    const read = await readSnapshot(store, 3);
    expect(read?.meta).toEqual(meta);
    expect(read?.size).toBe(20);
    const chunks: Uint8Array[] = [];
    for await (const c of read?.chunks ?? []) chunks.push(c);
    expect(chunks.map((c) => c.byteLength)).toEqual([3, 3, 3, 3, 3, 3, 2]);
    expect(chunks.map((c) => String.fromCharCode(...c)).join('')).toBe('hello snapshot world');
    await expect(readSnapshot(store, 0)).rejects.toThrow(/chunkBytes/);
  });

  it('abort the snapshot when the stream fails or yields something else than bytes', async () => {
    const store = new MemorySnapshotStore();
    await writeSnapshot(store, meta, [ascii('first')]);
    async function* broken(): AsyncGenerator<Uint8Array> {
      yield ascii('part');
      throw new Error('the state machine failed');
    }
    await expect(writeSnapshot(store, { ...meta, index: 9 }, broken())).rejects.toThrow(
      'the state machine failed',
    );
    const wrong = [ascii('ok'), 'not bytes'] as unknown as Uint8Array[];
    const err = await writeSnapshot(store, { ...meta, index: 10 }, wrong).catch((e: unknown) => e);
    expect(RaftError.is(err, 'INVALID_ARGUMENT')).toBe(true);
    expect(store.list()).toEqual([meta]);
  });
});
