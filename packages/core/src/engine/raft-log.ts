/**
 * The engine's view of the log: the entries after `offset` in memory (everything before it is
 * covered by a snapshot and compacted away), split into a durable prefix and an unstable
 * suffix, plus the commit and apply cursors.
 *
 * ```
 *   offset  firstIndex        stableIndex            committed      lastIndex
 *     │(term   │ durable entries      │ unstable (not yet persisted)       │
 *   ──┼known)──┼──────────────────────┼─────────────────────────────────────┼──►
 *             applied <= applying <= committed  (apply never passes stableIndex)
 * ```
 *
 * Invariant: offset <= applied (only applied entries are compacted, and a snapshot restores
 * the state machine to its index).
 * Invariant: applied <= applying <= committed <= lastIndex.
 * Invariant: only durable entries are handed out to apply (applying passes stableIndex only
 * just after an install, whose snapshot covers up to `offset`), so a restart never "un-applies"
 * an entry.
 */
import type { LogEntry, LogIndex, Term } from '../types.js';

/** The log of one node, as the engine sees it. */
export class RaftLog {
  /** entries[i] has index `offset + 1 + i`. */
  private entries: LogEntry[];
  /** Index of the last compacted entry (0: nothing compacted); its term is `offsetTerm`. */
  private offset: LogIndex;
  private offsetTerm: Term;
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

  /**
   * `entries` follow `after` (the index and term of the last entry a snapshot covers, or
   * `{ index: 0, term: 0 }`); `applied` is raised to `after.index` (the state machine holds the
   * snapshot) and `committed` too (a snapshot holds only committed entries).
   */
  constructor(
    entries: readonly LogEntry[],
    committed: LogIndex,
    applied: LogIndex,
    after: { readonly index: LogIndex; readonly term: Term } = { index: 0, term: 0 },
  ) {
    this.offset = after.index;
    this.offsetTerm = after.term;
    committed = Math.max(committed, after.index);
    applied = Math.max(applied, after.index);
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
    return this.entries.length === 0
      ? this.offsetTerm
      : (this.entries[this.entries.length - 1] as LogEntry).term;
  }

  /** Term of the entry at `index` (0 for index 0); undefined when outside the log or compacted,
   *  except for the last compacted entry, whose term is known. */
  term(index: LogIndex): Term | undefined {
    if (index === this.offset) return this.offsetTerm;
    if (index < this.offset) return undefined;
    return this.entries[index - this.offset - 1]?.term;
  }

  /** Index of the last compacted entry (0 when nothing is compacted). */
  compactedIndex(): LogIndex {
    return this.offset;
  }

  /**
   * Drops the entries up to `upTo` from memory (a durable snapshot covers them). Bounded by what
   * is applied and durable; returns the new compacted index.
   */
  compact(upTo: LogIndex): LogIndex {
    const to = Math.min(upTo, this.applied, this.stableIndex);
    if (to <= this.offset) return this.offset;
    this.offsetTerm = this.term(to) as Term;
    this.entries = this.entries.slice(to - this.offset);
    this.offset = to;
    return to;
  }

  /**
   * Installs a snapshot ending at (index, term), which holds only committed entries and is past
   * `committed`: everything up to `index` is dropped, and so is everything after it unless our
   * entry at `index` has `term` (Log Matching: then the suffix after it is the leader's too,
   * thesis Figure 5.13). Returns whether the suffix was kept.
   *
   * `stableIndex` keeps its meaning, "the log store holds our entries up to here", and may stay
   * below `index` for a while (a write in flight may still raise it). Whether the store keeps
   * its entries after `index` is decided when the install is handed out (see
   * {@link storeKeepsAfter}).
   */
  restore(index: LogIndex, term: Term): boolean {
    const keep = this.term(index) === term;
    this.entries = keep ? this.entries.slice(index - this.offset) : [];
    // Not ours beyond `index`: the store is emptied after it, and everything is written anew.
    if (!keep) this.stableIndex = index;
    this.offset = index;
    this.offsetTerm = term;
    this.committed = index;
    this.applying = index;
    this.applied = index;
    return keep;
  }

  /**
   * For an install at `index` being handed out: may the log store keep its entries after
   * `index`? Only when it durably holds ours up to `index` or beyond (`stableIndex >= index`):
   * what follows is then ours, or a suffix a conflict cut from memory that still follows ours
   * and is replaced by the next append. Otherwise the store may hold, after `index`, entries that
   * followed another entry at or before `index` (never acknowledged: an acknowledged entry we
   * still hold is at or below `stableIndex`): the store is emptied after `index`, and every entry
   * kept in memory is written again. Call with no write in flight.
   */
  storeKeepsAfter(index: LogIndex, keep: boolean): boolean {
    if (keep && this.stableIndex >= index) return true;
    if (this.stableIndex < index) this.stableIndex = index;
    return false;
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
    const start = Math.max(0, from - this.offset - 1);
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
    // Entries a snapshot covers are committed, hence ours already.
    while (i < entries.length && (entries[i] as LogEntry).index <= this.offset) i++;
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
    if (this.stableIndex >= this.lastIndex()) return [];
    // stableIndex may lie below the compaction point just after an install (see restore).
    return this.entries.slice(Math.max(0, this.stableIndex - this.offset));
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
