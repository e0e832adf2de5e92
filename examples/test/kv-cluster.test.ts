/**
 * The quick start's `pnpm example`: run as users run it (a child process, real clock, real
 * disk), it must finish by itself, show the three replicas agreeing before and after the
 * restart from disk, and leave nothing behind.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const here = fileURLToPath(new URL('..', import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), 'raft-example-test-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function runExample(args: readonly string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--conditions=@raft/source', '--import', 'tsx', 'kv-cluster.ts', ...args],
      { cwd: here, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => {
      out += c;
    });
    child.stderr.setEncoding('utf8').on('data', (c: string) => {
      out += c;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

const finalState = '{"color":"green","shape":"circle","size":"large"}';

describe('pnpm example (a 3-node KV cluster on the file store)', () => {
  it('replicates, survives the leader stopping, restarts from disk', {
    timeout: 90_000,
  }, async () => {
    const { code, out } = await runExample([]);
    expect(code, out).toBe(0);
    for (const id of ['n1', 'n2', 'n3']) expect(out).toContain(`${id} state: ${finalState}`);
    expect(out).toContain('done:');
    const dir = /data in (\S+)/.exec(out)?.[1] as string;
    expect(existsSync(dir)).toBe(false);
  });

  it('with --data keeps the directories, and a second run starts from them', {
    timeout: 150_000,
  }, async () => {
    const data = join(scratch, 'kv');
    const first = await runExample(['--data', data]);
    expect(first.code, first.out).toBe(0);
    expect(readdirSync(data).sort()).toEqual(['n1', 'n2', 'n3']);
    const second = await runExample(['--data', data]);
    expect(second.code, second.out).toBe(0);
    for (const id of ['n1', 'n2', 'n3']) expect(second.out).toContain(`${id} state: ${finalState}`);
  });
});
