/**
 * A {@link Transport} over any {@link WireDriver}: the part of a network transport that does
 * not depend on the socket API. @raft/transport-tcp and @raft/transport-ws are this plus a
 * driver.
 *
 * - Per peer, two lanes ({@link messageLane}), each its own one-way connection dialed by the
 *   sender: heartbeats never queue behind a snapshot chunk.
 * - Per lane, a bounded queue (heartbeats coalesce); overflow is dropped and reported to the
 *   core as the peer being unreachable, so its leader backs off to probing.
 * - All messages queued for one lane during one event-loop turn leave as one batch frame in
 *   one write.
 * - Every connection starts with the handshake (handshake.ts): versions, cluster id, node ids,
 *   and the secret's challenge-response. Nothing reaches the core before it completes.
 * - Reconnects with exponential backoff and jitter; `onUnreachable` on every failure.
 * - Never throws from `send()`: a message that cannot be encoded, is too large, or has no
 *   address is dropped and counted.
 */
import { encodedSize } from '../codec.js';
import { ConfigError, RaftError } from '../errors.js';
import type { Clock, Random } from '../interfaces/clock.js';
import type { Transport, TransportHandlers } from '../interfaces/transport.js';
import { childLogger, type Logger, noopLogger } from '../logger.js';
import type { RaftMessage } from '../messages.js';
import { hostNextTurn, hostRandom, queueMicrotask } from '../platform.js';
import { systemClock } from '../runtime/system-clock.js';
import type { Member, NodeId } from '../types.js';
import { parseHostPort } from './address.js';
import { BATCH_HEADER_BYTES, batchItemBytes } from './batch.js';
import { describeError } from './describe-error.js';
import type { FrameRejection, WireConnection, WireDriver } from './driver.js';
import { REFUSE_REASONS, type WireCrypto } from './handshake.js';
import { InboundConnection, type InboundRegistry } from './inbound-connection.js';
import { type MessageLane, messageLane } from './lanes.js';
import { OutboundLink } from './outbound-link.js';
import {
  DROP_REASONS,
  type DropReason,
  PeerCounters,
  type PeerStats,
  type TransportEvent,
  type TransportStats,
  zeroCounts,
} from './stats.js';
import type { WireContext } from './wire-context.js';
import { type ResolvedWireOptions, resolveWireOptions, type WireOptions } from './wire-options.js';

/** A network transport: a {@link Transport} with an address, counters and events. */
export interface NetworkTransport extends Transport {
  /** The address it listens on (`host:port`), once `start()` resolved; null before. */
  readonly address: string | null;
  /** A snapshot of the counters. */
  stats(): TransportStats;
  /** Calls `listener` with every {@link TransportEvent}; returns the function that removes it. */
  subscribe(listener: (event: TransportEvent) => void): () => void;
}

/** What {@link createWireTransport} takes besides the shared options. */
export interface WireTransportDeps {
  readonly driver: WireDriver;
  readonly crypto: WireCrypto;
  /**
   * The address announced to peers in the handshake, so a node that is not in their
   * configuration yet (a joining node) can be answered. Default: the address the driver
   * listens on.
   */
  readonly advertiseAddress?: string;
}

const FRAME_REJECTIONS: readonly FrameRejection[] = ['oversize', 'malformed'];
/** Learned addresses kept for nodes outside setPeers() (joining or removed nodes). */
const MAX_LEARNED = 1024;

interface PeerLinks {
  readonly address: string;
  readonly lanes: Partial<Record<MessageLane, OutboundLink>>;
}

/**
 * Builds a network transport on `deps.driver`. Throws a ConfigError for a bad option.
 *
 * @example
 * ```ts
 * // What @raft/transport-tcp does, in essence:
 * const transport = createWireTransport({ id: 'n1', clusterId: 'prod' }, { driver: tcpDriver, crypto });
 * ```
 */
export function createWireTransport(
  options: WireOptions,
  deps: WireTransportDeps,
): NetworkTransport {
  return new WireTransport(options, deps);
}

