/**
 * What a service is: a name, a replicated state machine and the HTTP routes that use it. The
 * server does the rest (flags and config, stores and transport by name, the node's lifecycle,
 * status, membership, leadership, snapshots, metrics, the dashboard, the CLI and a dev cluster).
 *
 * ```ts
 * const counter = defineService({
 *   name: 'raft-counter',
 *   description: 'a replicated counter',
 *   createStateMachine: () => { ... return { stateMachine, codec, state }; },
 *   registerRoutes(app, ctx) {
 *     app.post('/v1/increment', async () => ({ value: (await ctx.propose(1)).result }));
 *   },
 * });
 * await runServiceCli(counter);
 * ```
 */
import type {
  CommandCodec,
  RaftNode,
  ReadConsistency,
  SessionOptions,
  StateMachine,
} from '@raft/core';
import type { FastifyInstance } from 'fastify';
import type { NodeConfig } from './config/node-config.js';
import type { ServiceCommand, ServiceResult } from './node/service-command.js';
import type { Directory } from './node/service-state-machine.js';

/** A fresh state machine of the service, its codec, and the state its routes read. */
export interface ServiceParts<Cmd, Res, State> {
  readonly stateMachine: StateMachine<Cmd, Res>;
  readonly codec: CommandCodec<Cmd>;
  /** What the routes read after `ctx.read()`: the state machine's own state. */
  readonly state: State;
}

/** What a service's routes get. */
export interface ServiceContext<Cmd, Res, State> {
  readonly config: NodeConfig;
  /** The node, for status and events; propose through {@link ServiceContext.propose}. */
  readonly node: RaftNode<ServiceCommand<Cmd>, ServiceResult<Res>>;
  readonly state: State;
  /** Members' HTTP addresses, as replicated in the log. */
  readonly directory: Directory;
  /** Bound on every request's wait for the cluster (`--request-timeout-ms`). */
  readonly requestTimeoutMs: number;
  /**
   * Proposes `command` and resolves with the state machine's result once it is applied here.
   * While no leader is known (an election is on) it waits for one within the bound and
   * proposes again (nothing was appended). Rejects with the node's RaftError, which the HTTP
   * layer maps to 503 / 504 / 413 / 400.
   *
   * With `idempotencyKey` (from {@link idempotencyKeyOf}, say) the command applies once: a
   * retry with the same key, on any node, after a failover or a restart from a snapshot, gets
   * the first result back and changes nothing (the core's client sessions).
   */
  propose(
    command: Cmd,
    options?: { readonly timeoutMs?: number; readonly idempotencyKey?: string | null },
  ): Promise<{ result: Res }>;
  /** Waits until this node's state may be read at `consistency` (the core's `read()`). */
  read(consistency?: ReadConsistency): Promise<void>;
}

/** A service the server can run. */
export interface ServiceDefinition<Cmd, Res, State> {
  /** The program's name (`raft-kv`): the CLI's name, the default cluster id, log and metric
   *  labels, and the Redis key prefix. */
  readonly name: string;
  /** One line for `--help` and the dashboard. */
  readonly description: string;
  /** Makes a fresh state machine (called once per node). */
  createStateMachine(): ServiceParts<Cmd, Res, State>;
  /** Registers the service's routes (under `/v1/`, say). Errors thrown by handlers leave
   *  through the server's error table (`httpErrorOf`). */
  registerRoutes(app: FastifyInstance, ctx: ServiceContext<Cmd, Res, State>): void;
  /** Serve `?consistency=lease` reads (sets the core's `leaseReads` on every node). Default
   *  true. */
  readonly leaseReads?: boolean;
  /**
   * Options of the client sessions behind idempotency keys (part of the state machine's
   * definition: the same on every node). Default: the core's (10,000 keys kept for 1,000,000
   * entries; results encoded as JSON, so give a `resultCodec` for results JSON cannot carry).
   */
  readonly sessions?: SessionOptions<Res>;
  /** Largest encoded command the node accepts (the core's `maxCommandBytes`). Default
   *  1 MiB + 64 KiB: the default body limit plus room for the service's own framing. */
  readonly maxCommandBytes?: number;
}

/** Identity helper that keeps the type parameters inferred. */
export function defineService<Cmd, Res, State>(
  definition: ServiceDefinition<Cmd, Res, State>,
): ServiceDefinition<Cmd, Res, State> {
  return definition;
}
