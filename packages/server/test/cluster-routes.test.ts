/**
 * The server's own HTTP routes on a real 3-node cluster (memory store, TCP on 127.0.0.1-3,
 * every node started with `startServer`, so each advertises its HTTP address into the
 * replicated directory): status, members and the directory, leadership transfer and
 * membership changes sent to a follower (passed on to the leader over HTTP), snapshots,
 * Prometheus metrics, the cluster view and the dashboard.
 *
 * The tests share the cluster and run in order; none assumes which node leads, each finds out.
 */
import { noopLogger } from '@raft/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type NodeConfig, resolveNodeConfig } from '../src/config/node-config.js';
import { type RunningServer, startServer } from '../src/server.js';
import { freePort } from '../src/testing/local-cluster.js';
import { type Register, registerService } from './fixtures/register-service.js';

type Server = RunningServer<string, number, Register>;

const ELECTION_TIMEOUT_MS = 300;
const HEARTBEAT_MS = 50;
/** Generous: elections on a noisy 2-core machine. */
const SETTLE_MS = 15_000;
const TEST_MS = 40_000;

const servers: Server[] = [];
/** Every server started (the 4th one too), shut down in afterAll. */
const started: Server[] = [];

async function configFor(id: string, host: string, peers: string | undefined, raft?: string) {
  const raftAddress = raft ?? `${host}:${await freePort(host)}`;
  return resolveNodeConfig(
    {
      id,
      raft: raftAddress,
      http: `${host}:${await freePort(host)}`,
      peers,
      store: 'memory',
      transport: 'tcp',
      electionTimeoutMs: ELECTION_TIMEOUT_MS,
      heartbeatMs: HEARTBEAT_MS,
      requestTimeoutMs: 8000,
    },
    null,
    registerService.name,
  );
}

async function start(config: NodeConfig): Promise<Server> {
  const s = await startServer(registerService, config, noopLogger);
  started.push(s);
  return s;
}

interface Answer {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  // biome-ignore lint/suspicious/noExplicitAny: test answers are inspected field by field
  readonly body: any;
}

/** One real HTTP request to `s`, bounded. */
async function call(
  s: Server,
  method: string,
  path: string,
  body?: string | object,
): Promise<Answer> {
  const res = await fetch(`http://${s.httpAddress}${path}`, {
    method,
    ...(body === undefined
      ? {}
      : {
          body: typeof body === 'string' ? body : JSON.stringify(body),
          headers: { 'content-type': 'application/json' },
        }),
    signal: AbortSignal.timeout(15_000),
  });
  const text = await res.text();
  let parsed: unknown = null;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON (metrics, the dashboard)
  }
  return { status: res.status, headers: res.headers, text, body: parsed };
}

/** Retries `check` until it does not throw (or the bound passes: then its last error). */
async function eventually<T>(check: () => Promise<T> | T, timeoutMs = SETTLE_MS): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** The leader every one of `among` agrees on (over GET /v1/status), and the others. */
async function settledLeader(among: readonly Server[] = servers) {
  return eventually(async () => {
    const statuses = await Promise.all(among.map((s) => call(s, 'GET', '/v1/status')));
    const ids = new Set(statuses.map((a) => a.body.leaderId));
    expect(ids.size, 'every node knows the same leader').toBe(1);
    const leaderId = statuses[0]?.body.leaderId as string | null;
    expect(leaderId).not.toBeNull();
    const leader = among.find((s) => s.node.config.id === leaderId);
    expect(leader, `${leaderId} is one of the nodes`).toBeDefined();
    const leaderStatus = statuses[among.indexOf(leader as Server)];
    expect(leaderStatus?.body.role).toBe('leader');
    return {
      leader: leader as Server,
      followers: among.filter((s) => s !== leader),
      term: leaderStatus?.body.term as number,
    };
  });
}

/** `name`'s samples in a Prometheus text (optionally only those whose labels match). */
function samples(text: string, name: string, labels: Record<string, string> = {}): number[] {
  const out: number[] = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$/.exec(line);
    if (m === null || m[1] !== name) continue;
    const set = m[2] ?? '';
    if (Object.entries(labels).some(([k, v]) => !set.includes(`${k}="${v}"`))) continue;
    out.push(Number(m[3]));
  }
  return out;
}

const idOf = (s: Server) => s.node.config.id;

