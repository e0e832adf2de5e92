/**
 * The crash-consistency check itself: it passes a correct store and catches the planted bugs of
 * fixtures/crash-mutant-stores.ts (acknowledging before writing; a torn hard state).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { checkCrashConsistency } from '../src/conformance/index.js';

const fixture = fileURLToPath(new URL('./fixtures/crash-mutant-stores.ts', import.meta.url));

function run(bug: 'none' | 'late-log' | 'torn-hard-state', iterations: number) {
  return checkCrashConsistency({
    name: `JSON stores (${bug})`,
    module: fixture,
    exportName: 'openMutantStores',
    execArgv: ['--conditions=@raft/source', '--import', 'tsx'],
    cwd: fileURLToPath(new URL('..', import.meta.url)),
    iterations,
    maxKillDelayMs: 150,
    storage: () => {
      const dir = mkdtempSync(join(tmpdir(), 'raft-crash-mutant-'));
      return { config: { dir, bug }, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
    },
  });
}

describe('checkCrashConsistency', () => {
  it('passes a store that writes before it acknowledges', { timeout: 120_000 }, async () => {
    const report = await run('none', 5);
    expect(report.iterations).toBe(5);
    expect(report.acknowledged).toBeGreaterThan(5);
    expect(report.entriesRecovered).toBeGreaterThan(0);
  });

  it('catches a log that acknowledges before it writes', { timeout: 120_000 }, async () => {
    await expect(run('late-log', 8)).rejects.toThrow(/seed=\d+ iteration=\d+: reopened log/);
  });

  it('catches a torn hard state', { timeout: 240_000 }, async () => {
    await expect(run('torn-hard-state', 15)).rejects.toThrow(/the hard state is torn/);
  });

  it('refuses a module without the factory', async () => {
    await expect(
      checkCrashConsistency({
        name: 'missing',
        module: fixture,
        exportName: 'nope',
        storage: () => ({ config: {}, cleanup: () => {} }),
      }),
    ).rejects.toThrow(/no function export "nope"/);
  });
});
