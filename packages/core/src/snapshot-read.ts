import { RaftError } from './errors.js';

/**
 * Checks the arguments of a `SnapshotSource.read(offset, length)` against its contract and
 * returns how many bytes the call reads: `min(length, size - offset)`, 0 at the end. Throws a
 * RaftError with code `INVALID_ARGUMENT` when `offset` is outside `[0, size]` or `length` is
 * not a positive integer. For snapshot store adapters, so that every store answers a bad read
 * the same way.
 */
export function snapshotReadLength(offset: number, length: number, size: number): number {
  if (!(Number.isSafeInteger(offset) && offset >= 0 && offset <= size)) {
    throw new RaftError(
      'INVALID_ARGUMENT',
      `read offset ${offset} is outside the snapshot [0, ${size}]`,
    );
  }
  if (!(Number.isSafeInteger(length) && length >= 1)) {
    throw new RaftError(
      'INVALID_ARGUMENT',
      `read length must be a positive integer, got ${length}`,
    );
  }
  return Math.min(length, size - offset);
}
