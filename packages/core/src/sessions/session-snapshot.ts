/**
 * The snapshot image of a {@link withSessions} state machine (internal): a header, the session
 * table, then the inner state machine's own image, byte for byte as it produced it.
 *
 * ```text
 * header (16 bytes)
 *   0   4   magic "RSES" (0x52 0x53 0x45 0x53)
 *   4   1   version of the table encoding (1)
 *   5   3   reserved, zero
 *   8   8   byte length T of the table, big-endian (a safe integer)
 * table (T bytes), version 1
 *   varint  number of sessions
 *   per session:
 *     varint + UTF-8   clientId (1..256 bytes)
 *     varint           lastIndex (>= 1)
 *     varint           floor (every seq <= floor is forgotten)
 *     varint           number of kept results
 *     per result, seqs strictly ascending and above floor:
 *       varint   seq
 *       u8       kind: 0 a value, 1 an error, 2 a RaftError
 *       kind 0:  varint + bytes   resultCodec.encode(value)
 *       kind 1, 2: varint + UTF-8 name, varint + UTF-8 message,
 *                  u8 hasCode (0/1), [varint + UTF-8 code]
 * inner image (the rest of the stream, unchanged)
 * ```
 *
 * Varints are unsigned LEB128 (see `binary.ts`). The table is encoded whole when the snapshot is
 * taken (that fixes its point in time, while applies go on); the inner image is streamed through
 * chunk by chunk, never gathered. On restore the header and the table are read from however the
 * stream happens to be cut, and the rest goes on to the inner `restore()` as a stream. Anything
 * malformed is a {@link CodecError} with the byte offset in the whole image.
 */
import { CodecError } from '../errors.js';
import { utf8Encode } from '../utf8.js';
import { ByteReader, ByteWriter } from './binary.js';
import type { ResultCodec } from './client-sessions.js';
import { MAX_CLIENT_ID_BYTES } from './session-command.js';
import type { KeptResult, RecordedError, Session } from './session-table.js';

const MAGIC = [0x52, 0x53, 0x45, 0x53] as const;
/** The table encoding written by this version; restore accepts only this one. */
export const SESSION_TABLE_VERSION = 1;
export const HEADER_BYTES = 16;

const KIND_VALUE = 0;
const KIND_ERROR = 1;
const KIND_RAFT_ERROR = 2;

/** The header and the table, as one buffer: the first chunk of the snapshot. */
export function encodeSessionImage<Res>(
  sessions: Iterable<Session<Res>>,
  count: number,
  resultCodec: ResultCodec<Res>,
): Uint8Array {
  const w = new ByteWriter(HEADER_BYTES + 64 * count + 16);
  for (const b of MAGIC) w.u8(b);
  w.u8(SESSION_TABLE_VERSION);
  w.skip(3);
  const lengthAt = w.skip(8);
  w.varint(count);
  for (const s of sessions) {
    w.lengthPrefixed(utf8Encode(s.clientId));
    w.varint(s.lastIndex);
    w.varint(s.floor);
    w.varint(s.results.length);
    for (const r of s.results) {
      w.varint(r.seq);
      if (r.ok) {
        w.u8(KIND_VALUE);
        const bytes = resultCodec.encode(r.value);
        if (!(bytes instanceof Uint8Array))
          throw new TypeError(
            `resultCodec.encode returned ${typeof bytes}, not a Uint8Array (seq ${r.seq} of client ${JSON.stringify(s.clientId)})`,
          );
        w.lengthPrefixed(bytes);
      } else {
        w.u8(r.error.raft ? KIND_RAFT_ERROR : KIND_ERROR);
        w.lengthPrefixed(utf8Encode(r.error.name));
        w.lengthPrefixed(utf8Encode(r.error.message));
        if (r.error.code === undefined) {
          w.u8(0);
        } else {
          w.u8(1);
          w.lengthPrefixed(utf8Encode(r.error.code));
        }
      }
    }
  }
  const tableBytes = w.length - HEADER_BYTES;
  w.setU32(lengthAt, Math.floor(tableBytes / 2 ** 32));
  w.setU32(lengthAt + 4, tableBytes >>> 0);
  return w.finish();
}

/** Parses the header; returns the table's byte length. */
export function decodeHeader(header: Uint8Array): number {
  const r = new ByteReader(header);
  for (let i = 0; i < MAGIC.length; i++) {
    if (r.u8('magic') !== MAGIC[i])
      r.fail('not a session snapshot: the image does not start with "RSES"', 0);
  }
  const version = r.u8('version');
  if (version !== SESSION_TABLE_VERSION)
    r.fail(`unsupported session table version ${version} (expected ${SESSION_TABLE_VERSION})`, 4);
  for (let i = 0; i < 3; i++) {
    const at = r.offset;
    if (r.u8('reserved') !== 0) r.fail('a reserved header byte is not 0', at);
  }
  let length = 0;
  for (const b of r.bytes(8, 'table length')) length = length * 256 + b;
  if (!Number.isSafeInteger(length)) r.fail('the table length is not a safe integer', 8);
  return length;
}

