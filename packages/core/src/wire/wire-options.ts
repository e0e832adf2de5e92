/**
 * Options every network transport shares (@raft/transport-tcp and @raft/transport-ws extend
 * them with their own), their defaults and their validation: a bad value fails the factory
 * with a ConfigError naming the field and the allowed range.
 */
import { ConfigError } from '../errors.js';
import type { Clock, Random } from '../interfaces/clock.js';
import type { Logger } from '../logger.js';
import type { NodeId } from '../types.js';
import { utf8Encode } from '../utf8.js';
import { MAX_HANDSHAKE_STRING_BYTES } from './handshake.js';

/** Options shared by the network transports. Every optional field documents its default. */
export interface WireOptions {
  /** This node's id: the `from` of its handshakes; messages to other ids are refused. */
  readonly id: NodeId;
  /**
   * The cluster this node belongs to. A peer with another cluster id is refused at the
   * handshake, with a log line naming both. Default `'raft'`: set it whenever two clusters
   * could reach each other (a second environment on the same hosts, a copied config).
   */
  readonly clusterId?: string;
  /**
   * A secret every member shares (at least 16 bytes; a string is taken as UTF-8). When set,
   * both sides of every connection prove they hold it (HMAC-SHA256 challenge-response over
   * fresh nonces) before any message passes: a process without it cannot get one message
   * through to the core. It authenticates peers, it does not encrypt or sign each frame: on a
   * network an attacker can tap, use TLS (which can be combined with a secret). Default none.
   */
  readonly secret?: string | Uint8Array;
  /**
   * Largest frame sent or accepted, in bytes: a batch of messages, or one message that is
   * larger than `maxBatchBytes`. A message whose encoding does not fit is dropped and counted
   * (`oversize`); an incoming frame over it closes the connection. Must exceed the node's
   * `maxCommandBytes`, `maxBytesPerAppend` and `snapshotChunkBytes` by a margin. Default
   * 16 MiB, range 64 KiB to 1 GiB.
   */
  readonly maxFrameBytes?: number;
  /** Target size of a batch frame: messages are packed until the next would pass it. Default 1 MiB. */
  readonly maxBatchBytes?: number;
  /**
   * Bound on what is queued for one peer, per lane, in encoded bytes: what a slow peer can
   * cost. Messages of one event-loop turn wait here until the turn's flush, so it must hold
   * what the leader sends a follower at once: `maxInflightAppends` × `maxBytesPerAppend` (64 ×
   * 1 MiB by default). A peer that is down costs far less: while its connection backs off,
   * bulk messages are dropped rather than queued, and heartbeats coalesce. Default 64 MiB.
   */
  readonly maxQueueBytes?: number;
  /** Bound on the number of messages queued for one peer, per lane. Default 4096. */
  readonly maxQueueMessages?: number;
  /** First reconnect delay after a failed dial. Default 50 ms. */
  readonly initialBackoffMs?: number;
  /** Largest reconnect delay. Default 2000 ms. */
  readonly maxBackoffMs?: number;
  /** A connection that has not completed its handshake by then is closed. Default 5000 ms. */
  readonly handshakeTimeoutMs?: number;
  /**
   * An outgoing connection whose socket has not accepted queued bytes for this long is
   * destroyed and redialed (the peer's host vanished without a reset). Default 10000 ms.
   */
  readonly writeStallTimeoutMs?: number;
  /**
   * An accepted connection that received nothing for this long is closed (the dialer dials
   * again when it has something to send). Default 60000 ms.
   */
  readonly idleTimeoutMs?: number;
  /** Most accepted connections still in their handshake at once; more are closed. Default 128. */
  readonly maxPendingHandshakes?: number;
  /** Default: the host's monotonic clock and timers. */
  readonly clock?: Clock;
  /** Jitter of the reconnect delays. Default Math.random. */
  readonly random?: Random;
  /** Default: no logging. Pass a pino logger directly. */
  readonly logger?: Logger;
}

/** {@link WireOptions} with every default applied. */
export interface ResolvedWireOptions {
  readonly id: NodeId;
  readonly clusterId: string;
  readonly secret: Uint8Array | null;
  readonly maxFrameBytes: number;
  readonly maxBatchBytes: number;
  readonly maxQueueBytes: number;
  readonly maxQueueMessages: number;
  readonly initialBackoffMs: number;
  readonly maxBackoffMs: number;
  readonly handshakeTimeoutMs: number;
  readonly writeStallTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly maxPendingHandshakes: number;
}

/** The defaults of {@link WireOptions}. */
export const DEFAULT_WIRE_OPTIONS = Object.freeze({
  clusterId: 'raft',
  maxFrameBytes: 16 * 1024 * 1024,
  maxBatchBytes: 1024 * 1024,
  maxQueueBytes: 64 * 1024 * 1024,
  maxQueueMessages: 4096,
  initialBackoffMs: 50,
  maxBackoffMs: 2000,
  handshakeTimeoutMs: 5000,
  writeStallTimeoutMs: 10_000,
  idleTimeoutMs: 60_000,
  maxPendingHandshakes: 128,
});

