/**
 * Regression tests from an adversarial review of the file stores: each case failed before the
 * fix it names in its description.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import {
  existsSync,
  linkSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
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
  /** Whether `fs.close` of a descriptor opened on `path` reports EIO (after really closing it). */
  failClose: null as null | ((path: string) => boolean),
  /**
   * A promise that `fs.write` to a descriptor opened on `path` waits for before it runs (a write
   * queued behind a stalled disk), or null to run it at once.
   */
  holdWrite: null as null | ((path: string) => Promise<void> | null),
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
  const close = (fd: number, cb: Callback): void => {
    const path = trace.fdPaths.get(fd) ?? '';
    real.close(fd, (err) => {
      if (err === null && trace.failClose?.(path) === true) {
        cb(Object.assign(new Error(`EIO: i/o error, close '${path}'`), { code: 'EIO' }));
      } else cb(err);
    });
  };
  const write = (fd: number, ...args: unknown[]): void => {
    const hold = trace.holdWrite?.(trace.fdPaths.get(fd) ?? '') ?? null;
    const run = (): void => (real.write as (...a: unknown[]) => void)(fd, ...args);
    if (hold === null) run();
    else void hold.then(run);
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
  const mocked = { open, fsync, close, write, promises };
  return { ...real, default: { ...real, ...mocked }, ...mocked };
});

afterEach(() => {
  trace.before = null;
  trace.failClose = null;
  trace.holdWrite = null;
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

// ------------------------------------------------------------------------ the directory lock

const packageDir = fileURLToPath(new URL('..', import.meta.url));
const source = fileURLToPath(new URL('../src/index.ts', import.meta.url));

/** Resolves with the first line of the child's stdout that matches; bounded. */
function lineFrom(child: ChildProcess, match: RegExp, what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(
      () => done(new Error(`no ${what} from the child in 20 s: ${err}`)),
      20_000,
    );
    const onData = (b: Buffer): void => {
      out += b.toString();
      const line = out.split('\n').find((l) => match.test(l));
      if (line !== undefined) done(null, line);
    };
    const onErr = (b: Buffer): void => {
      err += b.toString();
    };
    const onExit = (code: number | null): void =>
      done(new Error(`the child exited (${code}) before ${what}: ${err}`));
    const done = (e: Error | null, line?: string): void => {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.stderr?.off('data', onErr);
      child.off('exit', onExit);
      if (e === null) resolve(line as string);
      else reject(e);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onErr);
    child.on('exit', onExit);
  });
}

/**
 * A child that opens `dir` and pauses once, until it reads a line on stdin: right after it has
 * read the LOCK file (`after-read`), or right before its first change to the directory after
 * that read (`before-act`: removing the lock, claiming a takeover). It prints `paused`, then
 * `locked` or `refused <error name> <holderPid>`.
 */
function pausingOpener(dir: string, mode: 'after-read' | 'before-act'): ChildProcess {
  const script = `
    import fs from 'node:fs';
    const p = fs.promises;
    const go = new Promise((resolve) => process.stdin.once('data', resolve));
    let seen = false;
    let paused = false;
    const pause = async () => {
      paused = true;
      process.stdout.write('paused\\n');
      await go;
    };
    const readFile = p.readFile;
    p.readFile = async function (path, ...rest) {
      const result = await readFile.call(this, path, ...rest);
      if (String(path).endsWith('/LOCK') && !seen) {
        seen = true;
        if (${JSON.stringify(mode)} === 'after-read') await pause();
      }
      return result;
    };
    for (const name of ['rm', 'unlink', 'link', 'writeFile', 'rename']) {
      const real = p[name];
      p[name] = async function (...args) {
        if (seen && !paused && ${JSON.stringify(mode)} === 'before-act') await pause();
        return real.apply(this, args);
      };
    }
    const { openFileStores } = await import(${JSON.stringify(source)});
    try {
      await openFileStores({ dir: ${JSON.stringify(dir)} });
      process.stdout.write('locked\\n');
    } catch (err) {
      process.stdout.write('refused ' + err.name + ' ' + err.holderPid + '\\n');
    }
    process.exit(0);
  `;
  return spawn(
    process.execPath,
    ['--conditions=@raft/source', '--import', 'tsx', '--input-type=module', '-e', script],
    { cwd: packageDir, stdio: ['pipe', 'pipe', 'pipe'] },
  );
}

/** A pid that no longer runs. */
function deadPid(): number {
  return spawnSync(process.execPath, ['-e', '']).pid as number;
}