class WireTransport implements NetworkTransport, InboundRegistry {
  private readonly options: ResolvedWireOptions;
  private readonly driver: WireDriver;
  private readonly crypto: WireCrypto;
  private readonly clock: Clock;
  private readonly random: Random;
  private readonly logger: Logger;
  private readonly ctx: WireContext;
  private state: 'created' | 'starting' | 'running' | 'closing' | 'closed' = 'created';
  private handlers: TransportHandlers | null = null;
  private listening: string | null = null;
  private advertised: string;
  /** The last setPeers(), by id. */
  private members = new Map<NodeId, string>();
  /** Addresses announced by nodes that dialed us, for nodes outside `members`. */
  private readonly learned = new Map<NodeId, string>();
  private readonly links = new Map<NodeId, PeerLinks>();
  private readonly inbound = new Set<InboundConnection>();
  /** Authenticated inbound connections, by peer and lane: a newer one replaces an older one. */
  private readonly inboundByPeer = new Map<string, InboundConnection>();
  private readonly counters = new Map<NodeId, PeerCounters>();
  private readonly dropped = zeroCounts(DROP_REASONS);
  private readonly refused = zeroCounts(REFUSE_REASONS);
  private readonly rejectedFrames = zeroCounts(FRAME_REJECTIONS);
  private listeners: ((event: TransportEvent) => void)[] = [];
  private dirty = new Set<OutboundLink>();
  private flushScheduled = false;
  private idleTimer: { cancel(): void } | null = null;
  /** The driver's listen() while start() waits for it. */
  private listen: Promise<string> | null = null;

  constructor(options: WireOptions, deps: WireTransportDeps) {
    this.options = resolveWireOptions(options);
    if (deps === null || typeof deps !== 'object' || typeof deps.driver?.dial !== 'function') {
      throw new ConfigError('driver', 'must be a WireDriver');
    }
    if (
      typeof deps.crypto?.hmacSha256 !== 'function' ||
      typeof deps.crypto?.randomBytes !== 'function'
    ) {
      throw new ConfigError('crypto', 'must provide hmacSha256() and randomBytes()');
    }
    this.driver = deps.driver;
    this.crypto = deps.crypto;
    this.advertised = deps.advertiseAddress ?? '';
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? hostRandom;
    this.logger = childLogger(options.logger ?? noopLogger, {
      transport: deps.driver.name,
      nodeId: this.options.id,
    });
    this.ctx = {
      options: this.options,
      driver: this.driver,
      crypto: this.crypto,
      clock: this.clock,
      random: this.random,
      logger: this.logger,
      listenAddress: () => this.advertised,
      running: () => this.state === 'running',
      counters: (peer) => this.countersOf(peer),
      countDrop: (peer, reason, count = 1) => this.countDrop(peer, reason, count),
      countRefused: (reason) => {
        this.refused[reason]++;
      },
      countRejectedFrame: (kind) => {
        this.rejectedFrames[kind]++;
      },
      emit: (event) => this.emit(event),
      // Never from inside send(): the core is in the middle of handing over a Ready then.
      unreachable: (peer) =>
        queueMicrotask(() => {
          if (this.state !== 'running') return;
          try {
            this.handlers?.onUnreachable?.(peer);
          } catch (err) {
            this.logger.error({ peer, error: describeError(err) }, 'onUnreachable threw');
          }
        }),
      deliver: (messages) => this.deliver(messages),
      scheduleFlush: (link) => this.scheduleFlush(link as OutboundLink),
    };
  }

  get address(): string | null {
    return this.listening;
  }

