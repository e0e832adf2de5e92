import type { SnapshotMeta } from '../types.js';

/**
 * A snapshot being written: chunks go in as they are produced (by the local state machine, or
 * as they arrive from the leader), so no snapshot is ever held whole in memory.
 *
 * Contract:
 * - `write(chunk)` appends the bytes in order; calls are never concurrent on one sink (the
 *   runtime awaits each). It MAY return before the bytes are durable; the sink MUST NOT keep a
 *   reference to `chunk` after it resolves unless it copied it (the caller may reuse it).
 * - `commit()` makes the snapshot durable and atomically visible to `open()`: after a crash the
 *   store holds either the whole snapshot or none of it. Then snapshots beyond the store's
 *   retention (the newest N by index) MAY be deleted.
 * - `abort()` discards what was written; the store is as if `create` had never been called.
 *   It never rejects, and calling it after `commit()` or twice is harmless.
 * - Errors reject with a {@link StorageError}.
 */
export interface SnapshotSink {
  write(chunk: Uint8Array): Promise<void>;
  commit(): Promise<void>;
  abort(): Promise<void>;
}

/**
 * A committed snapshot opened for reading. It stays readable until `close()`, even when a newer
 * snapshot is committed and this one is pruned meanwhile (a transfer to a follower may outlive
 * the snapshot's retention).
 */
export interface SnapshotSource {
  readonly meta: SnapshotMeta;
  /** Total size in bytes. */
  readonly size: number;
  /**
   * Up to `length` bytes starting at `offset` (exactly `length` unless the snapshot ends first;
   * empty at `offset === size`). Rejects with a RaftError of code `INVALID_ARGUMENT` when
   * `offset` is outside `[0, size]` or `length` is not a positive integer.
   */
  read(offset: number, length: number): Promise<Uint8Array>;
  /** Releases the source. Idempotent. */
  close(): Promise<void>;
}

/**
 * Durable storage for state-machine snapshots, written and read as streams (hashicorp
 * `SnapshotStore`, openraft `SnapshotData`).
 *
 * Contract:
 * - `create(meta)` starts a snapshot described by `meta`; several sinks MAY be open at once
 *   (a follower receiving one from its leader while taking its own), each independent.
 * - `open()` returns the committed snapshot with the highest `meta.index` (of two with the same
 *   index, the one committed last), or null when there is none. A snapshot committed with a
 *   lower index than the latest one is kept or pruned, never returned by `open()` ahead of it.
 * - A store keeps at least the newest committed snapshot; how many more it retains is its
 *   option (the memory store's `retain`, default 2).
 * - Errors reject with a {@link StorageError}. What a failure costs depends on where: taking
 *   the node's own snapshot fails that snapshot (a `snapshotFailed` event; the previous one and
 *   the log stay); sending one to a follower is retried an election timeout later; installing
 *   one received from the leader, or restoring one at start-up, is fatal to the node.
 */
export interface SnapshotStore {
  create(meta: SnapshotMeta): Promise<SnapshotSink>;
  open(): Promise<SnapshotSource | null>;
  close(): Promise<void>;
}
