/**
 * Start-up: what a node recovers from its stores, and the first write of a brand-new cluster.
 *
 * ```
 *   open log ─► load hard state ─► latest snapshot? ─► restore the state machine from it
 *     ─► read the log after it ─► empty and bootstrap given? ─► write entry 1 (membership)
 *            └─► check: no gap after the snapshot, commit index within log or snapshot
 * ```
 */
import { RaftError, StorageError } from '../errors.js';
import type { LogBounds, LogStore } from '../interfaces/log-store.js';
import type { SnapshotSource, SnapshotStore } from '../interfaces/snapshot-store.js';
import type { StableStore } from '../interfaces/stable-store.js';
import { encodeMembership } from '../membership.js';
import type { HardState, LogEntry, Membership, SnapshotMeta } from '../types.js';

/** What the engine starts from. */
export interface Recovered {
  readonly hardState: HardState | null;
  /** The snapshot the state machine was restored from (null: none, the log starts at 1). */
  readonly snapshot: SnapshotMeta | null;
  /** The log after the snapshot. */
  readonly entries: readonly LogEntry[];
}

/** Restores the state machine from a stored snapshot (chunk by chunk). */
export type RestoreFrom = (source: SnapshotSource) => Promise<void>;

/** `err` from a store, as a StorageError that names the step (a StorageError passes as is). */
export function storageFailure(what: string, err: unknown): RaftError {
  return RaftError.is(err, 'STORAGE') ? err : new StorageError(`${what} failed`, { cause: err });
}

/** Runs a store call, turning any failure into a StorageError that names the step. */
async function storageCall<T>(what: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    throw storageFailure(what, err);
  }
}

/**
 * Reads the stores; on empty storage with `bootstrap`, writes the first entry of a new cluster
 * (every bootstrapping node writes the same one, so their logs match from the start, as etcd
 * bootstraps). `checkpoint` runs after each await (it throws if the node was stopped meanwhile).
 *
 * @throws StorageError when a store fails, when the log starts past what the latest snapshot
 *   covers (or is compacted with no snapshot), when a snapshot is stored but the state machine
 *   cannot restore it, or when the hard state's commit index lies past the last stored entry
 *   (the log store lost committed entries, and a node that ran on would vote for candidates that
 *   lack them; etcd refuses too).
 */
export async function recover(
  logStore: LogStore,
  stableStore: StableStore,
  snapshotStore: SnapshotStore | null,
  restore: RestoreFrom | null,
  bootstrap: Membership | undefined,
  checkpoint: () => void,
): Promise<Recovered> {
  let bounds = await storageCall('open log store', () => logStore.open());
  checkpoint();
  let hardState = await storageCall('load hard state', () => stableStore.load());
  checkpoint();
  const snapshot = await restoreLatest(snapshotStore, restore, checkpoint);
  const covered = snapshot?.index ?? 0;
  if (snapshot === null && bounds.firstIndex !== 1) {
    throw new StorageError(
      `the log starts at ${bounds.firstIndex} but no snapshot covers the entries before it${snapshotStore === null ? ' (no snapshotStore is configured)' : ''}`,
    );
  }
  if (bounds.firstIndex > covered + 1) {
    throw new StorageError(
      `the log starts at ${bounds.firstIndex} but the latest snapshot ends at ${covered}: the entries between them are lost`,
    );
  }
  if (snapshot !== null) bounds = await alignWithSnapshot(logStore, bounds, snapshot, checkpoint);
  const from = Math.max(bounds.firstIndex, covered + 1);
  let entries =
    bounds.lastIndex >= from
      ? await storageCall('read log', () => logStore.read(from, bounds.lastIndex + 1))
      : [];
  checkpoint();
  if (entries.length !== bounds.lastIndex - from + 1) {
    throw new StorageError(
      `the log store reported entries [${from}, ${bounds.lastIndex}] but returned ${entries.length}`,
    );
  }
  const last = Math.max(bounds.lastIndex, covered);
  if (hardState !== null && hardState.commit > last) {
    throw new StorageError(
      `the hard state's commit index ${hardState.commit} is past the last log entry ${last}: the log store lost committed entries. Restore the node's data, or remove it from the cluster and add it back under a new id with empty storage`,
    );
  }
  if (snapshot === null && entries.length === 0 && hardState === null && bootstrap !== undefined) {
    const entry: LogEntry = {
      index: 1,
      term: 1,
      kind: 'membership',
      data: encodeMembership(bootstrap),
    };
    const initial: HardState = { term: 1, votedFor: null, commit: 1 };
    await storageCall('append bootstrap entry', () => logStore.append([entry]));
    await storageCall('save hard state', () => stableStore.save(initial));
    checkpoint();
    hardState = initial;
    entries = [entry];
  }
  return { hardState, snapshot, entries };
}

/** Restores the state machine from the latest stored snapshot, if there is one. */
async function restoreLatest(
  snapshotStore: SnapshotStore | null,
  restore: RestoreFrom | null,
  checkpoint: () => void,
): Promise<SnapshotMeta | null> {
  if (snapshotStore === null) return null;
  const source = await storageCall('open the latest snapshot', () => snapshotStore.open());
  checkpoint();
  if (source === null) return null;
  try {
    if (restore === null) {
      throw new StorageError(
        `the snapshot store holds a snapshot (at ${source.meta.index}) but the state machine has no restore()`,
      );
    }
    await restore(source);
  } finally {
    await source.close().catch(() => {});
  }
  checkpoint();
  return source.meta;
}

/**
 * Makes the log store agree with the snapshot: a log that ends before the snapshot is emptied
 * up to it (the next append follows the snapshot), and a stored entry at the snapshot's index
 * with another term means the entries after it are not the leader's: they go.
 */
async function alignWithSnapshot(
  logStore: LogStore,
  bounds: LogBounds,
  snapshot: SnapshotMeta,
  checkpoint: () => void,
): Promise<LogBounds> {
  const s = snapshot.index;
  if (bounds.firstIndex <= s && bounds.lastIndex > s) {
    const [atSnapshot] = await storageCall('read log', () => logStore.read(s, s + 1));
    checkpoint();
    if (atSnapshot !== undefined && atSnapshot.term === snapshot.term) return bounds;
    await storageCall('truncate log', () => logStore.truncate(s + 1));
  } else if (bounds.lastIndex > s) {
    return bounds;
  }
  await storageCall('compact log', () => logStore.compact(s));
  checkpoint();
  return { firstIndex: s + 1, lastIndex: s };
}
