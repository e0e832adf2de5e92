/**
 * UTF-8 for the core: the host's TextEncoder/TextDecoder when it has them (platform.ts), a
 * portable implementation otherwise. Strict on decode: any ill-formed sequence is reported,
 * never replaced.
 */
import { hostTextDecoder, hostTextEncoder } from './platform.js';

/** Encodes a string as UTF-8 (lone surrogates become U+FFFD, as TextEncoder does). */
export function utf8Encode(s: string): Uint8Array {
  if (hostTextEncoder !== null) return hostTextEncoder.encode(s);
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        i++;
      }
    }
    if (c >= 0xd800 && c <= 0xdfff) c = 0xfffd;
    if (c < 0x80) out.push(c);
    else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 63));
    else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
    else
      out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
  }
  return Uint8Array.from(out);
}

/** Decodes UTF-8; returns null for ill-formed input (overlong, surrogates, truncated). */
export function utf8Decode(bytes: Uint8Array): string | null {
  if (hostTextDecoder !== null) {
    try {
      return hostTextDecoder.decode(bytes);
    } catch {
      return null;
    }
  }
  let s = '';
  for (let i = 0; i < bytes.length; ) {
    const b = bytes[i] as number;
    let cp: number;
    let n: number;
    if (b < 0x80) {
      cp = b;
      n = 0;
    } else if (b >= 0xc2 && b <= 0xdf) {
      cp = b & 0x1f;
      n = 1;
    } else if (b >= 0xe0 && b <= 0xef) {
      cp = b & 0x0f;
      n = 2;
    } else if (b >= 0xf0 && b <= 0xf4) {
      cp = b & 0x07;
      n = 3;
    } else return null;
    for (let k = 1; k <= n; k++) {
      const c = bytes[i + k];
      if (c === undefined || (c & 0xc0) !== 0x80) return null;
      cp = (cp << 6) | (c & 0x3f);
    }
    if (
      (n === 2 && cp < 0x800) ||
      (n === 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
      (cp >= 0xd800 && cp <= 0xdfff)
    ) {
      return null;
    }
    s += String.fromCodePoint(cp);
    i += n + 1;
  }
  return s;
}

/** True when `s` has no lone UTF-16 surrogate (so UTF-8 round-trips it exactly). */
export function isWellFormedString(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0xd800 || c > 0xdfff) continue;
    const d = s.charCodeAt(i + 1);
    if (c > 0xdbff || !(d >= 0xdc00 && d <= 0xdfff)) return false;
    i++;
  }
  return true;
}
