/**
 * The KV HTTP API through fastify's inject(), on a real 3-node cluster (memory stores, TCP on
 * loopback): the answers of the issue's table, on the leader and on followers.
 */
import { noopLogger } from '@raft/core';
import {
  assembleNode,
  createHttpApp,
  freePort,
  resolveNodeConfig,
  type ServiceNode,
} from '@raft/server';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KvCommand, KvResult } from '../src/kv-command.js';
import { kvService } from '../src/kv-service.js';
import type { KvStore } from '../src/kv-store.js';

type KvNode = ServiceNode<KvCommand, KvResult, KvStore>;

let nodes: KvNode[] = [];
let apps: FastifyInstance[] = [];

beforeAll(async () => {
  const addresses: string[] = [];
  for (let i = 1; i <= 3; i++) addresses.push(`127.0.0.${i}:${await freePort(`127.0.0.${i}`)}`);
  const peers = addresses.map((a, i) => `n${i + 1}=${a}`).join(',');
  nodes = await Promise.all(
    addresses.map((raft, i) =>
      assembleNode(
        kvService,
        resolveNodeConfig(
          {
            id: `n${i + 1}`,
            raft,
            http: `127.0.0.${i + 1}:1`,
            peers,
            store: 'memory',
            electionTimeoutMs: 150,
            heartbeatMs: 30,
            requestTimeoutMs: 2000,
          },
          null,
        ),
        noopLogger,
      ),
    ),
  );
  await Promise.all(nodes.map((n) => n.node.start(n.bootstrap ? { bootstrap: n.bootstrap } : {})));
  await Promise.all(nodes.map((n) => n.node.waitForLeader({ timeoutMs: 5000 })));
  apps = nodes.map((n) => createHttpApp(n, { maxBodyBytes: 64 * 1024 }));
});

afterAll(async () => {
  await Promise.all(apps.map((a) => a.close()));
  await Promise.all(nodes.map((n) => n.node.stop()));
});

/** The app of a follower (any request is accepted anywhere). */
function follower(): FastifyInstance {
  const leaderId = nodes[0]?.node.status().leaderId;
  const i = nodes.findIndex((n) => n.config.id !== leaderId);
  return apps[i] as FastifyInstance;
}

