/**
 * `openRedisStores`: the three stores of one node under one key prefix, sharing one connection
 * and one lock.
 *
 * Opening, in order: validate the options; connect (or take the user's client); check that
 * Redis keeps acknowledged writes (warn, or refuse with `requireDurableRedis`); load the scripts;
 * take the prefix's lock; check the layout version and discard a half-staged append; delete the
 * snapshots a previous holder left uncommitted or pruned but undeleted. The log's own leftovers
 * (entries dropped but not yet deleted) are finished by `logStore.open()`.
 *
 * Connection loss: the connection this creates has ioredis's offline queue off, no retries of
 * a command (`maxRetriesPerRequest: 0`, no resend on reconnect) and a command timeout, so a
 * call made while Redis is unreachable rejects at once or within `commandTimeoutMs` with a
 * StorageError (fatal to the node) instead of waiting and succeeding later. The client keeps
 * reconnecting in the background; calls succeed again once Redis is back (a snapshot transfer
 * is retried by the runtime), unless the lock expired meanwhile and was taken.
 */
import type { Logger, RaftStores } from '@raft/core';
import { StorageError } from '@raft/core';
import { Redis } from 'ioredis';
import { checkDurability } from './durability-check.js';
import { keyLayout, LAYOUT_VERSION } from './key-layout.js';
import { ALL_SCRIPTS, INIT } from './lua-scripts.js';
import type { RedisStoresOptions } from './options.js';
import { validateRedisStoresOptions } from './options.js';
import { PrefixLock } from './prefix-lock.js';
import { messageOf, RedisLink } from './redis-link.js';
import { RedisLogStore } from './redis-log-store.js';
import { RedisSnapshotStore } from './redis-snapshot-store.js';
import { RedisStableStore } from './redis-stable-store.js';
import type { RedisStoreTuning } from './tuning.js';
import { DEFAULT_TUNING } from './tuning.js';

/**
 * Opens the log, stable and snapshot stores of one node in Redis, under `options.prefix`.
 *
 * Contract:
 * - Rejects with a ConfigError naming the field for a bad option (before connecting), with a
 *   {@link RedisPrefixLockedError} when another store (of this process or any other) holds the
 *   prefix, and with a StorageError when Redis cannot be reached, refuses, or (with
 *   `requireDurableRedis`) is not configured to keep acknowledged writes.
 * - Every store call is bounded by `commandTimeoutMs`; every failure is a StorageError whose
 *   `cause` is the driver's error.
 * - `close()` closes the stores still open, releases the lock and quits the connection it
 *   created (a client passed as `redis` stays connected). Idempotent; never rejects.
 *
 * @example
 * ```ts
 * const stores = await openRedisStores({ prefix: 'raft:n1:', url: 'redis://127.0.0.1:6379' });
 * const { logStore, stableStore, snapshotStore } = stores;
 * const node = createRaftNode({ id: 'n1', logStore, stableStore, snapshotStore, stateMachine, codec, transport });
 * // ... after node.stop():
 * await stores.close();
 * ```
 */
export function openRedisStores(options: RedisStoresOptions): Promise<RaftStores> {
  return openRedisStoresWith(options, DEFAULT_TUNING);
}

