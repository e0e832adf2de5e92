/**
 * raft-kv under faults, with real processes on 127.0.0.1-4 (the TypeScript sources through
 * tsx, as in cluster.test.ts):
 * - the leader SIGKILLed in the middle of a concurrent write load loses no acknowledged write;
 * - a cluster SIGKILLed as a whole comes back from its storage, for file+ws, sqlite+tcp and
 *   redis+ws (file+tcp is cluster.test.ts's);
 * - Idempotency-Key retries on another node answer the first result and apply once;
 * - a node started without --peers joins and leaves through `members add` / `members remove`;
 * - bad requests get the documented error answers over real HTTP.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { StatusBody } from '@raft/server';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
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

const TIMINGS = ['--election-timeout-ms', '300', '--heartbeat-ms', '50'];
const REDIS_URL = 'redis://127.0.0.1:6379';

// ------------------------------------------------------------------ processes

const roots: string[] = [];

function tempRoot(): string {
  const dir = mkdtempSync(join(tmpdir(), 'kv-faults-'));
  roots.push(dir);
  return dir;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs redis-cli with `args` (bounded); its stdout. */
function redisCli(args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      'redis-cli',
      ['-u', REDIS_URL, ...args],
      { timeout: 10_000, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout) => (err ? reject(err) : resolve(stdout)),
    );
  });
}

/** Starts the local Redis (keeping nothing on disk) when none answers on 127.0.0.1:6379. */
async function ensureRedis(): Promise<void> {
  const pong = await redisCli(['ping']).catch(() => '');
  if (pong.trim() === 'PONG') return;
  await new Promise<void>((resolve, reject) =>
    execFile(
      'redis-server',
      [
        '--daemonize',
        'yes',
        '--bind',
        '127.0.0.1',
        '--port',
        '6379',
        '--save',
        '',
        '--appendonly',
        'no',
      ],
      { timeout: 10_000 },
      (err) =>
        err
          ? reject(
              new Error(
                `no Redis on 127.0.0.1:6379 and redis-server would not start: ${err.message} (apt-get install redis-server)`,
              ),
            )
          : resolve(),
    ),
  );
  await until(
    'Redis to answer',
    async () => (await redisCli(['ping']).catch(() => '')).trim() === 'PONG',
    10_000,
  );
}

/** Deletes every Redis key of the raft-kv cluster `clusterId`; how many there were. */
async function dropRedisCluster(clusterId: string): Promise<number> {
  const keys = (await redisCli(['--scan', '--pattern', `raft-kv:${clusterId}:*`]))
    .split('\n')
    .filter((k) => k.length > 0);
  for (let i = 0; i < keys.length; i += 500) await redisCli(['DEL', ...keys.slice(i, i + 500)]);
  return keys.length;
}

// ------------------------------------------------------------------ HTTP

interface Answer {
  readonly status: number;
  readonly text: string;
  readonly headers: Headers;
}

async function request(
  url: string,
  init: { method?: string; body?: string | Uint8Array; headers?: Record<string, string> } = {},
  timeoutMs = 10_000,
): Promise<Answer> {
  const res = await fetch(url, {
    method: init.method ?? 'GET',
    headers: init.headers ?? {},
    ...(init.body === undefined ? {} : { body: init.body }),
    signal: AbortSignal.timeout(timeoutMs),
  });
  return { status: res.status, text: await res.text(), headers: res.headers };
}

const json = (a: Answer): Record<string, unknown> => JSON.parse(a.text) as Record<string, unknown>;

// ------------------------------------------------------------------ clusters

interface NodeSpec {
  readonly id: string;
  readonly http: string;
  readonly raft: string;
  readonly dataDir: string;
  proc: Proc | null;
}

interface ClusterOptions {
  readonly store: 'file' | 'sqlite' | 'redis';
  readonly transport: 'tcp' | 'ws';
  readonly extra?: readonly string[];
}

/** Three nodes n1-n3 on 127.0.0.1-3, with their flags fixed once (restarts reuse them). */
class Cluster {
  readonly clusterId = `faults-${randomUUID().slice(0, 8)}`;
  readonly root = tempRoot();
  readonly nodes: NodeSpec[] = [];