describe('the KV HTTP API', () => {
  it('an Idempotency-Key first used for another kind of write is a 409, not the answer of that write', async () => {
    const app = follower();
    const put = await app.inject({
      method: 'PUT',
      url: '/v1/kv/idem-kind',
      payload: 'v',
      headers: { 'idempotency-key': 'kind-1' },
    });
    expect(put.statusCode).toBe(200);
    const del = await app.inject({
      method: 'DELETE',
      url: '/v1/kv/idem-kind',
      headers: { 'idempotency-key': 'kind-1' },
    });
    expect(del.statusCode).toBe(409);
    expect(del.json()).toMatchObject({ error: 'conflict' });
    const cas = await app.inject({
      method: 'POST',
      url: '/v1/kv/idem-kind/cas',
      payload: { expected: 'v', value: 'w' },
      headers: { 'idempotency-key': 'kind-1' },
    });
    expect(cas.statusCode).toBe(409);
    // Nothing was deleted or swapped.
    const get = await app.inject({ method: 'GET', url: '/v1/kv/idem-kind' });
    expect(get.body).toBe('v');
  });

  it('PUT, then GET through a follower, linearizably, the value bytes', async () => {
    const app = follower();
    const put = await app.inject({
      method: 'PUT',
      url: '/v1/kv/users%2F42',
      payload: Buffer.from([0, 1, 2, 255]),
      headers: { 'content-type': 'application/octet-stream' },
    });
    expect(put.statusCode).toBe(200);
    expect(put.json()).toEqual({ revision: expect.any(Number) });
    const get = await app.inject({ method: 'GET', url: '/v1/kv/users%2F42' });
    expect(get.statusCode).toBe(200);
    expect([...get.rawPayload]).toEqual([0, 1, 2, 255]);
    expect(get.headers['x-kv-mod-revision']).toBe(String(put.json().revision));
    const lease = await (apps[0] as FastifyInstance).inject({
      method: 'GET',
      url: '/v1/kv/users%2F42?consistency=lease',
    });
    expect(lease.statusCode).toBe(200);
    expect([...lease.rawPayload]).toEqual([0, 1, 2, 255]);
    // A stale read answers from whatever this node has applied: the write, or not yet.
    const stale = await (apps[0] as FastifyInstance).inject({
      method: 'GET',
      url: '/v1/kv/users%2F42?consistency=stale',
    });
    expect([200, 404]).toContain(stale.statusCode);
  });

  it('answers 404 for a missing key, and DELETE says whether it deleted', async () => {
    const app = apps[1] as FastifyInstance;
    const missing = await app.inject({ method: 'GET', url: '/v1/kv/nope' });
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toMatchObject({ error: 'not_found' });
    await app.inject({ method: 'PUT', url: '/v1/kv/gone', payload: 'x' });
    const del = await app.inject({ method: 'DELETE', url: '/v1/kv/gone' });
    expect(del.json()).toEqual({ revision: expect.any(Number), deleted: true });
    const again = await app.inject({ method: 'DELETE', url: '/v1/kv/gone' });
    expect(again.json()).toMatchObject({ deleted: false });
  });

  it('compare-and-set: 200 on a match, 409 with the current value otherwise, 400 for bad bodies', async () => {
    const app = follower();
    const create = await app.inject({
      method: 'POST',
      url: '/v1/kv/lock/cas',
      payload: { expected: null, value: 'owner-a' },
    });
    expect(create.statusCode).toBe(200);
    expect(create.json()).toEqual({ ok: true, revision: expect.any(Number) });
    const lost = await app.inject({
      method: 'POST',
      url: '/v1/kv/lock/cas',
      payload: { expected: null, value: 'owner-b' },
    });
    expect(lost.statusCode).toBe(409);
    expect(lost.json()).toEqual({ ok: false, current: 'owner-a' });
    const release = await app.inject({
      method: 'POST',
      url: '/v1/kv/lock/cas',
      payload: { expected: 'owner-a', value: null },
    });
    expect(release.json()).toMatchObject({ ok: true });
    for (const payload of ['{', '{"expected":1,"value":null}', '{"value":"x"}']) {
      const bad = await app.inject({ method: 'POST', url: '/v1/kv/lock/cas', payload });
      expect(bad.statusCode).toBe(400);
      expect(bad.json()).toMatchObject({ error: 'bad_request', message: expect.any(String) });
    }
  });

  it('lists keys by prefix with a limit', async () => {
    const app = apps[2] as FastifyInstance;
    for (const k of ['list/b', 'list/a', 'list/c', 'other']) {
      await app.inject({ method: 'PUT', url: `/v1/kv/${encodeURIComponent(k)}`, payload: k });
    }
    const r = await app.inject({ method: 'GET', url: '/v1/kv?prefix=list%2F&limit=2' });
    expect(r.json()).toEqual({ keys: ['list/a', 'list/b'] });
    const bad = await app.inject({ method: 'GET', url: '/v1/kv?limit=0' });
    expect(bad.statusCode).toBe(400);
  });

  it('a retry with the same Idempotency-Key returns the first result and applies once', async () => {
    const app = follower();
    const headers = { 'idempotency-key': 'order-7781' };
    const first = await app.inject({ method: 'PUT', url: '/v1/kv/counter', payload: '1', headers });
    const other = apps.find((a) => a !== app) as FastifyInstance;
    const retry = await other.inject({
      method: 'PUT',
      url: '/v1/kv/counter',
      payload: '1',
      headers,
    });
    expect(retry.json()).toEqual(first.json());
    const fresh = await app.inject({ method: 'PUT', url: '/v1/kv/counter', payload: '2' });
    expect(fresh.json().revision).toBe(first.json().revision + 1);
  });

  it('refuses bodies over the limit (413), bad keys and parameters (400), unknown routes (404)', async () => {
    const app = apps[0] as FastifyInstance;
    const big = await app.inject({
      method: 'PUT',
      url: '/v1/kv/big',
      payload: Buffer.alloc(65 * 1024),
    });
    expect(big.statusCode).toBe(413);
    expect(big.json()).toMatchObject({ error: 'too_large' });
    const longKey = await app.inject({
      method: 'PUT',
      url: `/v1/kv/${'k'.repeat(1025)}`,
      payload: 'x',
    });
    expect(longKey.statusCode).toBe(400);
    const consistency = await app.inject({ method: 'GET', url: '/v1/kv/x?consistency=eventual' });
    expect(consistency.statusCode).toBe(400);
    expect(consistency.json().message).toMatch(/linearizable, lease or stale/);
    const route = await app.inject({ method: 'GET', url: '/v2/anything' });
    expect(route.statusCode).toBe(404);
    expect(route.json()).toMatchObject({ error: 'not_found' });
  });

  it('GET /v1/status reports the node and the members', async () => {
    const r = await (apps[1] as FastifyInstance).inject({ method: 'GET', url: '/v1/status' });
    const s = r.json();
    expect(Object.keys(s).sort()).toEqual(
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
    expect(s.id).toBe('n2');
    expect(s.members.map((m: { id: string }) => m.id).sort()).toEqual(['n1', 'n2', 'n3']);
  });
});
