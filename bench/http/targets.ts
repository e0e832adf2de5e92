/**
 * What a benchmark client sends, per system: raft-kv's HTTP API, etcd's v3 JSON gateway
 * (keys and values base64, linearizable ranges by default), and a bare Node HTTP server that
 * answers from a Map (the physical limit of one HTTP server and this client on this machine).
 */

/** One request, ready for undici. */
export interface RequestSpec {
  readonly method: 'GET' | 'PUT' | 'POST';
  readonly path: string;
  readonly body?: string | Uint8Array;
  readonly headers?: Record<string, string>;
}

/** How a system is spoken to. */
export interface Target {
  readonly name: string;
  put(key: string, value: Uint8Array): RequestSpec;
  /** A linearizable read. */
  get(key: string): RequestSpec;
  /** Compare-and-set of a key's value (expected may be absent: null). */
  cas(key: string, expected: Uint8Array | null, value: Uint8Array): RequestSpec;
  /** Whether an answer counts as done (a failed compare is done, not an error). */
  ok(status: number, op: 'put' | 'get' | 'cas'): boolean;
}

const JSON_HEADERS = { 'content-type': 'application/json' };
const b64 = (bytes: Uint8Array | string) =>
  Buffer.from(typeof bytes === 'string' ? Buffer.from(bytes) : bytes).toString('base64');
const text = (bytes: Uint8Array) => Buffer.from(bytes).toString('latin1');

/** raft-kv (`apps/kv`). */
export const raftKv: Target = {
  name: 'raft-kv',
  put: (key, value) => ({ method: 'PUT', path: `/v1/kv/${key}`, body: value }),
  get: (key) => ({ method: 'GET', path: `/v1/kv/${key}` }),
  cas: (key, expected, value) => ({
    method: 'POST',
    path: `/v1/kv/${key}/cas`,
    body: JSON.stringify({
      expected: expected === null ? null : text(expected),
      value: text(value),
    }),
    headers: JSON_HEADERS,
  }),
  ok: (status, op) =>
    status === 200 || (op === 'get' && status === 404) || (op === 'cas' && status === 409),
};

/** etcd 3.4 through its gRPC-gateway (`/v3/kv/...`). */
export const etcd: Target = {
  name: 'etcd',
  put: (key, value) => ({
    method: 'POST',
    path: '/v3/kv/put',
    body: JSON.stringify({ key: b64(key), value: b64(value) }),
    headers: JSON_HEADERS,
  }),
  get: (key) => ({
    method: 'POST',
    path: '/v3/kv/range',
    body: JSON.stringify({ key: b64(key) }),
    headers: JSON_HEADERS,
  }),
  cas: (key, expected, value) => ({
    method: 'POST',
    path: '/v3/kv/txn',
    body: JSON.stringify({
      compare:
        expected === null
          ? [{ key: b64(key), target: 'VERSION', result: 'EQUAL', version: '0' }]
          : [{ key: b64(key), target: 'VALUE', result: 'EQUAL', value: b64(expected) }],
      success: [{ request_put: { key: b64(key), value: b64(value) } }],
    }),
    headers: JSON_HEADERS,
  }),
  ok: (status) => status === 200,
};

/** The bare server of `map-server.ts`: raft-kv's paths, a Map behind them. */
export const mapServer: Target = { ...raftKv, name: 'node-http-map' };
