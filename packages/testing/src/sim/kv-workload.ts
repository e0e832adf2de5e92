/**
 * The simulator's built-in workload: a replicated key-value store and the client history the
 * linearizability checker reads.
 *
 * - {@link KvReplica} is the state machine (one per node incarnation): string keys and values,
 *   `put` and `cas` commands, and a running hash of every command applied, which is its digest
 *   (replicas agree only if they applied the same commands in the same order). Its snapshot is
 *   the hash, the count and the map, padded with filler derived from them and streamed in
 *   chunks of 1-64 bytes, so snapshots span many InstallSnapshot chunks; a restore checks every
 *   byte.
 * - {@link KvHistory} records what clients saw, with virtual invoke and return times: writes
 *   and CAS through `propose()` (an outcome `unknown` leaves the operation indeterminate), and
 *   reads through `read()` followed by a look at the node's own replica. A read that fails has
 *   no effect and is left out.
 */
import type { ApplyContext, CommandCodec, StateMachine } from '@raft/core';
import type { KvInput, KvOutput } from '../checkers/kv-model.js';
import type { Operation } from '../checkers/linearizability.js';
import { hashBytes } from '../checkers/safety.js';

/** A command of {@link KvReplica}. */
export type KvCommand =
  | { readonly t: 'put'; readonly k: string; readonly v: string }
  | { readonly t: 'cas'; readonly k: string; readonly e: string | null; readonly v: string };

/** What a command returns: `put` always `{ ok: true }`; `cas` whether it swapped. */
export interface KvResult {
  readonly ok: boolean;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** JSON commands: not on a hot path, and readable in traces. */
export const kvCommandCodec: CommandCodec<KvCommand> = {
  encode: (c) => encoder.encode(JSON.stringify(c)),
  decode: (b) => JSON.parse(decoder.decode(b)) as KvCommand,
};

/** See the module comment. */
export class KvReplica implements StateMachine<KvCommand, KvResult> {
  private map = new Map<string, string>();
  private hash = 0x811c9dc5;
  private count = 0;

  /** The value of `key` as applied on this replica (null: absent). */
  get(key: string): string | null {
    return this.map.get(key) ?? null;
  }

  /** The running hash of every command applied (and its count). */
  digest(): string {
    return `${this.hash}:${this.count}`;
  }

  apply(command: KvCommand, at: ApplyContext): KvResult {
    this.hash =
      Math.imul(this.hash ^ hashBytes(kvCommandCodec.encode(command)) ^ at.index, 0x01000193) >>> 0;
    this.count++;
    if (command.t === 'put') {
      this.map.set(command.k, command.v);
      return { ok: true };
    }
    const current = this.map.get(command.k) ?? null;
    if (current !== command.e) return { ok: false };
    this.map.set(command.k, command.v);
    return { ok: true };
  }

  snapshot(): Iterable<Uint8Array> {
    // Captured now, streamed later: applies go on meanwhile.
    return image(this.hash, this.count, [...this.map.entries()]);
  }

  async restore(chunks: AsyncIterable<Uint8Array>): Promise<void> {
    const parts: Uint8Array[] = [];
    for await (const c of chunks) parts.push(c.slice());
    const bytes = concat(parts);
    if (bytes.length < 12) throw new Error(`a snapshot of ${bytes.length} bytes is too short`);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const hash = view.getUint32(0);
    const count = view.getUint32(4);
    const length = view.getUint32(8);
    if (12 + length > bytes.length) throw new Error('the snapshot image is truncated');
    const entries = JSON.parse(decoder.decode(bytes.subarray(12, 12 + length))) as [
      string,
      string,
    ][];
    const expected = concat(image(hash, count, entries));
    if (expected.length !== bytes.length || expected.some((b, i) => b !== bytes[i])) {
      throw new Error('the snapshot image is corrupt');
    }
    this.hash = hash;
    this.count = count;
    this.map = new Map(entries);
  }
}

/** The snapshot image: header, the map as JSON, then 16-271 bytes of derived filler. */
function image(hash: number, count: number, entries: readonly [string, string][]): Uint8Array[] {
  const body = encoder.encode(JSON.stringify(entries));
  let x = (hash ^ Math.imul(count, 0x9e3779b1)) >>> 0 || 1;
  const next = (): number => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
  const filler = 16 + (next() % 256);
  const bytes = new Uint8Array(12 + body.length + filler);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, hash);
  view.setUint32(4, count);
  view.setUint32(8, body.length);
  bytes.set(body, 12);
  for (let i = 12 + body.length; i < bytes.length; i++) bytes[i] = next() & 0xff;
  const chunks: Uint8Array[] = [];
  for (let at = 0; at < bytes.length; ) {
    const n = Math.min(bytes.length - at, 1 + (next() % 64));
    chunks.push(bytes.subarray(at, at + n));
    at += n;
  }
  return chunks;
}

function concat(chunks: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

/** One operation being recorded: complete it once, or leave it indeterminate. */
export interface PendingOperation {
  /** The operation returned `output` at virtual time `at`. */
  ok(output: KvOutput, at: number): void;
  /** It certainly had no effect (a read that failed, a write refused as not applied). */
  discard(): void;
  /** Its outcome is unknown (it may take effect later, or never): it stays open. */
  unknown(): void;
}

/** Counts of what a history holds, for reports. */
export interface KvHistoryCounts {
  readonly writes: number;
  readonly cas: number;
  readonly reads: number;
  readonly indeterminate: number;
}

/** See the module comment. */
export class KvHistory {
  private readonly ops: Operation<KvInput, KvOutput>[] = [];
  private indeterminate = 0;
  /** Operations invoked and not yet completed, discarded or left indeterminate. */
  private readonly open = new Set<PendingOperation>();

  /** A client invokes `input` at virtual time `at`. */
  invoke(clientId: string, input: KvInput, at: number): PendingOperation {
    let done = false;
    const finish = (): boolean => {
      if (done) return false;
      done = true;
      this.open.delete(pending);
      return true;
    };
    const pending: PendingOperation = {
      ok: (output, returned) => {
        if (finish()) this.ops.push({ clientId, input, call: at, return: returned, output });
      },
      discard: () => {
        finish();
      },
      unknown: () => {
        if (input.type === 'get') {
          finish();
          return;
        }
        if (finish()) {
          this.indeterminate++;
          this.ops.push({ clientId, input, call: at });
        }
      },
    };
    this.open.add(pending);
    return pending;
  }

  /** The run is over: every operation still open is indeterminate (a write may have applied). */
  closeOpen(): void {
    for (const p of [...this.open]) p.unknown();
  }

  /** The recorded operations, in the order they completed (or became indeterminate). */
  operations(): readonly Operation<KvInput, KvOutput>[] {
    return this.ops;
  }

  counts(): KvHistoryCounts {
    let writes = 0;
    let cas = 0;
    let reads = 0;
    for (const op of this.ops) {
      if (op.input.type === 'put') writes++;
      else if (op.input.type === 'cas') cas++;
      else if (op.input.type === 'get') reads++;
    }
    return { writes, cas, reads, indeterminate: this.indeterminate };
  }
}
