/**
 * @raft/store-sqlite: the three durable stores of a @raft/core node (log, hard state,
 * snapshots) in one SQLite database, through better-sqlite3 in WAL mode.
 *
 * Every export is listed by name: this file is the reviewed public surface.
 */
export { openSqliteStores } from './open-sqlite-stores.js';
export type { SqliteStoresOptions } from './sqlite-stores-options.js';
