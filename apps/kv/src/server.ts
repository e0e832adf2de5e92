/**
 * Runs one KV node: assembles it, starts it, serves the HTTP API, and shuts down gracefully on
 * SIGTERM or SIGINT (hands leadership over when it leads, stops the node, which flushes and
 * closes its stores and transport) within a bound, then exits.
 */
import type { Logger } from '@raft/core';
import type { FastifyInstance } from 'fastify';
import type { NodeConfig } from './config/node-config.js';
import { createHttpApp } from './http/create-http-app.js';
import { assembleNode, type KvNode, NodeStartError } from './node/assemble-node.js';

/** A running node and its HTTP server. */
export interface RunningServer {
  readonly kv: KvNode;
  readonly app: FastifyInstance;
  /** The HTTP address it listens on. */
  readonly httpAddress: string;
  /** Graceful shutdown: transfer leadership (if leader), stop the node, close HTTP. Idempotent. */
  shutdown(reason: string): Promise<void>;
}

/** Longest a graceful shutdown may take before the process exits anyway. */
export const SHUTDOWN_BOUND_MS = 10_000;

/** Starts a node and its HTTP API. Rejects with a NodeStartError saying what to fix. */
export async function startServer(config: NodeConfig, logger: Logger): Promise<RunningServer> {
  const kv = await assembleNode(config, logger);
  try {
    await kv.node.start(kv.bootstrap === undefined ? {} : { bootstrap: kv.bootstrap });
  } catch (err) {
    await kv.node.stop().catch(() => {});
    throw new NodeStartError(`${config.id} could not start: ${(err as Error).message}`, {
      cause: err,
    });
  }
  const app = createHttpApp(kv);
  const at = config.http.lastIndexOf(':');
  const host = config.http.slice(0, at).replace(/^\[|\]$/g, '');
  const port = Number(config.http.slice(at + 1));
  try {
    await app.listen({ host, port });
  } catch (err) {
    await kv.node.stop().catch(() => {});
    const code = (err as { code?: string }).code;
    throw new NodeStartError(
      code === 'EADDRINUSE'
        ? `--http ${config.http}: the address is in use (is another node or process running on that port?)`
        : `--http ${config.http}: cannot listen: ${(err as Error).message}`,
      { cause: err },
    );
  }
  let stopping: Promise<void> | null = null;
  const shutdown = (reason: string): Promise<void> => {
    stopping ??= (async () => {
      logger.info({ reason }, `${config.id}: shutting down (${reason})`);
      if (kv.node.status().role === 'leader') {
        await kv.node
          .transferLeadership(undefined, {
            timeoutMs: Math.min(3000, config.electionTimeoutMs * 4),
          })
          .then(
            (r) => logger.info({ to: r }, `${config.id}: handed leadership over`),
            (err: unknown) =>
              logger.warn(
                { error: (err as Error).message },
                `${config.id}: could not hand leadership over; stopping anyway`,
              ),
          );
      }
      await app.close().catch(() => {});
      await kv.node.stop();
      logger.info({}, `${config.id}: stopped`);
    })();
    return stopping;
  };
  logger.info(
    { http: config.http, raft: config.raft, store: config.store, transport: config.transport },
    `${config.id}: serving http://${config.http}, raft on ${config.raft} (${config.transport}), ${config.store} store`,
  );
  return { kv, app, httpAddress: config.http, shutdown };
}
