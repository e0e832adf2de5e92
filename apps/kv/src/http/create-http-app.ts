/**
 * The HTTP application of a KV node (fastify): bodies arrive as bytes (a PUT's body is the
 * value; JSON bodies are parsed and validated by their routes), errors leave through the one
 * table of http-errors.ts, and every request is bounded.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import type { KvNode } from '../node/assemble-node.js';
import { httpErrorOf } from './http-errors.js';
import { registerKvRoutes } from './kv-routes.js';
import { registerStatusRoutes } from './status-routes.js';

/** Options of {@link createHttpApp}. Every field documents its default. */
export interface HttpAppOptions {
  /** Bound on every request's wait for the cluster. Default: the node's `requestTimeoutMs`. */
  readonly requestTimeoutMs?: number;
  /** Largest request body (a value), in bytes. Default 1 MiB. */
  readonly maxBodyBytes?: number;
  /** Longest list GET /v1/kv answers. Default 10,000. */
  readonly maxListLimit?: number;
}

/** Builds (does not listen) the HTTP app of `kv`. */
export function createHttpApp(kv: KvNode, options: HttpAppOptions = {}): FastifyInstance {
  const maxBodyBytes = options.maxBodyBytes ?? 1024 * 1024;
  const requestTimeoutMs = options.requestTimeoutMs ?? kv.config.requestTimeoutMs;
  const app = Fastify({
    bodyLimit: maxBodyBytes,
    // A request that sends its body slower than this is cut off (a slowloris cannot hold a node).
    requestTimeout: requestTimeoutMs + 5000,
    logger: false,
  });
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  app.setErrorHandler((err, _req, reply) => {
    const code = (err as { code?: string }).code;
    if (code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return reply.code(413).send({
        error: 'too_large',
        message: `the body is larger than ${maxBodyBytes} bytes`,
      });
    }
    const { status, body } = httpErrorOf(err);
    return reply.code(status).send(body);
  });
  app.setNotFoundHandler((req, reply) =>
    reply.code(404).send({ error: 'not_found', message: `no route ${req.method} ${req.url}` }),
  );
  registerKvRoutes(app, kv, { requestTimeoutMs, maxListLimit: options.maxListLimit ?? 10_000 });
  registerStatusRoutes(app, kv);
  return app;
}