  private constructor(readonly options: ClusterOptions) {}

  static async create(options: ClusterOptions): Promise<Cluster> {
    const c = new Cluster(options);
    for (let i = 1; i <= 3; i++) {
      const host = `127.0.0.${i}`;
      c.nodes.push({
        id: `n${i}`,
        http: `${host}:${await freePort(host)}`,
        raft: `${host}:${await freePort(host)}`,
        dataDir: join(c.root, `n${i}`),
        proc: null,
      });
    }
    return c;
  }

  /** The flags of the node `n`: the same on every start. */
  args(n: NodeSpec): string[] {
    const { store, transport, extra = [] } = this.options;
    return [
      ...memberFlags(n, this.nodes),
      '--store',
      store,
      '--transport',
      transport,
      ...(store === 'redis' ? ['--redis-url', REDIS_URL] : ['--data-dir', n.dataDir]),
      '--cluster-id',
      this.clusterId,
      ...TIMINGS,
      '--log-level',
      'warn',
      ...extra,
    ];
  }

  start(n: NodeSpec): void {
    n.proc = launch(this.args(n));
  }

  startAll(): void {
    for (const n of this.nodes) this.start(n);
  }

  async kill(n: NodeSpec): Promise<void> {
    const p = n.proc;
    if (p === null) return;
    p.child.kill('SIGKILL');
    await p.exited;
    n.proc = null;
  }

  async killAll(): Promise<void> {
    await Promise.all(this.nodes.map((n) => this.kill(n)));
  }

  url(n: NodeSpec): string {
    return `http://${n.http}`;
  }

  node(id: string): NodeSpec {
    const n = this.nodes.find((m) => m.id === id);
    if (n === undefined) throw new Error(`no node ${id}`);
    return n;
  }

  /** Waits until every running node answers and names the same leader (one that leads). */
  async settled(timeoutMs = 30_000): Promise<{ leader: NodeSpec; term: number }> {
    let found: { leader: NodeSpec; term: number } | null = null;
    await until(
      `a leader of ${this.nodes.filter((n) => n.proc !== null).length} nodes`,
      async () => {
        const up = this.nodes.filter((n) => n.proc !== null);
        const statuses = await Promise.all(up.map((n) => statusOf(n.http)));
        const first = statuses[0];
        if (first == null || first.leaderId === null) return false;
        if (!statuses.every((s) => s !== null && s.leaderId === first.leaderId)) return false;
        const leaderStatus = statuses.find((s) => s?.id === first.leaderId);
        if (leaderStatus == null || leaderStatus.role !== 'leader') return false;
        found = { leader: this.node(first.leaderId), term: leaderStatus.term };
        return true;
      },
      timeoutMs,
    );
    return found as unknown as { leader: NodeSpec; term: number };
  }

  output(): string {
    return this.nodes.map((n) => `--- ${n.id}\n${n.proc?.output ?? '(not running)'}`).join('\n');
  }

  async destroy(): Promise<void> {
    await this.killAll();
    rmSync(this.root, { recursive: true, force: true });
    if (this.options.store === 'redis') await dropRedisCluster(this.clusterId);
  }
}

const key = (k: string) => `/v1/kv/${encodeURIComponent(k)}`;

afterAll(async () => {
  await killAll();
  for (const dir of roots) rmSync(dir, { recursive: true, force: true });
});

// ------------------------------------------------------------------ 1. leader SIGKILL under load

