/**
 * `@raft/core/wire`: the building blocks of network transports, shared by
 * @raft/transport-tcp and @raft/transport-ws: the handshake, lanes, batch frames, bounded send
 * queues, reconnect backoff and counters, assembled by {@link createWireTransport} over a
 * {@link WireDriver} (the sockets). A new network transport implements only the driver.
 *
 * Like the rest of @raft/core it does no I/O of its own and imports no Node module: the driver
 * brings the sockets and the adapter brings HMAC and random bytes ({@link WireCrypto}).
 */
export type { ListenableServer } from './adapter-options.js';
export {
  advertiseOption,
  checkOptionKeys,
  intOption,
  listenError,
  listenOn,
  localAddressOption,
} from './adapter-options.js';
export type { HostPort } from './address.js';
export {
  defaultLocalAddress,
  formatHostPort,
  hostPortOption,
  ipVersion,
  parseHostPort,
} from './address.js';
export type { SizedMessage } from './batch.js';
export { BATCH_HEADER_BYTES, batchItemBytes, decodeBatch, encodeBatch } from './batch.js';
export type {
  FrameRejection,
  WireConnection,
  WireConnectionHandlers,
  WireDriver,
} from './driver.js';
export type { Hello, Refuse, RefuseReason, Welcome, WireCrypto } from './handshake.js';
export {
  decodeHello,
  decodeProof,
  decodeRefuse,
  decodeWelcome,
  encodeHello,
  encodeProof,
  encodeRefuse,
  encodeWelcome,
  encodeWelcomeBody,
  FRAME_BATCH,
  FRAME_HELLO,
  FRAME_PROOF,
  FRAME_REFUSE,
  FRAME_WELCOME,
  HANDSHAKE_VERSION,
  handshakeProof,
  MAX_HANDSHAKE_FRAME_BYTES,
  MAX_HANDSHAKE_STRING_BYTES,
  NONCE_BYTES,
  PROOF_BYTES,
  REFUSE_REASONS,
} from './handshake.js';
export type { MessageLane } from './lanes.js';
export { messageLane } from './lanes.js';
export type {
  DropReason,
  LaneStats,
  PeerStats,
  TransportEvent,
  TransportStats,
} from './stats.js';
export type { ResolvedTlsOptions, TlsOptions } from './tls-options.js';
export { resolveTlsOptions } from './tls-options.js';
export type { ResolvedWireOptions, WireOptions } from './wire-options.js';
export { DEFAULT_WIRE_OPTIONS, resolveWireOptions, WIRE_OPTION_KEYS } from './wire-options.js';
export type { NetworkTransport, WireTransportDeps } from './wire-transport.js';
export { createWireTransport } from './wire-transport.js';
