// Three Raft nodes in one process on @raft/core, @raft/transport-tcp and @raft/store-file, with a
// state machine of your own: a replicated counter. Run: pnpm --filter @raft/examples custom-stack
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRaftNode, jsonCodec, type StateMachine } from '@raft/core';
import { openFileStores } from '@raft/store-file';
import { createTcpTransport } from '@raft/transport-tcp';

type Add = { readonly add: number };

/** The replicated state. `apply` is deterministic; snapshots let the log be compacted. */
class Counter implements StateMachine<Add, number> {
  total = 0;
  apply({ add }: Add): number {
    this.total += add;
    return this.total;
  }
  snapshot(): Uint8Array[] {
    return [Buffer.from(JSON.stringify(this.total))];
  }
  async restore(chunks: AsyncIterable<Uint8Array>): Promise<void> {
    const parts: Uint8Array[] = [];
    for await (const chunk of chunks) parts.push(chunk);
    this.total = JSON.parse(Buffer.concat(parts).toString('utf8')) as number;
  }
}

const root = mkdtempSync(join(tmpdir(), 'raft-custom-stack-'));
const members = [1, 2, 3].map((i) => ({ id: `n${i}`, address: `127.0.0.${i}:7200`, voter: true }));
const nodes = await Promise.all(
  members.map(async ({ id, address }) => {
    const counter = new Counter();
    const node = createRaftNode<Add, number>({
      id,
      stateMachine: counter,
      codec: jsonCodec<Add>(),
      stores: await openFileStores({ dir: join(root, id) }), // log, hard state and snapshots
      transport: createTcpTransport({ id, listen: address, secret: 'your own shared secret' }),
      snapshotThreshold: 4, // a snapshot every 4 applied entries
    });
    return { id, node, counter };
  }),
);
try {
  await Promise.all(nodes.map(({ node }) => node.start({ bootstrap: { members } })));
  await Promise.all(nodes.map(({ node }) => node.waitForLeader({ timeoutMs: 10_000 })));
  for (const [i, { id, node }] of [...nodes, ...nodes, ...nodes].entries()) {
    const { result, index } = await node.propose({ add: i + 1 }); // forwarded by followers
    console.log(`${id}: add ${i + 1} -> total ${result} (entry ${index})`);
  }
  for (const { id, node, counter } of nodes) {
    await node.read({ consistency: 'linearizable' }); // applied every write completed before it
    console.log(`${id} reads ${counter.total}, snapshot at ${node.status().snapshotIndex}`);
  }
} finally {
  await Promise.all(nodes.map(({ node }) => node.stop()));
  rmSync(root, { recursive: true, force: true });
}
