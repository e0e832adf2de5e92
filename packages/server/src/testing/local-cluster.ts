/**
 * A cluster of a service in this process, for tests and experiments: `size` nodes started
 * with {@link startServer} on 127.0.0.1, .2, ... (Linux routes all of 127/8 to loopback; pass
 * `hosts` elsewhere), on free ports, with short timeouts, on the memory store unless `flags`
 * say otherwise. `close()` shuts every node down.
 */
import { createServer } from 'node:net';
import { type Logger, noopLogger } from '@raft/core';
import { type NodeFlags, resolveNodeConfig } from '../config/node-config.js';
import { type RunningServer, startServer } from '../server.js';
import type { ServiceDefinition } from '../service.js';

/** Options of {@link startLocalCluster}. */
export interface LocalClusterOptions {
  /** Nodes. Default 3. */
  readonly size?: number;
  /** Flags every node gets (e.g. `{ store: 'file', dataDir }`: `dataDir` is the parent; each
   *  node gets `<dataDir>/<id>`). Default: memory store, election timeout 200 ms, heartbeat
   *  40 ms, request timeout 3000 ms. */
  readonly flags?: Partial<NodeFlags>;
  /** Host of node i (0-based). Default `127.0.0.${i + 1}`. */
  readonly host?: (i: number) => string;
  readonly logger?: Logger;
}

/** A running local cluster. */
export interface LocalCluster<Cmd, Res, State> {
  readonly servers: readonly RunningServer<Cmd, Res, State>[];
  /** Each node's base URL (`http://host:port`). */
  readonly urls: readonly string[];
  /** Resolves with the server that leads, once one does (bounded by `timeoutMs`). */
  leader(timeoutMs?: number): Promise<RunningServer<Cmd, Res, State>>;
  /** Shuts every node down. Idempotent. */
  close(): Promise<void>;
}

/** A free TCP port on `host` (the OS picks; it may be taken again before use, rarely). */
export function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a !== null ? a.port : 0));
    });
  });
}

/** Starts the cluster; rejects (with every started node stopped) if one cannot start. */
export async function startLocalCluster<Cmd, Res, State>(
  service: ServiceDefinition<Cmd, Res, State>,
  options: LocalClusterOptions = {},
): Promise<LocalCluster<Cmd, Res, State>> {
  const size = options.size ?? 3;
  const host = options.host ?? ((i: number) => `127.0.0.${i + 1}`);
  const logger = options.logger ?? noopLogger;
  const nodes: { id: string; raft: string; http: string }[] = [];
  for (let i = 0; i < size; i++) {
    const h = host(i);
    nodes.push({
      id: `n${i + 1}`,
      raft: `${h}:${await freePort(h)}`,
      http: `${h}:${await freePort(h)}`,
    });
  }
  const peers = nodes.map((n) => `${n.id}=${n.raft}`).join(',');
  const { dataDir, ...flags } = options.flags ?? {};
  const servers: RunningServer<Cmd, Res, State>[] = [];
  let closed: Promise<void> | null = null;
  const close = (): Promise<void> => {
    closed ??= Promise.all(servers.map((s) => s.shutdown('local cluster closed'))).then(() => {});
    return closed;
  };
  const settled = await Promise.allSettled(
    nodes.map((n) =>
      startServer(
        service,
        resolveNodeConfig(
          {
            store: 'memory',
            electionTimeoutMs: 200,
            heartbeatMs: 40,
            requestTimeoutMs: 3000,
            ...flags,
            ...(dataDir === undefined ? {} : { dataDir: `${dataDir}/${n.id}` }),
            id: n.id,
            raft: n.raft,
            http: n.http,
            peers,
          },
          null,
          service.name,
        ),
        logger,
      ),
    ),
  );
  for (const r of settled) if (r.status === 'fulfilled') servers.push(r.value);
  const failed = settled.find((r) => r.status === 'rejected');
  if (failed !== undefined) {
    await close();
    throw failed.reason;
  }
  return {
    servers,
    urls: nodes.map((n) => `http://${n.http}`),
    close,
    async leader(timeoutMs = 10_000) {
      const { leaderId } = await (
        servers[0] as RunningServer<Cmd, Res, State>
      ).node.node.waitForLeader({
        timeoutMs,
      });
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = servers.find(
          (s) => s.node.config.id === leaderId && s.node.node.status().role === 'leader',
        );
        if (found !== undefined) return found;
        const any = servers.find((s) => s.node.node.status().role === 'leader');
        if (any !== undefined) return any;
        if (Date.now() > deadline) throw new Error(`no leader within ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
  };
}
