import { RaftError, StorageError } from '../errors.js';
import type { LogBounds, LogStore } from '../interfaces/log-store.js';
import type { LogEntry, LogIndex } from '../types.js';

/**
 * A LogStore in memory, for tests and embedding. "Durable" means "held by this object": pass
 * the same instance to a restarted node to simulate a restart that keeps its disk.
 */
export class MemoryLogStore implements LogStore {
  private entries: LogEntry[] = [];
  private closed = false;

  async open(): Promise<LogBounds> {
    this.closed = false;
    return { firstIndex: 1, lastIndex: this.entries.length };
  }

  async read(from: LogIndex, to: LogIndex): Promise<LogEntry[]> {
    this.check();
    if (
      !Number.isInteger(from) ||
      !Number.isInteger(to) ||
      from < 1 ||
      to < from ||
      to > this.entries.length + 1
    ) {
      throw new RaftError(
        'INVALID_ARGUMENT',
        `read [${from}, ${to}) is outside the log [1, ${this.entries.length + 1})`,
      );
    }
    return this.entries.slice(from - 1, to - 1);
  }

  async append(entries: readonly LogEntry[]): Promise<void> {
    this.check();
    const first = entries[0];
    if (first === undefined) return;
    if (first.index < 1 || first.index > this.entries.length + 1) {
      throw new StorageError(
        `append at ${first.index} would leave a gap after ${this.entries.length}`,
      );
    }
    if (first.index <= this.entries.length) this.entries.length = first.index - 1;
    for (const e of entries) this.entries.push(e);
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  /** Every stored entry (tests). */
  snapshotEntries(): readonly LogEntry[] {
    return this.entries.slice();
  }

  private check(): void {
    if (this.closed) throw new StorageError('the log store is closed');
  }
}
