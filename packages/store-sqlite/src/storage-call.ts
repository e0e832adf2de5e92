import { RaftError, StorageError } from '@raft/core';

/**
 * Runs `body` (synchronous: better-sqlite3 blocks) and turns whatever it throws into what the
 * store contracts allow: a RaftError passes unchanged (a StorageError of ours, or an
 * INVALID_ARGUMENT for a caller's bad range), anything else, the driver's `SqliteError` above
 * all, becomes `StorageError('<what> failed: <message>', { cause })`.
 */
export function storageCall<T>(what: string, body: () => T): T {
  try {
    return body();
  } catch (err) {
    throw toStorageError(what, err);
  }
}

/** `err` as a RaftError: itself if it is one, otherwise a StorageError wrapping it. */
export function toStorageError(what: string, err: unknown): RaftError {
  if (RaftError.is(err)) return err;
  return new StorageError(`${what} failed: ${describeCause(err)}`, { cause: err });
}

/** The driver's message, with SQLite's result code when it has one (`SQLITE_FULL`, …). */
function describeCause(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && !err.message.includes(code)
    ? `${err.message} (${code})`
    : err.message;
}
