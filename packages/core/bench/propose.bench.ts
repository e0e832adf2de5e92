/**
 * `pnpm bench`: a 3-node in-process cluster (MemoryNetwork, memory stores), 100-byte commands,
 * C concurrent proposers each keeping one proposal in flight on the leader. Reports committed
 * entries per second and commit latency percentiles (propose() call to resolve: committed on a
 * majority and applied on the leader).
 *
 *   pnpm bench [--seconds 5] [--concurrency 1,16,256] [--codec bytes|json]
 *              [--validate-commands true|false] [--snapshots true|false] [--heap]
 *              [--alloc] [--json]
 *
 * Snapshots are on by default (the default thresholds: one every 10,000 entries, 5,000 kept
 * behind it; a MemorySnapshotStore), so the log is compacted as it would be in production.
 * `--heap` samples the heap after a full GC every `--heap-every` seconds (default 5) of each
 * level and reports the series: with snapshots it stays flat after the first ones.
 *
 * `pnpm bench` builds the package and measures the built `dist/` (what users run);
 * `pnpm bench:source` measures the TypeScript sources through tsx, whose transform adds a
 * `__name()` call to every named closure, so its figures are lower. `--alloc` samples the heap
 * (V8's sampling heap profiler, minor and major GC included) and reports bytes allocated per
 * committed proposal, all three nodes and the proposers together.
 *
 * A benchmark, never a test: figures depend on the machine; compare ratios, not absolutes.
 */
import { Session } from 'node:inspector/promises';
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { CommandCodec, Membership, RaftNode, StateMachine } from '@raft/core';
import {
  createRaftNode,
  jsonCodec,
  MemoryLogStore,
  MemoryNetwork,
  MemorySnapshotStore,
  MemoryStableStore,
} from '@raft/core';
import { Counter, Histogram } from './support.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '1' },
    concurrency: { type: 'string', default: '1,16,256' },
    size: { type: 'string', default: '100' },
    codec: { type: 'string', default: 'bytes' },
    'validate-commands': { type: 'string', default: 'true' },
    snapshots: { type: 'string', default: 'true' },
    heap: { type: 'boolean', default: false },
    'heap-every': { type: 'string', default: '5' },
    alloc: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  },
});
const seconds = Number(values.seconds);
const warmupSeconds = Number(values.warmup);
const levels = String(values.concurrency).split(',').map(Number);
const size = Number(values.size);
const validateCommands = values['validate-commands'] !== 'false';
const snapshots = values.snapshots !== 'false';
const heapEverySeconds = Number(values['heap-every']);
/** A full GC on demand (for the heap series), without requiring node --expose-gc. */
function exposeGc(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}
const gc: (() => void) | null = values.heap ? exposeGc() : null;
const build = import.meta.resolve('@raft/core').includes('/src/') ? 'src' : 'dist';

/** A command and its codec: raw bytes (no codec cost), or a JSON object of about `size` bytes. */
type Command = Uint8Array | { readonly key: string; readonly value: string };
const codec: CommandCodec<Command> =
  values.codec === 'json'
    ? (jsonCodec<Command>() as CommandCodec<Command>)
    : { encode: (c) => c as Uint8Array, decode: (b) => b };
const command: Command =
  values.codec === 'json'
    ? { key: 'k1', value: 'x'.repeat(Math.max(0, size - 24)) }
    : new Uint8Array(size).fill(7);

/** The same without snapshot support (`--snapshots false`): nothing is ever compacted. */
class PlainCounter implements StateMachine<Command, number> {
  count = 0;
  apply(): number {
    return ++this.count;
  }
}

async function startCluster(): Promise<{
  leader: RaftNode<Command, number>;
  stop(): Promise<void>;
}> {
  const ids = ['n1', 'n2', 'n3'];
  const network = new MemoryNetwork();
  const membership: Membership = { members: ids.map((id) => ({ id, address: id, voter: true })) };
  const nodes = ids.map((id) =>
    createRaftNode<Command, number>({
      id,
      stateMachine: snapshots ? new Counter<Command>() : new PlainCounter(),
      codec,
      logStore: new MemoryLogStore(),
      stableStore: new MemoryStableStore(),
      ...(snapshots ? { snapshotStore: new MemorySnapshotStore() } : {}),
      transport: network.transport(id),
      electionTimeoutMs: 300,
      heartbeatMs: 50,
      requestTimeoutMs: 30_000,
      validateCommands,
    }),
  );
  await Promise.all(nodes.map((n) => n.start({ bootstrap: membership })));
  const { leaderId } = await (nodes[0] as RaftNode<Command, number>).waitForLeader({
    timeoutMs: 10_000,
  });
  const leader = nodes.find((n) => n.status().id === leaderId);
  if (!leader) throw new Error('no leader elected');
  return { leader, stop: async () => void (await Promise.all(nodes.map((n) => n.stop()))) };
}

