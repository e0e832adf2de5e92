/**
 * What a network transport adapter implements: the sockets. Everything above them (the
 * handshake, authentication, lanes, bounded queues, batching, reconnects, limits, counters)
 * is {@link createWireTransport}'s, shared by @raft/transport-tcp and @raft/transport-ws, so
 * both behave alike and a new transport (QUIC, a message broker) only writes this part.
 *
 * A connection carries frames: byte arrays the driver delimits on the wire however it likes
 * (TCP: a length prefix; WebSocket: one binary message per frame). Frames handed to
 * `onFrame` MUST be buffers the driver never writes again (decoded messages are views into
 * them and the engine keeps them).
 */

/** Why a driver rejected incoming bytes before they became a frame. */
export type FrameRejection = 'oversize' | 'malformed';

/** The callbacks a driver calls for one connection. None of them throws. */
export interface WireConnectionHandlers {
  /** Dialed connections only: the channel is up (TLS established). Called at most once. */
  onOpen(): void;
  /** One complete frame, in arrival order. */
  onFrame(frame: Uint8Array): void;
  /** After `send()` returned false: the connection can take more. */
  onDrain(): void;
  /**
   * The driver refused incoming bytes (a frame over the limit, or bytes that cannot be
   * framed) and is destroying the connection; `onClose` follows.
   */
  onFrameRejected(kind: FrameRejection, detail: string): void;
  /** The connection is gone (`error` null for an orderly close). Called exactly once, last. */
  onClose(error: unknown): void;
}

/** One connection, dialed or accepted. */
export interface WireConnection {
  /** The remote side's address, for logs (`host:port`). */
  readonly remoteAddress: string;
  /**
   * Queues `frames` for writing, in order, as one write where the driver can. MUST NOT throw.
   * Returns false when the connection holds more unwritten bytes than it wants to (the caller
   * waits for `onDrain` before sending more; what was passed is still written).
   */
  send(frames: readonly Uint8Array[]): boolean;
  /**
   * Bytes this connection has finished writing (handed to the operating system) since it
   * opened; only grows. How a sender tells a slow link (it moves) from a dead one (it does not).
   */
  writtenBytes(): number;
  /**
   * The largest frame to accept from now on. Called with a small limit when the connection
   * opens (before the peer is authenticated) and the configured one after the handshake.
   * Drivers that cannot change their limit per connection may ignore it: the caller checks
   * every frame's size again.
   */
  setMaxFrameBytes(bytes: number): void;
  /** Closes after the queued frames are written. `onClose` follows. Idempotent. */
  end(): void;
  /** Closes now, discarding what is queued. `onClose` follows. Idempotent. */
  destroy(): void;
}

/** The sockets of one transport. */
export interface WireDriver {
  /** For logs and errors: `tcp`, `ws`. */
  readonly name: string;
  /**
   * Starts accepting connections; for each one, calls `accept` synchronously before any of its
   * data is read, and calls the handlers it returns. Resolves with the address it listens on
   * (`host:port`, the real port when the configured one was 0). Rejects with a RaftError
   * (code UNAVAILABLE) saying what went wrong, for example the address being in use.
   */
  listen(accept: (connection: WireConnection) => WireConnectionHandlers): Promise<string>;
  /**
   * Starts connecting to `address` (a member's address); returns at once. Reports through
   * `handlers`: `onOpen` once connected, `onClose(error)` when it fails or ends.
   */
  dial(address: string, handlers: WireConnectionHandlers): WireConnection;
  /** Stops listening and releases everything. Connections are already destroyed. */
  close(): Promise<void>;
}