  async start(handlers: TransportHandlers): Promise<void> {
    if (this.state !== 'created') {
      throw new RaftError(
        'INVALID_ARGUMENT',
        `start() called on a transport that is ${this.state}`,
      );
    }
    this.state = 'starting';
    this.handlers = handlers;
    const listening = this.driver.listen((connection) => this.accept(connection));
    this.listen = listening;
    try {
      this.listening = await listening;
    } catch (err) {
      this.state = 'closed';
      this.handlers = null;
      throw RaftError.is(err)
        ? err
        : new RaftError(
            'UNAVAILABLE',
            `${this.driver.name} transport of ${this.options.id} cannot listen: ${describeError(err)}`,
            { cause: err },
          );
    }
    if (this.state !== 'starting') {
      // close() ran while we were starting to listen; it releases the listener.
      throw new RaftError(
        'SHUTDOWN',
        `the transport of ${this.options.id} was closed while starting`,
      );
    }
    if (this.advertised === '') this.advertised = this.listening;
    this.state = 'running';
    this.scheduleIdleSweep();
    this.logger.info(
      {
        address: this.listening,
        clusterId: this.options.clusterId,
        secret: this.options.secret !== null,
      },
      `${this.options.id}: ${this.driver.name} transport listening on ${this.listening}`,
    );
  }

  send(messages: readonly RaftMessage[]): void {
    if (!Array.isArray(messages)) return;
    for (const message of messages) {
      try {
        this.sendOne(message);
      } catch (err) {
        // sendOne() catches what it expects; this is a last line of defence for the contract.
        this.countDrop(null, 'encode', 1);
        this.logger.error(
          { error: describeError(err) },
          `${this.options.id}: send() failed internally`,
        );
      }
    }
  }

  setPeers(peers: readonly Member[]): void {
    if (this.state === 'closing' || this.state === 'closed') return;
    if (!Array.isArray(peers)) {
      this.logger.error(
        { peers: String(peers) },
        `${this.options.id}: setPeers() needs an array; ignored`,
      );
      return;
    }
    const next = new Map<NodeId, string>();
    for (const m of peers) {
      if (m === null || typeof m !== 'object' || typeof m.id !== 'string') continue;
      if (m.id === this.options.id || typeof m.address !== 'string' || m.address === '') continue;
      next.set(m.id, m.address);
    }
    this.members = next;
    for (const [id, peer] of this.links) {
      const address = this.addressOf(id);
      if (address !== peer.address) this.dropLinks(id, address === null ? 'removed' : 'moved');
    }
  }

  async close(): Promise<void> {
    if (this.state === 'closed' || this.state === 'closing') return;
    const wasStarting = this.state === 'starting';
    this.state = 'closing';
    this.idleTimer?.cancel();
    this.idleTimer = null;
    for (const id of [...this.links.keys()]) this.dropLinks(id, 'closed');
    for (const c of [...this.inbound]) c.destroy();
    this.inbound.clear();
    this.inboundByPeer.clear();
    this.dirty.clear();
    try {
      // A listener still being set up is released once it is (or has failed).
      if (wasStarting) await this.listen?.catch(() => {});
      await this.driver.close();
    } finally {
      this.state = 'closed';
      this.handlers = null;
      this.logger.debug({}, `${this.options.id}: ${this.driver.name} transport closed`);
    }
  }

  stats(): TransportStats {
    const ids = new Set<NodeId>([
      ...this.members.keys(),
      ...this.links.keys(),
      ...this.counters.keys(),
    ]);
    const peers: PeerStats[] = [];
    const idle = { state: 'idle' as const, queuedMessages: 0, queuedBytes: 0 };
    for (const id of [...ids].sort()) {
      const c = this.countersOf(id);
      const links = this.links.get(id);
      peers.push({
        id,
        address: this.addressOf(id),
        lanes: {
          control: links?.lanes.control?.stats() ?? idle,
          bulk: links?.lanes.bulk?.stats() ?? idle,
        },
        messagesSent: c.messagesSent,
        bytesSent: c.bytesSent,
        messagesReceived: c.messagesReceived,
        bytesReceived: c.bytesReceived,
        connects: c.connects,
        reconnects: c.reconnects,
        connectFailures: c.connectFailures,
        dropped: c.dropped,
      });
    }
    return {
      address: this.listening,
      peers,
      dropped: { ...this.dropped },
      refused: { ...this.refused },
      rejectedFrames: { ...this.rejectedFrames },
      inboundConnections: this.inbound.size,
    };
  }

