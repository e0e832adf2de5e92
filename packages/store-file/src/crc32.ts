/**
 * CRC-32 (IEEE 802.3, the zlib/PNG polynomial) of byte ranges: the checksum of every log record,
 * the stable state and each snapshot.
 *
 * Node's `zlib.crc32` (native, about 3 GB/s here) exists from Node 20.15 and 22.2; older Node 20
 * releases get a table-driven fallback that computes the same values, so a log written by one
 * reads back under the other.
 */
import * as zlib from 'node:zlib';

type Crc32 = (data: Uint8Array, initial?: number) => number;

const native = (zlib as { crc32?: Crc32 }).crc32;

let table: Uint32Array | undefined;

function fallback(data: Uint8Array, initial = 0): number {
  if (table === undefined) {
    table = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      table[n] = c >>> 0;
    }
  }
  const t = table;
  let crc = ~initial >>> 0;
  for (let i = 0; i < data.length; i++) {
    crc = (t[(crc ^ (data[i] as number)) & 0xff] as number) ^ (crc >>> 8);
  }
  return ~crc >>> 0;
}

/** CRC-32 of `data`, continuing from `initial` (the CRC of the bytes before it; default 0). */
export const crc32: Crc32 = native ?? fallback;

/** The table-driven implementation, exported for the test that pins it to the native one. */
export const crc32Fallback: Crc32 = fallback;
