/**
 * `pnpm bench:catch-up`: how long a follower that missed everything takes to catch up from a
 * leader holding 1,000,000 entries behind a snapshot of 256 MiB of state, how long taking that
 * snapshot takes, and what it costs the proposers meanwhile.
 *
 *   pnpm bench:catch-up [--entries 1000000] [--state-mib 256] [--concurrency 256] [--json]
 *
 * A 3-node in-process cluster (MemoryNetwork, memory stores, MemorySnapshotStore, 1 MiB
 * chunks): n3 is cut off from the start. n1 and n2 commit `--entries` 100-byte commands, then
 * the leader takes a snapshot of its state machine, whose image is `--state-mib` of synthetic
 * bytes generated as it streams, while `--concurrency` proposers keep writing (throughput is
 * counted in 100 ms windows before, during and after). Then n3 is reconnected: it receives the
 * snapshot in chunks, restores it (reading every byte), and catches up from the log after it.
 *
 * A benchmark, never a test: figures depend on the machine; compare ratios, not absolutes.
 */
import { parseArgs } from 'node:util';
import type { CommandCodec, Membership, RaftNode, SnapshotMeta, StateMachine } from '@raft/core';
import {
  createRaftNode,
  MemoryLogStore,
  MemoryNetwork,
  MemorySnapshotStore,
  MemoryStableStore,
} from '@raft/core';

const { values } = parseArgs({
  options: {
    entries: { type: 'string', default: '1000000' },
    'state-mib': { type: 'string', default: '256' },
    concurrency: { type: 'string', default: '256' },
    json: { type: 'boolean', default: false },
  },
});
const ENTRIES = Number(values.entries);
const MiB = 1024 * 1024;
const STATE_BYTES = Number(values['state-mib']) * MiB;
const CONCURRENCY = Number(values.concurrency);
const CHUNK = MiB;
const codec: CommandCodec<Uint8Array> = { encode: (c) => c, decode: (b) => b };
const command = new Uint8Array(100).fill(7);

/** Chunk `i` of the synthetic image: xorshift words, seeded by the index and the count. */
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

