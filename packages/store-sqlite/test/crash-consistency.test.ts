/**
 * The SQLite stores under SIGKILL: child processes append (and replace, truncate, compact, save
 * the hard state) and are killed at random moments; every reopen must find what the shared
 * check of @raft/testing allows. `RAFT_CRASH_SEED` replays a run.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describeCrashConsistency } from '@raft/testing/vitest';

const seed =
  process.env.RAFT_CRASH_SEED === undefined ? undefined : Number(process.env.RAFT_CRASH_SEED);

describeCrashConsistency({
  name: 'sqlite stores',
  module: fileURLToPath(new URL('../src/index.ts', import.meta.url)),
  exportName: 'openSqliteStores',
  execArgv: ['--conditions=@raft/source', '--import', 'tsx'],
  cwd: fileURLToPath(new URL('..', import.meta.url)),
  iterations: 20,
  ...(seed === undefined ? {} : { seed }),
  storage: () => {
    const dir = mkdtempSync(join(tmpdir(), 'raft-sqlite-crash-'));
    return {
      config: { path: join(dir, 'node.db') },
      cleanup: () => rmSync(dir, { recursive: true, force: true }),
    };
  },
});
