/**
 * The argument checks the storage contracts prescribe, shared by every store (the in-memory
 * ones here, and the adapters), so that every store answers a bad call the same way: a
 * RaftError with code `INVALID_ARGUMENT` (a caller's bug, never a storage failure).
 */
import { RaftError } from './errors.js';
import type { LogIndex } from './types.js';

/**
 * Checks a `LogStore.read(from, to)` against the log `[firstIndex, lastIndex]`: `from` and `to`
 * integers with `firstIndex <= from <= to <= lastIndex + 1`.
 */
export function checkLogRead(
  from: LogIndex,
  to: LogIndex,
  firstIndex: LogIndex,
  lastIndex: LogIndex,
): void {
  const end = lastIndex + 1;
  if (
    !Number.isSafeInteger(from) ||
    !Number.isSafeInteger(to) ||
    from < firstIndex ||
    to < from ||
    to > end
  ) {
    throw new RaftError(
      'INVALID_ARGUMENT',
      `read [${from}, ${to}) is outside the log [${firstIndex}, ${end})`,
    );
  }
}

/** Checks the index argument of `LogStore.compact()` or `truncate()` (`what` names the call). */
export function checkLogIndex(what: 'compact' | 'truncate', index: LogIndex): void {
  if (!Number.isSafeInteger(index)) {
    throw new RaftError('INVALID_ARGUMENT', `${what}(${index}): the index must be an integer`);
  }
}

/**
 * Checks the arguments of a `SnapshotSource.read(offset, length)` against its contract and
 * returns how many bytes the call reads: `min(length, size - offset)`, 0 at the end. Throws
 * when `offset` is outside `[0, size]` or `length` is not a positive integer.
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