  subscribe(listener: (event: TransportEvent) => void): () => void {
    this.listeners = [...this.listeners, listener];
    return () => {
      this.listeners = this.listeners.filter((l) => l !== listener);
    };
  }

  // ------------------------------------------------------------------------ InboundRegistry

  authenticated(
    connection: InboundConnection,
    peer: NodeId,
    lane: MessageLane,
    address: string,
  ): void {
    const key = `${peer}\u0000${lane}`;
    const older = this.inboundByPeer.get(key);
    this.inboundByPeer.set(key, connection);
    // The peer restarted or redialed: keep one connection per lane, so its order holds.
    if (older !== undefined && older !== connection) older.end();
    if (!this.members.has(peer) && dialable(address)) {
      const known = this.learned.get(peer);
      if (known !== address) {
        this.learned.delete(peer);
        this.learned.set(peer, address);
        if (this.learned.size > MAX_LEARNED) {
          // Forget the oldest stranger entirely: its address, links and counters.
          const oldest = this.learned.keys().next().value as NodeId;
          this.learned.delete(oldest);
          this.dropLinks(oldest, 'removed');
          this.counters.delete(oldest);
        }
        const links = this.links.get(peer);
        if (links !== undefined && links.address !== address && !this.members.has(peer)) {
          this.dropLinks(peer, 'moved');
        }
      }
    }
  }

  gone(connection: InboundConnection): void {
    this.inbound.delete(connection);
    const peer = connection.peer;
    const lane = connection.lane;
    if (peer !== null && lane !== null) {
      const key = `${peer}\u0000${lane}`;
      if (this.inboundByPeer.get(key) === connection) this.inboundByPeer.delete(key);
    }
  }

  // ------------------------------------------------------------------------ internals

  private sendOne(message: RaftMessage): void {
    if (message === null || typeof message !== 'object' || typeof message.to !== 'string') {
      this.countDrop(null, 'encode', 1);
      return;
    }
    const to = message.to;
    if (this.state !== 'running') {
      this.countDrop(to, 'notRunning', 1);
      return;
    }
    if (to === this.options.id) {
      this.countDrop(to, 'noAddress', 1);
      return;
    }
    const address = this.addressOf(to);
    if (address === null) {
      this.countDrop(to, 'noAddress', 1);
      return;
    }
    let size: number;
    try {
      size = encodedSize(message);
    } catch (err) {
      this.countDrop(to, 'encode', 1);
      this.logger.error(
        { peer: to, type: message.type, error: describeError(err) },
        `${this.options.id}: dropped a ${message.type} to ${to} that cannot be encoded: ${describeError(err)}`,
      );
      return;
    }
    if (BATCH_HEADER_BYTES + batchItemBytes(size) > this.options.maxFrameBytes) {
      this.countDrop(to, 'oversize', 1);
      this.logger.error(
        { peer: to, type: message.type, bytes: size, maxFrameBytes: this.options.maxFrameBytes },
        `${this.options.id}: dropped a ${message.type} of ${size} bytes to ${to}: larger than maxFrameBytes (${this.options.maxFrameBytes})`,
      );
      return;
    }
    this.linkOf(to, address, messageLane(message)).enqueue({ message, size });
  }

  private linkOf(peer: NodeId, address: string, lane: MessageLane): OutboundLink {
    let links = this.links.get(peer);
    if (links === undefined || links.address !== address) {
      if (links !== undefined) this.dropLinks(peer, 'moved');
      links = { address, lanes: {} };
      this.links.set(peer, links);
    }
    let link = links.lanes[lane];
    if (link === undefined) {
      link = new OutboundLink(this.ctx, peer, address, lane);
      links.lanes[lane] = link;
    }
    return link;
  }

  private dropLinks(peer: NodeId, why: 'removed' | 'moved' | 'closed'): void {
    const links = this.links.get(peer);
    if (links === undefined) return;
    this.links.delete(peer);
    for (const link of Object.values(links.lanes)) {
      if (link === undefined) continue;
      this.dirty.delete(link);
      link.close(why === 'closed' ? 'closed' : 'removed');
    }
  }

