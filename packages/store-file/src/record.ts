/**
 * The framing of log records and segment headers.
 *
 * ```
 * segment header, 32 bytes
 *   0  "RAFTLOG" 0x02    magic and format version
 *   8  u32 crc           CRC-32 of bytes [12, 32)
 *  12  u32 reserved      0
 *  16  f64 firstIndex    the log's bounds when the segment was created: the state its records
 *  24  f64 lastIndex     start from, so older segments can be deleted without changing it
 *
 * record, 36-byte header then the entry's data
 *   0  u32 crc           CRC-32 of bytes [4, 36 + dataLength)
 *   4  u32 dataLength
 *   8  u8  type          1 entry, 2 truncate(index), 3 compact(index)
 *   9  u8  kind          entry kind (0 command, 1 noop, 2 membership); 0 for markers
 *  10  u16 reserved      0
 *  12  f64 index         the entry's index, or the marker's argument
 *  20  f64 term          the entry's term; 0 for markers
 *  28  f64 writeStart    byte offset in the segment where the write that holds this record
 *                        begins (the append's first record, or the marker itself)
 * ```
 *
 * Indexes and terms are float64 (exact for every integer below 2^53, like a JS number).
 * `writeStart` ties the records of one write together and tells writes apart: two writes never
 * share a start, so recovery can tell a torn last write (drop it) from damage to what an earlier
 * write made durable (a valid record of a later write follows: refuse to open). Format 1 stored
 * the index of the append's last entry there, which two writes can share (an entry replaced by
 * a later append of the same index, a compact or truncate marker at that index), so damage
 * followed by an acknowledged write could pass for a torn tail and be dropped.
 */
import type { EntryKind, LogEntry } from '@raft/core';
import { crc32, crc32Of } from './crc32.js';

export const SEGMENT_HEADER_BYTES = 32;
export const RECORD_HEADER_BYTES = 36;
export const SEGMENT_MAGIC = Buffer.from([0x52, 0x41, 0x46, 0x54, 0x4c, 0x4f, 0x47, 0x02]);

export const RecordType = { entry: 1, truncate: 2, compact: 3 } as const;
export type RecordTypeCode = (typeof RecordType)[keyof typeof RecordType];

const KIND_CODES: Readonly<Record<EntryKind, number>> = { command: 0, noop: 1, membership: 2 };
const KINDS: readonly EntryKind[] = ['command', 'noop', 'membership'];

/**
 * A record header as read from disk. Parsing fills one of these in place (recovery and reads
 * go through millions of records: an object per record was most of their garbage).
 */
export class RecordHeader {
  type: RecordTypeCode = RecordType.entry;
  kind: EntryKind = 'command';
  index = 0;
  term = 0;
  /** Offset in the segment where the write that holds this record begins. */
  writeStart = 0;
  dataLength = 0;
}

/**
 * Frames `entries` (contiguous) as one buffer: the single write of an append, which will be
 * written at offset `writeStart` of its segment (every record carries it).
 */
export function encodeEntries(entries: readonly LogEntry[], writeStart: number): Buffer {
  let total = 0;
  for (const e of entries) total += RECORD_HEADER_BYTES + e.data.length;
  const buf = Buffer.allocUnsafeSlow(total);
  const view = viewOf(buf);
  let at = 0;
  for (const e of entries) {
    const kind = KIND_CODES[e.kind];
    if (kind === undefined) throw new TypeError(`entry ${e.index} has an unknown kind`);
    at = frame(buf, view, at, RecordType.entry, kind, e.index, e.term, writeStart, e.data);
  }
  return buf;
}

/** Frames one truncate or compact marker, to be written at offset `writeStart` of its segment. */
export function encodeMarker(type: RecordTypeCode, index: number, writeStart: number): Buffer {
  const buf = Buffer.allocUnsafeSlow(RECORD_HEADER_BYTES);
  frame(buf, viewOf(buf), 0, type, 0, index, 0, writeStart, EMPTY);
  return buf;
}

const EMPTY = new Uint8Array(0);

