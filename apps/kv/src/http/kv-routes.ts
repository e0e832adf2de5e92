/**
 * The KV HTTP API (issue #17's table): writes are proposed on this node (a follower forwards
 * them to its leader), reads wait for the node's `read()` (ReadIndex; never a log write) and
 * then read the local store. Every request is bounded by the server's request timeout.
 */
import type { ReadConsistency } from '@raft/core';
import {
  BadRequestError,
  bodyBytes,
  idempotencyKeyOf,
  jsonBody,
  type ServiceContext,
} from '@raft/server';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { type KvCommand, type KvResult, keyProblem } from '../kv-command.js';
import type { KvStore } from '../kv-store.js';

/** Longest list GET /v1/kv answers (`limit` above it is a 400). */
export const MAX_LIST_LIMIT = 10_000;

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

/** Registers the /v1/kv routes on `app`. */
export function registerKvRoutes(
  app: FastifyInstance,
  ctx: ServiceContext<KvCommand, KvResult, KvStore>,
): void {
  const store = ctx.state;

  const write = async (command: KvCommand, idempotencyKey: string | null) => {
    const { result } = await ctx.propose(command, { idempotencyKey });
    // A key first used for another kind of write answers that write's result: say so rather
    // than dress it up as this one's.
    if (result.op !== command.op) {
      throw new BadRequestError(
        `the Idempotency-Key was first used for a ${result.op}, not a ${command.op}: use a new key for each write`,
        409,
        'conflict',
      );
    }
    return result;
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
    await ctx.read(consistencyOf(req.query));
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
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) {
      throw new BadRequestError(`limit must be an integer in [1, ${MAX_LIST_LIMIT}]`);
    }
    await ctx.read(consistencyOf(req.query));
    return { keys: store.keys(query.prefix ?? '', limit) };
  });
}
