/**
 * One owner per prefix. The owner holds `P lock` (`SET NX PX`), refreshes it every third of its
 * TTL, and every write script compares the lock's value with the owner's (a random token with
 * the pid and host), so:
 * - a second opener finds the key taken and fails with {@link RedisPrefixLockedError} naming
 *   the holder's pid and host;
 * - an owner that lost the lock (it stalled past the TTL and someone else opened the prefix)
 *   cannot write any more: its scripts see another value and refuse. This is what makes the
 *   lock safe, not the TTL: a TTL alone cannot stop a paused process that wakes up and writes.
 *
 * A holder that died without releasing leaves the key until the TTL ends, which would make a
 * restarted node wait. When the holder was on this host (same `os.hostname()`) and its pid is
 * not alive, the opener takes the lock over at once (compare-and-set on the dead holder's
 * value). Mistaking a live process for a dead one (a pid namespace that hides it) costs that
 * process its writes, never the log: its scripts are refused from then on.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { StorageError } from '@raft/core';
import type { RedisLockHolder } from './errors.js';
import { RedisPrefixLockedError } from './errors.js';
import { LOCK_REFRESH, LOCK_RELEASE, LOCK_TAKEOVER } from './lua-scripts.js';
import type { RedisLink } from './redis-link.js';
import { describeHolder, messageOf } from './redis-link.js';

/** The lock this process holds on one prefix. */
export class PrefixLock {
  private timer: ReturnType<typeof setInterval> | null = null;
  private refreshing = false;

  private constructor(
    private readonly link: RedisLink,
    private readonly ttlMs: number,
  ) {}

  /**
   * Takes the lock on the link's prefix (sets `link.holder`) and starts refreshing it. Rejects
   * with {@link RedisPrefixLockedError} when a live holder has it, with StorageError when Redis
   * fails.
   */
  static async acquire(link: RedisLink, ttlMs: number): Promise<PrefixLock> {
    const { keys, logger } = link;
    const me: RedisLockHolder & { readonly token: string } = {
      token: randomUUID(),
      pid: process.pid,
      host: hostname(),
      since: new Date().toISOString(),
    };
    const value = JSON.stringify(me);
    try {
      return await PrefixLock.take(link, ttlMs, me, value);
    } catch (err) {
      if (!(err instanceof RedisPrefixLockedError)) {
        // A SET or takeover that got no answer in time may have been applied all the same: the
        // lock would then name this live process until its TTL ends, and refuse every retry of
        // this process. Sent after it on the same connection, this runs after it.
        await link
          .script('releasing the lock', LOCK_RELEASE, [keys.lock], [value])
          .catch((releaseErr: unknown) => {
            logger.warn(
              { prefix: keys.prefix, err: messageOf(releaseErr) },
              `could not release the lock on '${keys.prefix}' after a failed open; it expires by itself after ${ttlMs} ms`,
            );
          });
      }
      throw err;
    }
  }

  /** The rounds of {@link PrefixLock.acquire}: SET NX, else take over a dead holder's lock. */
  private static async take(
    link: RedisLink,
    ttlMs: number,
    me: RedisLockHolder,
    value: string,
  ): Promise<PrefixLock> {
    const { keys, logger } = link;
    // A few rounds: the key may expire, or change hands, between our SET and our GET.
    for (let round = 0; round < 3; round++) {
      const set = await link.call('taking the lock', 'SET', [keys.lock, value, 'NX', 'PX', ttlMs]);
      if (set === 'OK') return PrefixLock.started(link, ttlMs, value);
      const current = await link.call('reading the lock', 'GET', [keys.lock]);
      if (typeof current !== 'string') continue;
      const holder = parseHolder(current);
      if (
        holder === null ||
        holder.host !== me.host ||
        holder.pid === me.pid ||
        isAlive(holder.pid)
      ) {
        throw new RedisPrefixLockedError(keys.prefix, holder, current);
      }
      const took = await link.script(
        'taking over the lock',
        LOCK_TAKEOVER,
        [keys.lock],
        [current, value, ttlMs],
      );
      if (took === 1) {
        logger.warn(
          { prefix: keys.prefix, deadPid: holder.pid, host: holder.host },
          `took over the lock on '${keys.prefix}' from pid ${holder.pid}, which is no longer running on this host`,
        );
        return PrefixLock.started(link, ttlMs, value);
      }
    }
    throw new StorageError(
      `could not take the lock on the Redis key prefix '${keys.prefix}': it kept changing hands`,
    );
  }

  private static started(link: RedisLink, ttlMs: number, value: string): PrefixLock {
    link.holder = value;
    const lock = new PrefixLock(link, ttlMs);
    lock.timer = setInterval(() => lock.refresh(), Math.max(1, Math.floor(ttlMs / 3)));
    // An open store must not keep the process alive by itself; the lock then simply expires.
    lock.timer.unref();
    return lock;
  }

  private refresh(): void {
    if (this.refreshing || !this.link.usable) return;
    this.refreshing = true;
    const { keys, logger } = this.link;
    this.link
      .script('refreshing the lock', LOCK_REFRESH, [keys.lock], [this.link.holder, this.ttlMs])
      .then(
        async (extended) => {
          if (extended === 1) return;
          const now = await this.link
            .call('reading the lock', 'GET', [keys.lock])
            .catch(() => null);
          this.stop();
          this.link.markLockLost(
            `the lock on the Redis key prefix '${keys.prefix}' was lost (${describeHolder(typeof now === 'string' ? now : '')}): another store may own the prefix now`,
          );
        },
        (err: unknown) => {
          // Not fatal yet: the lock lasts a TTL, and the next refresh may get through. Writes
          // fail meanwhile if Redis is gone, and are refused if the lock expired.
          logger.warn(
            { prefix: keys.prefix, err: messageOf(err) },
            'refreshing the lock on the Redis key prefix failed',
          );
        },
      )
      .finally(() => {
        this.refreshing = false;
      });
  }

  private stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /**
   * Stops refreshing and deletes the lock if it is still ours. Never rejects: a lock that could
   * not be deleted expires after its TTL.
   */
  async release(): Promise<void> {
    this.stop();
    // A lost lock is someone else's now: leave it alone.
    if (!this.link.usable) return;
    const { keys, logger } = this.link;
    try {
      await this.link.script('releasing the lock', LOCK_RELEASE, [keys.lock], [this.link.holder]);
    } catch (err) {
      logger.warn(
        { prefix: keys.prefix, err: messageOf(err) },
        `could not release the lock on '${keys.prefix}'; it expires by itself after ${this.ttlMs} ms`,
      );
    }
  }
}

/** The holder a lock value names, or null when the value is not one of ours. */
export function parseHolder(value: string): RedisLockHolder | null {
  try {
    const parsed = JSON.parse(value) as Partial<RedisLockHolder>;
    if (
      typeof parsed.pid === 'number' &&
      typeof parsed.host === 'string' &&
      typeof parsed.since === 'string'
    ) {
      return { pid: parsed.pid, host: parsed.host, since: parsed.since };
    }
  } catch {
    // Not JSON: not ours.
  }
  return null;
}

/** Whether a process with this pid runs on this host (EPERM: it does, as another user). */
function isAlive(pid: number): boolean {
  if (!(Number.isSafeInteger(pid) && pid > 0)) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
