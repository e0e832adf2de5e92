/**
 * BATCH frames: every Raft message a transport sends to one peer on one lane during one
 * event-loop turn, packed into a single frame (one write, one syscall, one wake-up of the
 * receiver).
 *
 * ```text
 * byte 0   FRAME_BATCH
 * then     (length:uv  message:encodeMessage bytes) × n, n >= 1, to the end of the frame
 * ```
 *
 * `uv` is an unsigned LEB128 varint of at most 5 bytes, minimal. Decoding is all or nothing:
 * a frame with one malformed message yields none, so a corrupt frame never reaches the core
 * in part. Decoded entries and data are views into the frame (zero-copy): the frame's buffer
 * must never be reused afterwards.
 */
import { type DecodeLimits, decodeMessage, encodeMessageInto } from '../codec.js';
import { CodecError } from '../errors.js';
import type { RaftMessage } from '../messages.js';
import { FRAME_BATCH } from './handshake.js';

/** A message and its encoded size (from `encodedSize`), as send queues hold them. */
export interface SizedMessage {
  readonly message: RaftMessage;
  readonly size: number;
}

/** Bytes one message adds to a batch frame: its length prefix and its encoding. */
export function batchItemBytes(size: number): number {
  return varintBytes(size) + size;
}

/** An empty batch frame's bytes (the kind byte). */
export const BATCH_HEADER_BYTES = 1;

/** Packs `items` into one BATCH frame of `1 + Σ batchItemBytes(size)` bytes. */
export function encodeBatch(items: readonly SizedMessage[]): Uint8Array {
  let total = BATCH_HEADER_BYTES;
  for (const item of items) total += batchItemBytes(item.size);
  const out = new Uint8Array(total);
  out[0] = FRAME_BATCH;
  let pos = BATCH_HEADER_BYTES;
  for (const { message, size } of items) {
    let v = size;
    while (v >= 0x80) {
      out[pos++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    out[pos++] = v;
    encodeMessageInto(message, out.subarray(pos, pos + size));
    pos += size;
  }
  return out;
}

/**
 * Decodes a BATCH frame into its messages, in order. Throws CodecError (nothing decoded is
 * returned) for an empty batch, a bad length prefix, a length past the end, or any message
 * `decodeMessage` rejects under `limits`.
 */
export function decodeBatch(frame: Uint8Array, limits?: DecodeLimits): RaftMessage[] {
  if (frame[0] !== FRAME_BATCH) throw new CodecError(`frame kind ${frame[0]} is not BATCH`, 0);
  const out: RaftMessage[] = [];
  let pos = BATCH_HEADER_BYTES;
  if (pos >= frame.length) throw new CodecError('empty batch', pos);
  while (pos < frame.length) {
    let length = 0;
    let shift = 0;
    const start = pos;
    for (;;) {
      const b = frame[pos];
      if (b === undefined) throw new CodecError('truncated message length', pos);
      pos++;
      if (shift === 28 && b > 0x0f) throw new CodecError('message length over 32 bits', start);
      length += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) {
        if (b === 0 && shift > 0) throw new CodecError('non-minimal message length', start);
        break;
      }
      shift += 7;
    }
    if (length > frame.length - pos) {
      throw new CodecError(`message of ${length} bytes runs past the end of the frame`, start);
    }
    const bytes = frame.subarray(pos, pos + length);
    try {
      out.push(decodeMessage(bytes, limits));
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      throw new CodecError(`message #${out.length} of the batch: ${reason}`, pos, { cause: err });
    }
    pos += length;
  }
  return out;
}

function varintBytes(value: number): number {
  let n = 1;
  for (let v = value; v >= 0x80; v = Math.floor(v / 128)) n++;
  return n;
}
