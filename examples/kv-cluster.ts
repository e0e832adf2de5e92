/**
 * A 3-node replicated key-value store in one process, on the durable file store: each node
 * keeps its log, hard state and snapshots in its own directory. It elects a leader, replicates
 * writes (one proposed on a follower, which forwards it), stops the leader and carries on with
 * the other two, then stops everything and restarts all three nodes from disk, where the data
 * is still there.
 *
 *   pnpm example [--data <dir>]     (default: a fresh temporary directory, removed at the end)
 *
 * The nodes talk over TCP on loopback (@raft/transport-tcp), each on its own address
 * (127.0.0.1:7101, 127.0.0.2:7102, 127.0.0.3:7103), with a cluster id and a shared secret.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import {
  type CommandCodec,
  createRaftNode,
  jsonCodec,
  type Membership,
  type RaftNode,
  type StateMachine,
} from '@raft/core';
import { openFileStores } from '@raft/store-file';
import { createTcpTransport } from '@raft/transport-tcp';

type Command =
  | { readonly op: 'set'; readonly key: string; readonly value: string }
  | { readonly op: 'delete'; readonly key: string };

/** The replicated state: a Map, with snapshots (so each log is compacted behind them). */
class KvStateMachine implements StateMachine<Command, string | null> {
  data = new Map<string, string>();
  apply(command: Command): string | null {
    const previous = this.data.get(command.key) ?? null;
    if (command.op === 'set') this.data.set(command.key, command.value);
    else this.data.delete(command.key);
    return previous;
  }
  snapshot(): Uint8Array[] {
    return [new TextEncoder().encode(JSON.stringify([...this.data]))];
  }
  async restore(chunks: AsyncIterable<Uint8Array>): Promise<void> {
    const parts: Uint8Array[] = [];
    for await (const chunk of chunks) parts.push(chunk);
    this.data = new Map(JSON.parse(Buffer.concat(parts).toString('utf8')) as [string, string][]);
  }
}

const argv = process.argv.slice(2);
const { values } = parseArgs({
  args: argv[0] === '--' ? argv.slice(1) : argv,
  options: { data: { type: 'string' } },
});
const keep = values.data !== undefined;
const root = keep ? resolve(values.data as string) : mkdtempSync(join(tmpdir(), 'raft-kv-'));
const ids = ['n1', 'n2', 'n3'];
// Fixed addresses: a restart from `--data` finds the membership it bootstrapped with.
const membership: Membership = {
  members: ids.map((id, i) => ({ id, address: `127.0.0.${i + 1}:${7101 + i}`, voter: true })),
};
const addressOf = (id: string): string =>
  membership.members.find((m) => m.id === id)?.address as string;
const codec: CommandCodec<Command> = jsonCodec<Command>();

interface Replica {
  readonly id: string;
  readonly node: RaftNode<Command, string | null>;
  readonly sm: KvStateMachine;
}

/** Opens each node's directory and starts the three nodes (bootstrap counts only when empty). */
async function startCluster(): Promise<Replica[]> {
  const replicas = await Promise.all(
    ids.map(async (id) => {
      const dir = join(root, id);
      mkdirSync(dir, { recursive: true });
      const sm = new KvStateMachine();
      const node = createRaftNode<Command, string | null>({
        id,
        stateMachine: sm,
        codec,
        stores: await openFileStores({ dir }),
        transport: createTcpTransport({
          id,
          listen: addressOf(id),
          clusterId: 'kv-example',
          secret: 'the example cluster secret (use your own)',
        }),
        snapshotThreshold: 100,
      });
      return { id, node, sm };
    }),
  );
  await Promise.all(replicas.map((r) => r.node.start({ bootstrap: membership })));
  return replicas;
}

/** The replica that leads, once one of `replicas` is leader (bounded: 10 s). */
async function leaderOf(replicas: readonly Replica[]): Promise<Replica> {
  for (let k = 0; k < 1000; k++) {
    const leader = replicas.find((r) => r.node.status().role === 'leader');
    if (leader !== undefined) return leader;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error('no leader within 10 s');
}

async function put(replica: Replica, key: string, value: string): Promise<void> {
  const { index, term } = await replica.node.propose({ op: 'set', key, value });
  console.log(`  ${replica.id}: set ${key}=${value} committed at index ${index} (term ${term})`);
}

/**
 * Waits (bounded) until every running replica has applied everything `leader` has committed. The
 * target comes from a linearizable read, not from the leader's status: a leader just elected
 * after a restart may not know yet how far the log was committed before it.
 */
async function converge(replicas: readonly Replica[], leader: Replica): Promise<void> {
  const { index: target } = await leader.node.read({ consistency: 'linearizable' });
  for (let k = 0; k < 1000; k++) {
    if (replicas.every((r) => r.node.status().appliedIndex >= target)) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error('the replicas did not converge within 5 s');
}

const show = (replicas: readonly Replica[]): void => {
  for (const r of replicas)
    console.log(`  ${r.id} state: ${JSON.stringify(Object.fromEntries(r.sm.data))}`);
};

try {
  console.log(`starting 3 nodes, data in ${root}`);
  let cluster = await startCluster();
  const leader = await leaderOf(cluster);
  console.log(`  ${leader.id} is the leader`);
  await put(leader, 'color', 'blue');
  await put(leader, 'shape', 'circle');
  const follower = cluster.find((r) => r !== leader) as Replica;
  await put(follower, 'size', 'large'); // forwarded to the leader, resolved once applied here
  await converge(cluster, leader);
  show(cluster);

  console.log(`stopping the leader ${leader.id}...`);
  await leader.node.stop();
  const survivors = cluster.filter((r) => r !== leader);
  const next = await leaderOf(survivors);
  console.log(`  ${next.id} leads the other two`);
  await put(next, 'color', 'green');
  await converge(survivors, next);

  console.log('stopping every node, then restarting all three from their directories...');
  await Promise.all(survivors.map((r) => r.node.stop()));
  cluster = await startCluster();
  const again = await leaderOf(cluster);
  await converge(cluster, again);
  show(cluster);
  await Promise.all(cluster.map((r) => r.node.stop()));
  console.log('done: the majority kept the cluster available, and the file store kept its data.');
} finally {
  if (!keep) rmSync(root, { recursive: true, force: true });
}
