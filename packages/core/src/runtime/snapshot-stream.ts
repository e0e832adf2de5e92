/**
 * Reading a stored snapshot as a stream of chunks, checking what a state machine streams, and
 * pacing both so that a large snapshot never holds the event loop.
 */
import { RaftError } from '../errors.js';
import type { Clock } from '../interfaces/clock.js';
import type { SnapshotSource } from '../interfaces/snapshot-store.js';
import type { SnapshotChunks } from '../interfaces/state-machine.js';

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
