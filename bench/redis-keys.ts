/** Deleting what a benchmark wrote to the local Redis (a recovery run leaves a million fields). */

/** Unlinks every key under each of `prefixes` on 127.0.0.1:6379 (SCAN, never FLUSHALL). */
export async function deleteRedisKeys(prefixes: Iterable<string>): Promise<void> {
  const list = [...prefixes];
  if (list.length === 0) return;
  const { Redis } = await import('ioredis');
  const client = new Redis({ lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await client.connect();
    for (const prefix of list) {
      let cursor = '0';
      do {
        const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
        cursor = next;
        if (keys.length > 0) await client.unlink(...keys);
      } while (cursor !== '0');
    }
  } finally {
    client.disconnect();
  }
}
