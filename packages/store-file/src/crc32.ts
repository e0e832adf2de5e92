/**
 * CRC-32 (IEEE 802.3, the zlib/PNG polynomial) of byte ranges: the checksum of every log record,
 * the stable state and each snapshot.
 *
 * Two implementations of the same function:
 * - Node's `zlib.crc32` (native, about 3 GB/s here; Node 20.15+ and 22.2+) for large buffers.
 *   It takes whole buffers only, so a record would need a `subarray` per call, and at about
 *   0.2 µs of call and allocation per record that dominated recovering a million small records.
 * - {@link crc32Range}, slicing-by-8 over `[start, end)` of a buffer, in JS: no allocation,
 *   about 1 GB/s, faster than the native call below a few KiB. It is also the fallback where
 *   `zlib.crc32` is missing (older Node 20 releases), so a log written under one reads back
 *   under the other.
 */
import * as zlib from 'node:zlib';

type Crc32 = (data: Uint8Array, initial?: number) => number;

const native = (zlib as { crc32?: Crc32 }).crc32;

/** Eight 256-entry tables: `T[k * 256 + b]` is the CRC of byte `b` followed by `k` zero bytes. */
const T = new Uint32Array(256 * 8);
for (let n = 0; n < 256; n++) {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  T[n] = c >>> 0;
}
for (let n = 0; n < 256; n++) {
  let c = T[n] as number;
  for (let t = 1; t < 8; t++) {
    c = (T[c & 0xff] as number) ^ (c >>> 8);
    T[t * 256 + n] = c >>> 0;
  }
}

/** CRC-32 of `buf[start, end)`, continuing from `initial` (default 0). Allocates nothing. */
export function crc32Range(buf: Uint8Array, start: number, end: number, initial = 0): number {
  let c = ~initial >>> 0;
  let i = start;
  const end8 = end - ((end - start) & 7);
  while (i < end8) {
    const a =
      ((buf[i] as number) |
        ((buf[i + 1] as number) << 8) |
        ((buf[i + 2] as number) << 16) |
        ((buf[i + 3] as number) << 24)) ^
      c;
    c =
      (T[1792 + (a & 0xff)] as number) ^
      (T[1536 + ((a >>> 8) & 0xff)] as number) ^
      (T[1280 + ((a >>> 16) & 0xff)] as number) ^
      (T[1024 + (a >>> 24)] as number) ^
      (T[768 + (buf[i + 4] as number)] as number) ^
      (T[512 + (buf[i + 5] as number)] as number) ^
      (T[256 + (buf[i + 6] as number)] as number) ^
      (T[buf[i + 7] as number] as number);
    i += 8;
  }
  while (i < end) c = (T[(c ^ (buf[i++] as number)) & 0xff] as number) ^ (c >>> 8);
  return ~c >>> 0;
}

function fallback(data: Uint8Array, initial = 0): number {
  return crc32Range(data, 0, data.length, initial);
}

/** CRC-32 of `data`, continuing from `initial` (the CRC of the bytes before it; default 0). */
export const crc32: Crc32 = native ?? fallback;

/** The JS implementation over a whole buffer, for the test that pins it to the native one. */
export const crc32Fallback: Crc32 = fallback;

/** Below this many bytes the JS loop beats the native call (measured: records of ~100 bytes). */
const NATIVE_FROM_BYTES = 4096;

/** CRC-32 of `buf[start, end)` by whichever implementation is faster for that length. */
export function crc32Of(buf: Uint8Array, start: number, end: number): number {
  if (end - start < NATIVE_FROM_BYTES || native === undefined) return crc32Range(buf, start, end);
  return native(buf.subarray(start, end));
}
