/**
 * What the file stores add to the conformance suites: options, the directory lock (in this
 * process and against another), segments and their deletion, the checksum fallback, and a real
 * cluster of RaftNodes on file stores, restarted from disk.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type CommandCodec,
  createRaftNode,
  type LogEntry,
  type Membership,
  MemoryNetwork,
  RaftError,
  type RaftNode,
  type StateMachine,
} from '@raft/core';
import { afterEach, describe, expect, it } from 'vitest';
import { crc32, crc32Fallback } from '../src/crc32.js';
import { DirectoryLockedError, type FileStores, openFileStores } from '../src/index.js';
import { removeDir, tempDir } from './temp-dir.js';

const packageDir = fileURLToPath(new URL('..', import.meta.url));
const source = fileURLToPath(new URL('../src/index.ts', import.meta.url));

const opened: FileStores[] = [];
async function open(dir: string, extra: { segmentBytes?: number } = {}): Promise<FileStores> {
  const stores = await openFileStores({ dir, ...extra });
  opened.push(stores);
  return stores;
}

afterEach(async () => {
  for (const s of opened.splice(0)) await s.close();
  removeDir();
});

function entries(from: number, count: number, term = 1, size = 100): LogEntry[] {
  return Array.from({ length: count }, (_, k) => ({
    index: from + k,
    term,
    kind: 'command' as const,
    data: new Uint8Array(size).fill((from + k) % 256),
  }));
}

describe('options', () => {
  it.each([
    [{}, 'dir'],
    [{ dir: '' }, 'dir'],
    [{ dir: '/tmp/x', segmentBytes: 100 }, 'segmentBytes'],
    [{ dir: '/tmp/x', segmentBytes: 1.5e6 + 0.5 }, 'segmentBytes'],
    [{ dir: '/tmp/x', retainSnapshots: 0 }, 'retainSnapshots'],
    [{ dir: '/tmp/x', logger: {} }, 'logger'],
  ])('%j is refused naming %s', async (options, field) => {
    const err = await openFileStores(options as never).catch((e: unknown) => e);
    expect(RaftError.is(err, 'INVALID_CONFIG')).toBe(true);
    expect(err).toMatchObject({ field });
  });
});

describe('the directory lock', () => {
  it('a second open in this process fails naming this pid; close releases it', async () => {
    const dir = tempDir('lock');
    const first = await open(dir);
    const err = await openFileStores({ dir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DirectoryLockedError);
    expect(RaftError.is(err, 'STORAGE')).toBe(true);
    expect(err).toMatchObject({ holderPid: process.pid });
    await first.close();
    await first.close(); // idempotent
    expect(existsSync(join(dir, 'LOCK'))).toBe(false);
    await open(dir);
  });

  it('another process holding it: the error names its pid; once it is killed, the lock is taken over', async () => {
    const dir = tempDir('lock');
    const script = `
      const { openFileStores } = await import(${JSON.stringify(source)});
      await openFileStores({ dir: ${JSON.stringify(dir)} });
      process.stdout.write('locked\\n');
      setInterval(() => {}, 1000);
    `;
    const child = spawn(
      process.execPath,
      ['--conditions=@raft/source', '--import', 'tsx', '--input-type=module', '-e', script],
      { cwd: packageDir, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('the child did not lock in 20 s')), 20_000);
        child.stdout.on('data', (b: Buffer) => {
          if (b.toString().includes('locked')) {
            clearTimeout(timer);
            resolve();
          }
        });
        child.on('exit', (code) => reject(new Error(`the child exited with ${code}`)));
      });
      const err = await openFileStores({ dir }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DirectoryLockedError);
      expect(err).toMatchObject({ holderPid: child.pid });
      expect((err as Error).message).toContain(String(child.pid));
    } finally {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
    }
    // The holder died without closing: its LOCK is still there, and it is stale.
    expect(readFileSync(join(dir, 'LOCK'), 'utf8')).toContain(String(child.pid));
    const stores = await open(dir);
    await stores.logStore.open();
    expect(readFileSync(join(dir, 'LOCK'), 'utf8')).toContain(String(process.pid));
  });

  it('a lock naming another host is never taken over', async () => {
    const dir = tempDir('lock');
    writeFileSync(join(dir, 'LOCK'), '4242 some-other-host\n');
    const err = await openFileStores({ dir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DirectoryLockedError);
    expect((err as Error).message).toContain('some-other-host');
  });
});

describe('segments', () => {
  it('roll over at segmentBytes; compaction deletes the ones that hold nothing live', async () => {
    const dir = tempDir('segments');
    const stores = await open(dir, { segmentBytes: 4096 });
    await stores.logStore.open();
    for (let b = 0; b < 50; b++) await stores.logStore.append(entries(1 + b * 10, 10));
    const count = (): number =>
      readdirSync(join(dir, 'log')).filter((n) => n.endsWith('.seg')).length;
    const before = count();
    expect(before).toBeGreaterThan(10);
    await stores.logStore.compact(400);
    expect(count()).toBeLessThan(before / 4);
    expect(stores.logStore.bounds()).toEqual({ firstIndex: 401, lastIndex: 500 });
    expect((await stores.logStore.read(401, 501)).map((e) => e.index)[0]).toBe(401);
    // Past the end: the log is empty, and the next append follows the compaction point.
    await stores.logStore.compact(700);
    expect(count()).toBe(1);
    await stores.logStore.append(entries(701, 3, 2));
    await stores.close();
    const again = await open(dir, { segmentBytes: 4096 });
    expect(await again.logStore.open()).toEqual({ firstIndex: 701, lastIndex: 703 });
    expect((await again.logStore.read(701, 704)).map((e) => e.term)).toEqual([2, 2, 2]);
  });

  it('a suffix replacement across segments reads back the new entries', async () => {
    const dir = tempDir('segments');
    const stores = await open(dir, { segmentBytes: 4096 });
    await stores.logStore.open();
    for (let b = 0; b < 20; b++) await stores.logStore.append(entries(1 + b * 10, 10));
    await stores.logStore.append(entries(55, 30, 3));
    await stores.logStore.truncate(80);
    await stores.close();
    const again = await open(dir, { segmentBytes: 4096 });
    expect(await again.logStore.open()).toEqual({ firstIndex: 1, lastIndex: 79 });
    const all = await again.logStore.read(1, 80);
    expect(all.map((e) => e.term)).toEqual([...Array(54).fill(1), ...Array(25).fill(3)]);
    expect(all[60]?.data[0]).toBe(61);
  });

  it('counts one sync per append', async () => {
    const stores = await open(tempDir('segments'));
    await stores.logStore.open();
    const before = stores.logStore.stats().syncs;
    for (let b = 0; b < 10; b++) await stores.logStore.append(entries(1 + b * 64, 64));
    expect(stores.logStore.stats()).toMatchObject({
      appends: 10,
      entriesAppended: 640,
      syncs: before + 10,
    });
  });
});

describe('the checksum', () => {
  it('the fallback computes what zlib computes', () => {
    const data = new Uint8Array(100_000);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7919) & 0xff;
    for (const n of [0, 1, 3, 17, 4096, 100_000]) {
      expect(crc32Fallback(data.subarray(0, n))).toBe(crc32(data.subarray(0, n)));
    }
    expect(crc32Fallback(data.subarray(10), crc32Fallback(data.subarray(0, 10)))).toBe(crc32(data));
    expect(crc32(new TextEncoder().encode('123456789'))).toBe(0xcbf43926);
  });
});

// ------------------------------------------------------------------------ a cluster on disk

class Counter implements StateMachine<number, number> {
  total = 0;
  apply(n: number): number {
    this.total += n;
    return this.total;
  }
  snapshot(): Uint8Array[] {
    return [new TextEncoder().encode(String(this.total))];
  }
  async restore(chunks: AsyncIterable<Uint8Array>): Promise<void> {
    let text = '';
    for await (const c of chunks) text += new TextDecoder().decode(c);
    this.total = Number(text);
  }
}

const numberCodec: CommandCodec<number> = {
  encode: (n) => new TextEncoder().encode(String(n)),
  decode: (b) => Number(new TextDecoder().decode(b)),
};

describe('a 3-node cluster on file stores', () => {
  it('commits, stops, restarts every node from its directory, and carries on', {
    timeout: 60_000,
  }, async () => {
    const ids = ['n1', 'n2', 'n3'];
    const dirs = ids.map(() => tempDir('cluster'));
    const membership: Membership = {
      members: ids.map((id) => ({ id, address: id, voter: true })),
    };
    const boot = async (network: MemoryNetwork) =>
      Promise.all(
        ids.map(async (id, k) => {
          const stores = await open(dirs[k] as string, { segmentBytes: 8192 });
          const sm = new Counter();
          const node = createRaftNode<number, number>({
            id,
            stateMachine: sm,
            codec: numberCodec,
            stores,
            transport: network.transport(id),
            tickMs: 10,
            electionTimeoutMs: 200,
            heartbeatMs: 40,
            snapshotThreshold: 50,
          });
          return { node, sm, stores };
        }),
      );
    const leaderOf = async (nodes: RaftNode<number, number>[]) => {
      for (let k = 0; k < 1000; k++) {
        const leader = nodes.find((n) => n.status().role === 'leader');
        if (leader !== undefined) return leader;
        await new Promise((r) => setTimeout(r, 10));
      }
      throw new Error('no leader in 10 s');
    };

    const first = await boot(new MemoryNetwork());
    await Promise.all(first.map((c) => c.node.start({ bootstrap: membership })));
    const leader = await leaderOf(first.map((c) => c.node));
    const results = await Promise.all(Array.from({ length: 200 }, (_, k) => leader.propose(k + 1)));
    expect(Math.max(...results.map((r) => r.result))).toBe(20_100);
    for (let k = 0; k < 500 && first.some((c) => c.node.status().snapshotIndex === 0); k++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    // stop() closes the stores and releases each directory's lock.
    for (const c of first) await c.node.stop();
    for (const dir of dirs) expect(existsSync(join(dir, 'LOCK'))).toBe(false);
    // Snapshots were taken and the logs compacted behind them.
    for (const dir of dirs) {
      expect(readdirSync(join(dir, 'snapshots')).some((n) => n.startsWith('snap-'))).toBe(true);
    }

    const second = await boot(new MemoryNetwork());
    await Promise.all(second.map((c) => c.node.start()));
    const again = await leaderOf(second.map((c) => c.node));
    const next = await again.propose(1000);
    expect(next.result).toBe(21_100);
    for (let k = 0; k < 500 && second.some((c) => c.sm.total !== 21_100); k++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(second.map((c) => c.sm.total)).toEqual([21_100, 21_100, 21_100]);
    for (const c of second) await c.node.stop();
  });
});

describe('spreading the bundle', () => {
  it('{ ...stores } holds just the three stores; a node stopped on them releases the directory', async () => {
    const dir = tempDir('spread');
    const stores = await openFileStores({ dir });
    expect(Object.keys({ ...stores }).sort()).toEqual(['logStore', 'snapshotStore', 'stableStore']);
    expect(typeof stores.close).toBe('function');
    expect(stores.dir).toBe(dir);
    const network = new MemoryNetwork();
    const node = createRaftNode<number, number>({
      id: 'n1',
      stateMachine: new Counter(),
      codec: numberCodec,
      ...stores,
      transport: network.transport('n1'),
      tickMs: 10,
      electionTimeoutMs: 100,
      heartbeatMs: 30,
    });
    await node.start({ bootstrap: { members: [{ id: 'n1', address: 'n1', voter: true }] } });
    await node.waitForLeader({ timeoutMs: 5000 });
    expect((await node.propose(5)).result).toBe(5);
    await node.stop();
    // The node closed the three stores one by one: the bundle released the lock by itself.
    for (let k = 0; k < 100 && existsSync(join(dir, 'LOCK')); k++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(existsSync(join(dir, 'LOCK'))).toBe(false);
    const again = await open(dir);
    expect((await again.logStore.open()).lastIndex).toBeGreaterThanOrEqual(3);
  });
});