/** A child that imports the stores, prints `ready`, opens `dir` on a stdin line and holds it. */
function racingOpener(dir: string): ChildProcess {
  const script = `
    const { openFileStores } = await import(${JSON.stringify(source)});
    process.stdout.write('ready\\n');
    await new Promise((resolve) => process.stdin.once('data', resolve));
    try {
      await openFileStores({ dir: ${JSON.stringify(dir)} });
      process.stdout.write('locked ' + process.pid + '\\n');
    } catch (err) {
      process.stdout.write('refused ' + err.name + ' ' + err.holderPid + '\\n');
    }
    setInterval(() => {}, 1000);
  `;
  return spawn(
    process.execPath,
    ['--conditions=@raft/source', '--import', 'tsx', '--input-type=module', '-e', script],
    { cwd: packageDir, stdio: ['pipe', 'pipe', 'pipe'] },
  );
}

describe('the directory lock', () => {
  it('six processes racing to take over one stale lock: exactly one holds it, the others name it', {
    timeout: 60_000,
  }, async () => {
    const dir = tempDir('review');
    writeFileSync(join(dir, 'LOCK'), `${deadPid()} ${hostname()}\n`);
    const children = Array.from({ length: 6 }, () => racingOpener(dir));
    try {
      await Promise.all(children.map((c) => lineFrom(c, /^ready$/, 'ready')));
      const verdicts = children.map((c) => lineFrom(c, /^(locked|refused)/, 'verdict'));
      for (const c of children) c.stdin?.write('go\n');
      const lines = await Promise.all(verdicts);
      const winners = lines.filter((l) => l.startsWith('locked'));
      expect(winners).toHaveLength(1);
      const winner = (winners[0] as string).split(' ')[1];
      expect(lines.filter((l) => l !== winners[0])).toEqual(
        Array(5).fill(`refused DirectoryLockedError ${winner}`),
      );
      expect(readFileSync(join(dir, 'LOCK'), 'utf8')).toBe(`${winner} ${hostname()}\n`);
    } finally {
      await Promise.all(
        children.map((c) => {
          if (c.exitCode !== null || c.signalCode !== null) return undefined;
          const exited = new Promise((r) => c.once('exit', r));
          c.kill('SIGKILL');
          return exited;
        }),
      );
    }
  });

  it('failing to delete its temporary file neither fails the open nor leaves the directory held (it did both)', async () => {
    const dir = tempDir('review');
    let failed = 0;
    trace.before = (op, path) => {
      if (op === 'rm' && /\/\.LOCK\.\d+\./.test(path) && failed === 0) {
        failed++;
        throw Object.assign(new Error('EBUSY: resource busy'), { code: 'EBUSY' });
      }
    };
    const stores = await openFileStores({ dir });
    trace.before = null;
    expect(failed).toBe(1);
    await stores.close();
    expect(existsSync(join(dir, 'LOCK'))).toBe(false);
    // Nothing is left held: this process opens it again, and the next open deletes the leftover.
    const again = await openFileStores({ dir });
    await again.close();
    expect(readdirSync(dir).filter((n) => n.includes('LOCK'))).toEqual([]);
  });

  it('what openers that died left (temporary files, a takeover they never finished) neither blocks the lock nor stays', async () => {
    const dir = tempDir('review');
    const host = hostname();
    writeFileSync(join(dir, 'LOCK'), `${deadPid()} ${host}\n`);
    const ino = statSync(join(dir, 'LOCK'), { bigint: true }).ino;
    // A taker that died after claiming the takeover of that stale lock, and a temporary file.
    writeFileSync(join(dir, `LOCK.takeover-${ino}`), `${deadPid()} ${host}\n`);
    writeFileSync(join(dir, `.LOCK.${deadPid()}.1234`), `x ${host}\n`);
    const stores = await openFileStores({ dir });
    try {
      expect(readFileSync(join(dir, 'LOCK'), 'utf8')).toBe(`${process.pid} ${host}\n`);
      expect(readdirSync(dir).filter((n) => n.includes('LOCK'))).toEqual(['LOCK']);
    } finally {
      await stores.close();
    }
  });

  it('close() leaves alone a LOCK that is no longer its own (it deleted whatever was there)', async () => {
    const dir = tempDir('review');
    const stores = await openFileStores({ dir });
    // Someone deleted the lock by hand and another process (here: our parent) locked the directory.
    rmSync(join(dir, 'LOCK'));
    writeFileSync(join(dir, '.other'), `${process.ppid} ${hostname()}\n`);
    linkSync(join(dir, '.other'), join(dir, 'LOCK'));
    await stores.close();
    expect(readFileSync(join(dir, 'LOCK'), 'utf8')).toBe(`${process.ppid} ${hostname()}\n`);
  });

  it.each(['after-read', 'before-act'] as const)(
    'two openers taking over one stale lock: only one gets it (the other pauses %s); both used to',
    { timeout: 30_000 },
    async (mode) => {
      const dir = tempDir('review');
      writeFileSync(join(dir, 'LOCK'), `${deadPid()} ${hostname()}\n`);
      const child = pausingOpener(dir, mode);
      try {
        await lineFrom(child, /^paused$/, 'pause');
        // The child judged the lock stale; this process takes it over meanwhile.
        const stores = await openFileStores({ dir });
        try {
          const verdict = lineFrom(child, /^(locked|refused)/, 'verdict');
          child.stdin?.write('go\n');
          expect(await verdict).toBe(`refused DirectoryLockedError ${process.pid}`);
          expect(readFileSync(join(dir, 'LOCK'), 'utf8')).toBe(`${process.pid} ${hostname()}\n`);
        } finally {
          await stores.close();
        }
      } finally {
        if (child.exitCode === null && child.signalCode === null) {
          const exited = new Promise((r) => child.once('exit', r));
          child.kill('SIGKILL');
          await exited;
        }
      }
    },
  );
});

