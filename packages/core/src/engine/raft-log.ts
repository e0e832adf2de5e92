/**
 * The engine's view of the log: every entry since the start of the log, in memory, split into
 * a durable prefix and an unstable suffix, plus the commit and apply cursors.
 *
 * ```
 *   firstIndex            stableIndex            committed      lastIndex
 *       │ durable entries      │ unstable (not yet persisted)       │
 *   ────┼──────────────────────┼─────────────────────────────────────┼──►
 *       applied <= applying <= committed  (apply never passes stableIndex)
 * ```
 *
 * Invariant: applied <= applying <= committed <= lastIndex.
 * Invariant: applying <= stableIndex (only durable entries are applied, so a restart never
 * "un-applies" an entry).
 */
import type { LogEntry, LogIndex, Term } from '../types.js';

/** The log of one node, as the engine sees it. */
export class RaftLog {
  /** entries[i] has index `offset + 1 + i`. `offset` is always 0: there are no snapshots yet
   *  to compact the log. */
  private entries: LogEntry[];
  private readonly offset: LogIndex = 0;
  /** Highest index known durable in the LogStore (entries after it are unstable). */
  stableIndex: LogIndex;
  /** Highest index known committed. */
  committed: LogIndex;
  /** Highest index handed to the runtime for applying. */
  applying: LogIndex;
  /** Highest index the runtime reported applied. */
  applied: LogIndex;
  /** Most entries handed out for applying and not yet reported applied (a bound on the
   *  runtime's apply queue). */
  maxApplying = Number.POSITIVE_INFINITY;
  /** Lowest index removed by a conflict truncation since the caller last reset it (or
   *  +Infinity): lets the engine notice that a configuration entry was truncated away. */
  truncatedFrom: LogIndex = Number.POSITIVE_INFINITY;

  constructor(entries: readonly LogEntry[], committed: LogIndex, applied: LogIndex) {
    this.entries = entries.slice();
    for (let i = 0; i < this.entries.length; i++) {
      if (this.entries[i]?.index !== this.offset + 1 + i) {
        throw new RangeError(
          `log entries are not contiguous from ${this.offset + 1} at position ${i}`,
        );
      }
    }
    this.stableIndex = this.lastIndex();
    // etcd refuses too: a commit index past the log means the log store lost committed entries,
    // and a node that ran on would vote for candidates that lack them.
    if (committed > this.lastIndex()) {
      throw new RangeError(
        `the commit index ${committed} is past the last log index ${this.lastIndex()}: committed entries were lost`,
      );
    }
    this.committed = committed;
    this.applied = Math.min(applied, this.committed);
    this.applying = this.applied;
  }

  firstIndex(): LogIndex {
    return this.offset + 1;
  }

  lastIndex(): LogIndex {
    return this.offset + this.entries.length;
  }

  lastTerm(): Term {
    return this.entries.length === 0 ? 0 : (this.entries[this.entries.length - 1] as LogEntry).term;
  }

  /** Term of the entry at `index`; 0 for index 0; undefined when outside the log. */
  term(index: LogIndex): Term | undefined {
    if (index === this.offset) return 0;
    return this.entries[index - this.offset - 1]?.term;
  }

  entry(index: LogIndex): LogEntry | undefined {
    return this.entries[index - this.offset - 1];
  }

  matchTerm(index: LogIndex, term: Term): boolean {
    return this.term(index) === term;
  }

  /** §5.4.1 election restriction: is a log ending at (lastIndex, lastTerm) at least as
   *  up-to-date as ours? */
  isUpToDate(lastIndex: LogIndex, lastTerm: Term): boolean {
    const ourTerm = this.lastTerm();
    return lastTerm > ourTerm || (lastTerm === ourTerm && lastIndex >= this.lastIndex());
  }

  /**
   * Fast backtracking (etcd `findConflictByTerm`): the largest index <= `index` whose term is
   * <= `term`, so one round trip skips every entry of a conflicting term (thesis §5.3).
   */
  findConflictByTerm(index: LogIndex, term: Term): LogIndex {
    let i = Math.min(index, this.lastIndex());
    while (i > this.offset) {
      const t = this.term(i) as Term;
      if (t <= term) break;
      i--;
    }
    return i;
  }