/** Keys of {@link WireOptions}, for adapters that check for unknown options. */
export const WIRE_OPTION_KEYS: readonly string[] = [
  'id',
  'clusterId',
  'secret',
  'maxFrameBytes',
  'maxBatchBytes',
  'maxQueueBytes',
  'maxQueueMessages',
  'initialBackoffMs',
  'maxBackoffMs',
  'handshakeTimeoutMs',
  'writeStallTimeoutMs',
  'idleTimeoutMs',
  'maxPendingHandshakes',
  'clock',
  'random',
  'logger',
];

const MIN_SECRET_BYTES = 16;

function int(field: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(field, `must be an integer in [${min}, ${max}], got ${String(value)}`);
  }
  return value;
}

function idString(field: string, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0) {
    throw new ConfigError(field, `must be a non-empty string, got ${String(value)}`);
  }
  if (utf8Encode(value).length > MAX_HANDSHAKE_STRING_BYTES) {
    throw new ConfigError(field, `must be at most ${MAX_HANDSHAKE_STRING_BYTES} bytes of UTF-8`);
  }
  return value;
}

/**
 * Validates the shared options and applies the defaults. Throws a ConfigError naming the
 * first bad field.
 */
export function resolveWireOptions(options: WireOptions): ResolvedWireOptions {
  if (typeof options !== 'object' || options === null) {
    throw new ConfigError('options', 'must be an object');
  }
  const d = DEFAULT_WIRE_OPTIONS;
  const id = idString('id', options.id);
  const clusterId = idString('clusterId', options.clusterId ?? d.clusterId);
  let secret: Uint8Array | null = null;
  if (options.secret !== undefined) {
    if (typeof options.secret === 'string') secret = utf8Encode(options.secret);
    else if (options.secret instanceof Uint8Array) secret = new Uint8Array(options.secret);
    else throw new ConfigError('secret', 'must be a string or a Uint8Array');
    if (secret.length < MIN_SECRET_BYTES) {
      throw new ConfigError(
        'secret',
        `must be at least ${MIN_SECRET_BYTES} bytes (got ${secret.length}); generate one with \`openssl rand -hex 32\``,
      );
    }
  }
  const maxFrameBytes = int(
    'maxFrameBytes',
    options.maxFrameBytes ?? d.maxFrameBytes,
    64 * 1024,
    1024 * 1024 * 1024,
  );
  const maxBatchBytes = int(
    'maxBatchBytes',
    options.maxBatchBytes ?? Math.min(d.maxBatchBytes, maxFrameBytes),
    1024,
    maxFrameBytes,
  );
  const maxQueueBytes = int(
    'maxQueueBytes',
    options.maxQueueBytes ?? Math.max(d.maxQueueBytes, maxFrameBytes),
    maxFrameBytes,
    16 * 1024 * 1024 * 1024,
  );
  const maxQueueMessages = int(
    'maxQueueMessages',
    options.maxQueueMessages ?? d.maxQueueMessages,
    1,
    1_000_000,
  );
  const initialBackoffMs = int(
    'initialBackoffMs',
    options.initialBackoffMs ?? d.initialBackoffMs,
    1,
    60_000,
  );
  const maxBackoffMs = int(
    'maxBackoffMs',
    options.maxBackoffMs ?? Math.max(d.maxBackoffMs, initialBackoffMs),
    initialBackoffMs,
    600_000,
  );
  const handshakeTimeoutMs = int(
    'handshakeTimeoutMs',
    options.handshakeTimeoutMs ?? d.handshakeTimeoutMs,
    10,
    600_000,
  );
  const writeStallTimeoutMs = int(
    'writeStallTimeoutMs',
    options.writeStallTimeoutMs ?? d.writeStallTimeoutMs,
    10,
    3_600_000,
  );
  const idleTimeoutMs = int(
    'idleTimeoutMs',
    options.idleTimeoutMs ?? d.idleTimeoutMs,
    10,
    24 * 3_600_000,
  );
  const maxPendingHandshakes = int(
    'maxPendingHandshakes',
    options.maxPendingHandshakes ?? d.maxPendingHandshakes,
    1,
    100_000,
  );
  if (options.clock !== undefined && typeof options.clock?.setTimer !== 'function') {
    throw new ConfigError('clock', 'must have now() and setTimer()');
  }
  if (options.random !== undefined && typeof options.random !== 'function') {
    throw new ConfigError('random', 'must be a function returning [0, 1)');
  }
  return {
    id,
    clusterId,
    secret,
    maxFrameBytes,
    maxBatchBytes,
    maxQueueBytes,
    maxQueueMessages,
    initialBackoffMs,
    maxBackoffMs,
    handshakeTimeoutMs,
    writeStallTimeoutMs,
    idleTimeoutMs,
    maxPendingHandshakes,
  };
}
