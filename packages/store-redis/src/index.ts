/**
 * @raft/store-redis: the log, stable and snapshot stores of a Raft node in Redis, under one key
 * prefix per node, every write an atomic Lua script guarded by the prefix's lock.
 *
 * Every export is listed by name: this file is the reviewed public surface.
 */
export type { RedisLockHolder } from './errors.js';
export { RedisPrefixLockedError } from './errors.js';
export { openRedisStores } from './open-redis-stores.js';
export type { RedisStoresOptions } from './options.js';