  /**
   * Entries in [from, to) with at most `maxEntries` entries and, beyond the first entry, at
   * most `maxBytes` payload bytes (the first entry always goes, however large).
   */
  slice(
    from: LogIndex,
    to: LogIndex,
    maxEntries = Number.POSITIVE_INFINITY,
    maxBytes = Number.POSITIVE_INFINITY,
  ): LogEntry[] {
    const start = from - this.offset - 1;
    let end = Math.min(to - this.offset - 1, this.entries.length, start + maxEntries);
    if (maxBytes !== Number.POSITIVE_INFINITY) {
      let bytes = 0;
      for (let i = start; i < end; i++) {
        bytes += (this.entries[i] as LogEntry).data.byteLength;
        if (bytes > maxBytes && i > start) {
          end = i;
          break;
        }
      }
    }
    return start >= end ? [] : this.entries.slice(start, end);
  }

  /** Appends entries created by this node as leader. */
  append(entry: LogEntry): void {
    this.entries.push(entry);
  }

  /**
   * §5.3: appends `entries` (which follow `prevIndex`), truncating at the first conflict.
   * Entries already present with the same term are skipped, so a duplicated or reordered
   * AppendEntries never truncates (etcd `maybeAppend`). Returns the last index the message
   * covers. The caller has checked that `prevIndex` matches and that the conflict is not
   * at or before `committed` (a Raft invariant: committed entries never conflict).
   */
  appendAfter(prevIndex: LogIndex, entries: readonly LogEntry[]): LogIndex {
    let i = 0;
    for (; i < entries.length; i++) {
      const e = entries[i] as LogEntry;
      const t = this.term(e.index);
      if (t === undefined) break;
      if (t !== e.term) {
        if (e.index <= this.committed) {
          throw new RangeError(
            `entry ${e.index} conflicts with committed entry (commit ${this.committed})`,
          );
        }
        this.truncateFrom(e.index);
        break;
      }
    }
    for (; i < entries.length; i++) this.entries.push(entries[i] as LogEntry);
    return prevIndex + entries.length;
  }

  private truncateFrom(index: LogIndex): void {
    this.entries.length = index - this.offset - 1;
    if (this.stableIndex >= index) this.stableIndex = index - 1;
    if (index < this.truncatedFrom) this.truncatedFrom = index;
  }

  /** Unstable entries: the suffix after `stableIndex`. */
  unstableEntries(): LogEntry[] {
    return this.stableIndex === this.lastIndex()
      ? []
      : this.entries.slice(this.stableIndex - this.offset);
  }

  /**
   * A write of entries ending at (index, term) has become durable. By Log Matching, if our
   * entry at `index` still has `term`, everything up to it is what was written; if it changed
   * meanwhile (a conflicting append truncated it), the rewrite will be persisted again.
   */
  stableTo(index: LogIndex, term: Term): void {
    if (this.term(index) === term && index > this.stableIndex) this.stableIndex = index;
  }

  commitTo(index: LogIndex): boolean {
    if (index > this.committed) {
      if (index > this.lastIndex()) {
        throw new RangeError(`commit ${index} is past the last index ${this.lastIndex()}`);
      }
      this.committed = index;
      return true;
    }
    return false;
  }

  /** Committed, durable entries not yet handed out for applying (at most `maxApplying` beyond
   *  `applied`). */
  nextCommittedEntries(): LogEntry[] {
    const upTo = this.applyLimit();
    return upTo <= this.applying ? [] : this.slice(this.applying + 1, upTo + 1);
  }

  hasNextCommittedEntries(): boolean {
    return this.applyLimit() > this.applying;
  }

  private applyLimit(): LogIndex {
    return Math.min(this.committed, this.stableIndex, this.applied + this.maxApplying);
  }

  appliedTo(index: LogIndex): void {
    if (index > this.applied) this.applied = index;
  }
}
