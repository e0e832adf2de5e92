/**
 * The calculator's HTTP API on a real 3-node cluster in this process (memory stores, TCP on
 * loopback), over real HTTP: every node answers every request, and they agree on the value.
 */
import { type LocalCluster, startLocalCluster } from '@raft/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CalculatorCommand, CalculatorResult, CalculatorState } from '../src/calculator.js';
import { calculatorService } from '../src/calculator-service.js';

let cluster: LocalCluster<CalculatorCommand, CalculatorResult, CalculatorState>;

beforeAll(async () => {
  cluster = await startLocalCluster(calculatorService);
  await cluster.leader();
}, 30_000);

afterAll(() => cluster?.close());

async function call(i: number, method: string, path: string, body?: unknown) {
  const res = await fetch(`${cluster.urls[i]}${path}`, {
    method,
    ...(body === undefined
      ? {}
      : {
          body: typeof body === 'string' ? body : JSON.stringify(body),
          headers: { 'content-type': 'application/json' },
        }),
    signal: AbortSignal.timeout(10_000),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

describe('the calculator HTTP API', () => {
  it('operations through any node change the one value, and every node reads it linearizably', async () => {
    const start = (await call(0, 'GET', '/v1/value')).json;
    expect(start).toEqual({ value: 0, revision: 0 });
    expect(await call(1, 'POST', '/v1/add', { operand: 6 })).toEqual({
      status: 200,
      json: { value: 6, revision: 1 },
    });
    expect((await call(2, 'POST', '/v1/multiply', { operand: 7 })).json).toEqual({
      value: 42,
      revision: 2,
    });
    expect((await call(0, 'POST', '/v1/subtract', { operand: 2 })).json).toEqual({
      value: 40,
      revision: 3,
    });
    expect((await call(1, 'POST', '/v1/divide', { operand: 8 })).json).toEqual({
      value: 5,
      revision: 4,
    });
    for (let i = 0; i < 3; i++) {
      expect((await call(i, 'GET', '/v1/value')).json).toEqual({ value: 5, revision: 4 });
    }
    const stale = await call(2, 'GET', '/v1/value?consistency=stale');
    expect(stale.status).toBe(200);
    expect((await call(0, 'GET', '/v1/value?consistency=lease')).status).toBe(200);
  });

  it('division by zero, a non-finite or missing operand and bad JSON are 400s that change nothing', async () => {
    const before = (await call(0, 'GET', '/v1/value')).json;
    const zero = await call(1, 'POST', '/v1/divide', { operand: 0 });
    expect(zero).toEqual({
      status: 400,
      json: { error: 'bad_request', message: 'division by zero' },
    });
    for (const body of [
      '{"operand":1e999}',
      '{"operand":"3"}',
      '{}',
      '{"operand":1,"x":2}',
      'not json',
    ]) {
      const r = await call(2, 'POST', '/v1/add', body);
      expect(r.status, body).toBe(400);
      expect(r.json.error).toBe('bad_request');
    }
    await call(0, 'POST', '/v1/add', { operand: 1e308 });
    const overflow = await call(0, 'POST', '/v1/multiply', { operand: 10 });
    expect(overflow.status).toBe(400);
    expect(String(overflow.json.message)).toMatch(/would not be finite/);
    expect((await call(0, 'GET', '/v1/value?consistency=bogus')).status).toBe(400);
    const after = (await call(0, 'GET', '/v1/value')).json;
    expect(after.revision).toBe((before.revision as number) + 1);
  });

  it('an Idempotency-Key retry on another node answers the first result and applies once', async () => {
    const before = (await call(0, 'GET', '/v1/value')).json as { value: number; revision: number };
    const once = async (i: number) => {
      const res = await fetch(`${cluster.urls[i]}/v1/add`, {
        method: 'POST',
        body: JSON.stringify({ operand: 100 }),
        headers: { 'content-type': 'application/json', 'idempotency-key': 'add-100-once' },
        signal: AbortSignal.timeout(10_000),
      });
      return { status: res.status, json: await res.json() };
    };
    const first = await once(0);
    expect(first).toEqual({
      status: 200,
      json: { value: before.value + 100, revision: before.revision + 1 },
    });
    expect(await once(1)).toEqual(first);
    expect(await once(2)).toEqual(first);
    expect((await call(2, 'GET', '/v1/value')).json).toEqual(first.json);
  });

  it('serves the same server routes as every service: status, members, metrics, the dashboard', async () => {
    const status = await call(1, 'GET', '/v1/status');
    expect(status.json).toMatchObject({ id: 'n2', members: expect.any(Array) });
    const page = await fetch(`${cluster.urls[0]}/`);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    expect(await page.text()).toContain('raft-calculator');
    const metrics = await (await fetch(`${cluster.urls[0]}/metrics`)).text();
    expect(metrics).toMatch(/raft_proposals_total\{[^}]*outcome="ok"[^}]*\} \d+/);
  });
});
