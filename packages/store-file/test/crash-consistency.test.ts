/**
 * The file stores under SIGKILL: child processes append (and replace, truncate, compact, save
 * the hard state) and are killed at random moments; every reopen must find what the shared
 * check of @raft/testing allows (crash-consistency.ts there).
 */
import { fileURLToPath } from 'node:url';
import { checkCrashConsistency } from '@raft/testing/conformance';
import { afterAll, describe, expect, it } from 'vitest';
import { removeDir, tempDir } from './temp-dir.js';

const source = fileURLToPath(new URL('../src/index.ts', import.meta.url));
const packageDir = fileURLToPath(new URL('..', import.meta.url));
const seed = Number(process.env.RAFT_CRASH_SEED ?? Math.floor(Math.random() * 2 ** 31));

afterAll(() => removeDir());

describe('file stores killed at random moments (SIGKILL)', () => {
  for (const [label, segmentBytes] of [
    ['64 MiB segments', undefined],
    ['8 KiB segments (rolls and deletes segments all the time)', 8192],
  ] as const) {
    it(`every acknowledged append survives, nothing torn (${label})`, {
      timeout: 240_000,
    }, async () => {
      const report = await checkCrashConsistency({
        name: `file stores, ${label}`,
        module: source,
        exportName: 'openFileStores',
        execArgv: ['--conditions=@raft/source', '--import', 'tsx'],
        cwd: packageDir,
        seed,
        iterations: 15,
        storage: () => {
          const dir = tempDir('crash');
          return {
            config: segmentBytes === undefined ? { dir } : { dir, segmentBytes },
            cleanup: () => removeDir(dir),
          };
        },
      });
      expect(report.iterations).toBe(15);
      // The kills land mid-run, after real work: most iterations had acknowledged operations.
      expect(report.acknowledged).toBeGreaterThan(15);
      expect(report.entriesRecovered).toBeGreaterThan(0);
    });
  }
});
