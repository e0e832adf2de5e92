/**
 * Builds a service node from its configuration: the stores the `store` setting names, the
 * transport the `transport` setting names (with the cluster secret read from its file), and a
 * RaftNode running the service's state machine with the directory of HTTP addresses. Nothing
 * here the packages do not export.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  createRaftNode,
  type Logger,
  type Membership,
  MemoryLogStore,
  MemorySnapshotStore,
  MemoryStableStore,
  type RaftNode,
  type RaftStores,
} from '@raft/core';
import type { NetworkTransport } from '@raft/core/wire';
import { openFileStores } from '@raft/store-file';
import { openRedisStores } from '@raft/store-redis';
import { openSqliteStores } from '@raft/store-sqlite';
import { createTcpTransport } from '@raft/transport-tcp';
import { createWsTransport } from '@raft/transport-ws';
import type { NodeConfig } from '../config/node-config.js';
import { COMMAND_HEADROOM_BYTES, DEFAULT_MAX_BODY_BYTES } from '../http/limits.js';
import type { ServiceDefinition } from '../service.js';
import { type ServiceCommand, type ServiceResult, serviceCommandCodec } from './service-command.js';
import { Directory, withDirectory } from './service-state-machine.js';

/** A started-or-not service node and what it was built from. */
export interface ServiceNode<Cmd, Res, State> {
  readonly config: NodeConfig;
  readonly service: ServiceDefinition<Cmd, Res, State>;
  readonly node: RaftNode<ServiceCommand<Cmd>, ServiceResult<Res>>;
  /** The service's state (what its routes read). */
  readonly state: State;
  /** Members' HTTP addresses, as the log says. */
  readonly directory: Directory;
  readonly transport: NetworkTransport;
  /** The bootstrap membership from the configuration (used only on empty storage). */
  readonly bootstrap: Membership | undefined;
  /** When the latest snapshot of this node's own started (ms since the epoch), if any. */
  snapshotStartedAt(): number | null;
  /**
   * Stops the node, or, when it was never started, closes the stores it was given (the core's
   * `stop()` leaves a created node's stores to their owner, which is this). Idempotent.
   */
  close(): Promise<void>;
}

/** A problem a person can act on, raised while assembling or starting a node. */
export class NodeStartError extends Error {
  override readonly name = 'NodeStartError';
}

function readSecret(path: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new NodeStartError(
      `--cluster-secret-file: cannot read ${path}: ${(err as Error).message}`,
    );
  }
  const secret = text.trim();
  if (secret.length < 16) {
    throw new NodeStartError(
      `--cluster-secret-file: ${path} holds ${secret.length} characters; a secret needs at least 16 (try: openssl rand -hex 32 > ${path})`,
    );
  }
  return secret;
}

async function openStores(config: NodeConfig, name: string, logger: Logger): Promise<RaftStores> {
  switch (config.store) {
    case 'memory': {
      const stores = {
        logStore: new MemoryLogStore(),
        stableStore: new MemoryStableStore(),
        snapshotStore: new MemorySnapshotStore(),
        close: async () => {},
      };
      return stores;
    }
    case 'file': {
      const dir = config.dataDir as string;
      mkdirSync(dir, { recursive: true });
      return openFileStores({ dir, logger });
    }
    case 'sqlite': {
      const dir = config.dataDir as string;
      mkdirSync(dir, { recursive: true });
      return openSqliteStores({ path: join(dir, 'raft.sqlite'), logger });
    }
    case 'redis':
      return openRedisStores({
        url: config.redisUrl,
        prefix: `${name}:${config.clusterId}:${config.id}`,
        logger,
      });
  }
}

/**
 * Opens the node's stores and creates its transport and RaftNode (not started). Errors a
 * person can act on (a locked data directory, an unreachable Redis, an unreadable secret file)
 * reject with a {@link NodeStartError} saying what to do; the stores are closed again.
 */
export async function assembleNode<Cmd, Res, State>(
  service: ServiceDefinition<Cmd, Res, State>,
  config: NodeConfig,
  logger: Logger,
): Promise<ServiceNode<Cmd, Res, State>> {
  const secret =
    config.clusterSecretFile === null ? undefined : readSecret(config.clusterSecretFile);
  let stores: RaftStores;
  try {
    stores = await openStores(config, service.name, logger);
  } catch (err) {
    throw new NodeStartError(describeStoreError(config, err), { cause: err });
  }
  try {
    const common = {
      id: config.id,
      clusterId: config.clusterId,
      logger,
      ...(secret === undefined ? {} : { secret }),
    };
    const transport =
      config.transport === 'tcp'
        ? createTcpTransport({ ...common, listen: config.raft })
        : createWsTransport({ ...common, listen: config.raft });
    const parts = service.createStateMachine();
    const directory = new Directory();
    let snapshotStartedAt: number | null = null;
    const node = createRaftNode<ServiceCommand<Cmd>, ServiceResult<Res>>({
      id: config.id,
      stateMachine: withDirectory(parts.stateMachine, directory, {
        ...(service.sessions === undefined ? {} : { sessions: service.sessions }),
        onSnapshotStart: () => {
          snapshotStartedAt = Date.now();
        },
      }),
      codec: serviceCommandCodec(parts.codec),
      stores,
      transport,
      logger,
      electionTimeoutMs: config.electionTimeoutMs,
      heartbeatMs: config.heartbeatMs,
      snapshotThreshold: config.snapshotThreshold,
      requestTimeoutMs: config.requestTimeoutMs,
      // GET ?consistency=lease: served by the leader without a heartbeat round while its lease
      // holds (bounded clock drift; the default read stays linearizable).
      leaseReads: service.leaseReads ?? true,
      maxCommandBytes: service.maxCommandBytes ?? DEFAULT_MAX_BODY_BYTES + COMMAND_HEADROOM_BYTES,
    });
    const members = Object.entries(config.peers).map(([id, p]) => ({
      id,
      address: p.raft,
      voter: true,
    }));
    return {
      config,
      service,
      node,
      state: parts.state,
      directory,
      transport,
      bootstrap: members.length > 0 ? { members } : undefined,
      snapshotStartedAt: () => snapshotStartedAt,
      close: async () => {
        const neverStarted = node.state === 'created';
        await node.stop();
        if (neverStarted) await stores.close();
      },
    };
  } catch (err) {
    await stores.close().catch(() => {});
    throw err;
  }
}

function describeStoreError(config: NodeConfig, err: unknown): string {
  const error = err as Error & { code?: unknown; holderPid?: unknown };
  const message = error?.message ?? String(err);
  if (error?.name === 'DirectoryLockedError' || error?.name === 'RedisPrefixLockedError') {
    return `the ${config.store} store of ${config.id} is in use by another process (${message}); stop it, or give this node another --data-dir`;
  }
  if (config.store === 'redis') {
    return `cannot open the Redis store at ${config.redisUrl}: ${message} (is Redis running? check --redis-url)`;
  }
  return `cannot open the ${config.store} store in ${config.dataDir ?? '(memory)'}: ${message}`;
}
