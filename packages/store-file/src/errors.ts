/**
 * The typed errors of the file store. Both are {@link StorageError}s (code `STORAGE`, fatal to
 * the node), with the payload a person needs to act on them.
 */
import { RaftError, StorageError } from '@raft/core';

/**
 * A log segment, the stable state or a snapshot fails its checksum or its framing somewhere a
 * crash cannot explain (anywhere but the torn tail of the last segment). Nothing is dropped: the
 * store refuses to open (or the read fails) until a person looks at `file` around `offset`.
 */
export class CorruptLogError extends StorageError {
  /** The damaged file (absolute path). */
  readonly file: string;
  /** Byte offset of the first damaged record in `file`. */
  readonly offset: number;

  constructor(file: string, offset: number, detail: string) {
    super(`${file} is corrupt at byte offset ${offset}: ${detail}`);
    this.name = 'CorruptLogError';
    this.file = file;
    this.offset = offset;
  }
}

/** Another process (or another open in this one) holds the data directory. */
export class DirectoryLockedError extends StorageError {
  /** The data directory. */
  readonly dir: string;
  /** Pid of the holder, as its lock file names it (null when the lock file is unreadable). */
  readonly holderPid: number | null;

  constructor(dir: string, holderPid: number | null, detail: string) {
    super(`${dir} is in use: ${detail}`);
    this.name = 'DirectoryLockedError';
    this.dir = dir;
    this.holderPid = holderPid;
  }
}

/** `err` when it is a RaftError already, else a StorageError saying what failed (with `cause`). */
export function asStorageError(err: unknown, what: string): RaftError {
  if (RaftError.is(err)) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new StorageError(`${what} failed: ${message}`, { cause: err });
}
