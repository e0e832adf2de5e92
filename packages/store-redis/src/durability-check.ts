/**
 * What Redis must be configured with for a resolved write to survive a Redis crash, checked
 * once at open:
 * - `appendonly yes`: without the append-only file, Redis keeps data in memory and at best in
 *   periodic RDB snapshots; a crash loses everything since the last one.
 * - `appendfsync always`: Redis fsyncs the AOF before it answers each write. With `everysec`
 *   (the default) a crash loses up to a second of acknowledged writes; with `no` more.
 * - no eviction: with a `maxmemory` and a policy other than `noeviction`, Redis deletes keys to
 *   make room, log entries included.
 *
 * A Raft node that acknowledged an entry or a vote and then forgets it can elect two leaders or
 * lose committed entries, so this is not a performance setting. Replicas and `WAIT` do not fix
 * it by themselves: replication is asynchronous and a failover promotes a replica that may lack
 * the last writes. (`WAITAOF` of Redis 7.2 could make each write wait for a local fsync even
 * with `everysec`; this package does not use it.)
 */
import type { Logger } from '@raft/core';
import { StorageError } from '@raft/core';
import type { RedisLink } from './redis-link.js';
import { messageOf } from './redis-link.js';

const SETTINGS = ['appendonly', 'appendfsync', 'maxmemory', 'maxmemory-policy'] as const;

type Setting = (typeof SETTINGS)[number];

/**
 * Reads the settings and logs a warning (or, with `requireDurable`, rejects with a StorageError)
 * when they do not make writes durable or cannot be read. Rejects with a StorageError when Redis
 * does not answer at all.
 */
export async function checkDurability(
  link: RedisLink,
  requireDurable: boolean,
  logger: Logger,
): Promise<void> {
  const prefix = link.keys.prefix;
  let values: Partial<Record<Setting, string>>;
  try {
    // One setting per CONFIG GET: Redis before 7 takes a single pattern.
    const replies = await Promise.all(
      SETTINGS.map((s) => link.call(`CONFIG GET ${s}`, 'CONFIG', ['GET', s])),
    );
    values = {};
    for (const [i, reply] of replies.entries()) {
      const name = SETTINGS[i] as Setting;
      const value = configValue(reply, name);
      if (value !== undefined) values[name] = value;
    }
  } catch (err) {
    // Refused (a managed Redis that disables CONFIG, an ACL) or Redis is gone: PING tells.
    await link.call('PING', 'PING', []);
    const problem = `could not check that Redis keeps acknowledged writes (CONFIG GET failed: ${messageOf(err)}; managed services often disable CONFIG)`;
    if (requireDurable) {
      throw new StorageError(`${problem}; requireDurableRedis refuses to open without it`, {
        cause: err,
      });
    }
    logger.warn(
      { prefix, err: messageOf(err) },
      `${problem}. Unless Redis runs with appendonly yes and appendfsync always, acknowledged writes can be lost on a Redis crash`,
    );
    return;
  }
  const problems: string[] = [];
  if (values.appendonly !== 'yes') {
    problems.push(`appendonly is ${show(values.appendonly)} (needs yes)`);
  }
  if (values.appendfsync !== 'always') {
    problems.push(`appendfsync is ${show(values.appendfsync)} (needs always)`);
  }
  const maxmemory = values.maxmemory;
  const policy = values['maxmemory-policy'];
  if (
    maxmemory !== undefined &&
    maxmemory !== '0' &&
    policy !== undefined &&
    policy !== 'noeviction'
  ) {
    problems.push(
      `maxmemory-policy is ${policy} with maxmemory ${maxmemory} (needs noeviction: eviction deletes stored entries)`,
    );
  }
  if (problems.length === 0) {
    logger.debug(
      { prefix, ...values },
      'Redis keeps acknowledged writes (appendonly, appendfsync always)',
    );
    return;
  }
  const message = `Redis is not configured to keep acknowledged writes: ${problems.join('; ')}. Acknowledged writes can be lost on a Redis crash, and a Raft node that forgets what it acknowledged can lose committed entries`;
  if (requireDurable) throw new StorageError(`${message}; requireDurableRedis refuses to open`);
  logger.warn({ prefix, ...values }, message);
}

function show(value: string | undefined): string {
  return value === undefined ? 'unknown' : value;
}

/** The value of `name` in a CONFIG GET reply: `[name, value]`, or `{ name: value }` (RESP3 maps). */
function configValue(reply: unknown, name: string): string | undefined {
  if (Array.isArray(reply)) {
    for (let i = 0; i + 1 < reply.length; i += 2) {
      if (String(reply[i]) === name) return String(reply[i + 1]);
    }
    return undefined;
  }
  if (typeof reply === 'object' && reply !== null) {
    const value = (reply as Record<string, unknown>)[name];
    return value === undefined ? undefined : String(value);
  }
  return undefined;
}
