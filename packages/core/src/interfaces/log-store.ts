import type { LogEntry, LogIndex } from '../types.js';

/** Bounds of a log. An empty log has `firstIndex === lastIndex + 1`. */
export interface LogBounds {
  readonly firstIndex: LogIndex;
  readonly lastIndex: LogIndex;
}

/**
 * Durable storage for log entries: a write-behind log the runtime reads at start-up.
 *
 * Contract:
 * - `open()` MUST be called once before any other method, and returns the bounds of what
 *   survived the last crash.
 * - `read(from, to)` returns the entries in `[from, to)`, in order, with no gaps; it MUST
 *   reject with a RaftError of code `INVALID_ARGUMENT` when the range is outside the bounds.
 * - `append(entries)` MUST resolve only once the entries are DURABLE. The entries are
 *   contiguous. If `entries[0].index <= lastIndex`, the stored suffix from that index is
 *   replaced in the same atomic write (etcd README step 1): after a crash the log is either
 *   the old one or the new one, never a mix with a gap. `entries[0].index` is never greater
 *   than `lastIndex + 1`; an append that would leave a gap MUST be refused with a
 *   {@link StorageError}, storing nothing (it means a bug, and the log must not get a hole).
 * - After `close()`, calls MAY reject with a {@link StorageError}; they MUST NOT corrupt the log.
 * - Calls are never concurrent: the runtime awaits each one before the next.
 * - Errors MUST be reported by rejecting with a {@link StorageError}; a storage error is fatal
 *   to the node.
 *
 * - `compact(upTo)` drops every entry with index `<= upTo`, once a durable snapshot covers them:
 *   afterwards `firstIndex` is `upTo + 1`. `upTo` MAY be at or past `lastIndex` (a follower that
 *   installed a snapshot beyond its log): the log is then empty, `lastIndex` becomes `upTo`, and
 *   the next append starts at `upTo + 1`. A `upTo` below `firstIndex` is a no-op. Durable on
 *   resolve; a crash during it leaves either the old prefix or the new one, never a hole.
 * - `truncate(from)` drops every entry with index `>= from` (all of them when `from <=
 *   firstIndex`; `firstIndex` stays, so `lastIndex` becomes `firstIndex - 1`). A `from` past
 *   `lastIndex` is a no-op. Durable on resolve. The runtime calls it to discard entries after a
 *   snapshot from the leader that they contradict (or that would otherwise be left after it), at
 *   start-up as in an install.
 */
export interface LogStore {
  open(): Promise<LogBounds>;
  read(from: LogIndex, to: LogIndex): Promise<LogEntry[]>;
  append(entries: readonly LogEntry[]): Promise<void>;
  compact(upTo: LogIndex): Promise<void>;
  truncate(from: LogIndex): Promise<void>;
  close(): Promise<void>;
}
