/**
 * A 3-node Raft cluster in one process: in-memory transport and stores, a replicated key-value
 * map. It elects a leader, replicates a few commands (one of them proposed on a follower, which
 * forwards it), stops the leader, and shows the survivors electing a new one and carrying on.
 *
 *   pnpm example
 */
import type { CommandCodec, Membership, RaftEvent, RaftNode, StateMachine } from '../src/index.js';
import { createRaftNode, MemoryLogStore, MemoryNetwork, MemoryStableStore } from '../src/index.js';

type Command =
  | { readonly op: 'set'; readonly key: string; readonly value: string }
  | { readonly op: 'delete'; readonly key: string };

/** The replicated state: a Map. `apply` is deterministic, as Raft requires. */
class KvStateMachine implements StateMachine<Command, string | null> {
  readonly data = new Map<string, string>();
  apply(command: Command): string | null {
    const previous = this.data.get(command.key) ?? null;
    if (command.op === 'set') this.data.set(command.key, command.value);
    else this.data.delete(command.key);
    return previous;
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const codec: CommandCodec<Command> = {
  encode: (c) => encoder.encode(JSON.stringify(c)),
  decode: (b) => JSON.parse(decoder.decode(b)) as Command,
};

const ids = ['n1', 'n2', 'n3'];
const membership: Membership = {
  members: ids.map((id) => ({ id, address: `memory://${id}`, voter: true })),
};
const network = new MemoryNetwork();
const cluster = ids.map((id) => {
  const stateMachine = new KvStateMachine();
  const node = createRaftNode<Command, string | null>({
    id,
    stateMachine,
    codec,
    logStore: new MemoryLogStore(),
    stableStore: new MemoryStableStore(),
    transport: network.transport(id),
  });
  node.subscribe((event: RaftEvent) => {
    if (event.type === 'roleChanged' && event.role === 'leader')
      console.log(`  ${id} is the leader of term ${event.term}`);
  });
  return { id, node, stateMachine };
});

async function waitForLeader(
  nodes: readonly RaftNode<Command, string | null>[],
  timeoutMs = 5000,
): Promise<RaftNode<Command, string | null>> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const leader = nodes.find((n) => n.status().role === 'leader');
    if (leader) return leader;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`no leader within ${timeoutMs} ms`);
}

console.log('starting 3 nodes...');
await Promise.all(cluster.map((c) => c.node.start({ bootstrap: membership })));
const leader = await waitForLeader(cluster.map((c) => c.node));

const put = async (
  node: RaftNode<Command, string | null>,
  key: string,
  value: string,
): Promise<void> => {
  const { index, term } = await node.propose({ op: 'set', key, value });
  console.log(
    `  ${node.status().id}: set ${key}=${value} committed at index ${index} (term ${term})`,
  );
};
await put(leader, 'color', 'blue');
await put(leader, 'shape', 'circle');
const follower = cluster.find((c) => c.node !== leader) as (typeof cluster)[number];
await put(follower.node, 'size', 'large'); // forwarded to the leader, resolved once applied here

// Wait until every replica has applied everything the leader committed.
const target = leader.status().commitIndex;
while (!cluster.every((c) => c.node.status().appliedIndex >= target))
  await new Promise((r) => setTimeout(r, 5));
for (const c of cluster)
  console.log(`  ${c.id} state: ${JSON.stringify(Object.fromEntries(c.stateMachine.data))}`);

console.log(`stopping the leader ${leader.status().id}...`);
await leader.stop();
const survivors = cluster.filter((c) => c.node !== leader);
const next = await waitForLeader(survivors.map((c) => c.node));
await put(next, 'color', 'green');

await Promise.all(survivors.map((c) => c.node.stop()));
console.log('done: 2 of 3 nodes kept the cluster available, as a majority should.');
