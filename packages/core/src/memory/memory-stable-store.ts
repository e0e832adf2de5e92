import { StorageError } from '../errors.js';
import type { StableStore } from '../interfaces/stable-store.js';
import type { HardState } from '../types.js';

/** A StableStore in memory, for tests and embedding (see MemoryLogStore). */
export class MemoryStableStore implements StableStore {
  private state: HardState | null = null;
  private closed = false;

  async load(): Promise<HardState | null> {
    this.closed = false;
    return this.state;
  }

  async save(state: HardState): Promise<void> {
    if (this.closed) throw new StorageError('the stable store is closed');
    this.state = { term: state.term, votedFor: state.votedFor, commit: state.commit };
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}
