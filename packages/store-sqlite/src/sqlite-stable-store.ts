import { type HardState, type StableStore, StorageError } from '@raft/core';
import type BetterSqlite3 from 'better-sqlite3';
import { storageCall } from './storage-call.js';

type Database = BetterSqlite3.Database;

interface HardStateRow {
  term: number;
  voted_for: string | null;
  commit_index: number;
}

/**
 * The StableStore over the one-row `hard_state` table. `save()` is one upsert statement, so the
 * term, the vote and the commit index change together or not at all (never a term without its
 * vote), durable on resolve.
 */
export class SqliteStableStore implements StableStore {
  private closed = false;
  private readonly upsert: BetterSqlite3.Statement<[number, string | null, number]>;
  private readonly select: BetterSqlite3.Statement<[], HardStateRow>;

  constructor(
    db: Database,
    private readonly onClose: () => void,
  ) {
    this.upsert = db.prepare(
      `INSERT INTO hard_state (id, term, voted_for, commit_index) VALUES (1, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET
         term = excluded.term, voted_for = excluded.voted_for, commit_index = excluded.commit_index`,
    );
    this.select = db.prepare('SELECT term, voted_for, commit_index FROM hard_state WHERE id = 1');
  }

  async load(): Promise<HardState | null> {
    this.check('load()');
    const row = storageCall('load the hard state', () => this.select.get());
    if (row === undefined) return null;
    return { term: row.term, votedFor: row.voted_for, commit: row.commit_index };
  }

  async save(state: HardState): Promise<void> {
    this.check('save()');
    const { term, votedFor, commit } = state;
    if (
      !Number.isSafeInteger(term) ||
      !Number.isSafeInteger(commit) ||
      !(votedFor === null || typeof votedFor === 'string')
    ) {
      throw new StorageError(
        `save(): a hard state needs integer term and commit and a string or null votedFor, got term ${term}, commit ${commit}`,
      );
    }
    storageCall('save the hard state', () => this.upsert.run(term, votedFor, commit));
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
    if (this.closed) throw new StorageError(`${what} on a closed sqlite stable store`);
  }
}
