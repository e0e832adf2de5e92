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
import { ChunkReader } from './chunk-reader.js';
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

/** The replicated key-value state machine. Idempotency keys are the server's (client
 *  sessions around this state machine). */
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

  /** Replaces the whole state with a snapshot's, parsed as the chunks arrive. The state is
   *  replaced only once the whole image has been read and checked. */
  async restore(chunks: AsyncIterable<Uint8Array>): Promise<void> {
    const reader = new ChunkReader(chunks);
    const magic = await reader.bytes(4, 'the magic');
    if (MAGIC.some((m, i) => magic[i] !== m)) throw new Error('not a KV snapshot (bad magic)');
    const revision = await reader.varint('the revision');
    const count = await reader.varint('the count');
    const data = new Map<string, KvEntry>();
    for (let i = 0; i < count; i++) {
      const key = decoder.decode(await reader.bytes(await reader.varint('a key length'), 'a key'));
      const modRevision = await reader.varint('a revision');
      const value = await reader.bytes(await reader.varint('a value length'), 'a value');
      data.set(key, { value, modRevision });
    }
    if (!(await reader.atEnd())) throw new Error('trailing bytes after the snapshot');
    this.data = data;
    this.rev = revision;
  }
}
