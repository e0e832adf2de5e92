/**
 * The sockets of the WebSocket transport: a `ws` server (on its own HTTP(S) server, or mounted
 * on one the application already runs) and `ws` clients. One binary WebSocket message is one
 * frame. Ping/pong keeps every connection honest: one that misses a pong is terminated.
 * Everything above the sockets is @raft/core/wire's.
 */
import {
  createServer as createHttpServer,
  type Server as HttpServer,
  type IncomingMessage,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { SecureContextOptions } from 'node:tls';
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
import { WebSocket, WebSocketServer } from 'ws';
import type { TlsContext } from './tls-context.js';

/** Where the driver takes its connections from. */
export type WsListen =
  | { readonly kind: 'own'; readonly at: HostPort }
  | { readonly kind: 'mounted'; readonly server: HttpServer; readonly advertise: string | null };

export interface WsDriverOptions {
  readonly listen: WsListen;
  readonly path: string;
  readonly localAddress: string | null;
  readonly tls: TlsContext | null;
  readonly perMessageDeflate: boolean;
  readonly maxFrameBytes: number;
  readonly keepaliveMs: number;
  readonly highWaterBytes: number;
  readonly handshakeTimeoutMs: number;
  readonly maxPendingHandshakes: number;
  readonly logger: Logger;
}

export function createWsDriver(options: WsDriverOptions): WireDriver {
  return new WsDriver(options);
}

/** ws error codes that mean "this frame is too large". */
const OVERSIZE_CODES = new Set(['WS_ERR_UNSUPPORTED_MESSAGE_LENGTH']);

class WsDriver implements WireDriver {
  readonly name: string;
  private wss: WebSocketServer | null = null;
  private ownServer: HttpServer | null = null;
  private onUpgrade: ((req: IncomingMessage, socket: Duplex, head: Buffer) => void) | null = null;
  private readonly sockets = new Set<WebSocket>();
  /** Own server: what to do when a socket upgrades (it stops counting as pending). */
  private readonly upgraded = new WeakMap<Duplex, () => void>();
  private closed = false;

  constructor(private readonly options: WsDriverOptions) {
    this.name = options.tls === null ? 'ws' : 'wss';
  }

  async listen(accept: (connection: WireConnection) => WireConnectionHandlers): Promise<string> {
    const o = this.options;
    const wss = new WebSocketServer({
      noServer: true,
      maxPayload: o.maxFrameBytes,
      perMessageDeflate: o.perMessageDeflate,
      clientTracking: false,
    });
    this.wss = wss;
    const mounted = o.listen.kind === 'mounted';
    this.onUpgrade = (req, socket, head) => {
      // Over TLS the upgrade comes on the TLS socket; the timer is on the TCP socket under it.
      const raw = (socket as Duplex & { _parent?: Duplex })._parent ?? socket;
      this.upgraded.get(raw)?.();
      this.upgraded.delete(raw);
      if (pathOf(req.url) !== o.path) {
        // Someone else's WebSocket on a shared server: not ours to answer.
        if (!mounted) rejectUpgrade(socket, 404, 'Not Found');
        return;
      }
      if (this.closed) {
        rejectUpgrade(socket, 503, 'Service Unavailable');
        return;
      }
      wss.handleUpgrade(req, socket, head, (ws) => {
        if (this.closed) {
          ws.terminate();
          return;
        }
        const remote = remoteOf(req);
        const connection = new WsConnection(ws, o, remote, 'accepted');
        connection.attach(accept(connection));
        // Bytes arriving are life, even while a large message is still incomplete: pongs queue
        // behind it on a slow link, and the keepalive must not kill a transfer that moves.
        socket.on('data', () => connection.markAlive());
        this.track(ws);
      });
    };
    if (o.listen.kind === 'mounted') {
      const server = o.listen.server;
      let address = o.listen.advertise;
      if (address === null) {
        const bound = server.address();
        if (typeof bound !== 'object' || bound === null) {
          throw new RaftError(
            'UNAVAILABLE',
            'the HTTP server the transport is mounted on is not listening yet: call listen() first or give `advertise`',
          );
        }
        address = formatHostPort(bound.address, bound.port);
      }
      server.on('upgrade', this.onUpgrade);
      return address;
    }
    const at = o.listen.at;
    const server =
      o.tls === null
        ? createHttpServer()
        : createHttpsServer({
            ...o.tls.context,
            requestCert: o.tls.options.requireClientCert,
            rejectUnauthorized: o.tls.options.requireClientCert,
            handshakeTimeout: o.handshakeTimeoutMs,
          });
    // A socket that has not upgraded is invisible to the wire layer: bound it here (time and
    // number), as the wire layer bounds connections in their handshake.
    let preUpgrade = 0;
    server.on('connection', (socket: Socket) => {
      if (preUpgrade >= o.maxPendingHandshakes) {
        o.logger.warn(
          { remote: remoteOfSocket(socket), pending: preUpgrade },
          `refused a connection from ${remoteOfSocket(socket)}: ${preUpgrade} upgrades already pending (maxPendingHandshakes)`,
        );
        socket.destroy();
        return;
      }
      preUpgrade++;
      let pending = true;
      const settle = () => {
        if (pending) preUpgrade--;
        pending = false;
        clearTimeout(timer);
      };
      const timer = setTimeout(() => {
        if (pending) socket.destroy();
      }, o.handshakeTimeoutMs);
      timer.unref();
      socket.once('close', settle);
      this.upgraded.set(socket, settle);
    });
    server.on('request', (_req, res) => {
      res.writeHead(426, { 'content-type': 'text/plain', upgrade: 'websocket' });
      res.end(`this is a Raft WebSocket endpoint (${o.path}); plain HTTP is not served\n`);
    });
    server.on('upgrade', this.onUpgrade);
    server.on('tlsClientError', (err: Error, socket: Duplex) => {
      socket.destroy();
      o.logger.warn({ error: err.message }, `refused a TLS connection: ${err.message}`);
    });
    server.on('clientError', (_err, socket) => socket.destroy());
    this.ownServer = server;
    return listenOn(server, at, (err) =>
      o.logger.error({ error: err.message }, `listener error: ${err.message}`),
    ).catch((err: unknown) => {
      this.ownServer = null;
      throw err;
    });
  }

  dial(address: string, handlers: WireConnectionHandlers): WireConnection {
    const o = this.options;
    const url = urlOf(address, o.path, o.tls !== null);
    const target = new URL(url);
    const host = target.hostname.replace(/^\[|\]$/g, '');
    const tlsOptions: SecureContextOptions & Record<string, unknown> =
      o.tls === null
        ? {}
        : {
            ...o.tls.context,
            rejectUnauthorized: true,
            ...(ipVersion(host) === 0 ? { servername: host } : {}),
            ...(o.tls.options.verifyHostname ? {} : { checkServerIdentity: () => undefined }),
          };
    const ws = new WebSocket(url, {
      perMessageDeflate: o.perMessageDeflate,
      maxPayload: o.maxFrameBytes,
      handshakeTimeout: o.handshakeTimeoutMs,
      followRedirects: false,
      // The only reader is another node of the cluster, not a browser behind a caching proxy:
      // an all-zero mask lets ws skip XOR-ing every byte of every frame (RFC 6455 §5.3
      // requires a mask, not a random one, from the client's side).
      generateMask: (mask: Buffer) => mask.fill(0),
      ...(o.localAddress === null ? {} : { localAddress: o.localAddress }),
      ...tlsOptions,
    });
    this.track(ws);
    const connection = new WsConnection(ws, o, address, 'dialed');
    connection.attach(handlers);
    ws.once('open', () => connection.opened());
    return connection;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const ws of this.sockets) ws.terminate();
    this.sockets.clear();
    const o = this.options;
    if (o.listen.kind === 'mounted' && this.onUpgrade !== null) {
      o.listen.server.off('upgrade', this.onUpgrade);
    }
    this.onUpgrade = null;
    this.wss?.close();
    this.wss = null;
    const server = this.ownServer;
    this.ownServer = null;
    if (server !== null) {
      server.closeAllConnections?.();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }

  private track(ws: WebSocket): void {
    this.sockets.add(ws);
    ws.once('close', () => this.sockets.delete(ws));
  }
}

/** One WebSocket as a {@link WireConnection}. */
class WsConnection implements WireConnection {
  private handlers: WireConnectionHandlers | null = null;
  private needDrain = false;
  private writtenTotal = 0;
  private ended = false;
  private alive = true;
  private pinger: NodeJS.Timeout | null = null;
  private maxFrameBytes = MAX_HANDSHAKE_FRAME_BYTES;

  constructor(
    private readonly ws: WebSocket,
    private readonly options: WsDriverOptions,
    readonly remoteAddress: string,
    /** Which end this is, for logs. */
    private readonly role: 'dialed' | 'accepted',
  ) {}

  attach(handlers: WireConnectionHandlers): void {
    this.handlers = handlers;
    const ws = this.ws;
    this.applyReceiveLimit();
    ws.on('message', (data, isBinary) => {
      if (!isBinary) {
        this.reject('malformed', 'a text message (frames are binary)');
        return;
      }
      const frame = Array.isArray(data)
        ? Buffer.concat(data)
        : data instanceof ArrayBuffer
          ? new Uint8Array(data)
          : data;
      if (frame.length === 0) {
        this.reject('malformed', 'an empty message');
        return;
      }
      if (frame.length > this.maxFrameBytes) {
        this.reject(
          'oversize',
          `a frame of ${frame.length} bytes exceeds the limit of ${this.maxFrameBytes}`,
        );
        return;
      }
      this.alive = true;
      try {
        this.handlers?.onFrame(frame);
      } catch (err) {
        // The owner's handlers do not throw; this keeps a bug from becoming a crash.
        this.options.logger.error(
          { remote: this.remoteAddress, error: err instanceof Error ? err.message : String(err) },
          `a frame from ${this.remoteAddress} could not be handled; closing the connection`,
        );
        this.ws.terminate();
      }
    });
    // Both ends ping. A ping from the other end is as good as a pong: it comes on the quiet
    // direction, while our pong may wait behind megabytes of our own data in the kernel.
    ws.on('pong', () => {
      this.alive = true;
    });
    ws.on('ping', () => {
      this.alive = true;
    });
    let error: unknown = null;
    ws.on('error', (err: Error & { code?: string }) => {
      error = err;
      if (typeof err.code === 'string' && err.code.startsWith('WS_ERR_')) {
        this.handlers?.onFrameRejected(
          OVERSIZE_CODES.has(err.code) ? 'oversize' : 'malformed',
          err.message,
        );
      }
    });
    ws.once('close', () => {
      this.stopPinging();
      const h = this.handlers;
      this.handlers = null;
      h?.onClose(error);
    });
    if (ws.readyState === WebSocket.OPEN) this.startPinging();
    else ws.once('open', () => this.startPinging());
  }

  opened(): void {
    this.handlers?.onOpen();
  }

  send(frames: readonly Uint8Array[]): boolean {
    const ws = this.ws;
    if (this.ended || ws.readyState !== WebSocket.OPEN) return true;
    for (const frame of frames) {
      const bytes = frame.length;
      ws.send(frame, { binary: true }, (err) => {
        if (err === undefined || err === null) this.written(bytes);
      });
    }
    if (ws.bufferedAmount >= this.options.highWaterBytes) {
      this.needDrain = true;
      return false;
    }
    return true;
  }

  setMaxFrameBytes(bytes: number): void {
    this.maxFrameBytes = bytes;
    this.applyReceiveLimit();
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    const ws = this.ws;
    if (ws.readyState === WebSocket.CONNECTING) {
      ws.terminate();
      return;
    }
    ws.close(1000);
    // A peer that never answers the close handshake must not hold the socket for ever.
    const timer = setTimeout(() => ws.terminate(), 5000);
    timer.unref();
    ws.once('close', () => clearTimeout(timer));
  }

  destroy(): void {
    this.ended = true;
    this.ws.terminate();
  }

  writtenBytes(): number {
    return this.writtenTotal;
  }

  /** The peer is alive: bytes from it arrived (the listener sees them before a whole message). */
  markAlive(): void {
    this.alive = true;
  }

  private written(bytes: number): void {
    this.writtenTotal += bytes;
    // Our bytes leaving is progress too: on a slow link the pong waits behind them.
    this.alive = true;
    if (this.needDrain && this.ws.bufferedAmount < this.options.highWaterBytes) {
      this.needDrain = false;
      this.handlers?.onDrain();
    }
  }

  private reject(kind: 'oversize' | 'malformed', detail: string): void {
    this.handlers?.onFrameRejected(kind, detail);
    this.destroy();
  }

  /**
   * ws fixes its receive limit per server; lowering it per connection (small until the peer is
   * authenticated) keeps an unauthenticated peer from making this node buffer a 16 MiB message.
   * The receiver's field is internal to ws (pinned at 8.23), so it is set only if it is there;
   * the size check in the message handler holds either way.
   */
  private applyReceiveLimit(): void {
    const limit = Math.min(this.maxFrameBytes, this.options.maxFrameBytes);
    const internals = this.ws as unknown as {
      _receiver?: { _maxPayload?: unknown } | null;
      _extensions?: Record<string, { _maxPayload?: unknown } | undefined>;
    };
    const receiver = internals._receiver;
    if (receiver != null && typeof receiver._maxPayload === 'number') {
      receiver._maxPayload = limit;
    }
    // With permessage-deflate on, the inflater has a limit of its own: without lowering it, an
    // unauthenticated peer could make this node inflate a message of maxFrameBytes.
    const deflate = internals._extensions?.['permessage-deflate'];
    if (deflate !== undefined && typeof deflate._maxPayload === 'number') {
      deflate._maxPayload = limit;
    }
  }

  private startPinging(): void {
    if (this.pinger !== null || this.ended) return;
    this.applyReceiveLimit();
    // A tick with no sign of life since the previous one is a miss; two misses in a row close
    // the connection. One miss is not enough: both ends' timers run on the same period, so a
    // ping from the other end can land just after our tick.
    let missed = 0;
    this.pinger = setInterval(() => {
      missed = this.alive ? 0 : missed + 1;
      // While our own bytes are still leaving (one large message on a slow link), the pong waits
      // behind them: that is the wire layer's stall timer to judge, not the keepalive.
      if (missed >= 2 && this.ws.bufferedAmount === 0) {
        this.options.logger.warn(
          { remote: this.remoteAddress },
          `no pong from ${this.remoteAddress} within ${2 * this.options.keepaliveMs} ms; closing the ${this.role} connection`,
        );
        this.ws.terminate();
        return;
      }
      this.alive = false;
      try {
        this.ws.ping();
      } catch {
        this.ws.terminate();
      }
    }, this.options.keepaliveMs);
    this.pinger.unref();
  }

  private stopPinging(): void {
    if (this.pinger !== null) clearInterval(this.pinger);
    this.pinger = null;
  }
}

/** The ws:// or wss:// URL of a member address (`host:port`, or a full URL used as is). */
export function urlOf(address: string, path: string, secure: boolean): string {
  if (/^wss?:\/\//.test(address)) {
    if (address.startsWith('wss://') !== secure) {
      throw new RaftError(
        'INVALID_ARGUMENT',
        `"${address}" does not match this transport (${secure ? 'wss:// with tls' : 'ws:// without tls'})`,
      );
    }
    return address;
  }
  const hp = parseHostPort(address);
  if (hp === null || hp.port === 0) {
    throw new RaftError('INVALID_ARGUMENT', `"${address}" is neither host:port nor a ws:// URL`);
  }
  return `${secure ? 'wss' : 'ws'}://${formatHostPort(hp.host, hp.port)}${path}`;
}

function pathOf(url: string | undefined): string {
  if (url === undefined) return '';
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

function rejectUpgrade(socket: Duplex, status: number, text: string): void {
  socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  setTimeout(() => socket.destroy(), 1000).unref();
}

function remoteOfSocket(s: Socket): string {
  return s.remoteAddress === undefined || s.remotePort === undefined
    ? 'unknown'
    : formatHostPort(s.remoteAddress, s.remotePort);
}

function remoteOf(req: IncomingMessage): string {
  const s = req.socket;
  return s.remoteAddress === undefined || s.remotePort === undefined
    ? 'unknown'
    : formatHostPort(s.remoteAddress, s.remotePort);
}