interface Result {
  concurrency: number;
  entriesPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  committed: number;
  bytesPerProposal?: number;
  /** Heap used after a full GC, in MiB, every `--heap-every` seconds of the level. */
  heapMiB?: number[];
  snapshotIndex?: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function run(concurrency: number, session: Session | null): Promise<Result> {
  const { leader, stop } = await startCluster();
  let measuring = false;
  let stopFlag = false;
  const latencies = new Histogram();
  let committed = 0;
  const worker = async (): Promise<void> => {
    while (!stopFlag) {
      const t0 = performance.now();
      await leader.propose(command);
      if (measuring) {
        latencies.record(performance.now() - t0);
        committed++;
      }
    }
  };
  const workers = Array.from({ length: concurrency }, worker);
  await sleep(warmupSeconds * 1000);
  if (session !== null)
    await session.post('HeapProfiler.startSampling', {
      samplingInterval: 4096,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    } as never);
  measuring = true;
  const start = performance.now();
  const heapMiB: number[] = [];
  if (gc !== null) {
    for (let t = 0; t < seconds; t += heapEverySeconds) {
      await sleep(Math.min(heapEverySeconds, seconds - t) * 1000);
      gc();
      heapMiB.push(Math.round((process.memoryUsage().heapUsed / 1048576) * 10) / 10);
    }
  } else {
    await sleep(seconds * 1000);
  }
  measuring = false;
  const snapshotIndex = leader.status().snapshotIndex;
  const elapsed = (performance.now() - start) / 1000;
  let bytesPerProposal: number | undefined;
  if (session !== null) {
    const { profile } = (await session.post('HeapProfiler.stopSampling')) as {
      profile: { head: SamplingNode };
    };
    bytesPerProposal = Math.round(sampledBytes(profile.head) / committed);
  }
  stopFlag = true;
  await Promise.all(workers);
  await stop();
  return {
    concurrency,
    entriesPerSecond: Math.round(committed / elapsed),
    p50Ms: latencies.percentile(50),
    p99Ms: latencies.percentile(99),
    committed,
    ...(bytesPerProposal === undefined ? {} : { bytesPerProposal }),
    ...(gc === null ? {} : { heapMiB }),
    snapshotIndex,
  };
}

interface SamplingNode {
  selfSize: number;
  children: SamplingNode[];
}

function sampledBytes(node: SamplingNode): number {
  let total = node.selfSize;
  for (const child of node.children) total += sampledBytes(child);
  return total;
}

let session: Session | null = null;
if (values.alloc) {
  session = new Session();
  session.connect();
}
if (!values.json) {
  console.log(
    `@raft/core from ${build}/, codec ${values.codec}, validateCommands ${validateCommands}, snapshots ${snapshots}, ${size}-byte commands, ${seconds} s per level`,
  );
}
const results: Result[] = [];
for (const c of levels) {
  const r = await run(c, session);
  results.push(r);
  if (!values.json) {
    console.log(
      `concurrency ${String(c).padStart(4)}: ${r.entriesPerSecond.toLocaleString('en-US').padStart(9)} entries/s   p50 ${r.p50Ms.toFixed(3)} ms   p99 ${r.p99Ms.toFixed(3)} ms${r.bytesPerProposal === undefined ? '' : `   ${r.bytesPerProposal} B allocated/proposal`}${r.heapMiB === undefined ? '' : `   heap MiB ${r.heapMiB.join(' ')}`}   snapshot at ${r.snapshotIndex}`,
    );
  }
}
session?.disconnect();
if (values.json)
  console.log(
    JSON.stringify(
      {
        node: process.version,
        build,
        codec: values.codec,
        validateCommands,
        snapshots,
        size,
        seconds,
        results,
      },
      null,
      2,
    ),
  );