describe('the leader SIGKILLed under load', () => {
  let cluster: Cluster | null = null;
  afterEach(async () => {
    await cluster?.destroy();
    cluster = null;
  });

  it('loses no acknowledged write, and a new leader of a higher term takes over', async () => {
    const c = await Cluster.create({
      store: 'file',
      transport: 'tcp',
      extra: ['--request-timeout-ms', '2000'],
    });
    cluster = c;
    c.startAll();
    const before = await c.settled();
    const endpoints = c.nodes.map((n) => c.url(n));

    const WRITERS = 8;
    const LOAD_MS = 6000;
    const KILL_AT_MS = 2000;
    const WRITE_BOUND_MS = 15_000;
    const MAX_ATTEMPTS = 40;
    const tag = randomUUID().slice(0, 8);
    const acked = new Map<string, { value: string; startedAt: number; ackedAt: number }>();
    const abandoned: string[] = [];
    const unexpected: string[] = [];
    let attempts = 0;
    let retries = 0;
    let retriedWrites = 0;
    let ackedAfterRetry = 0;
    let connectionErrors = 0;
    const statusCounts = new Map<number, number>();

    const started = Date.now();
    const loadEnd = started + LOAD_MS;
    let killedAt = Number.POSITIVE_INFINITY;

    const writeOnce = async (w: number, n: number) => {
      const k = `w-${w}-${n}`;
      const value = `${tag}:${w}:${n}:${'x'.repeat(n % 17)}`;
      const headers = { 'idempotency-key': `${tag}-${k}` };
      const startedAt = Date.now();
      for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        if (Date.now() - startedAt > WRITE_BOUND_MS) break;
        if (attempt > 0) {
          retries++;
          if (attempt === 1) retriedWrites++;
          await sleep(Math.min(25 * attempt, 250));
        }
        // Round-robin over the endpoints; a retry goes to the next one.
        const url = endpoints[(w + n + attempt) % endpoints.length] as string;
        attempts++;
        try {
          const a = await request(`${url}${key(k)}`, { method: 'PUT', body: value, headers }, 4000);
          statusCounts.set(a.status, (statusCounts.get(a.status) ?? 0) + 1);
          if (a.status === 200) {
            acked.set(k, { value, startedAt, ackedAt: Date.now() });
            if (attempt > 0) ackedAfterRetry++;
            return;
          }
          if (a.status === 503 || a.status === 504) continue;
          unexpected.push(`${k} via ${url}: ${a.status} ${a.text}`);
          return;
        } catch {
          connectionErrors++;
        }
      }
      abandoned.push(k);
    };

    const writers = Array.from({ length: WRITERS }, async (_, w) => {
      for (let n = 0; Date.now() < loadEnd; n++) await writeOnce(w, n);
    });

    // ~2 s in, SIGKILL the leader of the moment.
    await sleep(KILL_AT_MS);
    const current = await c.settled(5000);
    const victim = current.leader;
    const ackedBeforeKill = acked.size;
    killedAt = Date.now();
    await c.kill(victim);

    await Promise.all(writers);
    const loadMs = Date.now() - started;

    // A new leader, of a higher term, among the survivors.
    const survivors = c.nodes.filter((n) => n !== victim);
    const after = await c.settled(10_000);
    expect(after.leader).not.toBe(victim);
    expect(after.term).toBeGreaterThan(current.term);
    for (const s of survivors) {
      const st = await statusOf(s.http);
      expect(st?.leaderId).toBe(after.leader.id);
      expect(st?.term).toBe(after.term);
    }

    const ackedAfterKill = [...acked.values()].filter((a) => a.startedAt > killedAt).length;
    const firstAckAfterKill = Math.min(
      ...[...acked.values()].filter((a) => a.startedAt > killedAt).map((a) => a.ackedAt),
    );
    const report = {
      writers: WRITERS,
      loadMs,
      acked: acked.size,
      ackedBeforeKill,
      ackedStartedAfterKill: ackedAfterKill,
      retriedWrites,
      ackedAfterRetry,
      retries,
      attempts,
      connectionErrors,
      abandoned: abandoned.length,
      unexpected: unexpected.length,
      statuses: Object.fromEntries(statusCounts),
      termBefore: before.term,
      termAtKill: current.term,
      termAfter: after.term,
      killed: victim.id,
      newLeader: after.leader.id,
      firstAckAfterKillMs: firstAckAfterKill - killedAt,
    };
    console.log(`leader SIGKILL under load: ${JSON.stringify(report)}`);
    expect(unexpected).toEqual([]);
    expect(ackedBeforeKill).toBeGreaterThan(0);
    // Writes started after the kill are acknowledged again (by the new leader).
    expect(ackedAfterKill).toBeGreaterThan(0);

    // The victim comes back on its data directory and catches up.
    c.start(victim);
    await c.settled(20_000);
    const leaderCommit = (await statusOf(c.node((await c.settled()).leader.id).http))
      ?.commitIndex as number;
    await until(
      `${victim.id} caught up`,
      async () => ((await statusOf(victim.http))?.appliedIndex ?? -1) >= leaderCommit,
    );

    // Every acknowledged key holds its value, on every node, read linearizably.
    const wrong: string[] = [];
    const entries = [...acked.entries()];
    const readStarted = Date.now();
    for (const n of c.nodes) {
      let next = 0;
      const readers = Array.from({ length: 12 }, async () => {
        while (next < entries.length) {
          const [k, { value }] = entries[next++] as (typeof entries)[number];
          let a: Answer | null = null;
          for (let attempt = 0; attempt < 5 && (a === null || a.status >= 500); attempt++) {
            if (attempt > 0) await sleep(200);
            a = await request(`${c.url(n)}${key(k)}?consistency=linearizable`, {}, 5000).catch(
              () => null,
            );
          }
          if (a?.status !== 200 || a.text !== value) {
            wrong.push(`${n.id} ${k}: ${a === null ? 'no answer' : `${a.status} ${a.text}`}`);
          }
        }
      });
      await Promise.all(readers);
    }
    console.log(
      `verified ${entries.length} acknowledged keys on ${c.nodes.length} nodes in ${Date.now() - readStarted} ms`,
    );
    expect(wrong.slice(0, 20), `${wrong.length} wrong reads`).toEqual([]);

    // And the keys list agrees: every acknowledged key is there (unacknowledged ones may be too).
    const listed = json(
      await request(`${c.url(victim)}/v1/kv?prefix=w-&limit=10000&consistency=linearizable`),
    ).keys as string[];
    const listedSet = new Set(listed);
    expect([...acked.keys()].filter((k) => !listedSet.has(k))).toEqual([]);
  }, 90_000);
});

