/**
 * raft-calculator as people run it: `raft-calculator dev` starts three real processes on
 * 127.0.0.1-3 (the file store, TCP); the client commands change and read the one value through
 * any node; Ctrl-C stops them all, and started again on the same directories they still hold
 * the value.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { clientOf, killAll, launchCli, statusOf, until } from '../../../kv/test/e2e/processes.js';

const cli = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'cli.ts');
const root = mkdtempSync(join(tmpdir(), 'calculator-e2e-'));
const calculator = (args: readonly string[]) => clientOf(cli, args);

afterAll(async () => {
  await killAll();
  rmSync(root, { recursive: true, force: true });
});

describe('raft-calculator dev', () => {
  it('three nodes agree on one value, stop on SIGINT, and come back from disk with it', async () => {
    const base = 20_000 + Math.floor(Math.random() * 20_000);
    const urls = [1, 2, 3].map((i) => `http://127.0.0.${i}:${base + i}`);
    const dev = launchCli(cli, ['dev', '--base-port', String(base), '--data-dir', root]);
    await until('the URLs', () => dev.output.includes('Ctrl-C stops them all.'));
    expect(dev.output).toContain(`try: raft-calculator add 5 --endpoints ${urls.join(',')}`);
    await until('a leader', async () => {
      const s = await statusOf(`127.0.0.1:${base + 1}`);
      return s !== null && s.leaderId !== null;
    });
    const at = (i: number) => ['--endpoints', urls[i] as string];
    expect(await calculator(['add', '5', ...at(0)])).toEqual({
      code: 0,
      output: '5 (revision 1)\n',
    });
    expect((await calculator(['multiply', '8', ...at(1)])).output).toBe('40 (revision 2)\n');
    expect((await calculator(['subtract', '-2', ...at(2)])).output).toBe('42 (revision 3)\n');
    const zero = await calculator(['divide', '0', ...at(0)]);
    expect(zero.code).toBe(1);
    expect(zero.output).toBe('raft-calculator: error 400: bad_request: division by zero\n');
    const notANumber = await calculator(['add', 'five', ...at(0)]);
    expect(notANumber).toEqual({ code: 2, output: 'raft-calculator: five is not a number\n' });
    for (let i = 0; i < 3; i++) {
      expect((await calculator(['value', ...at(i)])).output).toBe('42 (revision 3)\n');
    }
    expect(JSON.parse((await calculator(['value', '--json', ...at(1)])).output)).toEqual({
      value: 42,
      revision: 3,
    });
    dev.child.kill('SIGINT');
    const exit = await dev.exited;
    expect(exit.code).toBe(0);
    expect(dev.output).toContain('all nodes stopped.');
    // Restarted from disk, the cluster still holds the value.
    const again = launchCli(cli, ['dev', '--base-port', String(base), '--data-dir', root]);
    await until('a leader after the restart', async () => {
      const s = await statusOf(`127.0.0.2:${base + 2}`);
      return s !== null && s.leaderId !== null;
    });
    expect((await calculator(['value', ...at(2)])).output).toBe('42 (revision 3)\n');
    again.child.kill('SIGINT');
    expect((await again.exited).code).toBe(0);
  }, 90_000);
});
