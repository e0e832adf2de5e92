/**
 * Streams a large snapshot from a leader to a follower that lags behind the compacted log, in
 * one process, and prints what the heap and the RSS did meanwhile (JSON on stdout). Run with
 * `node --expose-gc --conditions=@raft/source --import tsx install-large.ts <MiB> <dir>`; the
 * test that runs it asserts on the figures.
 *
 * The leader's state machine "holds" SIZE bytes of deterministic pseudo-random state and
 * streams it in 1 MiB chunks it generates on the fly; the follower's only hashes what it
 * restores. Snapshot stores are file-backed (file-snapshot-store.ts), so nothing but the
 * chunks in flight is ever in memory.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { NodeId, RaftNode, SnapshotMeta, StateMachine } from '@raft/core';
import {
  createRaftNode,
  MemoryLogStore,
  MemoryNetwork,
  MemoryStableStore,
  utf8Codec,
} from '@raft/core';
import { FileSnapshotStore } from './file-snapshot-store.js';

const MiB = 1024 * 1024;
const sizeMiB = Number(process.argv[2] ?? '100');
const dir = process.argv[3] ?? '/tmp/raft-install-large';
const SIZE = sizeMiB * MiB;
const CHUNK = MiB;

const exposedGc = (globalThis as { gc?: () => void }).gc;
if (exposedGc === undefined) throw new Error('run with --expose-gc');
const gc: () => void = exposedGc;

/** FNV-1a over a stream of chunks. */
function fnv(h: number, bytes: Uint8Array): number {
  let x = h;
  for (let i = 0; i < bytes.length; i++) x = Math.imul(x ^ (bytes[i] as number), 0x01000193);
  return x >>> 0;
}

/** Chunk `i` of the synthetic state: xorshift bytes seeded by the index and the applied count. */
function chunkAt(i: number, seed: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  const words = new Uint32Array(out.buffer, 0, length >>> 2);
  let s = (seed * 2654435761 + i * 40503 + 1) >>> 0 || 1;
  for (let w = 0; w < words.length; w++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    words[w] = s >>> 0;
  }
  return out;
}

/** The leader's machine: a counter whose snapshot is SIZE synthetic bytes. */
class BigState implements StateMachine<string, number> {
  applied = 0;
  restoredHash = 0;
  restoredBytes = 0;
  restores: SnapshotMeta[] = [];
  apply(): number {
    return ++this.applied;
  }
  snapshot(): AsyncIterable<Uint8Array> {
    const seed = this.applied;
    return (async function* () {
      for (let at = 0, i = 0; at < SIZE; at += CHUNK, i++)
        yield chunkAt(i, seed, Math.min(CHUNK, SIZE - at));
    })();
  }
  async restore(chunks: AsyncIterable<Uint8Array>, meta: SnapshotMeta): Promise<void> {
    let h = 0x811c9dc5;
    let n = 0;
    for await (const c of chunks) {
      h = fnv(h, c);
      n += c.byteLength;
    }
    this.restoredHash = h;
    this.restoredBytes = n;
    this.applied = meta.index; // every entry is a command in this test
    this.restores.push(meta);
  }
}