// ------------------------------------------------------------------ 2. restarts from storage

describe.each([
  { store: 'file', transport: 'ws' },
  { store: 'sqlite', transport: 'tcp' },
  { store: 'redis', transport: 'ws' },
] as const)('the whole cluster SIGKILLed ($store store, $transport)', ({ store, transport }) => {
  let cluster: Cluster | null = null;
  beforeAll(async () => {
    if (store === 'redis') {
      await ensureRedis();
      expect((await redisCli(['ping'])).trim(), `Redis at ${REDIS_URL}`).toBe('PONG');
    }
  });
  afterEach(async () => {
    const c = cluster;
    cluster = null;
    if (c === null) return;
    await c.destroy();
    if (store === 'redis') {
      const left = await redisCli(['--scan', '--pattern', `raft-kv:${c.clusterId}:*`]);
      expect(left.trim()).toBe('');
    }
  });

  it('comes back from its storage with every key and the same members', async () => {
    const c = await Cluster.create({ store, transport });
    cluster = c;
    c.startAll();
    await c.settled();
    const written = new Map<string, string>();
    for (let i = 0; i < 20; i++) {
      const k = `restart/${store}/${i}`;
      const v = `${transport}-value-${i}-${randomUUID()}`;
      const via = c.nodes[i % 3] as NodeSpec;
      const a = await request(`${c.url(via)}${key(k)}`, { method: 'PUT', body: v });
      expect(a.status, a.text).toBe(200);
      written.set(k, v);
    }
    if (store === 'redis') {
      const stored = await redisCli(['--scan', '--pattern', `raft-kv:${c.clusterId}:*`]);
      expect(stored.split('\n').filter((l) => l.length > 0).length).toBeGreaterThan(0);
    }

    await c.killAll();
    for (const n of c.nodes) expect(await statusOf(n.http)).toBe(null);
    c.startAll();
    const { leader } = await c.settled();
    const follower = c.nodes.find((n) => n !== leader) as NodeSpec;
    for (const [k, v] of written) {
      const a = await request(`${c.url(follower)}${key(k)}?consistency=linearizable`);
      expect({ key: k, status: a.status, value: a.text }).toEqual({
        key: k,
        status: 200,
        value: v,
      });
    }
    const status = (await statusOf(follower.http)) as StatusBody;
    expect(status.role).toBe('follower');
    expect([...status.members].sort((a, b) => a.id.localeCompare(b.id))).toEqual(
      c.nodes.map((n) => ({ id: n.id, address: n.raft, voter: true })),
    );
  }, 90_000);
});

