/**
 * Reading a stored snapshot as a stream of chunks, and checking what a state machine streams.
 */
import { RaftError } from '../errors.js';
import type { SnapshotSource } from '../interfaces/snapshot-store.js';
import type { SnapshotChunks } from '../interfaces/state-machine.js';

/** The bytes of `source` from `offset`, `chunkBytes` at a time (the last chunk may be shorter). */
export async function* readChunks(
  source: SnapshotSource,
  chunkBytes: number,
  offset = 0,
): AsyncGenerator<Uint8Array, void, undefined> {
  for (let at = offset; at < source.size; ) {
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
