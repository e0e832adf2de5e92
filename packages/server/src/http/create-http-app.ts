/**
 * The HTTP application of a service node (fastify): bodies arrive as bytes (routes parse and
 * validate JSON ones), errors leave through the one table of http-errors.ts, and every request
 * is bounded. It serves the server's own routes (status, cluster view, membership, leadership,
 * snapshots, metrics, the dashboard) and the service's.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import { dashboardPage } from '../dashboard/dashboard-page.js';
import type { ServiceNode } from '../node/assemble-node.js';
import { serviceContext } from '../node/service-context.js';
import { Activity } from '../observe/activity.js';
import { createNodeMetrics } from '../observe/metrics.js';
import { registerClusterRoutes } from './cluster-routes.js';
import { registerClusterView } from './cluster-view.js';
import { httpErrorOf } from './http-errors.js';
import { DEFAULT_MAX_BODY_BYTES } from './limits.js';
import { registerStatusRoutes } from './status-routes.js';

/** Options of {@link createHttpApp}. Every field documents its default. */
export interface HttpAppOptions {
  /** Bound on every request's wait for the cluster. Default: the node's `requestTimeoutMs`. */
  readonly requestTimeoutMs?: number;
  /** Largest request body, in bytes. Default 1 MiB. A larger one needs the service's
   *  `maxCommandBytes` raised to match. */
  readonly maxBodyBytes?: number;
}

/** Paths any origin may read (the dashboard of one node polls the others when it fails). */
const OPEN_READS = new Set(['/v1/cluster', '/v1/status']);

/** Whether `origin` (an Origin header) names the host the request was sent to. */
function sameOrigin(origin: string, host: string | undefined): boolean {
  try {
    return new URL(origin).host === host;
  } catch {
    return false;
  }
}

/** Builds (does not listen) the HTTP app of `sn`. Closing the app stops its samplers. */
export function createHttpApp<Cmd, Res, State>(
  sn: ServiceNode<Cmd, Res, State>,
  options: HttpAppOptions = {},
): FastifyInstance {
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const requestTimeoutMs = options.requestTimeoutMs ?? sn.config.requestTimeoutMs;
  const anyNode = sn as unknown as ServiceNode<unknown, unknown, unknown>;
  const app = Fastify({
    bodyLimit: maxBodyBytes,
    // A request that sends its body slower than this is cut off (a slowloris cannot hold a node).
    requestTimeout: requestTimeoutMs + 5000,
    logger: false,
  });
  const metrics = createNodeMetrics(anyNode);
  const activity = new Activity(anyNode.node);
  app.addHook('onClose', async () => {
    activity.close();
    metrics.close();
  });
  // A browser page of another origin may not change anything here (cross-site request
  // forgery: a form can POST text/plain without asking). Requests without an Origin (curl, the
  // CLI, other nodes) and same-origin ones (the dashboard) pass.
  // The hooks run on every request: callback style, so none costs a promise and a turn.
  app.addHook('onRequest', (req, reply, done) => {
    const origin = req.headers.origin;
    if (
      origin === undefined ||
      req.method === 'GET' ||
      req.method === 'HEAD' ||
      req.method === 'OPTIONS' ||
      sameOrigin(origin, req.headers.host)
    ) {
      done();
      return;
    }
    reply.code(403).send({
      error: 'forbidden',
      message: `a ${req.method} from the page of another origin (${origin}) is refused`,
    });
  });
  app.addHook('onResponse', (req, reply, done) => {
    metrics.observeHttp(req.method, req.routeOptions.url ?? 'unmatched', reply.statusCode);
    done();
  });
  app.addHook('onSend', (req, reply, payload, done) => {
    if (req.method === 'GET' && OPEN_READS.has(req.url.split('?')[0] ?? '')) {
      reply.header('access-control-allow-origin', '*');
    }
    done(null, payload);
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
  registerStatusRoutes(app, anyNode);
  registerClusterView(app, anyNode, activity);
  registerClusterRoutes(app, anyNode, requestTimeoutMs);
  app.get('/metrics', async (_req, reply) => {
    reply.header('content-type', metrics.registry.contentType);
    return metrics.registry.metrics();
  });
  const page = dashboardPage(sn.service.name);
  app.get('/', async (_req, reply) => {
    reply.header('content-type', 'text/html; charset=utf-8');
    return page;
  });
  sn.service.registerRoutes(app, serviceContext(sn, requestTimeoutMs, { metrics, activity }));
  return app;
}
