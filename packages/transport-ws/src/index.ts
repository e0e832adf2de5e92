/**
 * @raft/transport-ws: the WebSocket transport of @raft/core, on ws. Binary frames, ping/pong
 * keepalive, permessage-deflate off by default, its own HTTP(S) server or mounted on the
 * application's. Two one-way connections per peer (a control lane and a bulk lane), batching,
 * bounded queues, reconnects with backoff and an authenticated handshake: see `@raft/core/wire`.
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
export type { WsTransportOptions } from './ws-transport.js';
export { createWsTransport } from './ws-transport.js';
