/**
 * Segment files: `<seq>.seg` in the log directory, `seq` a 16-digit decimal that only grows, so
 * name order is write order. A segment is created whole (header written and fsynced under a
 * temporary name, then renamed), so a segment file always has a valid header.
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { closeFd, dsyncFlags, fdatasync, fsyncDir, isErrno, openFd, writeAll } from './fs-io.js';
import { encodeSegmentHeader } from './record.js';

const SEGMENT_NAME = /^(\d{16})\.seg$/;

/** One segment file. `fd` is open for reading, and for appending when it is the newest. */
export interface Segment {
  readonly seq: number;
  readonly path: string;
  fd: number;
  /** Bytes of valid records (the append position of the newest segment). */
  size: number;
  /** The fd was opened with O_DSYNC: a write is durable when it returns (no fdatasync). */
  readonly dsync: boolean;
}

export function segmentPath(dir: string, seq: number): string {
  return join(dir, `${String(seq).padStart(16, '0')}.seg`);
}

/** The segment files in `dir` in write order (sequence numbers), after deleting leftovers. */
export async function listSegments(dir: string): Promise<{ seq: number; path: string }[]> {
  const names = await fsp.readdir(dir);
  const found: { seq: number; path: string }[] = [];
  for (const name of names) {
    const m = SEGMENT_NAME.exec(name);
    if (m !== null) found.push({ seq: Number(m[1]), path: join(dir, name) });
    else if (name.endsWith('.seg.tmp')) await fsp.rm(join(dir, name), { force: true });
  }
  return found.sort((a, b) => a.seq - b.seq);
}

/**
 * Creates segment `seq` starting from the bounds `[firstIndex, lastIndex]`, durably (file and
 * directory entry), and opens it for appending.
 */
export async function createSegment(
  dir: string,
  seq: number,
  firstIndex: number,
  lastIndex: number,
): Promise<Segment> {
  const path = segmentPath(dir, seq);
  const tmp = `${path}.tmp`;
  const header = encodeSegmentHeader(firstIndex, lastIndex);
  const flags = dsyncFlags(true);
  const fd = await openFd(tmp, flags ?? 'w+');
  try {
    await writeAll(fd, header, 0);
    await fdatasync(fd);
    await fsp.rename(tmp, path);
    await fsyncDir(dir);
  } catch (err) {
    await closeFd(fd).catch(() => {});
    await fsp.rm(tmp, { force: true }).catch(() => {});
    throw err;
  }
  return { seq, path, fd, size: header.length, dsync: flags !== null };
}

/** Closes a segment's descriptor, ignoring one already closed. */
export async function closeSegment(segment: Segment): Promise<void> {
  if (segment.fd < 0) return;
  const fd = segment.fd;
  segment.fd = -1;
  try {
    await closeFd(fd);
  } catch (err) {
    if (!isErrno(err, 'EBADF')) throw err;
  }
}