/** Decodes the table (the bytes after the header); sessions in no particular order. */
export function decodeSessionTable<Res>(
  table: Uint8Array,
  resultCodec: ResultCodec<Res>,
): Session<Res>[] {
  const r = new ByteReader(table, HEADER_BYTES);
  const count = r.varint('session count');
  // Each session takes at least 5 bytes: a claim of more than fit is malformed (and would
  // otherwise make the loop below run on for nothing).
  if (count * 5 > r.remaining) r.fail(`${count} sessions cannot fit in ${r.remaining} bytes`);
  const sessions: Session<Res>[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < count; i++) {
    const idAt = r.offset;
    const clientId = r.string('clientId', MAX_CLIENT_ID_BYTES);
    if (clientId.length === 0) r.fail('clientId is empty', idAt);
    if (seen.has(clientId)) r.fail(`client ${JSON.stringify(clientId)} appears twice`, idAt);
    seen.add(clientId);
    const indexAt = r.offset;
    const lastIndex = r.varint('lastIndex');
    if (lastIndex < 1) r.fail('lastIndex must be at least 1', indexAt);
    const floor = r.varint('floor');
    const resultCount = r.varint('result count');
    if (resultCount * 3 > r.remaining)
      r.fail(`${resultCount} results cannot fit in ${r.remaining} bytes`);
    const results: KeptResult<Res>[] = [];
    let previous = floor;
    for (let k = 0; k < resultCount; k++) {
      const seqAt = r.offset;
      const seq = r.varint('seq');
      if (seq <= previous)
        r.fail(`seq ${seq} is not above ${previous} (the floor or the previous seq)`, seqAt);
      previous = seq;
      const kindAt = r.offset;
      const kind = r.u8('result kind');
      if (kind === KIND_VALUE) {
        const bytesAt = r.offset;
        const bytes = r.lengthPrefixed('result');
        let value: Res;
        try {
          // A copy: the decoded value must not keep the whole table buffer alive.
          value = resultCodec.decode(bytes.slice());
        } catch (cause) {
          throw new CodecError(`resultCodec.decode failed for seq ${seq}`, bytesAt, { cause });
        }
        results.push({ seq, ok: true, value });
      } else if (kind === KIND_ERROR || kind === KIND_RAFT_ERROR) {
        const name = r.string('error name');
        const message = r.string('error message');
        const hasCodeAt = r.offset;
        const hasCode = r.u8('error code flag');
        if (hasCode > 1) r.fail(`error code flag ${hasCode} is not 0 or 1`, hasCodeAt);
        const code = hasCode === 1 ? r.string('error code') : undefined;
        if (kind === KIND_RAFT_ERROR && code === undefined)
          r.fail('a RaftError result has no code', hasCodeAt);
        const error: RecordedError = { raft: kind === KIND_RAFT_ERROR, name, message, code };
        results.push({ seq, ok: false, error });
      } else {
        r.fail(`unknown result kind ${kind}`, kindAt);
      }
    }
    sessions.push({ clientId, lastIndex, floor, results });
  }
  if (r.remaining > 0) r.fail(`${r.remaining} bytes after the last session`);
  return sessions;
}

/**
 * The rest of a snapshot stream after the session table: the bytes left over from the chunk the
 * table ended in, then the source's remaining chunks, as they come. Iterable once. `close()`
 * ends the source if the inner `restore()` stopped before the end (or never started).
 */
export class RemainingChunks implements AsyncIterable<Uint8Array>, AsyncIterator<Uint8Array> {
  private finished = false;

  constructor(
    private leftover: Uint8Array | null,
    private readonly source: AsyncIterator<Uint8Array>,
  ) {}

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    return this;
  }

  async next(): Promise<IteratorResult<Uint8Array>> {
    const first = this.leftover;
    if (first !== null) {
      this.leftover = null;
      return { done: false, value: first };
    }
    if (this.finished) return { done: true, value: undefined };
    try {
      const r = await this.source.next();
      if (r.done === true) this.finished = true;
      return r;
    } catch (err) {
      this.finished = true;
      throw err;
    }
  }

  async return(): Promise<IteratorResult<Uint8Array>> {
    await this.close();
    return { done: true, value: undefined };
  }

  /** Ends the source unless it already ended. */
  async close(): Promise<void> {
    this.leftover = null;
    if (this.finished) return;
    this.finished = true;
    await this.source.return?.();
  }
}

/**
 * Reads exactly `n` bytes from `source`, starting with `leftover`: returns them and what is
 * left of the last chunk read (null when nothing). The pieces are gathered and joined once `n`
 * bytes have arrived, so a length field claiming more than the stream holds costs nothing
 * beyond what the stream actually delivered. Throws a CodecError if the stream ends first.
 */
export async function readExactly(
  source: AsyncIterator<Uint8Array>,
  n: number,
  leftover: Uint8Array | null,
  what: string,
  offset: number,
): Promise<{ readonly bytes: Uint8Array; readonly leftover: Uint8Array | null }> {
  const pieces: Uint8Array[] = [];
  let have = 0;
  let chunk = leftover;
  for (;;) {
    if (chunk === null) {
      if (have === n) break;
      const r = await source.next();
      if (r.done === true)
        throw new CodecError(
          `the snapshot ends inside the ${what} (${have} of ${n} bytes)`,
          offset + have,
        );
      chunk = r.value;
      continue;
    }
    const need = n - have;
    if (chunk.byteLength > need) {
      if (need > 0) pieces.push(chunk.subarray(0, need));
      have = n;
      chunk = chunk.subarray(need);
      break;
    }
    if (chunk.byteLength > 0) pieces.push(chunk);
    have += chunk.byteLength;
    chunk = null;
  }
  return { bytes: concat(pieces, n), leftover: chunk };
}

function concat(pieces: readonly Uint8Array[], n: number): Uint8Array {
  if (pieces.length === 1) return pieces[0] as Uint8Array;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of pieces) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}
