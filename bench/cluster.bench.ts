/**
 * A 3-node cluster in one process (MemoryNetwork) on real stores: committed entries/s and
 * commit latency with C concurrent proposers on the leader, 100-byte commands, per store. The
 * same workload as `pnpm bench` (packages/core), whose memory stores make persisting free: the
 * difference is what the disk (or Redis) costs a replicated write. All three nodes share this
 * machine's one disk, as they would not in production.
 *
 *   pnpm bench:cluster [--stores file,sqlite,redis] [--proposers 1,16,256] [--seconds 5]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  type CommandCodec,
  createRaftNode,
  type Membership,
  MemoryNetwork,
  type RaftNode,
  type RaftStores,
} from '@raft/core';
import { deleteRedisKeys } from './redis-keys.js';

const argv = process.argv.slice(2);
const { values } = parseArgs({
  args: argv[0] === '--' ? argv.slice(1) : argv,
  options: {
    stores: { type: 'string', default: 'file,sqlite,redis' },
    proposers: { type: 'string', default: '1,16,256' },
    seconds: { type: 'string', default: '5' },
    dir: { type: 'string', default: process.cwd() },
  },
});
const seconds = Number(values.seconds);
const levels = values.proposers.split(',').map(Number);
const base = mkdtempSync(join(values.dir, '.bench-cluster-'));
const redisPrefixes: string[] = [];

async function openStores(kind: string, label: string): Promise<RaftStores> {
  if (kind === 'file') {
    const { openFileStores } = await import('@raft/store-file');
    return openFileStores({ dir: join(base, label) });
  }
  if (kind === 'sqlite') {
    const { openSqliteStores } = await import('@raft/store-sqlite');
    return openSqliteStores({ path: join(base, `${label}.sqlite`) });
  }
  const { openRedisStores } = await import('@raft/store-redis');
  const prefix = `raft-bench-cluster:${process.pid}:${label}:`;
  redisPrefixes.push(prefix);
  return openRedisStores({ prefix });
}

const payload = new Uint8Array(100).fill(7);
const codec: CommandCodec<Uint8Array> = { encode: (c) => c, decode: (b) => b };

async function run(kind: string, proposers: number): Promise<string> {
  const network = new MemoryNetwork();
  const ids = ['n1', 'n2', 'n3'];
  const membership: Membership = { members: ids.map((id) => ({ id, address: id, voter: true })) };
  const nodes: RaftNode<Uint8Array, number>[] = [];
  for (const id of ids) {
    let applied = 0;
    nodes.push(
      createRaftNode<Uint8Array, number>({
        id,
        stateMachine: { apply: () => ++applied },
        codec,
        stores: await openStores(kind, `${kind}-${proposers}-${id}`),
        transport: network.transport(id),
        requestTimeoutMs: 30_000,
      }),
    );
  }
  try {
    await Promise.all(nodes.map((n) => n.start({ bootstrap: membership })));
    let leader: RaftNode<Uint8Array, number> | undefined;
    for (let k = 0; k < 1000 && leader === undefined; k++) {
      leader = nodes.find((n) => n.status().role === 'leader');
      if (leader === undefined) await new Promise((r) => setTimeout(r, 10));
    }
    if (leader === undefined) throw new Error('no leader in 10 s');
    const l = leader;
    const latencies: number[] = [];
    let measuring = false;
    let stop = false;
    const worker = async (): Promise<void> => {
      while (!stop) {
        const t0 = performance.now();
        await l.propose(payload);
        if (measuring) latencies.push(performance.now() - t0);
      }
    };
    const workers = Array.from({ length: proposers }, worker);
    await new Promise((r) => setTimeout(r, 1000));
    measuring = true;
    const start = performance.now();
    await new Promise((r) => setTimeout(r, seconds * 1000));
    measuring = false;
    const elapsed = (performance.now() - start) / 1000;
    stop = true;
    await Promise.all(workers);
    latencies.sort((a, b) => a - b);
    const at = (p: number): number =>
      latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? Number.NaN;
    return `| ${kind} | ${proposers} | ${Math.round(latencies.length / elapsed).toLocaleString('en-US')} | ${at(0.5).toFixed(2)} ms | ${at(0.99).toFixed(2)} ms |`;
  } finally {
    await Promise.all(nodes.map((n) => n.stop()));
  }
}

try {
  console.log(
    `3 nodes in one process, ${seconds} s per level after 1 s of warm-up; disk under ${base}`,
  );
  console.log(
    '| store | proposers | committed entries/s | p50 commit latency | p99 commit latency |',
  );
  console.log('| --- | ---: | ---: | ---: | ---: |');
  for (const kind of values.stores.split(',')) {
    for (const proposers of levels) console.log(await run(kind, proposers));
  }
} finally {
  rmSync(base, { recursive: true, force: true });
  await deleteRedisKeys(redisPrefixes);
}
