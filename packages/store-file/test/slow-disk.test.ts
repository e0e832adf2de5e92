/**
 * "Slow disks must not stop the cluster", on the real file store: three nodes on file stores
 * and the real clock, where one node's fdatasync (the store's own call, intercepted in
 * `fs-io.ts`: an `fdatasync`, or a write on a descriptor opened with O_DSYNC) takes five
 * election timeouts. The leader's: its heartbeats keep leaving, nobody
 * campaigns, and the writes made meanwhile commit once its disk is back. A follower's: the
 * leader keeps leading, and writes commit meanwhile through the other follower.
 *
 * Never asserts on durations (the machine is shared): only on what happened, with generous
 * bounded waits.
 */
import {
  type CommandCodec,
  createRaftNode,
  type Membership,
  MemoryNetwork,
  type RaftEvent,
  type RaftNode,
  type StateMachine,
} from '@raft/core';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { openFileStores } from '../src/index.js';
import { removeDir, tempDir } from './temp-dir.js';

const ELECTION_TIMEOUT_MS = 250;
const FSYNC_DELAY_MS = 5 * ELECTION_TIMEOUT_MS;
const WAIT_BOUND_MS = 20_000;

/**
 * Directories whose syncs wait FSYNC_DELAY_MS, and the files each descriptor was opened on. A
 * sync is an `fdatasync`, or a `write` on a descriptor opened with O_DSYNC (how the log makes
 * an append durable in one call).
 */
const slow = {
  dirs: new Set<string>(),
  fds: new Map<number, { path: string; dsync: boolean }>(),
  delayed: 0,
};
const pendingTimers = new Set<() => void>();

function delayIfSlow(fd: number, sync: boolean): Promise<void> | undefined {
  const file = slow.fds.get(fd);
  if (file === undefined || !(sync || file.dsync)) return undefined;
  if (![...slow.dirs].some((d) => file.path.startsWith(d))) return undefined;
  slow.delayed++;
  return new Promise<void>((resolve) => {
    const done = (): void => {
      pendingTimers.delete(done);
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(done, FSYNC_DELAY_MS);
    pendingTimers.add(done);
  });
}

vi.mock('../src/fs-io.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../src/fs-io.js')>();
  const { constants } = await import('node:fs');
  return {
    ...real,
    openFd: async (path: string, flags: string | number, mode?: number) => {
      const fd = await real.openFd(path, flags, mode);
      const dsync = typeof flags === 'number' && (flags & (constants.O_DSYNC ?? 0)) !== 0;
      slow.fds.set(fd, { path, dsync });
      return fd;
    },
    writeAll: async (fd: number, data: Uint8Array, position: number) => {
      await delayIfSlow(fd, false);
      return real.writeAll(fd, data, position);
    },
    fdatasync: async (fd: number) => {
      await delayIfSlow(fd, true);
      return real.fdatasync(fd);
    },
  };
});

class Counter implements StateMachine<number, number> {
  total = 0;
  apply(n: number): number {
    this.total += n;
    return this.total;
  }
}
const codec: CommandCodec<number> = {
  encode: (n) => new TextEncoder().encode(String(n)),
  decode: (b) => Number(new TextDecoder().decode(b)),
};

interface Member {
  readonly id: string;
  readonly dir: string;
  readonly node: RaftNode<number, number>;
  readonly sm: Counter;
  readonly events: RaftEvent[];
}

const running: Member[][] = [];
afterEach(async () => {
  slow.dirs.clear();
  for (const release of [...pendingTimers]) release();
  for (const nodes of running.splice(0)) await Promise.allSettled(nodes.map((n) => n.node.stop()));
  removeDir();
});

async function waitFor(what: string, predicate: () => boolean): Promise<void> {
  const deadline = Date.now() + WAIT_BOUND_MS;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function cluster(): Promise<{ nodes: Member[]; leader: Member }> {
  const network = new MemoryNetwork();
  const ids = ['a', 'b', 'c'];
  const membership: Membership = { members: ids.map((id) => ({ id, address: id, voter: true })) };
  const nodes = await Promise.all(
    ids.map(async (id) => {
      const dir = tempDir('slow-disk');
      const stores = await openFileStores({ dir });
      const sm = new Counter();
      const node = createRaftNode<number, number>({
        id,
        stateMachine: sm,
        codec,
        stores,
        transport: network.transport(id),
        tickMs: 10,
        heartbeatMs: 30,
        electionTimeoutMs: ELECTION_TIMEOUT_MS,
        requestTimeoutMs: 4 * FSYNC_DELAY_MS,
      });
      const events: RaftEvent[] = [];
      node.subscribe((e) => events.push(e));
      return { id, dir, node, sm, events };
    }),
  );
  running.push(nodes);
  await Promise.all(nodes.map((n) => n.node.start({ bootstrap: membership })));
  let leader: Member | undefined;
  await waitFor('a leader every node follows', () => {
    leader = nodes.find((n) => n.node.status().role === 'leader');
    return (
      leader !== undefined &&
      nodes.every(
        (n) =>
          n.node.status().leaderId === leader?.id &&
          n.node.status().term === leader.node.status().term,
      )
    );
  });
  const l = leader as Member;
  await l.node.propose(1);
  await waitFor('the first write applied everywhere', () => nodes.every((n) => n.sm.total === 1));
  for (const n of nodes) n.events.length = 0;
  return { nodes, leader: l };
}

const elections = (nodes: readonly Member[]): RaftEvent[] =>
  nodes.flatMap((n) =>
    n.events.filter((e) => e.type === 'leaderChanged' || e.type === 'roleChanged'),
  );

describe('a slow fdatasync on a real file store', () => {
  it("the leader's: nobody campaigns, and the writes made meanwhile commit", {
    timeout: 60_000,
  }, async () => {
    const { nodes, leader } = await cluster();
    const term = leader.node.status().term;
    slow.dirs.add(leader.dir);
    const writes = Array.from({ length: 5 }, (_, k) => leader.node.propose(10 + k));
    await waitFor('the slow fsync to start', () => slow.delayed > 0);
    // Three fsync delays' worth of real time: fifteen election timeouts.
    await new Promise((r) => setTimeout(r, 3 * FSYNC_DELAY_MS));
    expect(elections(nodes)).toEqual([]);
    expect(nodes.map((n) => n.node.status().term)).toEqual([term, term, term]);
    slow.dirs.clear();
    const results = await Promise.all(writes);
    expect(results.map((r) => r.result).at(-1)).toBe(1 + 10 + 11 + 12 + 13 + 14);
    await waitFor('the writes applied everywhere', () => nodes.every((n) => n.sm.total === 61));
    expect(elections(nodes)).toEqual([]);
    expect(leader.node.status()).toMatchObject({ role: 'leader', term });
  });

  it("a follower's: the leader keeps leading and writes commit meanwhile", {
    timeout: 60_000,
  }, async () => {
    const { nodes, leader } = await cluster();
    const term = leader.node.status().term;
    const follower = nodes.find((n) => n !== leader) as Member;
    slow.dirs.add(follower.dir);
    for (let k = 0; k < 20; k++) {
      await leader.node.propose(1);
      await new Promise((r) => setTimeout(r, ELECTION_TIMEOUT_MS / 4));
    }
    expect(slow.delayed).toBeGreaterThan(0);
    expect(leader.sm.total).toBe(21);
    expect(elections(nodes)).toEqual([]);
    expect(nodes.map((n) => n.node.status().term)).toEqual([term, term, term]);
    slow.dirs.clear();
    await waitFor('the slow follower catching up', () => follower.sm.total === 21);
    expect(elections(nodes)).toEqual([]);
  });
});
