/**
 * The file stores under SIGKILL: child processes append (and replace, truncate, compact, save
 * the hard state) and are killed at random moments; every reopen must find what the shared
 * check of @raft/testing allows (crash-consistency.ts there). `RAFT_CRASH_SEED` replays a run.
 */
import { fileURLToPath } from 'node:url';
import { describeCrashConsistency } from '@raft/testing/vitest';
import { afterAll } from 'vitest';
import { removeDir, tempDir } from './temp-dir.js';

afterAll(() => removeDir());

const seed =
  process.env.RAFT_CRASH_SEED === undefined ? undefined : Number(process.env.RAFT_CRASH_SEED);

for (const [label, segmentBytes] of [
  ['64 MiB segments', undefined],
  ['8 KiB segments: rolls and deletes segments all the time', 8192],
] as const) {
  describeCrashConsistency({
    name: `file stores, ${label}`,
    module: fileURLToPath(new URL('../src/index.ts', import.meta.url)),
    exportName: 'openFileStores',
    execArgv: ['--conditions=@raft/source', '--import', 'tsx'],
    cwd: fileURLToPath(new URL('..', import.meta.url)),
    iterations: 20,
    ...(seed === undefined ? {} : { seed }),
    storage: () => {
      const dir = tempDir('crash');
      return {
        config: segmentBytes === undefined ? { dir } : { dir, segmentBytes },
        cleanup: () => removeDir(dir),
      };
    },
  });
}
