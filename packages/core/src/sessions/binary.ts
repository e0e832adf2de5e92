/**
 * Byte-level helpers shared by the session codecs (internal: not exported from the package).
 *
 * Integers are unsigned LEB128 varints (7 bits per byte, low group first) of safe integers, so a
 * small sequence number costs one byte and the largest (2^53 - 1) eight. Decoding is strict:
 * every value has exactly one accepted encoding (no redundant high zero groups), so
 * `encode(decode(b))` gives `b` back byte for byte.
 */
import { CodecError } from '../errors.js';
import { utf8Decode } from '../utf8.js';

/** Most bytes a varint of a safe integer takes (ceil(53 / 7)). */
const MAX_VARINT_BYTES = 8;

/** Bytes the varint of `n` (a non-negative safe integer) takes. */
export function varintBytes(n: number): number {
  let bytes = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 0x80);
    bytes++;
  }
  return bytes;
}

/**
 * UTF-8 length of a well-formed string, without encoding it. Stops counting once past `limit`
 * (the result is then some value above `limit`).
 */
export function utf8ByteLength(s: string, limit = Number.POSITIVE_INFINITY): number {
  let bytes = 0;
  for (let i = 0; i < s.length && bytes <= limit; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      bytes += 4; // a surrogate pair: one code point above U+FFFF
      i++;
    } else bytes += 3;
  }
  return bytes;
}

/** A growable byte buffer. */
export class ByteWriter {
  private buf: Uint8Array;
  private pos = 0;

  constructor(initialBytes = 256) {
    this.buf = new Uint8Array(Math.max(16, initialBytes));
  }

  /** Bytes written so far. */
  get length(): number {
    return this.pos;
  }

  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
  }

  u8(v: number): void {
    this.room(1);
    this.buf[this.pos++] = v;
  }

  /** A non-negative safe integer as a varint. */
  varint(n: number): void {
    this.room(MAX_VARINT_BYTES);
    while (n >= 0x80) {
      this.buf[this.pos++] = (n % 0x80) | 0x80;
      n = Math.floor(n / 0x80);
    }
    this.buf[this.pos++] = n;
  }

  bytes(b: Uint8Array): void {
    this.room(b.byteLength);
    this.buf.set(b, this.pos);
    this.pos += b.byteLength;
  }

  /** `b` prefixed with its length as a varint. */
  lengthPrefixed(b: Uint8Array): void {
    this.varint(b.byteLength);
    this.bytes(b);
  }

  /** Overwrites 4 bytes at `at` with `v` (an unsigned 32-bit integer, big-endian). */
  setU32(at: number, v: number): void {
    this.buf[at] = v >>> 24;
    this.buf[at + 1] = (v >>> 16) & 0xff;
    this.buf[at + 2] = (v >>> 8) & 0xff;
    this.buf[at + 3] = v & 0xff;
  }

  /** Reserves `n` zero bytes (filled in later with {@link setU32}); returns their offset. */
  skip(n: number): number {
    this.room(n);
    const at = this.pos;
    this.buf.fill(0, at, at + n);
    this.pos += n;
    return at;
  }

  /** The bytes written (a view: the writer must not be used afterwards). */
  finish(): Uint8Array {
    return this.buf.subarray(0, this.pos);
  }
}

/**
 * Reads what {@link ByteWriter} wrote. Every read is bounds-checked and throws a
 * {@link CodecError} carrying the offset (plus `base`, so offsets are positions in the whole
 * input when this reads a section of it). Never allocates more than the input's size.
 */
export class ByteReader {
  private pos = 0;

  constructor(
    private readonly buf: Uint8Array,
    private readonly base = 0,
  ) {}

  /** Offset of the next byte, counted from the start of the whole input. */
  get offset(): number {
    return this.base + this.pos;
  }

  get remaining(): number {
    return this.buf.byteLength - this.pos;
  }

  fail(message: string, at = this.offset): never {
    throw new CodecError(message, at);
  }

  u8(what: string): number {
    const v = this.buf[this.pos];
    if (v === undefined) this.fail(`${what}: unexpected end of input`);
    this.pos++;
    return v;
  }

  /** A varint: a safe integer in its one accepted encoding. */
  varint(what: string): number {
    const start = this.offset;
    let value = 0;
    let scale = 1;
    for (let i = 0; ; i++) {
      const b = this.buf[this.pos];
      if (b === undefined) this.fail(`${what}: unexpected end of input`);
      this.pos++;
      if (i > 0 && b === 0) this.fail(`${what}: redundant varint byte`, start);
      value += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) break;
      if (i + 1 === MAX_VARINT_BYTES) this.fail(`${what}: varint longer than 8 bytes`, start);
      scale *= 0x80;
    }
    if (!Number.isSafeInteger(value)) this.fail(`${what}: ${value} is not a safe integer`, start);
    return value;
  }

  /** The next `n` bytes, as a view. */
  bytes(n: number, what: string): Uint8Array {
    if (n > this.remaining)
      this.fail(`${what}: ${n} bytes announced, ${this.remaining} left in the input`);
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  /** A varint length (at most `maxBytes`) and that many bytes, as a view. */
  lengthPrefixed(what: string, maxBytes = Number.POSITIVE_INFINITY): Uint8Array {
    const start = this.offset;
    const n = this.varint(`${what} length`);
    if (n > maxBytes) this.fail(`${what}: ${n} bytes, more than the ${maxBytes} allowed`, start);
    return this.bytes(n, what);
  }

  /** A length-prefixed UTF-8 string (strictly well-formed). */
  string(what: string, maxBytes?: number): string {
    const start = this.offset;
    const text = utf8Decode(this.lengthPrefixed(what, maxBytes));
    if (text === null) this.fail(`${what}: not well-formed UTF-8`, start);
    return text;
  }

  /** Everything left, as a view. */
  rest(): Uint8Array {
    const out = this.buf.subarray(this.pos);
    this.pos = this.buf.byteLength;
    return out;
  }
}
