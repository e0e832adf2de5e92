/**
 * The sockets of the TCP transport: a node:net (or node:tls) server and outgoing sockets,
 * carrying length-prefixed frames (framing.ts). Everything above the sockets is
 * @raft/core/wire's.
 */
import {
  createServer as createNetServer,
  connect as netConnect,
  type Server,
  type Socket,
} from 'node:net';
import { createServer as createTlsServer, type TLSSocket, connect as tlsConnect } from 'node:tls';
import { type Logger, RaftError } from '@raft/core';
import {
  formatHostPort,
  type HostPort,
  ipVersion,
  listenOn,
  MAX_HANDSHAKE_FRAME_BYTES,
  parseHostPort,
  type WireConnection,
  type WireConnectionHandlers,
  type WireDriver,
} from '@raft/core/wire';
import { FRAME_HEADER_BYTES, FrameReader, frameHeader } from './framing.js';
import type { TlsContext } from './tls-context.js';

/** What the driver needs from the transport's options. */
export interface TcpDriverOptions {
  readonly listen: HostPort;
  readonly localAddress: string | null;
  readonly tls: TlsContext | null;
  readonly keepAliveMs: number;
  /** Bytes buffered in user space above which `send()` asks the caller to wait for drain. */
  readonly highWaterBytes: number;
  readonly handshakeTimeoutMs: number;
  readonly maxPendingHandshakes: number;
  readonly logger: Logger;
}

export function createTcpDriver(options: TcpDriverOptions): WireDriver {
  return new TcpDriver(options);
}

class TcpDriver implements WireDriver {
  readonly name: string;
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  /** What to do when a raw socket's TLS handshake completes (it stops counting as pending). */
  private readonly secureOnce = new WeakMap<Socket, () => void>();
  private closed = false;

  constructor(private readonly options: TcpDriverOptions) {
    this.name = options.tls === null ? 'tcp' : 'tcp+tls';
  }

  listen(accept: (connection: WireConnection) => WireConnectionHandlers): Promise<string> {
    const { tls, listen } = this.options;
    const onSocket = (socket: Socket) => {
      if (this.closed) {
        socket.destroy();
        return;
      }
      const raw = (socket as Socket & { _parent?: Socket })._parent ?? socket;
      this.secureOnce.get(raw)?.();
      this.secureOnce.delete(raw);
      this.tune(socket);
      const connection = new TcpConnection(socket, this.options.highWaterBytes, remoteOf(socket));
      connection.attach(accept(connection));
      this.track(socket);
    };
    const server =
      tls === null
        ? createNetServer(onSocket)
        : createTlsServer(
            {
              ...tls.context,
              requestCert: tls.options.requireClientCert,
              rejectUnauthorized: tls.options.requireClientCert,
              handshakeTimeout: this.options.handshakeTimeoutMs,
            },
            onSocket,
          );
    if (tls !== null) {
      // Before its TLS handshake completes a socket is invisible to the wire layer (which sees
      // it at 'secureConnection'), so its bounds are kept here: it is tracked (close() destroys
      // it), counted against maxPendingHandshakes, and destroyed when the TLS handshake fails
      // or times out (Node only reports the timeout).
      let pending = 0;
      server.on('connection', (raw: Socket) => {
        this.track(raw);
        if (pending >= this.options.maxPendingHandshakes) {
          this.options.logger.warn(
            { remote: remoteOf(raw), pending },
            `refused a TLS connection from ${remoteOf(raw)}: ${pending} handshakes already pending (maxPendingHandshakes)`,
          );
          raw.destroy();
          return;
        }
        pending++;
        let counted = true;
        const done = () => {
          if (counted) pending--;
          counted = false;
        };
        raw.once('close', done);
        // The TLS socket wrapping `raw` becomes secure (or fails) within the handshake timeout.
        const timer = setTimeout(() => raw.destroy(), this.options.handshakeTimeoutMs + 100);
        timer.unref();
        raw.once('close', () => clearTimeout(timer));
        this.secureOnce.set(raw, () => {
          done();
          clearTimeout(timer);
        });
      });
      server.on('tlsClientError', (err: Error, socket: TLSSocket) => {
        socket.destroy();
        this.options.logger.warn(
          { remote: remoteOf(socket), error: err.message },
          `refused a TLS connection from ${remoteOf(socket)}: ${err.message}`,
        );
      });
    }
    this.server = server;
    return listenOn(server, listen, (err) =>
      this.options.logger.error({ error: err.message }, `listener error: ${err.message}`),
    ).catch((err: unknown) => {
      this.server = null;
      throw err;
    });
  }

