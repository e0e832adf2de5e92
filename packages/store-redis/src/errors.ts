import { StorageError } from '@raft/core';

/** Who holds the lock on a key prefix, as its holder wrote it into the lock key. */
export interface RedisLockHolder {
  /** Process id of the holder. */
  readonly pid: number;
  /** `os.hostname()` of the holder's machine. */
  readonly host: string;
  /** When it took the lock (ISO 8601, the holder's clock). */
  readonly since: string;
}

/**
 * Another store holds the lock on this key prefix: a second `openRedisStores` on the same
 * prefix while the first is open (in this process or any other), which would otherwise let two
 * nodes write one node's storage. `holder` says who; the lock expires `lockTtlMs` after its
 * holder stopped refreshing it (at once when the holder was on this host and its process is
 * gone). A StorageError (code `STORAGE`), like every failure to open the storage.
 */
export class RedisPrefixLockedError extends StorageError {
  readonly prefix: string;
  /** Null when the lock key holds something this package did not write. */
  readonly holder: RedisLockHolder | null;

  constructor(prefix: string, holder: RedisLockHolder | null, raw: string) {
    super(
      holder === null
        ? `the Redis key prefix '${prefix}' is locked by an unknown holder (lock value ${JSON.stringify(raw.slice(0, 200))})`
        : `the Redis key prefix '${prefix}' is in use by pid ${holder.pid} on host ${holder.host} (since ${holder.since}): one prefix belongs to one node, open it once`,
    );
    this.prefix = prefix;
    this.holder = holder;
  }
}
