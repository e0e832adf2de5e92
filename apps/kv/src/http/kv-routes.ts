/**
 * The KV HTTP API (issue #17's table): writes are proposed on this node (a follower forwards
 * them to its leader), reads wait for the node's `read()` (ReadIndex; never a log write) and
 * then read the local store. Every request is bounded by `requestTimeoutMs`.
 */
import { RaftError, type ReadConsistency } from '@raft/core';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { type KvCommand, keyProblem } from '../kv-command.js';
import { type KvProposal, MAX_IDEMPOTENCY_KEY_BYTES } from '../kv-state-machine.js';
import type { KvNode } from '../node/assemble-node.js';
import { BadRequestError } from './http-errors.js';

/** Options of {@link registerKvRoutes}. */
export interface KvRoutesOptions {
  readonly requestTimeoutMs: number;
  /** Longest list answered by GET /v1/kv. */
  readonly maxListLimit: number;
}

const CONSISTENCIES = new Set<ReadConsistency>(['linearizable', 'lease', 'stale']);
const encoder = new TextEncoder();

const casBody = z
  .object({
    expected: z.string().nullable(),
    value: z.string().nullable(),
  })
  .strict();

function keyOf(raw: string | undefined): string {
  const key = raw ?? '';
  const problem = keyProblem(key);
  if (problem !== null) throw new BadRequestError(problem);
  return key;
}

function idempotencyKeyOf(header: string | string[] | undefined): string | null {
  if (header === undefined) return null;
  const key = Array.isArray(header) ? header[0] : header;
  if (key === undefined || key.length === 0) throw new BadRequestError('Idempotency-Key is empty');
  if (encoder.encode(key).length > MAX_IDEMPOTENCY_KEY_BYTES) {
    throw new BadRequestError(
      `Idempotency-Key is longer than ${MAX_IDEMPOTENCY_KEY_BYTES} bytes of UTF-8`,
    );
  }
  return key;
}

function bodyBytes(body: unknown): Uint8Array {
  if (body instanceof Uint8Array) return body;
  if (body === undefined || body === null) return new Uint8Array(0);
  throw new BadRequestError('the body must be bytes');
}

function jsonBody<T>(body: unknown, schema: z.ZodType<T>): T {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder().decode(bodyBytes(body)));
  } catch {
    throw new BadRequestError('the body must be JSON');
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new BadRequestError(
      `${issue?.path.join('.') || 'the body'}: ${issue?.message ?? 'is invalid'}`,
    );
  }
  return parsed.data;
}

/** Registers the /v1/kv routes of `kv` on `app`. */
export function registerKvRoutes(app: FastifyInstance, kv: KvNode, options: KvRoutesOptions): void {
  const { node } = kv;
  const store = kv.kv.store;
  const timeoutMs = options.requestTimeoutMs;

  const write = async (command: KvCommand, idempotencyKey: string | null) => {
    const proposal: KvProposal =
      idempotencyKey === null
        ? { kind: 'plain', command }
        : { kind: 'idempotent', key: idempotencyKey, command };
    const deadline = Date.now() + timeoutMs;
    try {
      return (await node.propose(proposal, { timeoutMs })).result;
    } catch (err) {
      // No leader known yet (an election is on): nothing was appended, so wait for one within
      // the request's time and propose once more, instead of answering 503 at once.
      if (!RaftError.is(err, 'NO_LEADER')) throw err;
      await node.waitForLeader({ timeoutMs: Math.max(1, deadline - Date.now()) });
      return (await node.propose(proposal, { timeoutMs: Math.max(1, deadline - Date.now()) }))
        .result;
    }
  };

  app.put('/v1/kv/*', async (req) => {
    const key = keyOf((req.params as { '*': string })['*']);
    const value = bodyBytes(req.body);
    const result = await write(
      { op: 'put', key, value },
      idempotencyKeyOf(req.headers['idempotency-key']),
    );
    return { revision: result.revision };
  });

  app.delete('/v1/kv/*', async (req) => {
    const key = keyOf((req.params as { '*': string })['*']);
    const result = await write(
      { op: 'delete', key },
      idempotencyKeyOf(req.headers['idempotency-key']),
    );
    return { revision: result.revision, deleted: result.op === 'delete' && result.deleted };
  });

  app.post('/v1/kv/*', async (req, reply) => {
    const path = (req.params as { '*': string })['*'];
    if (!path.endsWith('/cas')) {
      throw new BadRequestError(
        `POST ${req.url}: only /v1/kv/{key}/cas takes a POST`,
        404,
        'not_found',
      );
    }
    const key = keyOf(path.slice(0, -'/cas'.length));
    const body = jsonBody(req.body, casBody);
    const result = await write(
      {
        op: 'cas',
        key,
        expected: body.expected === null ? null : encoder.encode(body.expected),
        value: body.value === null ? null : encoder.encode(body.value),
      },
      idempotencyKeyOf(req.headers['idempotency-key']),
    );
    if (result.op !== 'cas') throw new Error(`a cas answered ${result.op}`);
    if (result.ok) return { ok: true, revision: result.revision };
    reply.code(409);
    return { ok: false, current: result.current };
  });

  const consistencyOf = (query: unknown): ReadConsistency => {
    const c = (query as { consistency?: string }).consistency ?? 'linearizable';
    if (!CONSISTENCIES.has(c as ReadConsistency)) {
      throw new BadRequestError(`consistency must be linearizable, lease or stale, got "${c}"`);
    }
    return c as ReadConsistency;
  };

  app.get('/v1/kv/*', async (req, reply) => {
    const key = keyOf((req.params as { '*': string })['*']);
    const consistency = consistencyOf(req.query);
    await node.read({ consistency, timeoutMs });
    const entry = store.get(key);
    if (entry === undefined) {
      reply.code(404);
      return { error: 'not_found', message: `no key ${JSON.stringify(key)}` };
    }
    reply.header('content-type', 'application/octet-stream');
    reply.header('x-kv-mod-revision', String(entry.modRevision));
    return Buffer.from(entry.value.buffer, entry.value.byteOffset, entry.value.byteLength);
  });

  app.get('/v1/kv', async (req) => {
    const query = req.query as { prefix?: string; limit?: string };
    const limit = query.limit === undefined ? 100 : Number(query.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > options.maxListLimit) {
      throw new BadRequestError(`limit must be an integer in [1, ${options.maxListLimit}]`);
    }
    await node.read({ consistency: consistencyOf(req.query), timeoutMs });
    return { keys: store.keys(query.prefix ?? '', limit) };
  });
}
