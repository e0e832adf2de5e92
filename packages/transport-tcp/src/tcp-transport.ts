/**
 * `createTcpTransport()`: the TCP transport of @raft/core, on node:net (node:tls with `tls`).
 */
import { noopLogger } from '@raft/core';
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
import { createTcpDriver } from './tcp-driver.js';
import { loadTls } from './tls-context.js';

/**
 * Options of {@link createTcpTransport}: the shared network options of `@raft/core/wire`
 * (`id`, `clusterId`, `secret`, limits, backoff, timeouts, `logger`) plus these.
 */
export interface TcpTransportOptions extends WireOptions {
  /**
   * Where to listen, `host:port` (`127.0.0.1:9001`, `[::1]:9001`, `0.0.0.0:9001`). Port 0
   * picks a free port: read `transport.address` after `start()`.
   */
  readonly listen: string;
  /**
   * The address peers reach this node at, announced in the handshake so that a node outside
   * their configuration (one joining) can be answered. Default: the listen address (with the
   * real port). Set it when listening on a wildcard such as `0.0.0.0`.
   */
  readonly advertise?: string;
  /**
   * The local address outgoing connections bind to. Default: the listen host when it is a
   * specific IP address (so nodes on 127.0.0.1, 127.0.0.2 and 127.0.0.3 dial from their own
   * address and packet filters can partition them pair by pair); null lets the OS choose.
   */
  readonly localAddress?: string | null;
  /** TLS for every connection, mutual by default. Default: plain TCP. */
  readonly tls?: TlsOptions;
  /** TCP keepalive probe delay on every socket. Default 5000 ms. */
  readonly keepAliveMs?: number;
}

const TCP_KEYS = [...WIRE_OPTION_KEYS, 'listen', 'advertise', 'localAddress', 'tls', 'keepAliveMs'];
/** Unwritten bytes a socket may hold before the sender waits for it to drain. */
const HIGH_WATER_BYTES = 1024 * 1024;

/**
 * Creates a TCP transport. Nothing is opened until `start()`. Throws a ConfigError naming the
 * field for a bad option (an address that is not host:port, an unreadable certificate file,
 * a secret that is too short).
 *
 * @example
 * ```ts
 * const transport = createTcpTransport({ id: 'n1', listen: '127.0.0.1:9001', clusterId: 'prod' });
 * const node = createRaftNode({ id: 'n1', transport, ...stores, stateMachine, codec });
 * ```
 */
export function createTcpTransport(options: TcpTransportOptions): NetworkTransport {
  checkOptionKeys(options, TCP_KEYS);
  const listen = hostPortOption('listen', options.listen);
  advertiseOption(options.advertise);
  const localAddress = localAddressOption(options.localAddress, defaultLocalAddress(listen.host));
  const keepAliveMs = intOption('keepAliveMs', options.keepAliveMs, 5000, 1, 3_600_000);
  const tls = options.tls === undefined ? null : loadTls(options.tls);
  const { listen: _l, advertise, localAddress: _a, tls: _t, keepAliveMs: _k, ...wire } = options;
  const driver = createTcpDriver({
    listen,
    localAddress,
    tls,
    keepAliveMs,
    highWaterBytes: HIGH_WATER_BYTES,
    handshakeTimeoutMs: options.handshakeTimeoutMs ?? DEFAULT_WIRE_OPTIONS.handshakeTimeoutMs,
    maxPendingHandshakes: options.maxPendingHandshakes ?? DEFAULT_WIRE_OPTIONS.maxPendingHandshakes,
    logger: options.logger ?? noopLogger,
  });
  return createWireTransport(wire, {
    driver,
    crypto: nodeCrypto,
    ...(advertise === undefined ? {} : { advertiseAddress: advertise }),
  });
}
