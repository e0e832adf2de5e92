/**
 * What the HTTP layer refuses or guards against: state-changing requests from another origin's
 * page (CSRF), peer answers that are not node statuses (the dashboard shows numbers only), and
 * a cluster without a leader for the whole bound (503: nothing was appended, not a 504).
 */
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, type RunningServer, resolveNodeConfig, startServer } from '../src/index.js';
import { registerService } from './fixtures/register-service.js';

let server: RunningServer;
let fake: Server;
let url: string;
let fakeHttp: string;

beforeAll(async () => {
  // n2 never runs: n1 alone is a minority of two and never has a leader. n2's "HTTP API" is a
  // fake that answers /v1/status with markup where numbers belong.
  fake = createServer((_req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ id: 'n2', role: 'leader', term: '<img src=x onerror=alert(1)>' }));
  });
  const fakePort = await freePort('127.0.0.2');
  await new Promise<void>((r) => fake.listen(fakePort, '127.0.0.2', r));
  fakeHttp = `127.0.0.2:${fakePort}`;
  const http = `127.0.0.1:${await freePort('127.0.0.1')}`;
  const raft = `127.0.0.1:${await freePort('127.0.0.1')}`;
  const peer = `127.0.0.2:${await freePort('127.0.0.2')}`;
  server = (await startServer(
    registerService,
    resolveNodeConfig(
      {
        id: 'n1',
        http,
        raft,
        peers: `n1=${raft},n2=${peer}`,
        store: 'memory',
        electionTimeoutMs: 150,
        heartbeatMs: 30,
        requestTimeoutMs: 600,
      },
      null,
    ),
    { debug() {}, info() {}, warn() {}, error() {} } as never,
  )) as unknown as RunningServer;
  server.node.directory.set('n2', fakeHttp);
  url = `http://${http}`;
}, 30_000);

afterAll(async () => {
  await server?.shutdown('test');
  await new Promise((r) => fake?.close(r));
});

describe('the HTTP guards', () => {
  it('refuses a state-changing request from the page of another origin, and takes same-origin and origin-less ones', async () => {
    const post = (headers: Record<string, string>) =>
      fetch(`${url}/v1/leader/transfer`, { method: 'POST', body: '{}', headers });
    const foreign = await post({ origin: 'http://evil.example', 'content-type': 'text/plain' });
    expect(foreign.status).toBe(403);
    expect(await foreign.json()).toEqual({
      error: 'forbidden',
      message: 'a POST from the page of another origin (http://evil.example) is refused',
    });
    const put = await fetch(`${url}/v1/register`, {
      method: 'PUT',
      body: 'x',
      headers: { origin: 'null' },
    });
    expect(put.status).toBe(403);
    // Same origin (the dashboard's own buttons) and no origin (curl, the CLI) reach the route:
    // here it answers that no leader is known.
    for (const headers of [{ origin: url }, {} as Record<string, string>]) {
      const r = await post(headers);
      expect(r.status).toBe(503);
      expect(((await r.json()) as { error: string }).error).toBe('unavailable');
    }
    // Reads are not guarded (the dashboard of one node polls the others).
    const read = await fetch(`${url}/v1/status`, { headers: { origin: 'http://evil.example' } });
    expect(read.status).toBe(200);
  });

  it('shows a peer whose status is not a node status as unreachable, never its text', async () => {
    const view = (await (await fetch(`${url}/v1/cluster`)).json()) as {
      members: { id: string; http: string | null; status: unknown; error?: string }[];
      leaderId: string | null;
    };
    const n2 = view.members.find((m) => m.id === 'n2');
    expect(n2).toMatchObject({
      http: fakeHttp,
      status: null,
      error: 'its status is not a node status',
    });
    // Its claim to lead is not believed.
    expect(view.leaderId).toBe(null);
    expect(JSON.stringify(view)).not.toContain('onerror');
  });

  it('a write while no leader is known for the whole bound answers 503, not 504', async () => {
    const started = Date.now();
    const r = await fetch(`${url}/v1/register`, { method: 'PUT', body: 'v' });
    expect(r.status).toBe(503);
    expect(((await r.json()) as { error: string }).error).toBe('unavailable');
    expect(Date.now() - started).toBeGreaterThanOrEqual(500);
  });
});
