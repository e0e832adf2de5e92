/**
 * @raft/store-file: durable, embedded storage for @raft/core on `node:fs` alone: a segmented,
 * checksummed append-only log with group commit, an atomic stable store and a snapshot store,
 * in one locked directory per node.
 *
 * Every export is listed by name: this file is the reviewed public surface.
 */
export { CorruptLogError, DirectoryLockedError } from './errors.js';
export type { FileLogStore, FileLogStoreStats } from './file-log-store.js';
export type { FileStores, FileStoresOptions } from './open-file-stores.js';
export { DEFAULT_SEGMENT_BYTES, openFileStores } from './open-file-stores.js';
