/**
 * How a log entry is stored: one hash field value per entry, binary.
 *
 * ```text
 * byte 0      kind: 0 command, 1 noop, 2 membership
 * bytes 1..8  term, unsigned big-endian (terms are safe integers, < 2^53)
 * bytes 9..   data, as given
 * ```
 *
 * The index is the field name, so it is not repeated in the value. An append sends its entries
 * as batches (one buffer each, built in one pass with one allocation): a sequence of records,
 * each a 4-byte big-endian length and the value above, which the append script splits.
 */
import type { EntryKind, LogEntry, LogIndex } from '@raft/core';
import { StorageError } from '@raft/core';

/** Bytes before the data in a stored entry. */
export const ENTRY_HEADER_BYTES = 9;
/** Bytes before each record in a batch. */
const RECORD_LENGTH_BYTES = 4;
const TWO_32 = 2 ** 32;

const KIND_CODES: Readonly<Record<EntryKind, number>> = { command: 0, noop: 1, membership: 2 };
const KINDS: readonly EntryKind[] = ['command', 'noop', 'membership'];

/**
 * Checks that `entries` are contiguous from `entries[0].index` (a non-negative safe integer)
 * with valid terms, kinds and data, and splits them into batches of at most `maxBatchBytes`
 * encoded bytes and `maxBatchEntries` entries (a single larger entry gets a batch of its own).
 * Throws a StorageError for a malformed entry: storing it would corrupt the log.
 */
export function encodeBatches(
  entries: readonly LogEntry[],
  maxBatchBytes: number,
  maxBatchEntries: number,
): Buffer[] {
  const head = (entries[0] as LogEntry).index;
  // The scripts format indexes with %d: a fraction would be cut off and overwrite the entry
  // below it (2.5 stored as 2), and an index past 2^53 has no exact field name.
  if (!(Number.isSafeInteger(head) && head >= 0)) {
    throw new StorageError(
      `append: the first entry has index ${head}, not a non-negative integer; nothing was stored`,
    );
  }
  const batches: Buffer[] = [];
  let start = 0;
  let bytes = 0;
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i] as LogEntry;
    if (e.index !== head + i) {
      throw new StorageError(
        `append: entries are not contiguous (entry ${i} has index ${e.index}, expected ${head + i}); nothing was stored`,
      );
    }
    if (!(Number.isSafeInteger(e.term) && e.term >= 0)) {
      throw new StorageError(
        `append: entry ${e.index} has term ${e.term}, not a non-negative integer`,
      );
    }
    if (!Object.hasOwn(KIND_CODES, e.kind)) {
      throw new StorageError(`append: entry ${e.index} has an unknown kind ${String(e.kind)}`);
    }
    if (!(e.data instanceof Uint8Array)) {
      throw new StorageError(`append: entry ${e.index} has data that is not a Uint8Array`);
    }
    const size = RECORD_LENGTH_BYTES + ENTRY_HEADER_BYTES + e.data.length;
    if (i > start && (bytes + size > maxBatchBytes || i - start >= maxBatchEntries)) {
      batches.push(encodeRange(entries, start, i, bytes));
      start = i;
      bytes = 0;
    }
    bytes += size;
  }
  batches.push(encodeRange(entries, start, entries.length, bytes));
  return batches;
}

/** Encodes entries `[from, to)`, whose records take `bytes`, into one buffer. */
function encodeRange(
  entries: readonly LogEntry[],
  from: number,
  to: number,
  bytes: number,
): Buffer {
  const out = Buffer.allocUnsafe(bytes);
  let at = 0;
  for (let i = from; i < to; i++) {
    const e = entries[i] as LogEntry;
    const length = ENTRY_HEADER_BYTES + e.data.length;
    out.writeUInt32BE(length, at);
    out[at + 4] = KIND_CODES[e.kind];
    out.writeUInt32BE(Math.floor(e.term / TWO_32), at + 5);
    out.writeUInt32BE(e.term >>> 0, at + 9);
    out.set(e.data, at + 13);
    at += RECORD_LENGTH_BYTES + length;
  }
  return out;
}

/**
 * The entry stored at `index`. The data is a view of `value` (the reply buffer), not a copy.
 * Throws a StorageError when the value is missing or malformed.
 */
export function decodeEntry(index: LogIndex, value: Buffer | null | undefined): LogEntry {
  if (value === null || value === undefined) {
    throw new StorageError(`read: entry ${index} is missing from the Redis log hash`);
  }
  if (value.length < ENTRY_HEADER_BYTES) {
    throw new StorageError(`read: entry ${index} is ${value.length} bytes, too short for an entry`);
  }
  const kind = KINDS[value[0] as number];
  if (kind === undefined) {
    throw new StorageError(`read: entry ${index} has an unknown kind code ${value[0]}`);
  }
  const term = value.readUInt32BE(1) * TWO_32 + value.readUInt32BE(5);
  // A plain Uint8Array view, not a Buffer: a Buffer serializes differently (toJSON) and
  // compares unequal to a Uint8Array in deep-equality checks.
  const data = new Uint8Array(
    value.buffer,
    value.byteOffset + ENTRY_HEADER_BYTES,
    value.length - ENTRY_HEADER_BYTES,
  );
  return { index, term, kind, data };
}