  dial(address: string, handlers: WireConnectionHandlers): WireConnection {
    const target = parseHostPort(address);
    if (target === null || target.port === 0) {
      throw new RaftError('INVALID_ARGUMENT', `"${address}" is not a host:port address`);
    }
    const { tls, localAddress } = this.options;
    const local = localAddress === null ? {} : { localAddress };
    const socket: Socket =
      tls === null
        ? netConnect({ host: target.host, port: target.port, ...local })
        : tlsConnect({
            ...tls.context,
            host: target.host,
            port: target.port,
            ...local,
            // SNI takes names only, never IP addresses.
            ...(ipVersion(target.host) === 0 ? { servername: target.host } : {}),
            rejectUnauthorized: true,
            ...(tls.options.verifyHostname ? {} : { checkServerIdentity: () => undefined }),
          });
    this.tune(socket);
    this.track(socket);
    const connection = new TcpConnection(socket, this.options.highWaterBytes, address);
    connection.attach(handlers);
    socket.once(tls === null ? 'connect' : 'secureConnect', () => connection.opened());
    return connection;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    const server = this.server;
    this.server = null;
    if (server === null) return;
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private tune(socket: Socket): void {
    socket.setNoDelay(true);
    socket.setKeepAlive(true, this.options.keepAliveMs);
  }

  private track(socket: Socket): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
  }
}

/** One socket as a {@link WireConnection}. */
class TcpConnection implements WireConnection {
  private handlers: WireConnectionHandlers | null = null;
  private readonly reader: FrameReader;
  private ended = false;
  private closedReported = false;
  private written = 0;

  constructor(
    private readonly socket: Socket,
    private readonly highWaterBytes: number,
    readonly remoteAddress: string,
  ) {
    this.reader = new FrameReader(
      {
        // Frames still in a chunk read before an end() or destroy() are not delivered.
        frame: (frame) => {
          if (!this.ended && !this.socket.destroyed) this.handlers?.onFrame(frame);
        },
        reject: (kind, detail) => {
          this.handlers?.onFrameRejected(kind, detail);
          this.socket.destroy();
        },
      },
      // Until the owner says otherwise: small, since the peer is not authenticated yet.
      MAX_HANDSHAKE_FRAME_BYTES,
    );
  }

  attach(handlers: WireConnectionHandlers): void {
    this.handlers = handlers;
    const socket = this.socket;
    socket.on('data', (chunk: Buffer) => {
      try {
        this.reader.push(chunk);
      } catch (err) {
        // The owner's handlers do not throw; this keeps a bug from becoming a crash.
        socket.destroy(err as Error);
      }
    });
    socket.on('drain', () => this.handlers?.onDrain());
    let error: unknown = null;
    socket.on('error', (err) => {
      error = err;
    });
    socket.on('close', () => {
      if (this.closedReported) return;
      this.closedReported = true;
      const h = this.handlers;
      this.handlers = null;
      h?.onClose(error);
    });
    // A half-closed peer (FIN) sends nothing more: finish our side too.
    socket.on('end', () => socket.end());
  }

  opened(): void {
    this.handlers?.onOpen();
  }

  send(frames: readonly Uint8Array[]): boolean {
    const socket = this.socket;
    if (this.ended || socket.destroyed) return true;
    try {
      socket.cork();
      for (const frame of frames) {
        socket.write(frameHeader(frame.length));
        const bytes = FRAME_HEADER_BYTES + frame.length;
        socket.write(frame, () => {
          this.written += bytes;
        });
      }
      socket.uncork();
    } catch (err) {
      socket.destroy(err as Error);
      return true;
    }
    return socket.writableLength < this.highWaterBytes;
  }

  writtenBytes(): number {
    return this.written;
  }

  setMaxFrameBytes(bytes: number): void {
    this.reader.maxFrameBytes = bytes;
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.socket.end();
    // A peer that never reads must not hold the socket open for ever.
    const timer = setTimeout(() => this.socket.destroy(), 5000);
    timer.unref();
    this.socket.once('close', () => clearTimeout(timer));
  }

  destroy(): void {
    this.ended = true;
    this.socket.destroy();
  }
}

function remoteOf(socket: Socket): string {
  const host = socket.remoteAddress;
  const port = socket.remotePort;
  return host === undefined || port === undefined ? 'unknown' : formatHostPort(host, port);
}
