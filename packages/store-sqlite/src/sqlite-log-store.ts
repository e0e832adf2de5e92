import {
  checkLogIndex,
  checkLogRead,
  type EntryKind,
  type LogBounds,
  type LogEntry,
  type LogIndex,
  type LogStore,
  StorageError,
} from '@raft/core';
import type BetterSqlite3 from 'better-sqlite3';
import { storageCall } from './storage-call.js';

type Database = BetterSqlite3.Database;

/** `kind` as stored: one small integer instead of a string per row. */
const KIND_CODES: Readonly<Record<EntryKind, number>> = { command: 0, noop: 1, membership: 2 };
const KINDS: readonly EntryKind[] = ['command', 'noop', 'membership'];

/** A row of `log_entry` in raw mode: [idx, term, kind, data]. */
type EntryRow = [number, number, number, Uint8Array];

/**
 * The LogStore over the `log_entry` and `log_meta` tables. Its owner ({@link openSqliteStores})
 * holds the database's lock, so this object is the only writer and may cache the bounds.
 *
 * Invariant: `log_entry` holds exactly the indexes `[firstIndex, lastIndex]`, and
 * `log_meta.first_index = firstIndex`; `firstIndex >= 1`, `lastIndex >= firstIndex - 1`.
 */
export class SqliteLogStore implements LogStore {
  private firstIndex: LogIndex;
  private lastIndex: LogIndex;
  private closed = false;

  private readonly selectRange: BetterSqlite3.Statement<[number, number], EntryRow>;
  private readonly insertEntry: BetterSqlite3.Statement<[number, number, number, Uint8Array]>;
  private readonly deleteFrom: BetterSqlite3.Statement<[number]>;
  private readonly deleteUpTo: BetterSqlite3.Statement<[number]>;
  private readonly setFirstIndex: BetterSqlite3.Statement<[number]>;
  private readonly appendBatch: (entries: readonly LogEntry[], replace: boolean) => void;
  private readonly compactPrefix: (upTo: LogIndex) => void;

  constructor(
    db: Database,
    private readonly onClose: () => void,
  ) {
    // Prepared once: each call below is one or two steps of compiled statements.
    this.selectRange = db
      .prepare<[number, number], EntryRow>(
        'SELECT idx, term, kind, data FROM log_entry WHERE idx >= ? AND idx < ? ORDER BY idx',
      )
      .raw(true);
    this.insertEntry = db.prepare(
      'INSERT INTO log_entry (idx, term, kind, data) VALUES (?, ?, ?, ?)',
    );
    this.deleteFrom = db.prepare('DELETE FROM log_entry WHERE idx >= ?');
    this.deleteUpTo = db.prepare('DELETE FROM log_entry WHERE idx <= ?');
    this.setFirstIndex = db.prepare('UPDATE log_meta SET first_index = ? WHERE id = 1');
    const insert = this.insertEntry;
    const deleteFrom = this.deleteFrom;
    // One transaction per batch: the suffix it replaces and the entries it adds commit together
    // (one fsync), so a crash leaves the old log or the new one, never a mix with a gap.
    this.appendBatch = db.transaction((entries: readonly LogEntry[], replace: boolean) => {
      const head = entries[0] as LogEntry;
      if (replace) deleteFrom.run(head.index);
      for (let i = 0; i < entries.length; i++) {
        const e = entries[i] as LogEntry;
        if (e.index !== head.index + i) {
          throw new StorageError(
            `append: entry ${i} of the batch has index ${e.index}, expected ${head.index + i} (the entries must be contiguous)`,
          );
        }
        const kind = KIND_CODES[e.kind];
        if (kind === undefined || !(e.data instanceof Uint8Array)) {
          throw new StorageError(
            `append: entry ${e.index} needs a kind of command, noop or membership and Uint8Array data`,
          );
        }
        insert.run(e.index, e.term, kind, e.data);
      }
    });
    const deleteUpTo = this.deleteUpTo;
    const setFirstIndex = this.setFirstIndex;
    this.compactPrefix = db.transaction((upTo: LogIndex) => {
      deleteUpTo.run(upTo);
      setFirstIndex.run(upTo + 1);
    });

    const bounds = storageCall('opening the log', () => readBounds(db));
    this.firstIndex = bounds.firstIndex;
    this.lastIndex = bounds.lastIndex;
  }

