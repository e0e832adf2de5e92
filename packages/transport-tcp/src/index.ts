/**
 * @raft/transport-tcp: the TCP transport of @raft/core on node:net, with optional mutual TLS
 * (node:tls). Two one-way connections per peer (a control lane and a bulk lane), batching,
 * bounded queues, reconnects with backoff, an authenticated handshake; see `@raft/core/wire`.
 */

export type {
  DropReason,
  LaneStats,
  NetworkTransport,
  PeerStats,
  TlsOptions,
  TransportEvent,
  TransportStats,
} from '@raft/core/wire';
export type { TcpTransportOptions } from './tcp-transport.js';
export { createTcpTransport } from './tcp-transport.js';
