/**
 * Options of `openRedisStores`, their defaults, and up-front validation: a bad option rejects
 * `openRedisStores` with a ConfigError naming the field and what it accepts, before any
 * connection is made.
 */
import type { Logger } from '@raft/core';
import { ConfigError, noopLogger } from '@raft/core';
import type { Redis } from 'ioredis';

/**
 * Options of {@link openRedisStores}. Every optional field documents its default. All but
 * `redis` and `logger` are plain JSON values, so a child process can open the stores from a
 * JSON config.
 */
export interface RedisStoresOptions {
  /**
   * Prepended to every key of this node's storage, for example `raft:n1:`: several nodes (or
   * clusters) share one Redis by giving each node its own prefix. Required, a non-empty string.
   * No prefix may be a prefix of another one in use (`raft:n1` and `raft:n10` would overlap):
   * end it with a separator such as `:`.
   */
  readonly prefix: string;
  /**
   * The Redis to connect to (`redis://[user:password@]host:port[/db]`, or `rediss://` for TLS).
   * The stores open their own connection, configured to fail fast (see the README), and close
   * it in `close()`. Default `redis://127.0.0.1:6379`. Give either `url` or `redis`, not both.
   */
  readonly url?: string;
  /**
   * An ioredis client you own, instead of `url` (pass it connected): the stores use it and
   * `close()` leaves it connected. Every call is still bounded by `commandTimeoutMs`, but a client with an offline
   * queue (ioredis's default) may still run a command after it timed out here: prefer `url`, or
   * create the client with `enableOfflineQueue: false`. A client with a `keyPrefix` is refused
   * (put it in `prefix`).
   */
  readonly redis?: Redis;
  /**
   * Bound on every Redis command, in milliseconds: a call that gets no answer in time rejects
   * with a StorageError, so a node never waits on a Redis that is gone. An integer in
   * [1, 2147483647]; default 5000.
   */
  readonly commandTimeoutMs?: number;
  /**
   * How long the lock on `prefix` outlives its holder, in milliseconds. The holder refreshes it
   * every third of that; a store that could not refresh it in time loses it and can no longer
   * write. A new opener waits this long after a holder on another host died without closing
   * (a dead holder on the same host is recognised at once by its pid). An integer of at least
   * `2 * commandTimeoutMs` and 1000; default the larger of 10000 and `2 * commandTimeoutMs`.
   */
  readonly lockTtlMs?: number;
  /**
   * How many committed snapshots to keep, the newest by index (of two with the same index, the
   * one committed last counts as newer). A positive integer; default 2.
   */
  readonly retainSnapshots?: number;
  /**
   * Snapshots are stored in pieces of this many bytes, one Redis key each (a string value is
   * limited to 512 MB, a snapshot is not). An integer in [1, 67108864]; default 524288 (512 KiB).
   */
  readonly snapshotChunkBytes?: number;
  /** Default: a no-op logger. Pass a pino logger directly. */
  readonly logger?: Logger;
  /**
   * What to do when Redis is not configured to keep acknowledged writes (`appendonly yes` and
   * `appendfsync always`, no eviction), or when that cannot be checked: false (the default)
   * logs a warning and opens; true refuses to open with a StorageError.
   */
  readonly requireDurableRedis?: boolean;
}

/** {@link RedisStoresOptions} with every default applied. */
export interface ResolvedRedisStoresOptions {
  readonly prefix: string;
  /** Exactly one of `url` and `redis` is set. */
  readonly url: string | null;
  readonly redis: Redis | null;
  readonly commandTimeoutMs: number;
  readonly lockTtlMs: number;
  readonly retainSnapshots: number;
  readonly snapshotChunkBytes: number;
  readonly logger: Logger;
  readonly requireDurableRedis: boolean;
}

/** The default of {@link RedisStoresOptions.url}. */
export const DEFAULT_URL = 'redis://127.0.0.1:6379';
const DEFAULT_COMMAND_TIMEOUT_MS = 5000;
const MIN_LOCK_TTL_MS = 1000;
const DEFAULT_LOCK_TTL_MS = 10_000;
const DEFAULT_RETAIN_SNAPSHOTS = 2;
const DEFAULT_SNAPSHOT_CHUNK_BYTES = 512 * 1024;
/** Far below Redis's 512 MB per value, so one chunk is one reasonable command. */
const MAX_SNAPSHOT_CHUNK_BYTES = 64 * 1024 * 1024;
const MAX_TIMER_MS = 2 ** 31 - 1;

const OPTION_KEYS = [
  'prefix',
  'url',
  'redis',
  'commandTimeoutMs',
  'lockTtlMs',
  'retainSnapshots',
  'snapshotChunkBytes',
  'logger',
  'requireDurableRedis',
] as const satisfies readonly (keyof RedisStoresOptions)[];

