/**
 * Runs one service node: assembles it, starts it, serves the HTTP API, and shuts down gracefully on
 * SIGTERM or SIGINT (hands leadership over when it leads, stops the node, which flushes and
 * closes its stores and transport) within a bound, then exits.
 */
import type { Logger } from '@raft/core';
import type { FastifyInstance } from 'fastify';
import type { NodeConfig } from './config/node-config.js';
import { createHttpApp, type HttpAppOptions } from './http/create-http-app.js';
import { advertiseHttpAddress } from './node/advertiser.js';
import { assembleNode, NodeStartError, type ServiceNode } from './node/assemble-node.js';
import type { ServiceDefinition } from './service.js';

/** A running node and its HTTP server. */
export interface RunningServer<Cmd = unknown, Res = unknown, State = unknown> {
  readonly node: ServiceNode<Cmd, Res, State>;
  readonly app: FastifyInstance;
  /** The HTTP address it listens on. */
  readonly httpAddress: string;
  /** Graceful shutdown: transfer leadership (if leader), stop the node, close HTTP. Idempotent. */
  shutdown(reason: string): Promise<void>;
}

/** Longest a graceful shutdown may take before the process exits anyway. */
export const SHUTDOWN_BOUND_MS = 10_000;

/** Logs a warning when the membership this node recovered lists it at another address than
 *  `--raft` (its peers would dial the old one). */
function warnOnMovedAddress(sn: ServiceNode<unknown, unknown, unknown>, logger: Logger): void {
  const me = sn.node.status().members.find((m) => m.id === sn.config.id);
  if (me !== undefined && me.address !== sn.config.raft) {
    logger.warn(
      { member: me.address, raft: sn.config.raft },
      `${sn.config.id}: the cluster knows this node at ${me.address}, but --raft is ${sn.config.raft}; peers dial ${me.address} (a restarted node keeps the membership in its storage: use the same --raft, or remove and re-add the node under a new id)`,
    );
  }
}

/** Starts a node and its HTTP API. Rejects with a NodeStartError saying what to fix. */
export async function startServer<Cmd, Res, State>(
  service: ServiceDefinition<Cmd, Res, State>,
  config: NodeConfig,
  logger: Logger,
  httpOptions: HttpAppOptions = {},
): Promise<RunningServer<Cmd, Res, State>> {
  const sn = await assembleNode(service, config, logger);
  // Listen first: a busy port then costs nothing (a brand-new node has not bootstrapped its
  // storage yet). Until the node runs, requests answer 503.
  let app: ReturnType<typeof createHttpApp>;
  try {
    app = createHttpApp(sn, httpOptions);
  } catch (err) {
    await sn.close().catch(() => {});
    throw err;
  }
  const at = config.http.lastIndexOf(':');
  const host = config.http.slice(0, at).replace(/^\[|\]$/g, '');
  const port = Number(config.http.slice(at + 1));
  try {
    await app.listen({ host, port });
  } catch (err) {
    await app.close().catch(() => {});
    await sn.close().catch(() => {});
    const code = (err as { code?: string }).code;
    throw new NodeStartError(
      code === 'EADDRINUSE'
        ? `--http ${config.http}: the address is in use (is another node or process running on that port?)`
        : `--http ${config.http}: cannot listen: ${(err as Error).message}`,
      { cause: err },
    );
  }
  try {
    await sn.node.start(sn.bootstrap === undefined ? {} : { bootstrap: sn.bootstrap });
  } catch (err) {
    await app.close().catch(() => {});
    await sn.close().catch(() => {});
    throw new NodeStartError(`${config.id} could not start: ${(err as Error).message}`, {
      cause: err,
    });
  }
  warnOnMovedAddress(sn as unknown as ServiceNode<unknown, unknown, unknown>, logger);
  const stopAdvertising = advertiseHttpAddress(
    sn as unknown as ServiceNode<unknown, unknown, unknown>,
    config.advertiseHttp,
    logger,
  );
  let stopping: Promise<void> | null = null;
  const shutdown = (reason: string): Promise<void> => {
    stopping ??= (async () => {
      logger.info({ reason }, `${config.id}: shutting down (${reason})`);
      if (sn.node.status().role === 'leader') {
        await sn.node
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
      stopAdvertising();
      // The node first: requests still waiting on it are answered at once (503, or 504 for a
      // write that may still commit), so closing the HTTP server does not wait out their bounds.
      const stopped = sn.node.stop();
      await app.close().catch(() => {});
      await stopped;
      logger.info({}, `${config.id}: stopped`);
    })();
    return stopping;
  };
  logger.info(
    { http: config.http, raft: config.raft, store: config.store, transport: config.transport },
    `${config.id}: serving http://${config.http}, raft on ${config.raft} (${config.transport}), ${config.store} store`,
  );
  return { node: sn, app, httpAddress: config.http, shutdown };
}
