/**
 * Start-up: what a node recovers from its stores, and the first write of a brand-new cluster.
 *
 * ```
 *   open log ─► load hard state ─► read log ─► empty and bootstrap given? ─► write entry 1
 *                                      │                                      (membership)
 *                                      └─► check: commit index within the log, else refuse
 * ```
 */
import { RaftError, StorageError } from '../errors.js';
import type { LogStore } from '../interfaces/log-store.js';
import type { StableStore } from '../interfaces/stable-store.js';
import { encodeMembership } from '../membership.js';
import type { HardState, LogEntry, Membership } from '../types.js';

/** What the engine starts from. */
export interface Recovered {
  readonly hardState: HardState | null;
  readonly entries: readonly LogEntry[];
}

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
 * @throws StorageError when a store fails, when the log is compacted (not supported yet), or when
 *   the hard state's commit index lies past the last stored entry: the log store lost committed
 *   entries, and a node that ran on would vote for candidates that lack them (etcd refuses too).
 */
export async function recover(
  logStore: LogStore,
  stableStore: StableStore,
  bootstrap: Membership | undefined,
  checkpoint: () => void,
): Promise<Recovered> {
  const bounds = await storageCall('open log store', () => logStore.open());
  checkpoint();
  let hardState = await storageCall('load hard state', () => stableStore.load());
  checkpoint();
  if (bounds.firstIndex !== 1) {
    throw new StorageError(
      `the log starts at ${bounds.firstIndex}: compacted logs need snapshot support`,
    );
  }
  let entries =
    bounds.lastIndex >= bounds.firstIndex
      ? await storageCall('read log', () => logStore.read(bounds.firstIndex, bounds.lastIndex + 1))
      : [];
  checkpoint();
  if (entries.length !== bounds.lastIndex - bounds.firstIndex + 1) {
    throw new StorageError(
      `the log store reported entries [${bounds.firstIndex}, ${bounds.lastIndex}] but returned ${entries.length}`,
    );
  }
  if (hardState !== null && hardState.commit > bounds.lastIndex) {
    throw new StorageError(
      `the hard state's commit index ${hardState.commit} is past the last log entry ${bounds.lastIndex}: the log store lost committed entries. Restore the node's data, or remove it from the cluster and add it back under a new id with empty storage`,
    );
  }
  if (entries.length === 0 && hardState === null && bootstrap !== undefined) {
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
  return { hardState, entries };
}
