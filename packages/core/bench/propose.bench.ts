/**
 * `pnpm bench`: a 3-node in-process cluster (MemoryNetwork, memory stores), 100-byte commands,
 * C concurrent proposers each keeping one proposal in flight on the leader. Reports committed
 * entries per second and commit latency percentiles (propose() call to resolve: committed on a
 * majority and applied on the leader).
 *
 *   pnpm bench [--seconds 5] [--concurrency 1,16,256] [--json]
 *
 * A benchmark, never a test: figures depend on the machine; compare ratios, not absolutes.
 */
import { parseArgs } from 'node:util';
import type { CommandCodec, Membership, RaftNode, StateMachine } from '../src/index.js';
import { createRaftNode, MemoryLogStore, MemoryNetwork, MemoryStableStore } from '../src/index.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '1' },
    concurrency: { type: 'string', default: '1,16,256' },
    size: { type: 'string', default: '100' },
    json: { type: 'boolean', default: false },
  },
});
const seconds = Number(values.seconds);
const warmupSeconds = Number(values.warmup);
const levels = String(values.concurrency).split(',').map(Number);
const size = Number(values.size);

const codec: CommandCodec<Uint8Array> = { encode: (c) => c, decode: (b) => b };

/** Counts bytes applied: cheap, deterministic, touches every command. */
class ByteCounter implements StateMachine<Uint8Array, number> {
  bytes = 0;
  apply(command: Uint8Array): number {
    this.bytes += command.byteLength;
    return this.bytes;
  }
}

async function startCluster(): Promise<{
  leader: RaftNode<Uint8Array, number>;
  stop(): Promise<void>;
}> {
  const ids = ['n1', 'n2', 'n3'];
  const network = new MemoryNetwork();
  const membership: Membership = { members: ids.map((id) => ({ id, address: id, voter: true })) };
  const nodes = ids.map((id) =>
    createRaftNode<Uint8Array, number>({
      id,
      stateMachine: new ByteCounter(),
      codec,
      logStore: new MemoryLogStore(),
      stableStore: new MemoryStableStore(),
      transport: network.transport(id),
      electionTimeoutMs: 300,
      heartbeatMs: 50,
      requestTimeoutMs: 30_000,
    }),
  );
  await Promise.all(nodes.map((n) => n.start({ bootstrap: membership })));
  // Let n1 win deterministically by asking nobody else to campaign first.
  for (let i = 0; i < 200 && !nodes.some((n) => n.status().role === 'leader'); i++) {
    await new Promise((r) => setTimeout(r, 10));
  }
  const leader = nodes.find((n) => n.status().role === 'leader');
  if (!leader) throw new Error('no leader elected');
  return { leader, stop: async () => void (await Promise.all(nodes.map((n) => n.stop()))) };
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

interface Result {
  concurrency: number;
  entriesPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  committed: number;
}

async function run(concurrency: number): Promise<Result> {
  const { leader, stop } = await startCluster();
  const payload = new Uint8Array(size).fill(7);
  let measuring = false;
  let stopFlag = false;
  const latencies: number[] = [];
  let committed = 0;
  const worker = async (): Promise<void> => {
    while (!stopFlag) {
      const t0 = performance.now();
      await leader.propose(payload);
      if (measuring) {
        latencies.push(performance.now() - t0);
        committed++;
      }
    }
  };
  const workers = Array.from({ length: concurrency }, worker);
  await new Promise((r) => setTimeout(r, warmupSeconds * 1000));
  measuring = true;
  const start = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  measuring = false;
  const elapsed = (performance.now() - start) / 1000;
  stopFlag = true;
  await Promise.all(workers);
  await stop();
  const sorted = Float64Array.from(latencies).sort();
  return {
    concurrency,
    entriesPerSecond: Math.round(committed / elapsed),
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    committed,
  };
}

const results: Result[] = [];
for (const c of levels) {
  results.push(await run(c));
  const r = results[results.length - 1] as Result;
  if (!values.json) {
    console.log(
      `concurrency ${String(c).padStart(4)}: ${r.entriesPerSecond.toLocaleString('en-US').padStart(9)} entries/s   p50 ${r.p50Ms.toFixed(3)} ms   p99 ${r.p99Ms.toFixed(3)} ms`,
    );
  }
}
if (values.json)
  console.log(JSON.stringify({ node: process.version, size, seconds, results }, null, 2));