// ------------------------------------------------------------------------ the snapshot store

describe('the snapshot store', () => {
  it('open() racing a commit that prunes the snapshot it picked returns the newer one (it failed with CorruptLogError)', async () => {
    const dir = tempDir('review');
    const stores = await openFileStores({ dir, retainSnapshots: 1 });
    const commit = async (index: number, fill: number): Promise<void> => {
      const sink = await stores.snapshotStore.create({ ...META, index });
      await sink.write(new Uint8Array(100).fill(fill));
      await sink.commit();
    };
    try {
      await commit(5, 1);
      let raced = false;
      // A transfer to a follower opens the latest snapshot just as the node commits its next one.
      trace.before = async (op, path) => {
        if (op === 'readFile' && /snap-\d+-\d+\/meta\.json$/.test(path) && !raced) {
          raced = true;
          await commit(9, 2);
        }
      };
      const source = await stores.snapshotStore.open();
      expect(raced).toBe(true);
      expect(source?.meta.index).toBe(9);
      expect(await source?.read(0, 100)).toEqual(new Uint8Array(100).fill(2));
      await source?.close();
    } finally {
      trace.before = null;
      await stores.close();
    }
  });

  it('a committed snapshot whose data file is missing fails open() with CorruptLogError naming it', async () => {
    const dir = tempDir('review');
    const stores = await openFileStores({ dir });
    try {
      const sink = await stores.snapshotStore.create(META);
      await sink.write(new Uint8Array(10));
      await sink.commit();
      const snap = readdirSync(join(dir, 'snapshots')).find((n) => n.startsWith('snap-')) as string;
      rmSync(join(dir, 'snapshots', snap, 'data'));
      await expect(stores.snapshotStore.open()).rejects.toMatchObject({
        name: 'CorruptLogError',
        file: join(dir, 'snapshots', snap, 'data'),
      });
    } finally {
      await stores.close();
    }
  });
});

// ------------------------------------------------------------------------ the bundle

describe('openFileStores().close()', () => {
  it('closes every store before releasing the lock even when closing the log fails (the others stayed open, writing into a released directory)', async () => {
    const dir = tempDir('review');
    const stores = await openFileStores({ dir });
    await stores.logStore.open();
    await stores.logStore.append(entries(1, 3));
    // (A new segment's descriptor was opened under its temporary name, before the rename.)
    trace.failClose = (path) => /\.seg(\.tmp)?$/.test(path);
    await expect(stores.close()).rejects.toMatchObject({ code: 'STORAGE' });
    trace.failClose = null;
    expect(existsSync(join(dir, 'LOCK'))).toBe(false);
    await expect(
      stores.stableStore.save({ term: 2, votedFor: null, commit: 0 }),
    ).rejects.toMatchObject({
      code: 'STORAGE',
    });
    await expect(stores.snapshotStore.create(META)).rejects.toMatchObject({ code: 'STORAGE' });
    expect(existsSync(join(dir, 'state'))).toBe(false);
  });
});

// ------------------------------------------------------------------------ appends

