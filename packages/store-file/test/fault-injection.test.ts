/**
 * Damage on disk, injected by hand into the files a closed store left: what a crash can leave
 * (a torn last append: cut short, zero-filled, or with flipped bits) is dropped with a warning,
 * from the first damaged record on (the append's records before it are intact and stay: it was
 * never acknowledged, so any prefix of it is a valid log);
 * damage anywhere before that fails with CorruptLogError naming the file and offset, and loses
 * nothing (the files are left as they were).
 */
import { readdirSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LogEntry, Logger } from '@raft/core';
import { RaftError } from '@raft/core';
import { afterEach, describe, expect, it } from 'vitest';
import { CorruptLogError, openFileStores } from '../src/index.js';
import { RECORD_HEADER_BYTES, SEGMENT_HEADER_BYTES } from '../src/record.js';
import { removeDir, tempDir } from './temp-dir.js';

afterEach(() => removeDir());

function entries(from: number, count: number, term = 1, size = 20): LogEntry[] {
  return Array.from({ length: count }, (_, k) => ({
    index: from + k,
    term,
    kind: 'command' as const,
    data: new Uint8Array(size).fill((from + k) % 251),
  }));
}

function recordingLogger(): Logger & {
  warnings: { fields: Record<string, unknown>; msg?: string }[];
} {
  const warnings: { fields: Record<string, unknown>; msg?: string }[] = [];
  const noop = (): void => {};
  return {
    warnings,
    debug: noop,
    info: noop,
    error: noop,
    warn: (fields, msg) => warnings.push({ fields, ...(msg === undefined ? {} : { msg }) }),
  };
}

/** A directory whose log holds `batches` appends (each of `perBatch` 20-byte entries). */
async function writeLog(batches: number, perBatch: number, segmentBytes?: number): Promise<string> {
  const dir = tempDir('faults');
  const stores = await openFileStores({
    dir,
    ...(segmentBytes === undefined ? {} : { segmentBytes }),
  });
  await stores.logStore.open();
  for (let b = 0; b < batches; b++)
    await stores.logStore.append(entries(1 + b * perBatch, perBatch));
  await stores.close();
  return dir;
}

function segments(dir: string): string[] {
  return readdirSync(join(dir, 'log'))
    .filter((n) => n.endsWith('.seg'))
    .sort()
    .map((n) => join(dir, 'log', n));
}

function flipBit(path: string, offset: number): void {
  const buf = readFileSync(path);
  buf[offset] = (buf[offset] as number) ^ 0x10;
  writeFileSync(path, buf);
}

async function reopen(dir: string, logger?: Logger) {
  const stores = await openFileStores({ dir, ...(logger === undefined ? {} : { logger }) });
  try {
    const bounds = await stores.logStore.open();
    const all =
      bounds.lastIndex >= bounds.firstIndex
        ? await stores.logStore.read(bounds.firstIndex, bounds.lastIndex + 1)
        : [];
    return { bounds, all };
  } finally {
    await stores.close();
  }
}

async function openError(dir: string): Promise<unknown> {
  const stores = await openFileStores({ dir });
  try {
    await stores.logStore.open();
    return null;
  } catch (err) {
    return err;
  } finally {
    await stores.close();
  }
}

const RECORD = RECORD_HEADER_BYTES + 20;

describe('a torn last append is dropped, with a warning', () => {
  it('cut short inside its last record', async () => {
    const dir = await writeLog(10, 3);
    const [seg] = segments(dir) as [string];
    truncateSync(seg, statSync(seg).size - 7);
    const logger = recordingLogger();
    const { bounds, all } = await reopen(dir, logger);
    expect(bounds).toEqual({ firstIndex: 1, lastIndex: 29 });
    expect(all.map((e) => e.index)).toEqual(Array.from({ length: 29 }, (_, k) => k + 1));
    expect(logger.warnings).toHaveLength(1);
    expect(logger.warnings[0]?.fields).toMatchObject({ file: seg });
  });

  it('cut short inside a record header', async () => {
    const dir = await writeLog(4, 5);
    const [seg] = segments(dir) as [string];
    truncateSync(seg, SEGMENT_HEADER_BYTES + 15 * RECORD + 10);
    const { bounds } = await reopen(dir);
    expect(bounds.lastIndex).toBe(15);
  });

  it('zeros where the last append should be', async () => {
    const dir = await writeLog(3, 4);
    const [seg] = segments(dir) as [string];
    const buf = readFileSync(seg);
    buf.fill(0, SEGMENT_HEADER_BYTES + 8 * RECORD);
    writeFileSync(seg, Buffer.concat([buf, Buffer.alloc(4096)]));
    const { bounds } = await reopen(dir);
    expect(bounds.lastIndex).toBe(8);
  });

  it('a flipped bit in the last record', async () => {
    const dir = await writeLog(5, 2);
    const [seg] = segments(dir) as [string];
    flipBit(seg, statSync(seg).size - 3);
    const { bounds } = await reopen(dir);
    expect(bounds.lastIndex).toBe(9);
  });

  it('a flipped bit in the first record of the last append, its later records intact', async () => {
    const dir = await writeLog(5, 4);
    const [seg] = segments(dir) as [string];
    flipBit(seg, SEGMENT_HEADER_BYTES + 16 * RECORD + RECORD_HEADER_BYTES + 2);
    const { bounds } = await reopen(dir);
    expect(bounds.lastIndex).toBe(16);
  });

  it('a flipped length field in the middle of the last append', async () => {
    const dir = await writeLog(5, 4);
    const [seg] = segments(dir) as [string];
    flipBit(seg, SEGMENT_HEADER_BYTES + 17 * RECORD + 5); // entry 18's length
    const { bounds } = await reopen(dir);
    expect(bounds.lastIndex).toBe(17);
  });

  it('the store appends after the dropped tail, and it survives a further reopen', async () => {
    const dir = await writeLog(3, 3);
    const [seg] = segments(dir) as [string];
    truncateSync(seg, statSync(seg).size - 1);
    const stores = await openFileStores({ dir });
    expect(await stores.logStore.open()).toEqual({ firstIndex: 1, lastIndex: 8 });
    await stores.logStore.append(entries(9, 5, 2));
    await stores.close();
    const { bounds, all } = await reopen(dir);
    expect(bounds).toEqual({ firstIndex: 1, lastIndex: 13 });
    expect(all.slice(8).every((e) => e.term === 2)).toBe(true);
  });
});

