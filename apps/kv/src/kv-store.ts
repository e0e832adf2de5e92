/**
 * The key-value state: a Map from key to value and the revision it was last written at, and
 * the store's revision (one more per write that changed something, as etcd counts). The
 * deterministic StateMachine the log is applied to; reads look at it once the node says it is
 * safe to (`read()`).
 *
 * Snapshot image (streamed in chunks of about 1 MiB):
 *
 * ```text
 * "KVS1"  revision:varint  count:varint  (keyLength:varint key  modRevision:varint
 *                                          valueLength:varint value) × count
 * ```
 */
import type { ApplyContext, SnapshotChunks, StateMachine } from '@raft/core';
import { concat, varint } from './bytes.js';
import type { KvCommand, KvResult } from './kv-command.js';

/** One key's value and the store revision that last wrote it. */
export interface KvEntry {
  readonly value: Uint8Array;
  readonly modRevision: number;
}

const MAGIC = [0x4b, 0x56, 0x53, 0x31]; // "KVS1"
const CHUNK_BYTES = 1024 * 1024;
const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });
/** CAS answers `current` as text; a value that is not UTF-8 shows with replacement characters. */
const lenientDecoder = new TextDecoder('utf-8');

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The replicated key-value state machine (without sessions: see kv-state-machine.ts). */
export class KvStore implements StateMachine<KvCommand, KvResult> {
  private data = new Map<string, KvEntry>();
  private rev = 0;

  /** The store's revision: the number of writes that changed something. */
  get revision(): number {
    return this.rev;
  }

  get size(): number {
    return this.data.size;
  }

  get(key: string): KvEntry | undefined {
    return this.data.get(key);
  }

  /** Keys starting with `prefix`, in code-unit order, at most `limit` of them. */
  keys(prefix: string, limit: number): string[] {
    const out: string[] = [];
    for (const key of this.data.keys()) if (key.startsWith(prefix)) out.push(key);
    out.sort();
    return out.length > limit ? out.slice(0, limit) : out;
  }

  apply(command: KvCommand, _at: ApplyContext): KvResult {
    switch (command.op) {
      case 'put':
        this.rev++;
        this.data.set(command.key, { value: command.value.slice(), modRevision: this.rev });
        return { op: 'put', revision: this.rev };
      case 'delete': {
        const deleted = this.data.delete(command.key);
        if (deleted) this.rev++;
        return { op: 'delete', revision: this.rev, deleted };
      }
      case 'cas': {
        const current = this.data.get(command.key);
        const matches =
          command.expected === null
            ? current === undefined
            : current !== undefined && equalBytes(current.value, command.expected);
        if (!matches) {
          return {
            op: 'cas',
            ok: false,
            revision: this.rev,
            current: current === undefined ? null : lenientDecoder.decode(current.value),
          };
        }
        if (command.value === null) {
          if (current !== undefined) {
            this.data.delete(command.key);
            this.rev++;
          }
        } else {
          this.rev++;
          this.data.set(command.key, { value: command.value.slice(), modRevision: this.rev });
        }
        return { op: 'cas', ok: true, revision: this.rev };
      }
    }
  }

  snapshot(): SnapshotChunks {
    // Entries are never mutated, only replaced: a copy of the references is a consistent
    // image while applies go on.
    const entries = [...this.data];
    const revision = this.rev;
    return (function* () {
      const head: number[] = [...MAGIC];
      varint(head, revision);
      varint(head, entries.length);
      let parts: Uint8Array[] = [Uint8Array.from(head)];
      let size = head.length;
      for (const [key, entry] of entries) {
        const k = encoder.encode(key);
        const before: number[] = [];
        varint(before, k.length);
        const after: number[] = [];
        varint(after, entry.modRevision);
        varint(after, entry.value.length);
        parts.push(Uint8Array.from(before), k, Uint8Array.from(after), entry.value);
        size += before.length + k.length + after.length + entry.value.length;
        if (size >= CHUNK_BYTES) {
          yield concat(parts);
          parts = [];
          size = 0;
        }
      }
      if (parts.length > 0) yield concat(parts);
    })();
  }

  /** Replaces the whole state with a snapshot's. TODO(#17): parse while streaming. */
  async restore(chunks: AsyncIterable<Uint8Array>): Promise<void> {
    const parts: Uint8Array[] = [];
    for await (const c of chunks) parts.push(c);
    const bytes = concat(parts);
    let pos = 0;
    const need = (n: number, what: string) => {
      if (n > bytes.length - pos) throw new Error(`snapshot truncated in ${what}`);
    };
    const readVarint = (what: string): number => {
      let value = 0;
      let scale = 1;
      for (let i = 0; i < 8; i++) {
        need(1, what);
        const b = bytes[pos++] as number;
        value += (b & 0x7f) * scale;
        if (b < 0x80) return value;
        scale *= 0x80;
      }
      throw new Error(`snapshot ${what} is too long`);
    };
    need(4, 'the magic');
    if (MAGIC.some((m, i) => bytes[i] !== m)) throw new Error('not a KV snapshot (bad magic)');
    pos = 4;
    const revision = readVarint('the revision');
    const count = readVarint('the count');
    const data = new Map<string, KvEntry>();
    for (let i = 0; i < count; i++) {
      const keyLength = readVarint('a key length');
      need(keyLength, 'a key');
      const key = decoder.decode(bytes.subarray(pos, pos + keyLength));
      pos += keyLength;
      const modRevision = readVarint('a revision');
      const valueLength = readVarint('a value length');
      need(valueLength, 'a value');
      data.set(key, { value: bytes.slice(pos, pos + valueLength), modRevision });
      pos += valueLength;
    }
    if (pos !== bytes.length) throw new Error('trailing bytes after the snapshot');
    this.data = data;
    this.rev = revision;
  }
}
