/**
 * The Redis stores under SIGKILL: child processes append (and replace, truncate, compact, save
 * the hard state) and are killed at random moments; every reopen, under the same prefix, must
 * find what the shared check of @raft/testing allows. The dead child's lock is taken over at
 * once (its pid is gone). `RAFT_CRASH_SEED` replays a run.
 *
 * SIGKILL of the client is what this checks: that every script is atomic and that nothing
 * resolves before Redis has it. What a Redis crash loses depends on its `appendfsync` (README).
 */
import { fileURLToPath } from 'node:url';
import { describeCrashConsistency } from '@raft/testing/vitest';
import { beforeAll } from 'vitest';
import { deletePrefix, ensureSharedRedis, SHARED_URL, uniquePrefix } from './redis-server.js';

beforeAll(() => ensureSharedRedis(), 330_000);

const seed =
  process.env.RAFT_CRASH_SEED === undefined ? undefined : Number(process.env.RAFT_CRASH_SEED);

describeCrashConsistency({
  name: 'redis stores',
  module: fileURLToPath(new URL('../src/index.ts', import.meta.url)),
  exportName: 'openRedisStores',
  execArgv: ['--conditions=@raft/source', '--import', 'tsx'],
  cwd: fileURLToPath(new URL('..', import.meta.url)),
  iterations: 20,
  ...(seed === undefined ? {} : { seed }),
  storage: () => {
    const prefix = uniquePrefix('crash');
    return { config: { prefix, url: SHARED_URL }, cleanup: () => deletePrefix(prefix) };
  },
});
