/**
 * Reading a stored snapshot as a stream of chunks, checking what a state machine streams, and
 * pacing both so that a large snapshot never holds the event loop.
 */
import { RaftError } from '../errors.js';
import type { Clock } from '../interfaces/clock.js';
import type { SnapshotSource, SnapshotStore } from '../interfaces/snapshot-store.js';
import type { SnapshotChunks } from '../interfaces/state-machine.js';
import type { SnapshotMeta } from '../types.js';

/**
 * Lets a long stream of chunks yield to the event loop: a state machine that generates its image
 * on the CPU, or a store that answers from memory, would otherwise produce a 256 MiB snapshot in
 * one turn, and timers (heartbeats) and messages would wait for all of it.
 */
export class Pacer {
  private since: number;

  constructor(
    private readonly clock: Clock,
    private readonly sliceMs = 4,
  ) {
    this.since = clock.now();
  }

  /** A promise of a later turn once `sliceMs` of work went by since the last one; else null. */
  pause(): Promise<void> | null {
    if (this.clock.now() - this.since < this.sliceMs) return null;
    return new Promise<void>((resolve) => {
      this.clock.setTimer(0, () => {
        this.since = this.clock.now();
        resolve();
      });
    });
  }
}

/** The bytes of `source` from `offset`, `chunkBytes` at a time (the last chunk may be shorter). */
export async function* readChunks(
  source: SnapshotSource,
  chunkBytes: number,
  pacer: Pacer | null = null,
  offset = 0,
): AsyncGenerator<Uint8Array, void, undefined> {
  for (let at = offset; at < source.size; ) {
    const pause = pacer?.pause();
    if (pause) await pause;
    const chunk = await source.read(at, Math.min(chunkBytes, source.size - at));
    if (chunk.byteLength === 0) {
      throw new RaftError(
        'STORAGE',
        `the snapshot store returned no bytes at offset ${at} of ${source.size}`,
      );
    }
    at += chunk.byteLength;
    yield chunk;
  }
}

/** The chunks a state machine's `snapshot()` produced, checked to be byte arrays. */
export async function* checkedChunks(
  chunks: SnapshotChunks,
): AsyncGenerator<Uint8Array, void, undefined> {
  for await (const chunk of chunks as AsyncIterable<Uint8Array>) {
    if (!(chunk instanceof Uint8Array)) {
      throw new RaftError(
        'INVALID_ARGUMENT',
        `snapshot() must stream Uint8Array chunks, got ${chunk === null ? 'null' : typeof chunk}`,
      );
    }
    if (chunk.byteLength > 0) yield chunk;
  }
}

/** Options of {@link writeSnapshot}. */
export interface WriteSnapshotOptions {
  /** Runs before each chunk is written; a rejection aborts the snapshot (the node stopped). */
  readonly beforeChunk?: () => Promise<void> | void;
}

/**
 * Streams `chunks` into a new snapshot `meta` of `store` and commits it; on any failure (the
 * stream throws, the store refuses, `beforeChunk` rejects) aborts it, so the store is as before,
 * and rethrows. Resolves with the snapshot's size in bytes.
 */
export async function writeSnapshot(
  store: SnapshotStore,
  meta: SnapshotMeta,
  chunks: SnapshotChunks,
  options: WriteSnapshotOptions = {},
): Promise<number> {
  const sink = await store.create(meta);
  let size = 0;
  try {
    for await (const chunk of checkedChunks(chunks)) {
      await options.beforeChunk?.();
      await sink.write(chunk);
      size += chunk.byteLength;
    }
    await options.beforeChunk?.();
    await sink.commit();
    return size;
  } catch (err) {
    await sink.abort().catch(() => {});
    throw err;
  }
}

/**
 * The latest snapshot of `store` as a stream of chunks of at most `chunkBytes` (default 1 MiB),
 * with its meta, or null when the store holds none. The source is closed when the stream ends,
 * fails, or is left early (`break`).
 */
export async function readSnapshot(
  store: SnapshotStore,
  chunkBytes = 1024 * 1024,
): Promise<{
  readonly meta: SnapshotMeta;
  readonly size: number;
  readonly chunks: AsyncIterable<Uint8Array>;
} | null> {
  if (!(Number.isSafeInteger(chunkBytes) && chunkBytes > 0)) {
    throw new RaftError(
      'INVALID_ARGUMENT',
      `chunkBytes must be a positive integer, got ${chunkBytes}`,
    );
  }
  const source = await store.open();
  if (source === null) return null;
  async function* chunks(): AsyncGenerator<Uint8Array, void, undefined> {
    try {
      yield* readChunks(source as SnapshotSource, chunkBytes);
    } finally {
      await (source as SnapshotSource).close();
    }
  }
  return { meta: source.meta, size: source.size, chunks: chunks() };
}
