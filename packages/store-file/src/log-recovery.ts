/**
 * Rebuilding the log's index from its segments at open.
 *
 * ```
 *   segments in write order ─► first segment's header gives the starting bounds
 *     each record, in order:  entry i       → i ≤ lastIndex + 1; drop what is ≥ i; record i
 *                             truncate(i)   → drop what is ≥ i
 *                             compact(i)    → drop what is ≤ i; first = i + 1
 *     a later segment's header MUST equal the bounds reached so far (else one is missing)
 *   first bad record, at offset `at`:
 *     in an older segment                               → CorruptLogError (file, offset)
 *     in the newest one, and every valid record after it
 *       belongs to the write that spans `at` (its write
 *       starts at or before `at`): a torn last write     → truncate the file there, log a warning
 *     in the newest one, and a valid record of a write
 *       that starts after `at` follows                  → CorruptLogError (file, offset)
 * ```
 *
 * A torn write is what a crash during the last write leaves: its bytes cut short, zeros, or
 * some of its sectors and not others (valid records of it may follow the damage, with more
 * damage between or after them). That write was never acknowledged (the store resolves only
 * once it is durable), so dropping it loses nothing. A write starts only after the one before
 * it is durable, so a valid record of a write that starts after the damage means the damaged
 * write was acknowledged: that is refused, never skipped. Every record carries the offset
 * where its write starts (record.ts), which is what tells the writes apart.
 */
import { promises as fsp } from 'node:fs';
import type { Logger } from '@raft/core';
import { EntryIndex, segmentTag } from './entry-index.js';
import { CorruptLogError } from './errors.js';
import { dsyncFlags, fdatasync, ftruncate, openFd } from './fs-io.js';
import {
  parseRecord,
  parseSegmentHeader,
  RECORD_HEADER_BYTES,
  RecordHeader,
  RecordType,
  SEGMENT_HEADER_BYTES,
  viewOf,
} from './record.js';
import { closeSegment, createSegment, listSegments, type Segment } from './segment.js';

/**
 * What open() rebuilds: the index and the segments, the last one open for appending, and the
 * segments' bytes as recovery read and verified them (the node reads its whole log right after
 * open: serving that read from these saves reading and checksumming everything twice).
 */
export interface RecoveredLog {
  readonly index: EntryIndex;
  readonly segments: Segment[];
  readonly verified: Map<number, Buffer>;
}

export async function recoverLog(dir: string, logger: Logger): Promise<RecoveredLog> {
  const files = await listSegments(dir);
  const index = new EntryIndex();
  const segments: Segment[] = [];
  const verified = new Map<number, Buffer>();
  if (files.length === 0) {
    index.reset(1, 0);
    segments.push(await createSegment(dir, 1, 1, 0));
    return { index, segments, verified };
  }
  try {
    for (let i = 0; i < files.length; i++) {
      const file = files[i] as { seq: number; path: string };
      const newest = i === files.length - 1;
      const buf = await fsp.readFile(file.path);
      const header = parseSegmentHeader(buf);
      if (typeof header === 'string') throw new CorruptLogError(file.path, 0, header);
      if (i === 0) index.reset(header.firstIndex, header.lastIndex);
      else if (header.firstIndex !== index.firstIndex || header.lastIndex !== index.lastIndex) {
        throw new CorruptLogError(
          file.path,
          0,
          `the segment starts from the log [${header.firstIndex}, ${header.lastIndex}] but the ` +
            `segments before it end at [${index.firstIndex}, ${index.lastIndex}]: a segment ` +
            'file is missing or was replaced',
        );
      }
      const size = scanRecords(file.path, file.seq, buf, index, newest, logger);
      const flags = newest ? dsyncFlags(false) : null;
      const fd = await openFd(file.path, flags ?? (newest ? 'r+' : 'r'));
      segments.push({ seq: file.seq, path: file.path, fd, size, dsync: flags !== null });
      verified.set(file.seq, buf.subarray(0, size));
      if (size < buf.length) {
        await ftruncate(fd, size);
        await fdatasync(fd);
      }
    }
  } catch (err) {
    await closeAll(segments);
    throw err;
  }
  const missing = index.firstMissing();
  if (missing !== null) {
    await closeAll(segments);
    throw new CorruptLogError(
      (files[0] as { path: string }).path,
      SEGMENT_HEADER_BYTES,
      `entries from ${missing} on have no record in any segment: a segment file is missing`,
    );
  }
  return { index, segments, verified };
}

