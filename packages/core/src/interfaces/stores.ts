import type { LogStore } from './log-store.js';
import type { SnapshotStore } from './snapshot-store.js';
import type { StableStore } from './stable-store.js';

/**
 * The three durable stores of one node, as a storage adapter's `open…Stores(options)` factory
 * returns them (`openFileStores`, `openSqliteStores`, `openRedisStores`). Pass it whole as
 * `createRaftNode({ stores })`: the node's `stop()` closes the three stores, then calls
 * `close()`.
 *
 * Contract:
 * - The three stores share one storage (one directory, one database, one key prefix) that
 *   belongs to exactly one node: opening it twice at once MUST fail with a
 *   {@link StorageError}, never let two writers interleave.
 * - `close()` closes each store that is still open and releases the storage (locks, file
 *   handles, connections). It MUST be idempotent and MUST NOT fail because a store was closed
 *   already (the node closes each store before it).
 * - Closing all three stores SHOULD release the storage as `close()` does, and only the three
 *   stores SHOULD be enumerable (`close` and any extra field not), so that
 *   `createRaftNode({ ...stores, … })` works too and its `stop()` leaves nothing held. The three
 *   adapters of this repository do both.
 */
export interface RaftStores {
  readonly logStore: LogStore;
  readonly stableStore: StableStore;
  readonly snapshotStore: SnapshotStore;
  close(): Promise<void>;
}
