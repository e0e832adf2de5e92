/**
 * The commands of the replicated key-value store and their log encoding. Keys are UTF-8
 * strings, values are bytes (the HTTP API takes a PUT's body as it is).
 *
 * ```text
 * byte 0   format version (1)
 * byte 1   op: 1 put, 2 delete, 3 cas
 * then     key: varint length (1..MAX_KEY_BYTES), UTF-8
 * put      value: the rest of the bytes
 * cas      flags (b0 expected present, b1 value present), [expected: varint length, bytes],
 *          [value: the rest of the bytes]
 * ```
 */
import type { CommandCodec } from '@raft/core';
import { concat, varint } from './bytes.js';

/** Longest key, in UTF-8 bytes (the HTTP API's documented limit). */
export const MAX_KEY_BYTES = 1024;

/** A write to the store. A CAS with `value: null` deletes the key when it matches. */
export type KvCommand =
  | { readonly op: 'put'; readonly key: string; readonly value: Uint8Array }
  | { readonly op: 'delete'; readonly key: string }
  | {
      readonly op: 'cas';
      readonly key: string;
      /** The value the key must hold (null: the key must be absent). */
      readonly expected: Uint8Array | null;
      readonly value: Uint8Array | null;
    };

/** What a write answers. `revision` is the store's revision after the command. */
export type KvResult =
  | { readonly op: 'put'; readonly revision: number }
  | { readonly op: 'delete'; readonly revision: number; readonly deleted: boolean }
  | { readonly op: 'cas'; readonly ok: true; readonly revision: number }
  | {
      readonly op: 'cas';
      readonly ok: false;
      readonly revision: number;
      /** The key's value as UTF-8 text (the HTTP API's `current`), null when absent. */
      readonly current: string | null;
    };

const VERSION = 1;
const OPS = ['put', 'delete', 'cas'] as const;
const FLAG_EXPECTED = 0x01;
const FLAG_VALUE = 0x02;

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/** Why `key` cannot be a key, or null. */
export function keyProblem(key: unknown): string | null {
  if (typeof key !== 'string' || key.length === 0) return 'a key must be a non-empty string';
  if (LONE_SURROGATE.test(key)) return 'a key must be well-formed Unicode (no lone surrogate)';
  // A UTF-16 code unit is at most 3 bytes of UTF-8: most keys need no encoding to be measured.
  if (key.length * 3 > MAX_KEY_BYTES && encoder.encode(key).length > MAX_KEY_BYTES) {
    return `a key must be at most ${MAX_KEY_BYTES} bytes of UTF-8`;
  }
  return null;
}

class Reader {
  pos = 0;
  constructor(private readonly bytes: Uint8Array) {}

  byte(what: string): number {
    const b = this.bytes[this.pos];
    if (b === undefined) throw new Error(`truncated before ${what}`);
    this.pos++;
    return b;
  }

  varint(what: string): number {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      const b = this.byte(what);
      value += (b & 0x7f) * scale;
      if (b < 0x80) {
        if (b === 0 && i > 0) throw new Error(`non-minimal ${what}`);
        return value;
      }
      scale *= 0x80;
    }
    throw new Error(`${what} is too long`);
  }

  take(length: number, what: string): Uint8Array {
    if (length > this.bytes.length - this.pos) throw new Error(`truncated in ${what}`);
    const out = this.bytes.subarray(this.pos, this.pos + length);
    this.pos += length;
    return out;
  }

  rest(): Uint8Array {
    const out = this.bytes.subarray(this.pos);
    this.pos = this.bytes.length;
    return out;
  }
}

/** The log codec of {@link KvCommand}s. `encode` refuses a bad key; `decode` bad bytes. */
export const kvCommandCodec: CommandCodec<KvCommand> = {
  encode(command: KvCommand): Uint8Array {
    const problem = keyProblem(command.key);
    if (problem !== null) throw new TypeError(problem);
    const op = OPS.indexOf(command.op);
    if (op < 0) throw new TypeError(`unknown op ${String(command.op)}`);
    const key = encoder.encode(command.key);
    const head = [VERSION, op + 1];
    varint(head, key.length);
    switch (command.op) {
      case 'put':
        return concat([Uint8Array.from(head), key, command.value]);
      case 'delete':
        return concat([Uint8Array.from(head), key]);
      case 'cas': {
        const flags =
          (command.expected === null ? 0 : FLAG_EXPECTED) |
          (command.value === null ? 0 : FLAG_VALUE);
        const middle = [flags];
        if (command.expected !== null) varint(middle, command.expected.length);
        return concat([
          Uint8Array.from(head),
          key,
          Uint8Array.from(middle),
          command.expected ?? new Uint8Array(0),
          command.value ?? new Uint8Array(0),
        ]);
      }
    }
  },

  decode(bytes: Uint8Array): KvCommand {
    const r = new Reader(bytes);
    const version = r.byte('the version');
    if (version !== VERSION) throw new Error(`unknown command format version ${version}`);
    const op = OPS[r.byte('the op') - 1];
    if (op === undefined) throw new Error('unknown op');
    const key = decoder.decode(r.take(r.varint('the key length'), 'the key'));
    switch (op) {
      case 'put':
        return { op, key, value: r.rest() };
      case 'delete':
        if (r.rest().length > 0) throw new Error('trailing bytes after a delete');
        return { op, key };
      case 'cas': {
        const flags = r.byte('the cas flags');
        if ((flags & ~(FLAG_EXPECTED | FLAG_VALUE)) !== 0) throw new Error('unknown cas flags');
        const expected =
          (flags & FLAG_EXPECTED) !== 0
            ? r.take(r.varint('the expected length'), 'expected')
            : null;
        const rest = r.rest();
        if ((flags & FLAG_VALUE) === 0 && rest.length > 0) {
          throw new Error('trailing bytes after a cas without a value');
        }
        return { op, key, expected, value: (flags & FLAG_VALUE) !== 0 ? rest : null };
      }
    }
  },
};