async function closeAll(segments: readonly Segment[]): Promise<void> {
  for (const s of segments) await closeSegment(s).catch(() => {});
}

/** Applies the segment's records to `index`; returns the end of its valid records. */
function scanRecords(
  path: string,
  seq: number,
  buf: Buffer,
  index: EntryIndex,
  newest: boolean,
  logger: Logger,
): number {
  let at = SEGMENT_HEADER_BYTES;
  const view = viewOf(buf);
  const r = new RecordHeader();
  const tag = segmentTag(seq);
  /** Where the write of the previous record starts (a record continues it or starts anew). */
  let writeStart = -1;
  while (at < buf.length) {
    let bad = parseRecord(buf, view, at, buf.length, r);
    if (bad === null && r.writeStart !== at && r.writeStart !== writeStart) {
      bad = `the record says its write starts at ${r.writeStart}, which is neither here nor where the previous record's write starts (${writeStart})`;
    }
    if (bad !== null) {
      if (newest && isTornTail(buf, at)) {
        logger.warn(
          { file: path, offset: at, droppedBytes: buf.length - at, reason: bad },
          'log: dropping the torn tail of the last append (a crash interrupted it)',
        );
        return at;
      }
      throw new CorruptLogError(
        path,
        at,
        newest
          ? `${bad}, and records of a later write follow it (not a torn write)`
          : `${bad} (in a segment older than the newest one: not a torn write)`,
      );
    }
    const length = RECORD_HEADER_BYTES + r.dataLength;
    if (r.type === RecordType.entry) {
      if (r.index > index.lastIndex + 1 || r.index < index.firstIndex) {
        throw new CorruptLogError(
          path,
          at,
          `entry ${r.index} does not follow the log [${index.firstIndex}, ${index.lastIndex}]`,
        );
      }
      index.put(r.index, tag, at, length);
    } else if (r.type === RecordType.truncate) {
      index.truncateFrom(r.index);
    } else {
      index.compactTo(r.index);
    }
    writeStart = r.writeStart;
    at += length;
  }
  return at;
}

/**
 * Whether the bad bytes at `at` are a torn last write: every valid record after them (skipping
 * any further damage) belongs to the write that spans `at`, that is, its write starts at or
 * before `at`. Writes occupy disjoint byte ranges, so only one write can span `at`; a record
 * whose write starts after `at` is a later write, which began only once the damaged one was
 * durable (acknowledged).
 */
function isTornTail(buf: Buffer, at: number): boolean {
  const r = new RecordHeader();
  const view = viewOf(buf);
  let p = findRecord(buf, view, at + 1, r);
  while (p !== null) {
    if (r.writeStart > at) return false;
    p = findRecord(buf, view, p + RECORD_HEADER_BYTES + r.dataLength, r);
  }
  return true;
}

/**
 * The first offset at or after `from` where a valid record starts (read into `out`), or null.
 * A record cannot start before its write does: bytes that parse as one claiming otherwise are
 * not a record of this segment.
 */
function findRecord(buf: Buffer, view: DataView, from: number, out: RecordHeader): number | null {
  for (let p = from; p + RECORD_HEADER_BYTES <= buf.length; p++) {
    const type = buf[p + 8] as number;
    // Cheap filters before the checksum: a known type and kind, zero padding.
    if (type < RecordType.entry || type > RecordType.compact) continue;
    if ((buf[p + 9] as number) > 2 || buf[p + 10] !== 0 || buf[p + 11] !== 0) continue;
    if (parseRecord(buf, view, p, buf.length, out) !== null) continue;
    if (out.writeStart >= SEGMENT_HEADER_BYTES && out.writeStart <= p) return p;
  }
  return null;
}