  private addressOf(peer: NodeId): string | null {
    return this.members.get(peer) ?? this.learned.get(peer) ?? null;
  }

  private accept(connection: WireConnection) {
    const inbound = new InboundConnection(this.ctx, this, connection);
    const handlers = inbound.handlers();
    if (this.state !== 'running') {
      queueClose(() => inbound.refuseWith('shutdown', `${this.options.id} is not running`));
      this.inbound.add(inbound);
      return handlers;
    }
    let pending = 0;
    for (const c of this.inbound) if (!c.authenticated) pending++;
    this.inbound.add(inbound);
    if (pending >= this.options.maxPendingHandshakes) {
      this.logger.warn(
        { remote: connection.remoteAddress, pending },
        `${this.options.id}: refused a connection from ${connection.remoteAddress}: ${pending} handshakes already pending (maxPendingHandshakes)`,
      );
      queueClose(() =>
        inbound.refuseWith('overloaded', `${this.options.id} has too many pending handshakes`),
      );
    }
    return handlers;
  }

  private deliver(messages: readonly RaftMessage[]): void {
    const handlers = this.handlers;
    if (this.state !== 'running' || handlers === null) return;
    for (const m of messages) {
      try {
        handlers.onMessage(m);
      } catch (err) {
        this.logger.error(
          { from: m.from, type: m.type, error: describeError(err) },
          `${this.options.id}: onMessage threw for a ${m.type} from ${m.from} (it must not)`,
        );
      }
    }
  }

  private scheduleFlush(link: OutboundLink): void {
    this.dirty.add(link);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    hostNextTurn(() => {
      this.flushScheduled = false;
      const dirty = this.dirty;
      this.dirty = new Set();
      for (const l of dirty) l.flush();
    });
  }

  private scheduleIdleSweep(): void {
    const period = Math.max(10, Math.floor(this.options.idleTimeoutMs / 2));
    this.idleTimer = this.clock.setTimer(period, () => {
      this.idleTimer = null;
      if (this.state !== 'running') return;
      const now = this.clock.now();
      for (const c of this.inbound) {
        if (c.authenticated && now - c.lastActivity >= this.options.idleTimeoutMs) c.end();
      }
      this.scheduleIdleSweep();
    });
  }

  /**
   * The counters of `peer`. Only members, nodes whose address was learned and nodes with links
   * get a record of their own (all bounded), so ids that strangers make up cannot grow the map:
   * theirs go to a scratch record nobody reads.
   */
  private countersOf(peer: NodeId): PeerCounters {
    let c = this.counters.get(peer);
    if (c === undefined) {
      if (!this.members.has(peer) && !this.learned.has(peer) && !this.links.has(peer)) {
        return new PeerCounters();
      }
      c = new PeerCounters();
      this.counters.set(peer, c);
    }
    return c;
  }

  private countDrop(peer: NodeId | null, reason: DropReason, count: number): void {
    this.dropped[reason] += count;
    // Per-peer counters only for peers we know, so junk ids cannot grow the map.
    if (
      peer !== null &&
      (this.members.has(peer) || this.learned.has(peer) || this.counters.has(peer))
    ) {
      this.countersOf(peer).dropped += count;
    }
  }

  private emit(event: TransportEvent): void {
    for (const l of this.listeners) {
      try {
        l(event);
      } catch (err) {
        this.logger.error({ error: describeError(err) }, 'a transport event listener threw');
      }
    }
  }
}

/** An announced address this node could dial: `host:port` or a ws:// / wss:// URL. */
function dialable(address: string): boolean {
  if (address.length === 0 || address.length > 1024) return false;
  if (/^wss?:\/\/[^\s]+$/.test(address)) return true;
  const hp = parseHostPort(address);
  return hp !== null && hp.port !== 0;
}

/** Runs `fn` once the driver has finished wiring the connection's handlers. */
function queueClose(fn: () => void): void {
  hostNextTurn(fn);
}