describe('earlier damage fails with CorruptLogError naming the file and offset', () => {
  it('a flipped bit in an acknowledged append that a later append follows', async () => {
    const dir = await writeLog(5, 4);
    const [seg] = segments(dir) as [string];
    const offset = SEGMENT_HEADER_BYTES + 9 * RECORD;
    flipBit(seg, offset + RECORD_HEADER_BYTES + 1);
    const before = readFileSync(seg);
    const err = await openError(dir);
    expect(err).toBeInstanceOf(CorruptLogError);
    expect(RaftError.is(err, 'STORAGE')).toBe(true);
    expect(err).toMatchObject({ file: seg, offset });
    expect(String((err as Error).message)).toContain(seg);
    // Nothing was dropped: the file is as it was.
    expect(readFileSync(seg).equals(before)).toBe(true);
  });

  it('the last record of the second-to-last append', async () => {
    const dir = await writeLog(5, 4);
    const [seg] = segments(dir) as [string];
    const offset = SEGMENT_HEADER_BYTES + 15 * RECORD;
    flipBit(seg, offset + 2);
    expect(await openError(dir)).toMatchObject({ name: 'CorruptLogError', file: seg, offset });
  });

  it('damage in a segment older than the newest, even at its end', async () => {
    const dir = await writeLog(40, 4, 4096);
    const all = segments(dir);
    expect(all.length).toBeGreaterThan(2);
    const older = all[0] as string;
    truncateSync(older, statSync(older).size - 3);
    expect(await openError(dir)).toMatchObject({ name: 'CorruptLogError', file: older });
  });

  it('a damaged segment header', async () => {
    const dir = await writeLog(3, 3);
    const [seg] = segments(dir) as [string];
    flipBit(seg, 20);
    expect(await openError(dir)).toMatchObject({ name: 'CorruptLogError', file: seg, offset: 0 });
  });

  it('a missing segment in the middle', async () => {
    const dir = await writeLog(40, 4, 4096);
    const all = segments(dir);
    const { rmSync } = await import('node:fs');
    rmSync(all[1] as string);
    expect(await openError(dir)).toMatchObject({ name: 'CorruptLogError', file: all[2] });
  });

  it('a record damaged after open is refused on read, never served', async () => {
    const dir = await writeLog(3, 3);
    const stores = await openFileStores({ dir });
    try {
      await stores.logStore.open();
      // The first read is served from the bytes open() verified; later ones read the disk.
      expect(await stores.logStore.read(1, 10)).toHaveLength(9);
      const [seg] = segments(dir) as [string];
      flipBit(seg, SEGMENT_HEADER_BYTES + 4 * RECORD + RECORD_HEADER_BYTES + 3);
      await expect(stores.logStore.read(1, 10)).rejects.toMatchObject({
        name: 'CorruptLogError',
        file: seg,
        offset: SEGMENT_HEADER_BYTES + 4 * RECORD,
      });
      // Entries before the damage still read.
      expect((await stores.logStore.read(1, 5)).length).toBe(4);
    } finally {
      await stores.close();
    }
  });

  it('a damaged hard-state file', async () => {
    const dir = tempDir('faults');
    const stores = await openFileStores({ dir });
    await stores.stableStore.save({ term: 3, votedFor: 'n2', commit: 7 });
    await stores.close();
    flipBit(join(dir, 'state'), 20);
    const again = await openFileStores({ dir });
    try {
      await expect(again.stableStore.load()).rejects.toMatchObject({
        name: 'CorruptLogError',
        file: join(dir, 'state'),
      });
    } finally {
      await again.close();
    }
  });

  it('a damaged snapshot fails the read that completes it', async () => {
    const dir = tempDir('faults');
    const stores = await openFileStores({ dir });
    const sink = await stores.snapshotStore.create({
      index: 5,
      term: 1,
      membership: { members: [{ id: 'n1', address: 'a', voter: true }] },
    });
    await sink.write(new Uint8Array(10_000).fill(7));
    await sink.commit();
    await stores.close();
    const snapDir = readdirSync(join(dir, 'snapshots')).find((n) =>
      n.startsWith('snap-'),
    ) as string;
    flipBit(join(dir, 'snapshots', snapDir, 'data'), 9_000);
    const again = await openFileStores({ dir });
    try {
      const source = await again.snapshotStore.open();
      expect(source?.meta.index).toBe(5);
      await expect(source?.read(0, 8_000)).resolves.toHaveLength(8_000);
      await expect(source?.read(8_000, 4_000)).rejects.toMatchObject({ name: 'CorruptLogError' });
      await source?.close();
    } finally {
      await again.close();
    }
  });
});