  async open(): Promise<LogBounds> {
    this.check('open()');
    return { firstIndex: this.firstIndex, lastIndex: this.lastIndex };
  }

  async read(from: LogIndex, to: LogIndex): Promise<LogEntry[]> {
    this.check('read()');
    checkLogRead(from, to, this.firstIndex, this.lastIndex);
    if (from === to) return [];
    const rows = storageCall(`read [${from}, ${to})`, () => this.selectRange.all(from, to));
    if (rows.length !== to - from) {
      throw new StorageError(
        `read [${from}, ${to}): the database holds ${rows.length} of its ${to - from} entries (the log is damaged)`,
      );
    }
    const out: LogEntry[] = new Array(rows.length);
    for (let i = 0; i < rows.length; i++) {
      const [index, term, code, bytes] = rows[i] as EntryRow;
      const kind = KINDS[code];
      if (kind === undefined || index !== from + i) {
        throw new StorageError(`read: entry ${index} is damaged (kind ${code})`);
      }
      // The driver returns Buffers; hand out plain Uint8Arrays over the same memory, the type
      // that went in.
      out[i] = {
        index,
        term,
        kind,
        data: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length),
      };
    }
    return out;
  }

  async append(entries: readonly LogEntry[]): Promise<void> {
    this.check('append()');
    const head = entries[0];
    if (head === undefined) return;
    const first = this.firstIndex;
    const last = this.lastIndex;
    if (!Number.isSafeInteger(head.index) || head.index > last + 1) {
      throw new StorageError(`append at ${head.index} would leave a gap after ${last}`);
    }
    if (head.index < first) {
      // Below firstIndex lie compacted entries a snapshot covers: rewriting them is a bug.
      throw new StorageError(`append at ${head.index} is before the first index ${first}`);
    }
    storageCall('append', () => this.appendBatch(entries, head.index <= last));
    this.lastIndex = head.index + entries.length - 1;
  }

  async compact(upTo: LogIndex): Promise<void> {
    this.check('compact()');
    checkLogIndex('compact', upTo);
    if (upTo < this.firstIndex) return;
    storageCall(`compact(${upTo})`, () => this.compactPrefix(upTo));
    this.firstIndex = upTo + 1;
    // Compacting past the end (a snapshot installed beyond the log) leaves it empty at upTo + 1.
    if (this.lastIndex < upTo) this.lastIndex = upTo;
  }

  async truncate(from: LogIndex): Promise<void> {
    this.check('truncate()');
    checkLogIndex('truncate', from);
    if (from > this.lastIndex) return;
    // One statement is one transaction: it drops the whole suffix or nothing.
    storageCall(`truncate(${from})`, () => this.deleteFrom.run(from));
    this.lastIndex = Math.max(from, this.firstIndex) - 1;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.onClose();
  }

  /** Marks the store closed without telling the owner (the owner is closing everything). */
  detach(): void {
    this.closed = true;
  }

  private check(what: string): void {
    if (this.closed) throw new StorageError(`${what} on a closed sqlite log store`);
  }
}

/** The bounds as stored, checked against the invariant. */
function readBounds(db: Database): LogBounds {
  const firstIndex = db.prepare('SELECT first_index FROM log_meta WHERE id = 1').pluck().get();
  if (!(typeof firstIndex === 'number' && Number.isSafeInteger(firstIndex) && firstIndex >= 1)) {
    throw new StorageError(
      `the log_meta row is missing or damaged (first_index ${String(firstIndex)})`,
    );
  }
  const range = db.prepare('SELECT min(idx) AS lo, max(idx) AS hi FROM log_entry').get() as {
    lo: number | null;
    hi: number | null;
  };
  if (range.lo === null || range.hi === null) return { firstIndex, lastIndex: firstIndex - 1 };
  if (range.lo !== firstIndex) {
    throw new StorageError(
      `the log is damaged: its first entry is ${range.lo}, but its first index is ${firstIndex}`,
    );
  }
  return { firstIndex, lastIndex: range.hi };
}
