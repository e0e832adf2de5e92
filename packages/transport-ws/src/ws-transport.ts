/**
 * `createWsTransport()`: the WebSocket transport of @raft/core, on ws.
 */
import type { Server as HttpServer } from 'node:http';
import { ConfigError, noopLogger } from '@raft/core';
import {
  advertiseOption,
  checkOptionKeys,
  createWireTransport,
  DEFAULT_WIRE_OPTIONS,
  defaultLocalAddress,
  hostPortOption,
  intOption,
  localAddressOption,
  type NetworkTransport,
  type TlsOptions,
  WIRE_OPTION_KEYS,
  type WireOptions,
} from '@raft/core/wire';
import { nodeCrypto } from './node-crypto.js';
import { loadTls } from './tls-context.js';
import { createWsDriver, type WsListen } from './ws-driver.js';

/**
 * Options of {@link createWsTransport}: the shared network options of `@raft/core/wire`
 * (`id`, `clusterId`, `secret`, limits, backoff, timeouts, `logger`) plus these. Give either
 * `listen` (the transport runs its own HTTP server) or `server` (it mounts on yours).
 */
export interface WsTransportOptions extends WireOptions {
  /** Where its own HTTP(S) server listens, `host:port`. Port 0 picks one (see `address`). */
  readonly listen?: string;
  /**
   * An HTTP or HTTPS server the application already runs (its API, its dashboard): the
   * transport answers WebSocket upgrades on `path` and leaves every other request and upgrade
   * to the application. Its TLS, if any, is the server's; give `tls` as well so that this node
   * dials its peers with wss:// and its certificate.
   */
  readonly server?: HttpServer;
  /** The URL path of the endpoint, on both sides. Default `/raft`. */
  readonly path?: string;
  /**
   * The address peers reach this node at (`host:port`), announced in the handshake so a node
   * outside their configuration (a joining one) can be answered. Default: the listen address,
   * or the mounted server's address. Set it when listening on a wildcard such as `0.0.0.0`.
   */
  readonly advertise?: string;
  /**
   * The local address outgoing connections bind to. Default: the listen host when it is a
   * specific IP address (so nodes on 127.0.0.1, .2 and .3 can be partitioned pair by pair by
   * packet filters); null lets the OS choose.
   */
  readonly localAddress?: string | null;
  /** TLS (wss://), mutual by default; see {@link TlsOptions}. Default: plain ws://. */
  readonly tls?: TlsOptions;
  /**
   * Negotiate permessage-deflate. Default false: Raft entries are often already compact, and
   * compression costs CPU on the hot path and memory per connection (zlib contexts).
   */
  readonly perMessageDeflate?: boolean;
  /**
   * Interval of the ping/pong keepalive, on both ends: a connection with no sign of life (pong,
   * ping or bytes) for two intervals is closed, unless its own bytes are still leaving.
   * Default 5000 ms.
   */
  readonly keepaliveMs?: number;
}

const WS_KEYS = [
  ...WIRE_OPTION_KEYS,
  'listen',
  'server',
  'path',
  'advertise',
  'localAddress',
  'tls',
  'perMessageDeflate',
  'keepaliveMs',
];
/** Unwritten bytes a socket may hold before the sender waits for it to drain. */
const HIGH_WATER_BYTES = 1024 * 1024;

/**
 * Creates a WebSocket transport. Nothing is opened until `start()`. Throws a ConfigError
 * naming the field for a bad option.
 *
 * @example
 * ```ts
 * // Its own server:
 * const transport = createWsTransport({ id: 'n1', listen: '127.0.0.1:9001' });
 * // Or mounted on the application's HTTP server, next to its API:
 * const transport = createWsTransport({ id: 'n1', server: httpServer, path: '/raft' });
 * ```
 */
export function createWsTransport(options: WsTransportOptions): NetworkTransport {
  checkOptionKeys(options, WS_KEYS);
  if ((options.listen === undefined) === (options.server === undefined)) {
    throw new ConfigError(
      'listen',
      'give exactly one of `listen` (its own server) and `server` (mounted)',
    );
  }
  const advertise = advertiseOption(options.advertise) ?? null;
  let listen: WsListen;
  let defaultLocal: string | null = null;
  if (options.listen !== undefined) {
    const at = hostPortOption('listen', options.listen);
    listen = { kind: 'own', at };
    defaultLocal = defaultLocalAddress(at.host);
  } else {
    const server = options.server as HttpServer;
    if (typeof server?.on !== 'function' || typeof server?.address !== 'function') {
      throw new ConfigError('server', 'must be a node:http or node:https Server');
    }
    listen = { kind: 'mounted', server, advertise };
  }
  const localAddress = localAddressOption(options.localAddress, defaultLocal);
  const path = options.path ?? '/raft';
  if (typeof path !== 'string' || !/^\/[A-Za-z0-9._~!$&'()*+,;=:@/-]*$/.test(path)) {
    throw new ConfigError(
      'path',
      `must be a URL path starting with "/", got ${JSON.stringify(path)}`,
    );
  }
  const keepaliveMs = intOption('keepaliveMs', options.keepaliveMs, 5000, 10, 3_600_000);
  const perMessageDeflate = options.perMessageDeflate ?? false;
  if (typeof perMessageDeflate !== 'boolean') {
    throw new ConfigError('perMessageDeflate', 'must be a boolean');
  }
  const tls = options.tls === undefined ? null : loadTls(options.tls);
  const {
    listen: _l,
    server: _s,
    path: _p,
    advertise: _a,
    localAddress: _la,
    tls: _t,
    perMessageDeflate: _d,
    keepaliveMs: _k,
    ...wire
  } = options;
  const driver = createWsDriver({
    listen,
    path,
    localAddress,
    tls,
    perMessageDeflate,
    // The wire layer validates maxFrameBytes; the driver's limit follows it.
    maxFrameBytes: options.maxFrameBytes ?? DEFAULT_WIRE_OPTIONS.maxFrameBytes,
    keepaliveMs,
    highWaterBytes: HIGH_WATER_BYTES,
    handshakeTimeoutMs: options.handshakeTimeoutMs ?? DEFAULT_WIRE_OPTIONS.handshakeTimeoutMs,
    maxPendingHandshakes: options.maxPendingHandshakes ?? DEFAULT_WIRE_OPTIONS.maxPendingHandshakes,
    logger: options.logger ?? noopLogger,
  });
  return createWireTransport(wire, {
    driver,
    crypto: nodeCrypto,
    ...(advertise === null ? {} : { advertiseAddress: advertise }),
  });
}
