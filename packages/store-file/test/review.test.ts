/**
 * Regression tests from an adversarial review of the file stores: each case failed before the
 * fix it names in its description.
 */
import { readdirSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { LogEntry, Logger, SnapshotMeta } from '@raft/core';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { openFileStores } from '../src/index.js';
import { RECORD_HEADER_BYTES, SEGMENT_HEADER_BYTES } from '../src/record.js';
import { removeDir, tempDir } from './temp-dir.js';

/**
 * What the stores ask of `node:fs`, recorded for the cases that check the order of directory
 * operations and syncs (a power cut, not a SIGKILL, is what loses an entry nobody fsynced), and
 * hooks that run before an operation (to interleave another actor, or to fail it). Every call
 * still goes to the real file system.
 */
const trace = vi.hoisted(() => ({
  /** `mkdir <path>` and `fsync <path>`, in the order they completed. */
  events: [] as string[],
  fdPaths: new Map<number, string>(),
  /** Runs before `fs.promises[op](path, …)`; may throw to fail it. */
  before: null as null | ((op: string, path: string) => Promise<void> | void),
}));

vi.mock('node:fs', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs')>();
  type Callback = (err: NodeJS.ErrnoException | null, value?: unknown) => void;
  const open = (...args: unknown[]): void => {
    const cb = args.pop() as Callback;
    (real.open as (...a: unknown[]) => void)(
      ...args,
      (err: NodeJS.ErrnoException | null, fd: number) => {
        if (err === null) trace.fdPaths.set(fd, String(args[0]));
        cb(err, fd);
      },
    );
  };
  const fsync = (fd: number, cb: Callback): void => {
    real.fsync(fd, (err) => {
      if (err === null) trace.events.push(`fsync ${trace.fdPaths.get(fd)}`);
      cb(err);
    });
  };
  const hooked =
    (op: string) =>
    async (...args: unknown[]): Promise<unknown> => {
      await trace.before?.(op, String(args[0]));
      const result = await (
        real.promises as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>
      )[op]?.(...args);
      if (op === 'mkdir') trace.events.push(`mkdir ${String(args[0])}`);
      return result;
    };
  const promises = { ...real.promises };
  for (const op of [
    'mkdir',
    'readFile',
    'writeFile',
    'rm',
    'unlink',
    'link',
    'rename',
    'readdir',
    'stat',
  ]) {
    (promises as Record<string, unknown>)[op] = hooked(op);
  }
  return { ...real, default: { ...real, open, fsync, promises }, open, fsync, promises };
});

afterEach(() => {
  trace.before = null;
  trace.events.length = 0;
  removeDir();
});

const META: SnapshotMeta = {
  index: 5,
  term: 1,
  membership: { members: [{ id: 'n1', address: 'a', voter: true }] },
};

/** Entries `[from, from + count)` of `size` data bytes each. */
function entries(from: number, count: number, term = 1, size = 20): LogEntry[] {
  return Array.from({ length: count }, (_, k) => ({
    index: from + k,
    term,
    kind: 'command' as const,
    data: new Uint8Array(size).fill((from + k + term) % 251),
  }));
}

/** Bytes one 20-byte entry takes in a segment. */
const RECORD = RECORD_HEADER_BYTES + 20;

function onlySegment(dir: string): string {
  const names = readdirSync(join(dir, 'log')).filter((n) => n.endsWith('.seg'));
  expect(names).toHaveLength(1);
  return join(dir, 'log', names[0] as string);
}

function flipBit(path: string, offset: number): void {
  const buf = readFileSync(path);
  buf[offset] = (buf[offset] as number) ^ 0x10;
  writeFileSync(path, buf);
}

function zero(path: string, from: number, to: number): void {
  const buf = readFileSync(path);
  buf.fill(0, from, to);
  writeFileSync(path, buf);
}

function recordingLogger(): Logger & { warnings: Record<string, unknown>[] } {
  const warnings: Record<string, unknown>[] = [];
  const noop = (): void => {};
  return { warnings, debug: noop, info: noop, error: noop, warn: (f) => warnings.push(f) };
}

/** Opens `dir`, runs `ops` on its log, closes it. */
async function withLog(
  dir: string,
  ops: (log: Awaited<ReturnType<typeof openFileStores>>['logStore']) => Promise<void>,
): Promise<void> {
  const stores = await openFileStores({ dir });
  try {
    await stores.logStore.open();
    await ops(stores.logStore);
  } finally {
    await stores.close();
  }
}

/** Reopens `dir`: the bounds and terms found, or the error open() rejected with. */
async function reopen(
  dir: string,
  logger?: Logger,
): Promise<{ bounds: { firstIndex: number; lastIndex: number }; terms: number[] } | Error> {
  const stores = await openFileStores({ dir, ...(logger === undefined ? {} : { logger }) });
  try {
    const bounds = await stores.logStore.open();
    const all =
      bounds.lastIndex >= bounds.firstIndex
        ? await stores.logStore.read(bounds.firstIndex, bounds.lastIndex + 1)
        : [];
    return { bounds, terms: all.map((e) => e.term) };
  } catch (err) {
    return err as Error;
  } finally {
    await stores.close();
  }
}