// ------------------------------------------------------------------ 3-5. one running cluster

describe('a running cluster (file store, tcp)', () => {
  let c: Cluster;
  beforeAll(async () => {
    c = await Cluster.create({ store: 'file', transport: 'tcp' });
    c.startAll();
    await c.settled();
  }, 60_000);
  afterAll(async () => {
    await c?.destroy();
  });

  const n = (i: number) => c.nodes[i] as NodeSpec;

  it('an Idempotency-Key retry on another node answers the first result and applies once', async () => {
    const put = (via: NodeSpec, k: string, body: string, idem?: string) =>
      request(`${c.url(via)}${key(k)}`, {
        method: 'PUT',
        body,
        headers: idem === undefined ? {} : { 'idempotency-key': idem },
      });
    const del = (via: NodeSpec, k: string, idem: string) =>
      request(`${c.url(via)}${key(k)}`, { method: 'DELETE', headers: { 'idempotency-key': idem } });
    const get = (via: NodeSpec, k: string) =>
      request(`${c.url(via)}${key(k)}?consistency=linearizable`);

    const first = await put(n(0), 'idem/k', 'first', 'abc');
    expect(first.status, first.text).toBe(200);
    const r0 = json(first).revision as number;
    expect(Number.isInteger(r0)).toBe(true);
    // The same key via another node, with another body: the first result comes back.
    const retry = await put(n(1), 'idem/k', 'second', 'abc');
    expect(retry.status, retry.text).toBe(200);
    expect(json(retry)).toEqual({ revision: r0 });
    const retry3 = await put(n(2), 'idem/k', 'third', 'abc');
    expect(json(retry3)).toEqual({ revision: r0 });
    for (const via of c.nodes) {
      const g = await get(via, 'idem/k');
      expect(g.text).toBe('first');
      expect(g.headers.get('x-kv-mod-revision')).toBe(String(r0));
    }

    // A second key, plain: one more revision.
    const other = await put(n(2), 'idem/other', 'plain');
    expect(json(other)).toEqual({ revision: r0 + 1 });

    // A DELETE and its retry (another node) with one key answer identically.
    const d1 = await del(n(0), 'idem/k', 'del-abc');
    expect(d1.status, d1.text).toBe(200);
    expect(json(d1)).toEqual({ revision: r0 + 2, deleted: true });
    const d2 = await del(n(2), 'idem/k', 'del-abc');
    expect(d2.status, d2.text).toBe(200);
    expect(d2.text).toBe(d1.text);
    expect((await get(n(1), 'idem/k')).status).toBe(404);

    // A retry of the first PUT after the DELETE still answers its first result and does not
    // bring the key back.
    const late = await put(n(1), 'idem/k', 'late', 'abc');
    expect(json(late)).toEqual({ revision: r0 });
    const list = await request(`${c.url(n(1))}/v1/kv?prefix=idem/&consistency=linearizable`);
    expect(json(list)).toEqual({ keys: ['idem/other'] });

    // Three distinct writes changed something since r0 (the plain PUT, the DELETE, this PUT):
    // every retry applied once.
    const last = await put(n(0), 'idem/last', 'plain');
    expect(json(last)).toEqual({ revision: r0 + 3 });
  }, 60_000);

  it('bad requests get the documented errors', async () => {
    const url = c.url(n(1));
    const errors: Answer[] = [];
    const expectError = (a: Answer, status: number, error: string) => {
      expect({ status: a.status, error: json(a).error }, a.text).toEqual({ status, error });
      errors.push(a);
    };

    // A body over 1 MiB: 413 too_large. A large one under it is stored whole.
    const big = new Uint8Array(1024 * 1024 + 1).fill(0x61);
    const tooLarge = await request(`${url}${key('bad/big')}`, { method: 'PUT', body: big });
    expectError(tooLarge, 413, 'too_large');
    const nearly = big.subarray(0, 1024 * 1024 - 1024);
    const large = await request(`${url}${key('bad/large')}`, { method: 'PUT', body: nearly });
    expect(large.status, large.text).toBe(200);
    expect((await request(`${url}${key('bad/large')}`)).text.length).toBe(nearly.length);
    // "bodies at most 1 MiB" (README): a body of exactly 1 MiB must be taken. Soft, so the rest
    // of the contract is still checked when it is not.
    const mib = await request(`${url}${key('bad/mib')}`, {
      method: 'PUT',
      body: big.subarray(0, 1024 * 1024),
    });
    expect(mib.status, `a body of exactly 1 MiB: ${mib.text}`).toBe(200);

    // Keys: at most 1024 bytes of UTF-8 (not characters).
    const longKey = await request(`${url}${key('k'.repeat(1025))}`, { method: 'PUT', body: 'v' });
    expectError(longKey, 400, 'bad_request');
    const wideKey = await request(`${url}${key('€'.repeat(342))}`, { method: 'PUT', body: 'v' });
    expectError(wideKey, 400, 'bad_request');
    const longGet = await request(`${url}${key('k'.repeat(1025))}`);
    expectError(longGet, 400, 'bad_request');
    const edge = await request(`${url}${key('k'.repeat(1024))}`, { method: 'PUT', body: 'v' });
    expect(edge.status, edge.text).toBe(200);

    // A missing key: 404 not_found.
    expectError(await request(`${url}${key('bad/missing')}`), 404, 'not_found');

    // CAS with a bad body: 400 bad_request.
    const cas = (k: string, body: string) =>
      request(`${url}${key(k)}/cas`, {
        method: 'POST',
        body,
        headers: { 'content-type': 'application/json' },
      });
    expectError(await cas('bad/cas', 'not json'), 400, 'bad_request');
    expectError(await cas('bad/cas', '{"expected":1,"value":"x"}'), 400, 'bad_request');
    expectError(await cas('bad/cas', '{"value":"x"}'), 400, 'bad_request');
    expectError(await cas('bad/cas', '{"expected":null,"value":"x","x":1}'), 400, 'bad_request');
    expectError(await cas('bad/cas', ''), 400, 'bad_request');

    // CAS mismatch: 409 with what the key holds.
    expect((await cas('bad/cas', '{"expected":null,"value":"one"}')).status).toBe(200);
    const mismatch = await cas('bad/cas', '{"expected":"two","value":"three"}');
    expect(mismatch.status).toBe(409);
    expect(json(mismatch)).toEqual({ ok: false, current: 'one' });
    const absent = await cas('bad/never', '{"expected":"x","value":"y"}');
    expect(absent.status).toBe(409);
    expect(json(absent)).toEqual({ ok: false, current: null });
    expect((await request(`${url}${key('bad/cas')}`)).text).toBe('one');

    // Unknown routes and methods: 404 JSON.
    expectError(await request(`${url}/v1/nothing`), 404, 'not_found');
    expectError(await request(`${url}/v2/kv/x`, { method: 'PUT', body: 'v' }), 404, 'not_found');
    expectError(await request(`${url}${key('bad/x')}/other`, { method: 'POST' }), 404, 'not_found');

    // Other documented 400s: a bad consistency, a bad limit, an empty Idempotency-Key.
    expectError(await request(`${url}${key('bad/cas')}?consistency=eventual`), 400, 'bad_request');
    expectError(await request(`${url}/v1/kv?limit=0`), 400, 'bad_request');
    expectError(await request(`${url}/v1/kv?limit=10001`), 400, 'bad_request');
    expectError(
      await request(`${url}${key('bad/idem')}`, {
        method: 'PUT',
        body: 'v',
        headers: { 'idempotency-key': 'i'.repeat(201) },
      }),
      400,
      'bad_request',
    );

    // Every error body is JSON with a string `error` and a string `message`.
    for (const a of errors) {
      expect(a.headers.get('content-type')).toMatch(/^application\/json/);
      const body = json(a);
      expect(typeof body.error, a.text).toBe('string');
      expect(typeof body.message, a.text).toBe('string');
      expect((body.message as string).length).toBeGreaterThan(0);
    }
  }, 60_000);

  it('a node started without --peers joins and leaves through the members commands', async () => {
    const before = new Map<string, string>();
    for (let i = 0; i < 5; i++) {
      const k = `members/before-${i}`;
      const a = await request(`${c.url(n(i % 3))}${key(k)}`, { method: 'PUT', body: `b${i}` });
      expect(a.status, a.text).toBe(200);
      before.set(k, `b${i}`);
    }
    const { leader } = await c.settled();
    const follower = c.nodes.find((m) => m !== leader) as NodeSpec;

    const host = '127.0.0.4';
    const n4 = {
      id: 'n4',
      http: `${host}:${await freePort(host)}`,
      raft: `${host}:${await freePort(host)}`,
    };
    const proc = launch([
      'serve',
      '--id',
      n4.id,
      '--http',
      n4.http,
      '--raft',
      n4.raft,
      '--data-dir',
      join(c.root, n4.id),
      '--cluster-id',
      c.clusterId,
      ...TIMINGS,
      '--log-level',
      'warn',
    ]);
    try {
      await until('n4 answering', async () => (await statusOf(n4.http)) !== null);

      const add = await client(['members', 'add', 'n4', n4.raft, '--endpoints', c.url(follower)]);
      expect(add.code, add.output).toBe(0);
      expect(add.output).toMatch(/^added n4\n/);
      const n4Line = add.output.split('\n').find((l) => l.trim().startsWith('n4 '));
      expect(n4Line, add.output).toBeDefined();
      expect(n4Line).toContain(`raft ${n4.raft}`);
      expect(n4Line).not.toContain('(learner)');
      const members = json(await request(`${c.url(leader)}/v1/members`)).members as {
        id: string;
        voter: boolean;
      }[];
      expect(members.find((m) => m.id === 'n4')).toMatchObject({ id: 'n4', voter: true });

      // n4 serves: a write through it, and it sees what was written before it joined.
      const put = await request(`http://${n4.http}${key('members/through-n4')}`, {
        method: 'PUT',
        body: 'via n4',
      });
      expect(put.status, put.text).toBe(200);
      for (const [k, v] of [...before, ['members/through-n4', 'via n4'] as const]) {
        const a = await request(`http://${n4.http}${key(k)}?consistency=linearizable`);
        expect({ k, status: a.status, v: a.text }).toEqual({ k, status: 200, v });
      }
      const s4 = (await statusOf(n4.http)) as StatusBody;
      expect(s4.members.map((m) => m.id).sort()).toEqual(['n1', 'n2', 'n3', 'n4']);

      const remove = await client([
        'members',
        'remove',
        'n4',
        '--endpoints',
        c.nodes.map((m) => c.url(m)).join(','),
      ]);
      expect(remove.code, remove.output).toBe(0);
      expect(remove.output).toMatch(/^removed n4\n/);
      expect(remove.output).not.toMatch(/^\s+n4 /m);
      for (const m of c.nodes) {
        await until(`${m.id} without n4`, async () => {
          const list = json(await request(`${c.url(m)}/v1/members`)).members as { id: string }[];
          return !list.some((x) => x.id === 'n4');
        });
      }

      // The list, readable: one line per member, its id, raft and HTTP addresses.
      const list = await client(['members', '--endpoints', c.url(n(2))]);
      expect(list.code, list.output).toBe(0);
      const lines = list.output.trimEnd().split('\n');
      expect(lines).toHaveLength(3);
      for (const m of c.nodes) {
        expect(lines).toContain(`  ${m.id}  raft ${m.raft}  http ${m.http}`);
      }
      const listJson = await client(['members', 'list', '--json', '--endpoints', c.url(n(0))]);
      expect(
        (JSON.parse(listJson.output).members as { id: string }[]).map((m) => m.id).sort(),
      ).toEqual(['n1', 'n2', 'n3']);

      // The three keep serving with n4 gone.
      const afterPut = await request(`${c.url(n(0))}${key('members/after')}`, {
        method: 'PUT',
        body: 'ok',
      });
      expect(afterPut.status, afterPut.text).toBe(200);
    } finally {
      proc.child.kill('SIGKILL');
      await proc.exited;
    }
  }, 90_000);
});
