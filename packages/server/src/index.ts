/**
 * @raft/server: runs a replicated state machine as an HTTP service. Give it a
 * {@link ServiceDefinition} (a name, a state machine, the routes that use it) and it does the
 * rest: flags and config files, the stores and transport named by flags, the node's lifecycle
 * and graceful shutdown, status, membership, leadership transfer, snapshots, Prometheus
 * metrics, a live dashboard, a CLI with client commands, and a local dev cluster.
 *
 * Every export is listed by name: this file is the reviewed public surface.
 */
export type { CliClient, ClientAnswer, ClientOptions } from './cli/client.js';
export { createCliClient } from './cli/client.js';
export type { DevClusterOptions } from './cli/dev-cluster.js';
export { runDevCluster } from './cli/dev-cluster.js';
export type { ServiceCliOptions } from './cli/service-cli.js';
export { createServiceCli, runServiceCli } from './cli/service-cli.js';
export type { NodeConfig, NodeFlags } from './config/node-config.js';
export { NodeConfigError, resolveNodeConfig } from './config/node-config.js';
export { dashboardPage } from './dashboard/dashboard-page.js';
export type { ClusterView, MemberView } from './http/cluster-view.js';
export type { HttpAppOptions } from './http/create-http-app.js';
export { createHttpApp } from './http/create-http-app.js';
export type { HttpError } from './http/http-errors.js';
export { BadRequestError, httpErrorOf } from './http/http-errors.js';
export { idempotencyKeyOf } from './http/idempotency-key.js';
export { FORWARDED_HEADER } from './http/leader-forwarding.js';
export { COMMAND_HEADROOM_BYTES, DEFAULT_MAX_BODY_BYTES } from './http/limits.js';
export { bodyBytes, jsonBody } from './http/request-body.js';
export type { StatusBody } from './http/status-routes.js';
export type { ServiceNode } from './node/assemble-node.js';
export { assembleNode, NodeStartError } from './node/assemble-node.js';
export type { ServiceCommand, ServiceResult } from './node/service-command.js';
export { MAX_IDEMPOTENCY_KEY_BYTES, serviceCommandCodec } from './node/service-command.js';
export type { ServiceStateMachineOptions } from './node/service-state-machine.js';
export { Directory, withDirectory } from './node/service-state-machine.js';
export type { ActivitySample, ElectionRecord } from './observe/activity.js';
export type { RunningServer } from './server.js';
export { SHUTDOWN_BOUND_MS, startServer } from './server.js';
export type {
  ServiceContext,
  ServiceDefinition,
  ServiceParts,
} from './service.js';
export { defineService } from './service.js';
export type { LocalCluster, LocalClusterOptions } from './testing/local-cluster.js';
export { freePort, startLocalCluster } from './testing/local-cluster.js';