beforeAll(async () => {
  const hosts = ['127.0.0.1', '127.0.0.2', '127.0.0.3'];
  const rafts: string[] = [];
  for (const h of hosts) rafts.push(`${h}:${await freePort(h)}`);
  const peers = rafts.map((a, i) => `n${i + 1}=${a}`).join(',');
  const configs = await Promise.all(
    hosts.map((h, i) => configFor(`n${i + 1}`, h, peers, rafts[i])),
  );
  const results = await Promise.allSettled(configs.map((c) => start(c)));
  const failed = results.find((r) => r.status === 'rejected');
  if (failed !== undefined) throw (failed as PromiseRejectedResult).reason;
  for (const r of results) if (r.status === 'fulfilled') servers.push(r.value);
  await settledLeader();
}, 60_000);

afterAll(async () => {
  await Promise.allSettled(started.map((s) => s.shutdown('test over')));
}, 60_000);

describe('the server HTTP routes on a 3-node cluster', () => {
  it(
    'GET /v1/status on each node answers the contract fields',
    async () => {
      const membership = servers.map((s) => ({
        id: idOf(s),
        address: s.node.config.raft,
        voter: true,
      }));
      const { leader } = await settledLeader();
      for (const s of servers) {
        const a = await call(s, 'GET', '/v1/status');
        expect(a.status).toBe(200);
        expect(a.headers.get('content-type')).toMatch(/^application\/json/);
        expect(Object.keys(a.body).sort()).toEqual(
          [
            'appliedIndex',
            'commitIndex',
            'id',
            'lastLogIndex',
            'leaderId',
            'members',
            'role',
            'snapshotIndex',
            'term',
          ].sort(),
        );
        expect(a.body).toEqual({
          id: idOf(s),
          role: s === leader ? 'leader' : 'follower',
          term: expect.any(Number),
          leaderId: idOf(leader),
          commitIndex: expect.any(Number),
          appliedIndex: expect.any(Number),
          lastLogIndex: expect.any(Number),
          snapshotIndex: expect.any(Number),
          members: expect.arrayContaining(membership),
        });
        expect(a.body.members).toHaveLength(3);
        expect(a.body.term).toBeGreaterThanOrEqual(1);
        expect(a.body.commitIndex).toBeGreaterThanOrEqual(1);
        expect(a.body.appliedIndex).toBeLessThanOrEqual(a.body.commitIndex);
        expect(a.body.commitIndex).toBeLessThanOrEqual(a.body.lastLogIndex);
        expect(a.body.snapshotIndex).toBe(0);
      }
    },
    TEST_MS,
  );

  it(
    'the directory fills: GET /v1/members on every node lists every member with its HTTP address',
    async () => {
      const expected = servers
        .map((s) => ({
          id: idOf(s),
          address: s.node.config.raft,
          voter: true,
          http: s.httpAddress,
        }))
        .sort((x, y) => x.id.localeCompare(y.id));
      for (const s of servers) {
        await eventually(async () => {
          const a = await call(s, 'GET', '/v1/members');
          expect(a.status).toBe(200);
          const members = [...a.body.members].sort((x, y) => x.id.localeCompare(y.id));
          expect(members, `as ${idOf(s)} sees it`).toEqual(expected);
        });
      }
      // The HTTP address advertised is the one each node listens on.
      for (const s of servers) expect(s.httpAddress).toBe(s.node.config.http);
    },
    TEST_MS,
  );

  it(
    'POST /v1/leader/transfer sent to a follower is passed to the leader and hands leadership over',
    async () => {
      const { leader, followers, term } = await settledLeader();
      const [via, target] = followers as [Server, Server];
      const a = await call(via, 'POST', '/v1/leader/transfer', { to: idOf(target) });
      expect(a.status, a.text).toBe(200);
      expect(a.body).toEqual({ leaderId: idOf(target), term: expect.any(Number) });
      expect(a.body.term).toBeGreaterThan(term);
      const after = await settledLeader();
      expect(idOf(after.leader)).toBe(idOf(target));
      expect(idOf(after.leader)).not.toBe(idOf(leader));
      expect(after.term).toBeGreaterThanOrEqual(a.body.term);
    },
    TEST_MS,
  );

  it(
    'POST /v1/leader/transfer to an unknown node, or with a bad body, answers 400',
    async () => {
      const { leader, followers } = await settledLeader();
      const via = followers[0] as Server;
      // Passed on to the leader, which refuses it.
      const nope = await call(via, 'POST', '/v1/leader/transfer', { to: 'nope' });
      expect(nope.status, nope.text).toBe(400);
      expect(nope.body).toEqual({ error: 'bad_request', message: expect.stringContaining('nope') });
      // Straight to the leader: the same; and to itself.
      const direct = await call(leader, 'POST', '/v1/leader/transfer', { to: 'nope' });
      expect(direct.status).toBe(400);
      expect(direct.body.error).toBe('bad_request');
      const self = await call(leader, 'POST', '/v1/leader/transfer', { to: idOf(leader) });
      expect(self.status).toBe(400);
      expect(self.body.error).toBe('bad_request');
      // Refused before it reaches the node.
      for (const bad of ['{"to":5}', '{"to":"n2","extra":true}', 'not json', '{"to":"bad id!"}']) {
        const a = await call(via, 'POST', '/v1/leader/transfer', bad);
        expect(a.status, bad).toBe(400);
        expect(a.body, bad).toEqual({ error: 'bad_request', message: expect.any(String) });
      }
      // Nothing changed.
      const still = await settledLeader();
      expect(idOf(still.leader)).toBe(idOf(leader));
    },
    TEST_MS,
  );

  it(
    'POST /v1/leader/transfer with no body, sent to a follower, hands leadership to another voter',
    async () => {
      const { leader, followers, term } = await settledLeader();
      const a = await call(followers[0] as Server, 'POST', '/v1/leader/transfer');
      expect(a.status, a.text).toBe(200);
      expect(followers.map(idOf)).toContain(a.body.leaderId);
      expect(a.body.term).toBeGreaterThan(term);
      const after = await settledLeader();
      expect(idOf(after.leader)).not.toBe(idOf(leader));
    },
    TEST_MS,
  );

  it(
    'POST /v1/snapshot answers {index, term}, and the status then shows the snapshot',
    async () => {
      const { leader } = await settledLeader();
      const w = await call(leader, 'PUT', '/v1/register', 'before-snapshot');
      expect(w.status, w.text).toBe(200);
      for (const s of servers) {
        // A follower may not have applied the write yet; any applied entry makes a snapshot.
        const a = await call(s, 'POST', '/v1/snapshot');
        expect(a.status, `${idOf(s)}: ${a.text}`).toBe(200);
        expect(a.body).toEqual({ index: expect.any(Number), term: expect.any(Number) });
        expect(a.body.index).toBeGreaterThanOrEqual(1);
        expect(a.body.term).toBeGreaterThanOrEqual(1);
        const status = await call(s, 'GET', '/v1/status');
        expect(status.body.snapshotIndex).toBeGreaterThanOrEqual(a.body.index);
        expect(status.body.appliedIndex).toBeGreaterThanOrEqual(a.body.index);
      }
    },
    TEST_MS,
  );

  it(
    'GET /metrics answers the Prometheus text of the node',
    async () => {
      const { leader, followers } = await settledLeader();
      const writes = 5;
      for (let i = 0; i < writes; i++) {
        const a = await call(leader, 'PUT', '/v1/register', `metrics-${i}`);
        expect(a.status, a.text).toBe(200);
      }
      const a = await call(leader, 'GET', '/metrics');
      expect(a.status).toBe(200);
      expect(a.headers.get('content-type')).toMatch(/^text\/plain/);
      const text = a.text;
      const labels = { service: registerService.name, node: idOf(leader) };
      expect(samples(text, 'raft_term', labels)[0]).toBeGreaterThanOrEqual(1);
      expect(samples(text, 'raft_commit_index', labels)[0]).toBeGreaterThanOrEqual(writes);
      expect(text).toMatch(/^raft_role\{[^}]*role="leader"[^}]*\} 1$/m);
      expect(samples(text, 'raft_role', { role: 'leader' })).toEqual([1]);
      expect(samples(text, 'raft_role', { role: 'follower' })).toEqual([0]);
      expect(samples(text, 'raft_proposals_total', { outcome: 'ok' })[0]).toBeGreaterThanOrEqual(
        writes,
      );
      expect(text).toMatch(/^# TYPE raft_proposal_duration_seconds histogram$/m);
      expect(samples(text, 'raft_proposal_duration_seconds_count')[0]).toBeGreaterThanOrEqual(
        writes,
      );
      expect(samples(text, 'raft_proposal_duration_seconds_bucket', { le: '+Inf' })[0]).toBe(
        samples(text, 'raft_proposal_duration_seconds_count')[0],
      );
      expect(samples(text, 'raft_proposal_duration_seconds_sum')[0]).toBeGreaterThan(0);
      for (const f of followers) {
        const lag = samples(text, 'raft_replication_lag_entries', { peer: idOf(f) });
        expect(lag, `lag of ${idOf(f)}`).toHaveLength(1);
        expect(lag[0]).toBeGreaterThanOrEqual(0);
        const sent = samples(text, 'raft_transport_messages_sent_total', { peer: idOf(f) });
        expect(sent, `messages sent to ${idOf(f)}`).toHaveLength(1);
        expect(sent[0]).toBeGreaterThan(0);
      }
      expect(samples(text, 'raft_snapshots_total', labels)[0]).toBeGreaterThanOrEqual(1);
      expect(samples(text, 'raft_http_requests_total', { route: '/v1/register' }).length).toBe(1);

      // A follower: its own role, and no replication lag (only the leader tracks its peers).
      const follower = followers[0] as Server;
      const f = await call(follower, 'GET', '/metrics');
      expect(f.status).toBe(200);
      expect(samples(f.text, 'raft_role', { role: 'follower', node: idOf(follower) })).toEqual([1]);
      expect(samples(f.text, 'raft_role', { role: 'leader' })).toEqual([0]);
      expect(samples(f.text, 'raft_replication_lag_entries')).toEqual([]);
      expect(samples(f.text, 'raft_snapshots_total')[0]).toBeGreaterThanOrEqual(1);
    },
    TEST_MS,
  );

  it(
    'GET /v1/cluster answers every member with its status, the leader and the activity',
    async () => {
      const { leader } = await settledLeader();
      for (const s of servers) {
        const view = await eventually(async () => {
          const a = await call(s, 'GET', '/v1/cluster');
          expect(a.status).toBe(200);
          expect(a.body.activity.length, 'samples after ~2 s').toBeGreaterThanOrEqual(2);
          return a;
        });
        expect(view.headers.get('access-control-allow-origin')).toBe('*');
        const body = view.body;
        expect(body.service).toEqual({
          name: registerService.name,
          description: registerService.description,
        });
        expect(body.self).toBe(idOf(s));
        expect(body.leaderId).toBe(idOf(leader));
        expect(body.term).toBeGreaterThanOrEqual(1);
        expect(body.members).toHaveLength(3);
        for (const m of body.members) {
          const server = servers.find((x) => idOf(x) === m.id) as Server;
          expect(m, m.id).toMatchObject({
            id: idOf(server),
            address: server.node.config.raft,
            voter: true,
            http: server.httpAddress,
          });
          expect(m.status, `${m.id} as ${idOf(s)} sees it`).not.toBeNull();
          expect(m.status.id).toBe(m.id);
          expect(m.error).toBeUndefined();
          expect(typeof m.lag).toBe('number');
        }
        for (const sample of body.activity) {
          expect(sample).toEqual({
            t: expect.any(Number),
            commitIndex: expect.any(Number),
            commits: expect.any(Number),
            writes: expect.any(Number),
            p50Ms: sample.p50Ms === null ? null : expect.any(Number),
            p99Ms: sample.p99Ms === null ? null : expect.any(Number),
          });
        }
        expect(Array.isArray(body.elections)).toBe(true);
      }
      // /v1/status is open to any origin too; the admin routes are not.
      const status = await call(leader, 'GET', '/v1/status');
      expect(status.headers.get('access-control-allow-origin')).toBe('*');
      const members = await call(leader, 'GET', '/v1/members');
      expect(members.headers.get('access-control-allow-origin')).toBeNull();
    },
    TEST_MS,
  );

  it(
    'GET / answers the HTML dashboard with the service name',
    async () => {
      for (const s of servers) {
        const a = await call(s, 'GET', '/');
        expect(a.status).toBe(200);
        expect(a.headers.get('content-type')).toMatch(/^text\/html/);
        expect(a.text).toMatch(/^<!doctype html>/i);
        expect(a.text).toContain(`<title>${registerService.name}`);
      }
      const missing = await call(servers[0] as Server, 'GET', '/v1/nothing-here');
      expect(missing.status).toBe(404);
      expect(missing.body).toEqual({ error: 'not_found', message: expect.any(String) });
    },
    TEST_MS,
  );

  it('membership through a follower: add a 4th voter, idempotent, conflict, remove, bad bodies', async () => {
    const { followers } = await settledLeader();
    const via = followers[0] as Server;
    // A node with no peers: empty membership, it waits to be contacted.
    const n4 = await start(await configFor('n4', '127.0.0.4', undefined));
    expect(n4.node.node.status().members).toEqual([]);
    const n4raft = n4.node.config.raft;
    const member = { id: 'n4', address: n4raft, voter: true };

    const added = await call(via, 'POST', '/v1/members', member);
    expect(added.status, added.text).toBe(200);
    expect(added.body.members).toHaveLength(4);
    expect(added.body.members).toContainEqual(expect.objectContaining(member));
    for (const m of added.body.members) {
      expect(Object.keys(m).sort()).toEqual(['address', 'http', 'id', 'voter']);
    }

    // n4 joined: a write through it is forwarded to the leader and applied everywhere.
    const write = await eventually(async () => {
      const a = await call(n4, 'PUT', '/v1/register', 'from-n4');
      expect(a.status, a.text).toBe(200);
      return a;
    });
    expect(write.body).toEqual({ version: expect.any(Number) });
    const read = await call(servers[0] as Server, 'GET', '/v1/register');
    expect(read.body).toEqual({ value: 'from-n4', version: write.body.version });
    // And n4 advertises its own HTTP address like the others.
    await eventually(async () => {
      const a = await call(via, 'GET', '/v1/members');
      expect(a.body.members).toContainEqual({ ...member, http: n4.httpAddress });
    });

    // The same request again: 200, nothing changes.
    const again = await call(via, 'POST', '/v1/members', member);
    expect(again.status, again.text).toBe(200);
    expect(again.body.members).toHaveLength(4);
    expect(again.body.members).toContainEqual(expect.objectContaining(member));

    // The same id at another address: a conflict (ids are never reused).
    const conflict = await call(via, 'POST', '/v1/members', {
      ...member,
      address: '127.0.0.4:1',
    });
    expect(conflict.status, conflict.text).toBe(409);
    expect(conflict.body).toEqual({ error: 'conflict', message: expect.stringContaining('n4') });

    // Bad bodies: refused with 400 before anything reaches the node.
    for (const bad of [
      { address: n4raft, voter: true },
      { id: 'n5', address: 'nohost', voter: true },
      { id: 'n5', address: '127.0.0.5', voter: true },
      { id: 'n5', address: n4raft, voter: true, extra: 1 },
      { id: 'bad id!', address: n4raft },
      { id: 'n5', address: n4raft, voter: 'yes' },
      'not json',
      '',
      '[]',
    ]) {
      const a = await call(via, 'POST', '/v1/members', bad);
      expect(a.status, JSON.stringify(bad)).toBe(400);
      expect(a.body, JSON.stringify(bad)).toEqual({
        error: 'bad_request',
        message: expect.any(String),
      });
    }

    // Remove it (through the follower, once the follower knows n4 as a voter).
    await eventually(async () => {
      const a = await call(via, 'GET', '/v1/status');
      expect(a.body.members).toContainEqual(member);
    });
    const removed = await call(via, 'DELETE', '/v1/members/n4');
    expect(removed.status, removed.text).toBe(200);
    expect(removed.body.members).toHaveLength(3);
    expect(removed.body.members.map((m: { id: string }) => m.id).sort()).toEqual(
      servers.map(idOf).sort(),
    );
    for (const s of servers) {
      await eventually(async () => {
        const a = await call(s, 'GET', '/v1/members');
        expect(a.body.members.map((m: { id: string }) => m.id)).not.toContain('n4');
      });
    }
    await n4.shutdown('removed');

    // Unknown ids: 404.
    const unknown = await call(via, 'DELETE', '/v1/members/n4');
    expect(unknown.status, unknown.text).toBe(404);
    expect(unknown.body).toEqual({ error: 'not_found', message: expect.stringContaining('n4') });
    const never = await call(via, 'DELETE', '/v1/members/never-was');
    expect(never.status).toBe(404);
    expect(never.body.error).toBe('not_found');

    // The three go on.
    const { leader } = await settledLeader();
    const after = await call(leader, 'PUT', '/v1/register', 'after-n4');
    expect(after.status, after.text).toBe(200);
  }, 60_000);

  // A new voter is added as a learner and promoted only once it holds the leader's log up to
  // where it was when the learner joined: a node that never answers stays a learner (a 3-node
  // cluster must not become 4 voters with one dead).
  it('POST /v1/members voter:true does not promote a node that has not caught up (it never answered)', async () => {
    const { leader } = await settledLeader();
    const host = '127.0.0.9';
    const dead = `${host}:${await freePort(host)}`; // nothing listens there
    const member = { id: 'n9', address: dead, voter: true };
    try {
      const a = await call(leader, 'POST', '/v1/members', member);
      // Expected: within the request's bound it gives up, n9 stays a learner.
      expect(a.status, a.text).toBe(504);
      expect(a.body.error).toBe('timeout');
      const status = await call(leader, 'GET', '/v1/status');
      expect(status.body.members).toContainEqual({ ...member, voter: false });
    } finally {
      const current = await settledLeader();
      await eventually(async () => {
        const r = await call(current.leader, 'DELETE', '/v1/members/n9');
        expect([200, 404]).toContain(r.status);
      });
      for (const s of servers) {
        await eventually(async () => {
          const m = await call(s, 'GET', '/v1/members');
          expect(m.body.members.map((x: { id: string }) => x.id)).not.toContain('n9');
        });
      }
    }
  }, 60_000);
});
