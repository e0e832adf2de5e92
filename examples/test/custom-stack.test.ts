/**
 * `pnpm custom-stack`, the smallest stack users copy: run as users run it (a child process, real
 * clock, real disk), it must finish by itself with every replica reading the same total, and it
 * must stay short.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { runExample } from './run-example.js';

describe('examples/custom-stack.ts (core + TCP + file store + a counter)', () => {
  it('replicates nine additions from every node and reads 45 linearizably on each', {
    timeout: 90_000,
  }, async () => {
    const { code, out } = await runExample('custom-stack.ts');
    expect(code, out).toBe(0);
    let total = 0;
    for (let add = 1; add <= 9; add++) {
      total += add;
      const id = `n${((add - 1) % 3) + 1}`;
      expect(out).toMatch(
        new RegExp(`^${id}: add ${add} -> total ${total} \\(entry \\d+\\)$`, 'm'),
      );
    }
    for (const id of ['n1', 'n2', 'n3']) {
      // The snapshot index depends on timing (snapshots are written while applies go on).
      expect(out).toMatch(new RegExp(`^${id} reads 45, snapshot at \\d+$`, 'm'));
    }
  });

  it('is under 60 lines, imports included', () => {
    const text = readFileSync(new URL('../custom-stack.ts', import.meta.url), 'utf8');
    expect(text.split('\n').length - (text.endsWith('\n') ? 1 : 0)).toBeLessThan(60);
  });
});