async function main(): Promise<void> {
  rmSync(dir, { recursive: true, force: true });
  const network = new MemoryNetwork();
  const ids: NodeId[] = ['a', 'b', 'c'];
  const membership = { members: ids.map((id) => ({ id, address: id, voter: true })) };
  const machines = new Map<NodeId, BigState>();
  const nodes = new Map<NodeId, RaftNode<string, number>>();
  const stores = new Map<NodeId, FileSnapshotStore>();
  for (const id of ids) {
    const sm = new BigState();
    machines.set(id, sm);
    const snapshotStore = new FileSnapshotStore(join(dir, id));
    stores.set(id, snapshotStore);
    nodes.set(
      id,
      createRaftNode({
        id,
        stateMachine: sm,
        codec: utf8Codec,
        logStore: new MemoryLogStore(),
        stableStore: new MemoryStableStore(),
        snapshotStore,
        transport: network.transport(id),
        snapshotThreshold: 0,
        trailingEntries: 0,
        snapshotChunkBytes: CHUNK,
        electionTimeoutMs: 300,
        heartbeatMs: 50,
        requestTimeoutMs: 60_000,
      }),
    );
  }
  // c is cut off from the start: it will lag behind the compaction point.
  network.disconnect('c');
  await Promise.all(
    ids.map((id) => (nodes.get(id) as RaftNode<string, number>).start({ bootstrap: membership })),
  );
  const a = nodes.get('a') as RaftNode<string, number>;
  const b = nodes.get('b') as RaftNode<string, number>;
  const { leaderId } = await a.waitForLeader({ timeoutMs: 10_000 });
  const leader = nodes.get(leaderId) as RaftNode<string, number>;
  const leaderSm = machines.get(leaderId) as BigState;
  for (let i = 0; i < 20; i++) await leader.propose(`cmd ${i}`);
  void b;

  const t0 = performance.now();
  const meta = await leader.takeSnapshot({ timeoutMs: 120_000 });
  const snapshotMs = performance.now() - t0;
  // The hash the follower must end up with.
  let expected = 0x811c9dc5;
  {
    const src = await (stores.get(leaderId) as FileSnapshotStore).open();
    if (src === null) throw new Error('no snapshot');
    for (let at = 0; at < src.size; at += CHUNK)
      expected = fnv(expected, await src.read(at, CHUNK));
    await src.close();
  }
  const follower = nodes.get('c') as RaftNode<string, number>;
  const followerSm = machines.get('c') as BigState;
  // The follower installs; sample the retained heap (after a full GC) and the RSS meanwhile.
  gc();
  gc();
  const base = process.memoryUsage();
  let maxHeap = base.heapUsed;
  let maxRss = base.rss;
  // `external` includes `arrayBuffers`: the chunks' backing stores.
  let maxExternal = base.external;
  let samples = 0;
  const sampler = setInterval(() => {
    gc();
    // Backing stores of collected buffers are freed by a concurrent sweeper: give it a turn.
    setImmediate(() => {
      const m = process.memoryUsage();
      samples++;
      if (m.heapUsed > maxHeap) maxHeap = m.heapUsed;
      if (m.rss > maxRss) maxRss = m.rss;
      if (m.external > maxExternal) maxExternal = m.external;
    });
  }, 20);
  // No election while the follower installs: count leadership changes on the nodes that were
  // connected (c itself learns the term and the leader when it reconnects).
  let leadershipChanges = 0;
  const unsubscribers = ids
    .filter((id) => id !== 'c')
    .map((id) => nodes.get(id) as RaftNode<string, number>)
    .map((n) =>
      n.subscribe((e) => {
        if (e.type === 'leaderChanged' || e.type === 'termChanged') leadershipChanges++;
      }),
    );
  const termBefore = leader.status().term;
  const t1 = performance.now();
  network.connect('c');
  await new Promise<void>((resolve, reject) => {
    const deadline = setTimeout(
      () => reject(new Error('the follower did not install within 120 s')),
      120_000,
    );
    const unsubscribe = follower.subscribe((e) => {
      if (e.type === 'snapshotInstalled') {
        clearTimeout(deadline);
        unsubscribe();
        resolve();
      }
    });
  });
  const installMs = performance.now() - t1;
  clearInterval(sampler);
  for (const u of unsubscribers) u();
  const termAfter = leader.status().term;
  // Replication goes on from the log after the snapshot.
  await leader.propose('after');
  const deadline = Date.now() + 10_000;
  while (follower.status().appliedIndex < leader.status().appliedIndex && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 10));
  const result = {
    sizeBytes: SIZE,
    chunkBytes: CHUNK,
    snapshotIndex: meta.index,
    snapshotMs: Math.round(snapshotMs),
    installMs: Math.round(installMs),
    samples,
    heapGrowth: maxHeap - base.heapUsed,
    rssGrowth: maxRss - base.rss,
    externalGrowth: maxExternal - base.external,
    hashMatches: followerSm.restoredHash === expected,
    restoredBytes: followerSm.restoredBytes,
    followerApplied: follower.status().appliedIndex,
    leaderApplied: leader.status().appliedIndex,
    followerSnapshotIndex: follower.status().snapshotIndex,
    leaderSmApplied: leaderSm.applied,
    leadershipChanges,
    termUnchanged: termBefore === termAfter && leader.status().role === 'leader',
  };
  await Promise.all([...nodes.values()].map((n) => n.stop()));
  rmSync(dir, { recursive: true, force: true });
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