describe('torn tail or corruption: records of a later write after the damage are never dropped', () => {
  it('a damaged entry that a later append replaced (same last index) fails to open; it used to drop the acknowledged replacement', async () => {
    const dir = tempDir('review');
    await withLog(dir, async (log) => {
      await log.append(entries(1, 4)); // records 0..3
      await log.append(entries(5, 1)); // record 4: entry 5, term 1
      await log.append(entries(5, 1, 2)); // record 5: entry 5 replaced at term 2, acknowledged
    });
    const seg = onlySegment(dir);
    // Bit rot in the data of the old entry 5 (its append was acknowledged long ago).
    flipBit(seg, SEGMENT_HEADER_BYTES + 4 * RECORD + RECORD_HEADER_BYTES + 3);
    const found = await reopen(dir);
    expect(found).toMatchObject({
      name: 'CorruptLogError',
      file: seg,
      offset: SEGMENT_HEADER_BYTES + 4 * RECORD,
    });
  });

  it('a damaged entry that a compact marker follows fails to open; it used to drop the acknowledged compaction', async () => {
    const dir = tempDir('review');
    await withLog(dir, async (log) => {
      await log.append(entries(1, 3));
      await log.append(entries(4, 3)); // records 3..5, the last one entry 6
      await log.compact(6); // a marker whose index is that append's last entry
    });
    const seg = onlySegment(dir);
    flipBit(seg, SEGMENT_HEADER_BYTES + 5 * RECORD + RECORD_HEADER_BYTES + 1);
    expect(await reopen(dir)).toMatchObject({
      name: 'CorruptLogError',
      offset: SEGMENT_HEADER_BYTES + 5 * RECORD,
    });
  });

  it('after a reopen kept part of a torn append, a later torn append is still dropped as torn (it used to be refused as corruption)', async () => {
    const dir = tempDir('review');
    await withLog(dir, async (log) => {
      await log.append(entries(1, 3));
      await log.append(entries(4, 3)); // entries 4..6 in one append
    });
    const seg = onlySegment(dir);
    // A crash tore the append of 4..6 inside entry 5: the reopen keeps 4 (a prefix of it).
    truncateSync(seg, SEGMENT_HEADER_BYTES + 4 * RECORD + 10);
    await withLog(dir, async (log) => {
      expect(log.bounds()).toEqual({ firstIndex: 1, lastIndex: 4 });
      await log.append(entries(5, 3, 2)); // records 4..6 now: entries 5..7 at term 2
    });
    // This append is torn too: its first sector never reached the disk, its later ones did.
    flipBit(seg, SEGMENT_HEADER_BYTES + 4 * RECORD + RECORD_HEADER_BYTES + 2);
    const logger = recordingLogger();
    const found = await reopen(dir, logger);
    expect(found).toEqual({ bounds: { firstIndex: 1, lastIndex: 4 }, terms: [1, 1, 1, 1] });
    expect(logger.warnings).toHaveLength(1);
  });

  it('a torn last append with holes in the middle and at its end is dropped as torn (it used to be refused as corruption)', async () => {
    const dir = tempDir('review');
    await withLog(dir, async (log) => {
      await log.append(entries(1, 4));
      await log.append(entries(5, 4)); // records 4..7
    });
    const seg = onlySegment(dir);
    const at = (record: number): number => SEGMENT_HEADER_BYTES + record * RECORD;
    // Sectors of the last append: entry 6 and entry 8 never written (zeros), entry 7 written.
    zero(seg, at(5), at(6));
    zero(seg, at(7), at(8));
    const found = await reopen(dir);
    expect(found).toEqual({ bounds: { firstIndex: 1, lastIndex: 5 }, terms: [1, 1, 1, 1, 1] });
    expect(statSync(seg).size).toBe(at(5));
  });
});

describe('a directory the stores create is durable before they rely on it', () => {
  /** The directories fsynced after the last `mkdir <path>`. */
  const syncedAfterMkdir = (path: string): string[] => {
    const at = trace.events.lastIndexOf(`mkdir ${path}`);
    expect(at).toBeGreaterThanOrEqual(0);
    return trace.events.slice(at + 1).flatMap((e) => (e.startsWith('fsync ') ? [e.slice(6)] : []));
  };

  it('the data directory, log/ and snapshots/ each have their entry fsynced in their parent (they never had)', async () => {
    const root = tempDir('review');
    const dir = join(root, 'nodes', 'n1');
    const stores = await openFileStores({ dir });
    try {
      // The data directory and the parent it needed, created by openFileStores.
      expect(syncedAfterMkdir(dir)).toEqual(expect.arrayContaining([dirname(dir), root]));
      await stores.logStore.open();
      expect(syncedAfterMkdir(join(dir, 'log'))).toContain(dir);
      const sink = await stores.snapshotStore.create(META);
      expect(syncedAfterMkdir(join(dir, 'snapshots'))).toContain(dir);
      await sink.abort();
    } finally {
      await stores.close();
    }
  });
});