/** {@link openRedisStores} with internal limits other than the defaults (tests). */
export async function openRedisStoresWith(
  options: RedisStoresOptions,
  tuning: RedisStoreTuning,
): Promise<RaftStores> {
  const resolved = validateRedisStoresOptions(options);
  const { prefix, commandTimeoutMs } = resolved;
  const base = resolved.logger;
  const logger = base.child ? base.child({ store: 'redis', prefix }) : base;
  let client: Redis;
  const ownsClient = resolved.redis === null;
  if (resolved.redis !== null) {
    client = resolved.redis;
    if ((client.options as { enableOfflineQueue?: boolean }).enableOfflineQueue !== false) {
      logger.warn(
        { prefix },
        'the ioredis client given as `redis` queues commands while disconnected (enableOfflineQueue): a store call that timed out may still run later; pass `url`, or a client with enableOfflineQueue: false',
      );
    }
  } else {
    client = await connect(resolved.url ?? '', commandTimeoutMs, logger);
  }
  const link = new RedisLink(client, ownsClient, commandTimeoutMs, keyLayout(prefix), logger);
  let lock: PrefixLock | null = null;
  try {
    await checkDurability(link, resolved.requireDurableRedis, logger);
    await link.loadScripts(ALL_SCRIPTS);
    lock = await PrefixLock.acquire(link, resolved.lockTtlMs);
    const { keys } = link;
    await link.script(
      'opening the prefix',
      INIT,
      [keys.lock, keys.meta, keys.logStage],
      [link.holder, LAYOUT_VERSION],
    );
    const snapshotStore = new RedisSnapshotStore(
      link,
      resolved.retainSnapshots,
      resolved.snapshotChunkBytes,
      tuning,
    );
    await snapshotStore.removeLeftovers();
    const stores = new RedisStores(
      link,
      lock,
      new RedisLogStore(link, tuning),
      new RedisStableStore(link),
      snapshotStore,
    );
    // Only the three stores are enumerable, so `createRaftNode({ ...stores, … })` works as well
    // as `createRaftNode({ stores, … })`; the node's stop() closes all three, which releases the
    // prefix and the connection too (see RedisStores).
    return Object.defineProperties(
      {
        logStore: stores.logStore,
        stableStore: stores.stableStore,
        snapshotStore: stores.snapshotStore,
      },
      { close: { value: () => stores.close(), enumerable: false } },
    ) as unknown as RaftStores;
  } catch (err) {
    await lock?.release();
    link.markClosed();
    if (ownsClient) client.disconnect();
    throw err;
  }
}

/**
 * The stores of one prefix. Owns the connection and the lock: `close()`, or closing all three
 * stores (what a node's stop() does when they were given one by one), closes the stores,
 * releases the lock and quits the connection it created (the link counts the stores closed).
 * Closing fewer than three leaves the prefix held (a closed store reopens with `open()`/`load()`,
 * as the memory stores do).
 */
class RedisStores implements RaftStores {
  private closing: Promise<void> | null = null;

  constructor(
    private readonly link: RedisLink,
    private readonly lock: PrefixLock,
    readonly logStore: RedisLogStore,
    readonly stableStore: RedisStableStore,
    readonly snapshotStore: RedisSnapshotStore,
  ) {
    link.onAllStoresClosed = () => {
      this.close().catch(() => {});
    };
  }

  close(): Promise<void> {
    // Deferred a microtask, so `closing` is set before doClose() runs: closing the last store
    // inside it calls back here (onAllStoresClosed), which must get this promise, not start
    // another close (that recursed until the stack overflowed).
    this.closing ??= Promise.resolve().then(() => this.doClose());
    return this.closing;
  }

  private async doClose(): Promise<void> {
    await this.logStore.close();
    await this.stableStore.close();
    await this.snapshotStore.shutdown();
    await this.lock.release();
    this.link.markClosed();
    if (this.link.ownsClient) await quit(this.link.client, this.link.timeoutMs);
  }
}

/** A connection that fails fast (see the module comment), connected. */
async function connect(url: string, timeoutMs: number, logger: Logger): Promise<Redis> {
  const client = new Redis(url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    commandTimeout: timeoutMs,
    connectTimeout: timeoutMs,
    // Keeps reconnecting, at most every 2 s, so the stores work again once Redis is back.
    retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
  });
  // Without a listener ioredis prints every connection error; log the first of each outage.
  let reported = false;
  client.on('error', (err: unknown) => {
    if (reported) return;
    reported = true;
    logger.warn({ url: redact(url), err: messageOf(err) }, 'the Redis connection failed');
  });
  client.on('ready', () => {
    reported = false;
  });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const connecting = client.connect();
  // It may still reject after the timer won the race.
  connecting.catch(() => {});
  try {
    await Promise.race([
      connecting,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no connection within ${timeoutMs} ms`)),
          timeoutMs,
        );
      }),
    ]);
  } catch (err) {
    client.disconnect();
    throw new StorageError(`could not connect to Redis at ${redact(url)}: ${messageOf(err)}`, {
      cause: err,
    });
  } finally {
    clearTimeout(timer);
  }
  return client;
}

/** QUIT, bounded; a client that cannot say goodbye is disconnected. */
async function quit(client: Redis, timeoutMs: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const quitting = client.quit();
  quitting.catch(() => {});
  try {
    await Promise.race([
      quitting,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('QUIT timed out')), timeoutMs);
      }),
    ]);
  } catch {
    client.disconnect();
  } finally {
    clearTimeout(timer);
  }
}

/** The URL without its password, for messages. */
function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    return parsed.toString();
  } catch {
    return url;
  }
}