// Compile-time check that OPTION_KEYS lists every option.
type Unlisted = Exclude<keyof RedisStoresOptions, (typeof OPTION_KEYS)[number]>;
const everyOptionListed: [Unlisted] extends [never] ? true : Unlisted = true;
void everyOptionListed;

function int(field: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(field, `must be an integer in [${min}, ${max}], got ${String(value)}`);
  }
  return value;
}

/**
 * Validates `options` and applies the defaults. Throws a ConfigError naming the first bad field
 * (an unknown field is an error too: in a JSON config it is most likely a typo).
 */
export function validateRedisStoresOptions(
  options: RedisStoresOptions,
): ResolvedRedisStoresOptions {
  if (typeof options !== 'object' || options === null) {
    throw new ConfigError('options', 'must be an object');
  }
  for (const key of Object.keys(options)) {
    if (!(OPTION_KEYS as readonly string[]).includes(key)) {
      throw new ConfigError(key, `unknown option (valid options: ${OPTION_KEYS.join(', ')})`);
    }
  }
  const { prefix } = options;
  if (typeof prefix !== 'string' || prefix.length === 0) {
    throw new ConfigError(
      'prefix',
      `must be a non-empty string such as 'raft:n1:', got ${String(prefix)}`,
    );
  }
  if (options.url !== undefined && options.redis !== undefined) {
    throw new ConfigError('redis', 'give either url or redis, not both');
  }
  let url: string | null = null;
  let redis: Redis | null = null;
  if (options.redis !== undefined) {
    redis = checkClient(options.redis);
  } else {
    url = checkUrl(options.url ?? DEFAULT_URL);
  }
  const commandTimeoutMs =
    options.commandTimeoutMs === undefined
      ? DEFAULT_COMMAND_TIMEOUT_MS
      : int('commandTimeoutMs', options.commandTimeoutMs, 1, MAX_TIMER_MS);
  const minTtl = Math.max(MIN_LOCK_TTL_MS, 2 * commandTimeoutMs);
  const lockTtlMs =
    options.lockTtlMs === undefined
      ? Math.max(DEFAULT_LOCK_TTL_MS, minTtl)
      : int('lockTtlMs', options.lockTtlMs, minTtl, MAX_TIMER_MS);
  const retainSnapshots =
    options.retainSnapshots === undefined
      ? DEFAULT_RETAIN_SNAPSHOTS
      : int('retainSnapshots', options.retainSnapshots, 1, 1_000_000);
  const snapshotChunkBytes =
    options.snapshotChunkBytes === undefined
      ? DEFAULT_SNAPSHOT_CHUNK_BYTES
      : int('snapshotChunkBytes', options.snapshotChunkBytes, 1, MAX_SNAPSHOT_CHUNK_BYTES);
  const logger = options.logger ?? noopLogger;
  for (const level of ['debug', 'info', 'warn', 'error'] as const) {
    if (typeof (logger as unknown as Record<string, unknown>)?.[level] !== 'function') {
      throw new ConfigError('logger', `must be a pino-shaped logger with a ${level}() method`);
    }
  }
  const requireDurableRedis = options.requireDurableRedis ?? false;
  if (typeof requireDurableRedis !== 'boolean') {
    throw new ConfigError(
      'requireDurableRedis',
      `must be a boolean, got ${String(requireDurableRedis)}`,
    );
  }
  return {
    prefix,
    url,
    redis,
    commandTimeoutMs,
    lockTtlMs,
    retainSnapshots,
    snapshotChunkBytes,
    logger,
    requireDurableRedis,
  };
}

function checkUrl(url: unknown): string {
  if (typeof url !== 'string') throw new ConfigError('url', `must be a string, got ${String(url)}`);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConfigError('url', `must be a redis:// or rediss:// URL, got '${url}'`);
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new ConfigError('url', `must be a redis:// or rediss:// URL, got '${url}'`);
  }
  return url;
}

function checkClient(redis: unknown): Redis {
  const client = redis as {
    call?: unknown;
    callBuffer?: unknown;
    options?: { keyPrefix?: unknown };
  };
  if (
    typeof redis !== 'object' ||
    redis === null ||
    typeof client.call !== 'function' ||
    typeof client.callBuffer !== 'function'
  ) {
    throw new ConfigError('redis', 'must be an ioredis client (new Redis(...))');
  }
  const keyPrefix = client.options?.keyPrefix;
  if (typeof keyPrefix === 'string' && keyPrefix.length > 0) {
    // ioredis would prefix the keys a script names but not those it derives: refuse rather
    // than write half the keys elsewhere.
    throw new ConfigError(
      'redis',
      `a client with keyPrefix '${keyPrefix}' is not supported: leave keyPrefix unset and put it in prefix`,
    );
  }
  return redis as Redis;
}