describe('append() refuses what recovery could not read back', () => {
  it.each([
    ['a term that is not an integer', { index: 2, term: 1.5 }],
    ['an index that is not an integer', { index: 1.5, term: 1 }],
  ])(
    '%s: rejected, nothing stored (it was acknowledged, then dropped or fatal at the next open)',
    async (_, bad) => {
      const dir = tempDir('review');
      await withLog(dir, async (log) => {
        await log.append(entries(1, 1));
        const entry: LogEntry = { ...bad, kind: 'command', data: new Uint8Array(3) };
        await expect(log.append([entry])).rejects.toMatchObject({ code: 'STORAGE' });
        // Refused before writing: the store goes on.
        expect(log.bounds()).toEqual({ firstIndex: 1, lastIndex: 1 });
        await log.append(entries(2, 2, 2));
      });
      expect(await reopen(dir)).toEqual({
        bounds: { firstIndex: 1, lastIndex: 3 },
        terms: [1, 2, 2],
      });
    },
  );
});

// ------------------------------------------------------------------------ options

describe('options', () => {
  it.each([2 ** 31, 4 * 2 ** 30])(
    'segmentBytes %d is refused naming the field: open() reads a segment whole, and Node cannot read a file past 2 GiB (it was accepted, and the log could not be reopened once it grew that large)',
    async (segmentBytes) => {
      const err = await openFileStores({ dir: tempDir('review'), segmentBytes }).catch(
        (e: unknown) => e,
      );
      expect(err).toMatchObject({ code: 'INVALID_CONFIG', field: 'segmentBytes' });
    },
  );

  it('segmentBytes of 1 GiB is still accepted', async () => {
    const stores = await openFileStores({ dir: tempDir('review'), segmentBytes: 2 ** 30 });
    await stores.close();
  });
});

// ------------------------------------------------------------------------ long-lived logs

describe('segment numbers past 2^32 (a long-lived log with small segments)', () => {
  it.each([2 ** 32, 2 ** 32 + 1, 2 ** 33 + 7])(
    'segment %d opens, reads, rolls over and compacts (its number wrapped in the index: "missing" or "not open")',
    async (seq) => {
      const dir = tempDir('review');
      await withLog(dir, async (log) => {
        await log.append(entries(1, 3));
      });
      const { renameSync } = await import('node:fs');
      renameSync(onlySegment(dir), join(dir, 'log', `${String(seq).padStart(16, '0')}.seg`));
      const stores = await openFileStores({ dir, segmentBytes: 4096 });
      try {
        expect(await stores.logStore.open()).toEqual({ firstIndex: 1, lastIndex: 3 });
        expect((await stores.logStore.read(1, 4)).map((e) => e.index)).toEqual([1, 2, 3]);
        for (let b = 0; b < 10; b++) await stores.logStore.append(entries(4 + b * 20, 20, 2));
        expect(stores.logStore.stats().segments).toBeGreaterThan(2);
        expect((await stores.logStore.read(1, 204)).map((e) => e.index)).toEqual(
          Array.from({ length: 203 }, (_, k) => k + 1),
        );
        await stores.logStore.compact(150);
        expect((await stores.logStore.read(151, 204)).length).toBe(53);
      } finally {
        await stores.close();
      }
      const found = await reopen(dir);
      expect(found).toMatchObject({ bounds: { firstIndex: 151, lastIndex: 203 } });
    },
  );
});

// ------------------------------------------------------------------------ closing under a write

/** Holds the next write to a file whose path matches: `held` once it waits, `release()` it. */
function holdNextWrite(match: RegExp): { held: Promise<void>; release: () => void } {
  let release!: () => void;
  let signal!: () => void;
  const gate = new Promise<void>((r) => {
    release = r;
  });
  const held = new Promise<void>((r) => {
    signal = r;
  });
  trace.holdWrite = (path) => {
    if (!match.test(path)) return null;
    trace.holdWrite = null;
    signal();
    return gate;
  };
  return { held, release };
}

/** Whether `promise` settles within `ms` (it must not, while what it waits for is held). */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let settled = false;
  void promise.then(
    () => {
      settled = true;
    },
    () => {
      settled = true;
    },
  );
  await new Promise((r) => setTimeout(r, ms));
  return settled;
}