/** A counter that stands for STATE_BYTES of state: its snapshot streams that many bytes. */
class BigState implements StateMachine<Uint8Array, number> {
  count = 0;
  restoredBytes = 0;
  apply(): number {
    return ++this.count;
  }
  snapshot(): AsyncIterable<Uint8Array> {
    const seed = this.count;
    return (async function* () {
      const head = new Uint8Array(8);
      new DataView(head.buffer).setFloat64(0, seed);
      yield head;
      for (let at = 0, i = 0; at < STATE_BYTES; at += CHUNK, i++)
        yield chunkAt(i, seed, Math.min(CHUNK, STATE_BYTES - at));
    })();
  }
  async restore(chunks: AsyncIterable<Uint8Array>, _meta: SnapshotMeta): Promise<void> {
    let first = true;
    let bytes = 0;
    for await (const c of chunks) {
      if (first) {
        this.count = new DataView(c.buffer, c.byteOffset).getFloat64(0);
        first = false;
      }
      // Read every byte, as a real restore would.
      let x = 0;
      for (let i = 0; i < c.length; i += 64) x ^= c[i] as number;
      bytes += c.byteLength + (x & 0);
    }
    this.restoredBytes = bytes;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  const ids = ['n1', 'n2', 'n3'];
  const network = new MemoryNetwork();
  const membership: Membership = { members: ids.map((id) => ({ id, address: id, voter: true })) };
  const machines = new Map<string, BigState>();
  const nodes = ids.map((id) => {
    const sm = new BigState();
    machines.set(id, sm);
    return createRaftNode<Uint8Array, number>({
      id,
      stateMachine: sm,
      codec,
      logStore: new MemoryLogStore(),
      stableStore: new MemoryStableStore(),
      snapshotStore: new MemorySnapshotStore({ retain: 1 }),
      transport: network.transport(id),
      electionTimeoutMs: 300,
      heartbeatMs: 50,
      requestTimeoutMs: 120_000,
      snapshotThreshold: 0,
      snapshotThresholdBytes: 0,
    });
  });
  network.disconnect('n3');
  await Promise.all(nodes.map((n) => n.start({ bootstrap: membership })));
  const { leaderId } = await (nodes[0] as RaftNode<Uint8Array, number>).waitForLeader({
    timeoutMs: 10_000,
  });
  if (leaderId === 'n3') throw new Error('n3 cannot lead: it is cut off');
  const leader = nodes.find((n) => n.status().id === leaderId) as RaftNode<Uint8Array, number>;
  const n3 = nodes[2] as RaftNode<Uint8Array, number>;

  // Fill the log.
  let proposed = 0;
  const fillStart = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (proposed < ENTRIES) {
        proposed++;
        await leader.propose(command);
      }
    }),
  );
  const fillMs = performance.now() - fillStart;

  // Take the snapshot with proposers running; count commits in 100 ms windows.
  let running = true;
  let committed = 0;
  const writers = Array.from({ length: CONCURRENCY }, async () => {
    while (running) {
      await leader.propose(command);
      committed++;
    }
  });
  const windows: { t: number; commits: number; during: boolean }[] = [];
  let snapshotting = false;
  let last = 0;
  const t0 = performance.now();
  const sampler = setInterval(() => {
    windows.push({ t: performance.now() - t0, commits: committed - last, during: snapshotting });
    last = committed;
  }, 100);
  await sleep(1000);
  snapshotting = true;
  const s0 = performance.now();
  const meta = await leader.takeSnapshot({ timeoutMs: 120_000 });
  const snapshotMs = performance.now() - s0;
  snapshotting = false;
  await sleep(1000);
  clearInterval(sampler);
  running = false;
  await Promise.all(writers);

  // Reconnect n3 and time its catch-up.
  const target = leader.status().appliedIndex;
  const c0 = performance.now();
  let installedAt = 0;
  n3.subscribe((e) => {
    if (e.type === 'snapshotInstalled') installedAt = performance.now() - c0;
  });
  network.connect('n3');
  const deadline = Date.now() + 300_000;
  while (n3.status().appliedIndex < target) {
    if (Date.now() > deadline) throw new Error('n3 did not catch up within 300 s');
    await sleep(5);
  }
  const catchUpMs = performance.now() - c0;

  const rate = (ws: typeof windows): number =>
    ws.length === 0 ? 0 : Math.round((ws.reduce((a, w) => a + w.commits, 0) / ws.length) * 10);
  const before = windows.filter((w) => !w.during && w.t < 1000);
  const during = windows.filter((w) => w.during);
  const after = windows.filter((w) => !w.during && w.t > 1000);
  const result = {
    entries: ENTRIES,
    stateBytes: STATE_BYTES,
    fillSeconds: Math.round(fillMs / 100) / 10,
    snapshotIndex: meta.index,
    snapshotSeconds: Math.round(snapshotMs / 10) / 100,
    entriesPerSecondBefore: rate(before),
    entriesPerSecondDuring: rate(during),
    entriesPerSecondAfter: rate(after),
    worstWindowDuring: during.length === 0 ? 0 : Math.min(...during.map((w) => w.commits * 10)),
    catchUpSeconds: Math.round(catchUpMs / 10) / 100,
    installSeconds: Math.round(installedAt / 10) / 100,
    restoredBytes: machines.get('n3')?.restoredBytes,
    n3Applied: n3.status().appliedIndex,
    leaderApplied: target,
  };
  await Promise.all(nodes.map((n) => n.stop()));
  if (values.json) console.log(JSON.stringify(result, null, 2));
  else {
    console.log(
      `@raft/core: ${ENTRIES.toLocaleString('en-US')} entries behind a ${STATE_BYTES / MiB} MiB snapshot, ${CONCURRENCY} proposers`,
    );
    console.log(`fill: ${result.fillSeconds} s`);
    console.log(
      `snapshot at ${meta.index}: ${result.snapshotSeconds} s; entries/s before ${result.entriesPerSecondBefore.toLocaleString('en-US')}, during ${result.entriesPerSecondDuring.toLocaleString('en-US')} (worst 100 ms window ${result.worstWindowDuring.toLocaleString('en-US')}/s), after ${result.entriesPerSecondAfter.toLocaleString('en-US')}`,
    );
    console.log(
      `new follower: snapshot installed after ${result.installSeconds} s, caught up to ${target} after ${result.catchUpSeconds} s (${result.restoredBytes} bytes restored)`,
    );
  }
}

await main();