function frame(
  buf: Buffer,
  view: DataView,
  at: number,
  type: number,
  kind: number,
  index: number,
  term: number,
  writeStart: number,
  data: Uint8Array,
): number {
  view.setUint32(at + 4, data.length, true);
  buf[at + 8] = type;
  buf[at + 9] = kind;
  view.setUint16(at + 10, 0, true);
  view.setFloat64(at + 12, index, true);
  view.setFloat64(at + 20, term, true);
  view.setFloat64(at + 28, writeStart, true);
  buf.set(data, at + RECORD_HEADER_BYTES);
  const end = at + RECORD_HEADER_BYTES + data.length;
  view.setUint32(at, crc32Of(buf, at + 4, end), true);
  return end;
}

/**
 * Reads the record at `at` of `buf` (whose {@link viewOf} is `view`) into `out`; returns null, or why it is not a valid record: too short
 * for its header or its data, an unknown type or kind, a non-integer index or term, or a
 * checksum that does not match. `limit` is the end of the valid bytes. `verify: false` skips
 * the checksum (for bytes verified already).
 */
export function parseRecord(
  buf: Uint8Array,
  view: DataView,
  at: number,
  limit: number,
  out: RecordHeader,
  verify = true,
): string | null {
  if (limit - at < RECORD_HEADER_BYTES) return 'the record header is cut short';
  const dataLength = view.getUint32(at + 4, true);
  const end = at + RECORD_HEADER_BYTES + dataLength;
  if (end > limit) return `the record claims ${dataLength} data bytes past the end of the file`;
  const type = buf[at + 8] as number;
  if (type < RecordType.entry || type > RecordType.compact) return `unknown record type ${type}`;
  const kind = KINDS[buf[at + 9] as number];
  if (kind === undefined) return `unknown entry kind ${buf[at + 9]}`;
  const index = view.getFloat64(at + 12, true);
  const term = view.getFloat64(at + 20, true);
  const writeStart = view.getFloat64(at + 28, true);
  if (
    !Number.isSafeInteger(index) ||
    !Number.isSafeInteger(term) ||
    !Number.isSafeInteger(writeStart)
  )
    return 'the index, term or write start is not an integer';
  if (verify && view.getUint32(at, true) !== crc32Of(buf, at + 4, end)) return 'checksum mismatch';
  out.type = type as RecordTypeCode;
  out.kind = kind;
  out.index = index;
  out.term = term;
  out.writeStart = writeStart;
  out.dataLength = dataLength;
  return null;
}

/**
 * A DataView over `buf`, for {@link parseRecord}: V8 inlines DataView reads, where Buffer's
 * readDoubleLE assembles bytes in JS. Make one per buffer, not one per record.
 */
export function viewOf(buf: Uint8Array): DataView {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
}

/** A segment header for a segment that starts from the bounds `[firstIndex, lastIndex]`. */
export function encodeSegmentHeader(firstIndex: number, lastIndex: number): Buffer {
  const buf = Buffer.alloc(SEGMENT_HEADER_BYTES);
  SEGMENT_MAGIC.copy(buf, 0);
  buf.writeDoubleLE(firstIndex, 16);
  buf.writeDoubleLE(lastIndex, 24);
  buf.writeUInt32LE(crc32(buf.subarray(12, SEGMENT_HEADER_BYTES)), 8);
  return buf;
}

/** The bounds a segment header carries, or why it is not a valid header. */
export function parseSegmentHeader(
  buf: Buffer,
): { readonly firstIndex: number; readonly lastIndex: number } | string {
  if (buf.length < SEGMENT_HEADER_BYTES) return 'the segment header is cut short';
  if (!buf.subarray(0, 8).equals(SEGMENT_MAGIC)) {
    return buf.subarray(0, 7).equals(SEGMENT_MAGIC.subarray(0, 7))
      ? `unsupported segment format version ${buf[7]}`
      : 'not a log segment (bad magic)';
  }
  if (buf.readUInt32LE(8) !== crc32(buf.subarray(12, SEGMENT_HEADER_BYTES)))
    return 'segment header checksum mismatch';
  const firstIndex = buf.readDoubleLE(16);
  const lastIndex = buf.readDoubleLE(24);
  if (!Number.isSafeInteger(firstIndex) || !Number.isSafeInteger(lastIndex) || firstIndex < 1)
    return 'segment header bounds are not valid indexes';
  return { firstIndex, lastIndex };
}