describe('closing while a write is in flight (a stalled disk: the node stops after a bounded wait)', () => {
  it('the log store waits for the append before it closes the segment (it closed the descriptor under the queued write)', async () => {
    const dir = tempDir('review');
    const stores = await openFileStores({ dir });
    await stores.logStore.open();
    await stores.logStore.append(entries(1, 2));
    const write = holdNextWrite(/\.seg(\.tmp)?$/);
    const append = stores.logStore.append(entries(3, 2));
    await write.held;
    const closing = stores.close();
    expect(await settlesWithin(closing, 200)).toBe(false);
    // The lock is still held: the directory is still being written.
    expect(existsSync(join(dir, 'LOCK'))).toBe(true);
    write.release();
    await append;
    await closing;
    expect(await reopen(dir)).toEqual({
      bounds: { firstIndex: 1, lastIndex: 4 },
      terms: [1, 1, 1, 1],
    });
  });

  it('a snapshot sink: abort() waits for the chunk being written before it closes and deletes the file', async () => {
    const dir = tempDir('review');
    const stores = await openFileStores({ dir });
    try {
      const sink = await stores.snapshotStore.create(META);
      await sink.write(new Uint8Array(100).fill(1));
      const write = holdNextWrite(/\/data$/);
      const chunk = sink.write(new Uint8Array(100).fill(2));
      await write.held;
      const abort = sink.abort();
      expect(await settlesWithin(abort, 200)).toBe(false);
      write.release();
      await chunk;
      await abort;
      expect(readdirSync(join(dir, 'snapshots'))).toEqual([]);
      expect(await stores.snapshotStore.open()).toBeNull();
    } finally {
      await stores.close();
    }
  });

  it('closing the stores waits for a snapshot commit in flight before the lock goes (the commit went on in a released directory)', async () => {
    const dir = tempDir('review');
    const stores = await openFileStores({ dir });
    const sink = await stores.snapshotStore.create(META);
    await sink.write(new Uint8Array(100).fill(1));
    const write = holdNextWrite(/\/meta\.json$/);
    const commit = sink.commit();
    await write.held;
    const closing = stores.close();
    expect(await settlesWithin(closing, 200)).toBe(false);
    expect(existsSync(join(dir, 'LOCK'))).toBe(true);
    write.release();
    // The store closed under the commit: it fails, and leaves nothing behind.
    await expect(commit).rejects.toMatchObject({ code: 'STORAGE' });
    await closing;
    expect(existsSync(join(dir, 'LOCK'))).toBe(false);
    expect(readdirSync(join(dir, 'snapshots'))).toEqual([]);
  });

  it('closing the stores waits for a hard-state save in flight before the lock goes (the save renamed over state in a released directory)', async () => {
    const dir = tempDir('review');
    const stores = await openFileStores({ dir });
    await stores.stableStore.save({ term: 1, votedFor: null, commit: 0 });
    const write = holdNextWrite(/\/state\.tmp$/);
    const save = stores.stableStore.save({ term: 2, votedFor: 'n1', commit: 0 });
    await write.held;
    const closing = stores.close();
    expect(await settlesWithin(closing, 200)).toBe(false);
    expect(existsSync(join(dir, 'LOCK'))).toBe(true);
    write.release();
    await save;
    await closing;
    expect(existsSync(join(dir, 'LOCK'))).toBe(false);
    const again = await openFileStores({ dir });
    try {
      expect(await again.stableStore.load()).toEqual({ term: 2, votedFor: 'n1', commit: 0 });
    } finally {
      await again.close();
    }
  });
});

// ------------------------------------------------------------------------ checked and sound

describe('compaction interrupted between its marker and the deletions (checked: sound)', () => {
  it('the marker durable, then none, or only the earliest, of the doomed segments deleted: the same log', async () => {
    const dir = tempDir('review');
    const logDir = join(dir, 'log');
    const stores = await openFileStores({ dir, segmentBytes: 4096 });
    const saved = new Map<string, Buffer>();
    try {
      await stores.logStore.open();
      for (let b = 0; b < 30; b++) await stores.logStore.append(entries(1 + b * 10, 10));
      // A suffix replacement that spans segments, then a compaction past the end and appends
      // that roll over again, then the compaction under test.
      await stores.logStore.append(entries(250, 40, 2));
      await stores.logStore.compact(400);
      for (let b = 0; b < 40; b++) await stores.logStore.append(entries(401 + b * 10, 10, 3));
      for (const n of readdirSync(logDir)) saved.set(n, readFileSync(join(logDir, n)));
      await stores.logStore.compact(750);
      expect(stores.logStore.bounds()).toEqual({ firstIndex: 751, lastIndex: 800 });
    } finally {
      await stores.close();
    }
    const after = readdirSync(logDir);
    const deleted = [...saved.keys()].filter((n) => !after.includes(n)).sort();
    expect(deleted.length).toBeGreaterThan(1);
    const expected = {
      bounds: { firstIndex: 751, lastIndex: 800 },
      terms: Array(50).fill(3),
    };
    // Deletion goes oldest first: a crash leaves the newest doomed segments, or all of them.
    for (const keep of [deleted, deleted.slice(1), deleted.slice(-1)]) {
      for (const n of keep) writeFileSync(join(logDir, n), saved.get(n) as Buffer);
      expect(await reopen(dir)).toEqual(expected);
      for (const n of keep) rmSync(join(logDir, n), { force: true });
    }
  });
});
