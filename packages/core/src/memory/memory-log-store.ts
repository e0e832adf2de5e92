import { StorageError } from '../errors.js';
import type { LogBounds, LogStore } from '../interfaces/log-store.js';
import { checkLogIndex, checkLogRead } from '../store-arguments.js';
import type { LogEntry, LogIndex } from '../types.js';

/**
 * A LogStore in memory, for tests and embedding. "Durable" means "held by this object": pass
 * the same instance to a restarted node to simulate a restart that keeps its disk.
 *
 * Entries are held by reference (they are immutable values, types.ts), in one array whose
 * position `k` holds index `firstIndex + k`. Compaction drops the array's prefix and moves
 * `firstIndex`; it never copies an entry.
 */
export class MemoryLogStore implements LogStore {
  private entries: LogEntry[] = [];
  /** Index of `entries[0]` (of the next append when the log is empty). Invariant: >= 1. */
  private firstIndex: LogIndex = 1;
  private closed = false;

  async open(): Promise<LogBounds> {
    this.closed = false;
    return this.bounds();
  }

  async read(from: LogIndex, to: LogIndex): Promise<LogEntry[]> {
    this.check();
    const first = this.firstIndex;
    checkLogRead(from, to, first, first + this.entries.length - 1);
    return this.entries.slice(from - first, to - first);
  }

  async append(entries: readonly LogEntry[]): Promise<void> {
    this.check();
    const head = entries[0];
    if (head === undefined) return;
    const first = this.firstIndex;
    const last = first + this.entries.length - 1;
    if (head.index > last + 1) {
      throw new StorageError(`append at ${head.index} would leave a gap after ${last}`);
    }
    if (!(head.index >= first)) {
      // Below firstIndex lie compacted entries a snapshot covers: rewriting them is a bug.
      throw new StorageError(`append at ${head.index} is before the first index ${first}`);
    }
    if (head.index <= last) this.entries.length = head.index - first;
    for (const e of entries) this.entries.push(e);
  }

  async compact(upTo: LogIndex): Promise<void> {
    this.check();
    checkLogIndex('compact', upTo);
    const first = this.firstIndex;
    if (upTo < first) return;
    const count = upTo - first + 1;
    if (count >= this.entries.length) this.entries.length = 0;
    else this.entries.splice(0, count);
    this.firstIndex = upTo + 1;
  }

  async truncate(from: LogIndex): Promise<void> {
    this.check();
    checkLogIndex('truncate', from);
    const keep = from - this.firstIndex;
    if (keep >= this.entries.length) return;
    this.entries.length = Math.max(keep, 0);
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  /** The current bounds, synchronously (tests). */
  bounds(): LogBounds {
    return { firstIndex: this.firstIndex, lastIndex: this.firstIndex + this.entries.length - 1 };
  }

  /** Every stored entry, from `firstIndex` (tests). */
  snapshotEntries(): readonly LogEntry[] {
    return this.entries.slice();
  }

  private check(): void {
    if (this.closed) throw new StorageError('the log store is closed');
  }
}
