import type { HardState } from '../types.js';

/**
 * Durable storage for the {@link HardState} (term, vote, commit).
 *
 * Contract:
 * - `load()` returns what the last resolved `save()` stored, or null on a fresh store.
 * - `save()` MUST be atomic and durable on resolve: a reader never sees a torn
 *   `{ term, votedFor }`, and a crash after resolve never loses it.
 * - Calls are never concurrent.
 * - Errors reject with a {@link StorageError}; fatal to the node.
 */
export interface StableStore {
  load(): Promise<HardState | null>;
  save(state: HardState): Promise<void>;
  close(): Promise<void>;
}
