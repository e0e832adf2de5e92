/**
 * The quick start's `pnpm example`: run as users run it (a child process, real clock, real
 * disk), it must finish by itself, show the three replicas agreeing before and after the
 * restart from disk, and leave nothing behind.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runExample } from './run-example.js';

const scratch = mkdtempSync(join(tmpdir(), 'raft-example-test-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const finalState = '{"color":"green","shape":"circle","size":"large"}';

describe('pnpm example (a 3-node KV cluster on the file store)', () => {
  it('replicates, survives the leader stopping, restarts from disk', {
    timeout: 90_000,
  }, async () => {
    const { code, out } = await runExample('kv-cluster.ts', []);
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
    const first = await runExample('kv-cluster.ts', ['--data', data]);
    expect(first.code, first.out).toBe(0);
    expect(readdirSync(data).sort()).toEqual(['n1', 'n2', 'n3']);
    const second = await runExample('kv-cluster.ts', ['--data', data]);
    expect(second.code, second.out).toBe(0);
    for (const id of ['n1', 'n2', 'n3']) expect(second.out).toContain(`${id} state: ${finalState}`);
  });
});
