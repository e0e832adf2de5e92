/**
 * raft-kv as people run it: three real processes on 127.0.0.1-3 (the file store, TCP), the
 * client commands against them, a SIGKILLed follower that comes back with its data, a
 * SIGTERMed leader that hands over and exits cleanly, and the errors for a bad flag and a busy
 * port. The processes run the TypeScript sources through tsx (the same code tsup builds).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  client,
  freePort,
  killAll,
  launch,
  memberFlags,
  type Proc,
  statusOf,
  until,
} from './processes.js';

const root = mkdtempSync(join(tmpdir(), 'kv-e2e-'));
const nodes: { id: string; http: string; raft: string; proc: Proc | null }[] = [];

function args(i: number): string[] {
  const n = nodes[i] as (typeof nodes)[number];
  return [
    ...memberFlags(n, nodes),
    '--data-dir',
    join(root, n.id),
    '--election-timeout-ms',
    '200',
    '--heartbeat-ms',
    '40',
    '--log-level',
    'warn',
  ];
}

const endpoints = () => nodes.map((n) => `http://${n.http}`).join(',');

beforeAll(async () => {
  for (let i = 1; i <= 3; i++) {
    const host = `127.0.0.${i}`;
    nodes.push({
      id: `n${i}`,
      http: `${host}:${await freePort(host)}`,
      raft: `${host}:${await freePort(host)}`,
      proc: null,
    });
  }
  nodes.forEach((n, i) => {
    n.proc = launch(args(i));
  });
  await until('a leader', async () => {
    const s = await statusOf((nodes[0] as (typeof nodes)[number]).http);
    return s !== null && s.leaderId !== null;
  });
}, 60_000);

afterAll(async () => {
  await killAll();
  rmSync(root, { recursive: true, force: true });
});

describe('raft-kv, three processes', () => {
  it('the client writes and reads through any node', async () => {
    const put = await client(['put', 'color', 'blue', '--endpoints', endpoints()]);
    expect(put.output).toMatch(/^OK \(revision \d+\)\n$/);
    const third = (nodes[2] as (typeof nodes)[number]).http;
    const get = await client(['get', 'color', '--endpoints', `http://${third}`]);
    expect(get).toEqual({ code: 0, output: 'blue\n' });
    const json = await client(['get', 'color', '--json', '--endpoints', endpoints()]);
    expect(JSON.parse(json.output)).toEqual({ key: 'color', value: 'blue' });
    const missing = await client(['get', 'nothing', '--endpoints', endpoints()]);
    expect(missing.code).toBe(1);
    expect(missing.output).toBe('raft-kv: nothing: not found\n');
    const status = await client(['status', '--endpoints', endpoints()]);
    expect(status.output).toMatch(/^n1: (leader|follower), term \d+/);
  }, 60_000);

  it('cas, members, transfer and snapshot from the client, readable and as JSON', async () => {
    const created = await client([
      'cas',
      'lock',
      '-',
      'me',
      '--absent',
      '--endpoints',
      endpoints(),
    ]);
    expect(created).toEqual({ code: 0, output: expect.stringMatching(/^OK \(revision \d+\)\n$/) });
    const lost = await client(['cas', 'lock', 'you', 'them', '--endpoints', endpoints()]);
    expect(lost.code).toBe(1);
    expect(lost.output).toBe('raft-kv: compare failed: lock holds "me"\n');
    await until('every HTTP address in the directory', async () => {
      const r = await client(['members', '--json', '--endpoints', endpoints()]);
      const m = (JSON.parse(r.output) as { members: { http: string | null }[] }).members;
      return m.length === 3 && m.every((x) => x.http !== null);
    });
    const list = await client(['members', '--endpoints', endpoints()]);
    for (const n of nodes) expect(list.output).toContain(`${n.id}  raft ${n.raft}  http ${n.http}`);
    const before = await statusOf((nodes[0] as (typeof nodes)[number]).http);
    const target = nodes.find((n) => n.id !== before?.leaderId) as (typeof nodes)[number];
    const moved = await client(['transfer', target.id, '--endpoints', endpoints()]);
    expect(moved.output).toMatch(new RegExp(`^leader is now ${target.id} \\(term \\d+\\)\n$`));
    const snap = await client(['snapshot', '--json', '--endpoints', `http://${target.http}`]);
    expect(JSON.parse(snap.output)).toEqual({
      index: expect.any(Number),
      term: expect.any(Number),
    });
  }, 60_000);

  it('a SIGKILLed follower misses nothing: it comes back from disk and catches up', async () => {
    const leaderId = (await statusOf((nodes[0] as (typeof nodes)[number]).http))?.leaderId;
    const i = nodes.findIndex((n) => n.id !== leaderId);
    const victim = nodes[i] as (typeof nodes)[number];
    victim.proc?.child.kill('SIGKILL');
    await victim.proc?.exited;
    const others = nodes
      .filter((n) => n !== victim)
      .map((n) => `http://${n.http}`)
      .join(',');
    const put = await client(['put', 'while-down', 'yes', '--endpoints', others]);
    expect(put.code).toBe(0);
    victim.proc = launch(args(i));
    await until('the victim back', async () => (await statusOf(victim.http)) !== null);
    await until('the victim caught up', async () => {
      const r = await client(['get', 'while-down', '--endpoints', `http://${victim.http}`]);
      return r.output === 'yes\n';
    });
    const r = await client(['get', 'color', '--endpoints', `http://${victim.http}`]);
    expect(r.output).toBe('blue\n');
  }, 90_000);

  it('a SIGTERMed leader hands leadership over and exits 0', async () => {
    const leaderId = (await statusOf((nodes[0] as (typeof nodes)[number]).http))?.leaderId;
    const leader = nodes.find((n) => n.id === leaderId) as (typeof nodes)[number];
    const started = Date.now();
    leader.proc?.child.kill('SIGTERM');
    const exit = await leader.proc?.exited;
    expect(exit).toEqual({ code: 0, signal: null });
    expect(Date.now() - started).toBeLessThan(10_000);
    const survivor = nodes.find((n) => n !== leader) as (typeof nodes)[number];
    await until('a new leader', async () => {
      const s = await statusOf(survivor.http);
      return s !== null && s.leaderId !== null && s.leaderId !== leader.id;
    });
  }, 60_000);
});

describe('raft-kv errors', () => {
  it('a bad flag exits 2 naming it; a busy port exits 1 saying so', async () => {
    const bad = await client([
      '--id',
      'x',
      '--http',
      'nowhere',
      '--raft',
      '127.0.0.1:1',
      '--store',
      'memory',
    ]);
    expect(bad.code).toBe(2);
    expect(bad.output).toContain('--http: must be host:port with a port');
    const blocker = createServer();
    const port = await freePort('127.0.0.1');
    await new Promise<void>((r) => blocker.listen(port, '127.0.0.1', r));
    const busy = `127.0.0.1:${port}`;
    const taken = await client([
      '--id',
      'x',
      '--http',
      busy,
      '--raft',
      `127.0.0.9:${await freePort('127.0.0.9')}`,
      '--store',
      'memory',
    ]);
    await new Promise((r) => blocker.close(r));
    expect(taken.code).toBe(1);
    expect(taken.output).toContain(`--http ${busy}: the address is in use`);
  }, 60_000);
});

describe('raft-kv dev', () => {
  it('starts a local cluster, prints its URLs, serves writes, and stops every node on SIGINT', async () => {
    const base = 20_000 + Math.floor(Math.random() * 20_000);
    const dir = join(root, 'dev');
    const dev = launch(['dev', '--nodes', '3', '--base-port', String(base), '--data-dir', dir]);
    await until('the URLs', () => dev.output.includes('Ctrl-C stops them all.'));
    expect(dev.output).toContain(
      `n1  http://127.0.0.1:${base + 1}  (raft 127.0.0.1:${base + 101})`,
    );
    expect(dev.output).toContain(`n3  http://127.0.0.3:${base + 3}`);
    expect(dev.output).toContain(`dashboard: http://127.0.0.1:${base + 1}/`);
    const urls = [1, 2, 3].map((i) => `http://127.0.0.${i}:${base + i}`).join(',');
    await until('a leader', async () => {
      const s = await statusOf(`127.0.0.1:${base + 1}`);
      return s !== null && s.leaderId !== null;
    });
    const put = await client(['put', 'dev', 'works', '--endpoints', urls]);
    expect(put.code).toBe(0);
    const get = await client(['get', 'dev', '--endpoints', `http://127.0.0.2:${base + 2}`]);
    expect(get.output).toBe('works\n');
    dev.child.kill('SIGINT');
    const exit = await dev.exited;
    expect(exit.code).toBe(0);
    expect(dev.output).toContain('all nodes stopped.');
    for (let i = 1; i <= 3; i++) expect(await statusOf(`127.0.0.${i}:${base + i}`)).toBe(null);
  }, 60_000);
});
