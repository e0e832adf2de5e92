/**
 * One lane of the connection this node dials to one peer: its queue, its connection, the
 * dialer's side of the handshake, and reconnects.
 *
 * ```text
 *            send() with nothing open
 *   idle ────────────────────────────► connecting ── WELCOME ok, PROOF sent ──► open
 *    ▲                                   │    ▲                                  │
 *    │ backoff elapsed, queue empty      │    │ backoff elapsed, queue not empty │ closed
 *    │                                   ▼    │                                  │
 *    └──────────────────────────────── backoff ◄──────── failed ─────────────────┘
 *                                    (onUnreachable)      (an open connection that closes
 *                                                          with nothing queued goes idle)
 * ```
 *
 * Messages wait in the bounded {@link SendQueue} while the link is not open or the socket is
 * full; once open, every flush packs the queue into batch frames and hands them to the socket
 * in one call.
 */

import { encodedSize } from '../codec.js';
import type { NodeId } from '../types.js';
import { Backoff } from './backoff.js';
import { BATCH_HEADER_BYTES, batchItemBytes, encodeBatch, type SizedMessage } from './batch.js';
import { describeError as describe } from './describe-error.js';
import type { WireConnection, WireConnectionHandlers } from './driver.js';
import {
  constantTimeEqual,
  decodeRefuse,
  decodeWelcome,
  encodeHello,
  encodeProof,
  encodeRefuse,
  FRAME_REFUSE,
  FRAME_WELCOME,
  frameKind,
  HANDSHAKE_VERSION,
  handshakeProof,
  MAX_HANDSHAKE_FRAME_BYTES,
  NONCE_BYTES,
  type RefuseReason,
  WIRE_CODEC_VERSION,
} from './handshake.js';
import type { MessageLane } from './lanes.js';
import { SendQueue } from './send-queue.js';
import type { LaneStats } from './stats.js';
import type { WireContext } from './wire-context.js';

type State = LaneStats['state'];

export class OutboundLink {
  private state: State = 'idle';
  private readonly queue: SendQueue;
  private readonly backoff: Backoff;
  private connection: WireConnection | null = null;
  /** The connection's handshake is done and the socket takes more bytes. */
  private writable = false;
  private helloBytes: Uint8Array | null = null;
  private timer: { cancel(): void } | null = null;
  private stallTimer: { cancel(): void } | null = null;
  /** The failure was already reported since the last successful flush. */
  private reported = false;
  /** Consecutive failures since the link was last open (for log levels). */
  private failuresInRow = 0;
  private closed = false;
  /** The current connection ended in a refusal or a protocol error: back off, even if open. */
  private spoiled = false;
  /** This link has been open before (a later open is a reconnect). */
  private everOpened = false;
  /** The last refusal logged at error level, so a repeated one is logged once. */
  private lastRefusal = '';

  constructor(
    private readonly ctx: WireContext,
    readonly peer: NodeId,
    readonly address: string,
    readonly lane: MessageLane,
  ) {
    const o = ctx.options;
    this.queue = new SendQueue({ maxBytes: o.maxQueueBytes, maxMessages: o.maxQueueMessages });
    this.backoff = new Backoff(
      { initialMs: o.initialBackoffMs, maxMs: o.maxBackoffMs },
      ctx.random,
    );
  }

  stats(): LaneStats {
    return { state: this.state, queuedMessages: this.queue.length, queuedBytes: this.queue.bytes };
  }

  /** Queues one sized message; dials when nothing is open. */
  enqueue(item: SizedMessage): void {
    if (this.closed) return;
    if (this.state === 'backoff' && this.lane === 'bulk') {
      // Nothing will carry it before the next dial, and by then the leader knows better what
      // to send (it resends from its log once the peer answers): do not hold megabytes of it.
      this.ctx.countDrop(this.peer, 'linkDown');
      return;
    }
    const pushed = this.queue.push(item, !(this.state === 'open' && this.writable));
    if (pushed === false) {
      this.ctx.countDrop(this.peer, 'queueFull');
      if (!this.reported) {
        this.reported = true;
        this.ctx.unreachable(this.peer);
      }
      return;
    }
    if (this.state === 'idle') this.dial();
    else if (this.state === 'open' && this.writable) this.ctx.scheduleFlush(this);
  }

  /**
   * Writes what is queued, one batch frame at a time, while the socket takes it: once the
   * socket holds more than it wants, the rest waits for its drain (so what is on its way to a
   * slow peer stays about one batch, and the stall timer sees steady progress).
   */
  flush(): void {
    if (this.state !== 'open' || !this.writable || this.queue.length === 0) return;
    const connection = this.connection as WireConnection;
    const counters = this.ctx.counters(this.peer);
    const budget = this.ctx.options.maxBatchBytes - BATCH_HEADER_BYTES;
    this.reported = false;
    // A bound on one flush's work; what is left goes on the next turn.
    for (let handed = 0; this.queue.length > 0 && handed < 4 * this.ctx.options.maxBatchBytes; ) {
      const items = this.queue.take(budget, batchItemBytes);
      const frame = this.encode(items);
      if (frame === null) continue;
      handed += frame.length;
      counters.messagesSent += frame.messages;
      counters.bytesSent += frame.length;
      if (!connection.send([frame.bytes])) {
        this.blocked();
        return;
      }
    }
    if (this.queue.length > 0) this.ctx.scheduleFlush(this);
  }

  /**
   * Packs `items` into one batch frame. `send()` measured every message, so encoding fails only
   * if a message changed since (its data detached or resized under it): such a message is
   * dropped and counted, never thrown out of the flush.
   */
  private encode(
    items: SizedMessage[],
  ): { bytes: Uint8Array; length: number; messages: number } | null {
    try {
      const bytes = encodeBatch(items);
      return { bytes, length: bytes.length, messages: items.length };
    } catch {
      const good = items.filter((item) => {
        try {
          return encodedSize(item.message) === item.size;
        } catch {
          return false;
        }
      });
      const bad = items.length - good.length;
      this.ctx.countDrop(this.peer, 'encode', bad);
      this.ctx.logger.error(
        { peer: this.peer, lane: this.lane, dropped: bad },
        `${this.ctx.options.id}: dropped ${bad} message(s) to ${this.peer} that changed after send() and can no longer be encoded`,
      );
      if (good.length === 0) return null;
      try {
        const bytes = encodeBatch(good);
        return { bytes, length: bytes.length, messages: good.length };
      } catch {
        this.ctx.countDrop(this.peer, 'encode', good.length);
        return null;
      }
    }
  }

  /** Closes the link for good (the peer was removed, or the transport closes). */
  close(reason: 'removed' | 'closed'): void {
    if (this.closed) return;
    this.closed = true;
    const dropped = this.queue.clear();
    if (reason === 'removed' && dropped > 0) this.ctx.countDrop(this.peer, 'removed', dropped);
    this.cancelTimers();
    const connection = this.connection;
    this.connection = null;
    if (connection !== null) {
      if (reason === 'removed') connection.end();
      else connection.destroy();
    }
    this.state = 'idle';
  }

  // ------------------------------------------------------------------------ connection

  private dial(): void {
    if (this.closed || !this.ctx.running()) return;
    this.state = 'connecting';
    this.writable = false;
    this.spoiled = false;
    const handlers = this.handlers();
    this.timer = this.ctx.clock.setTimer(this.ctx.options.handshakeTimeoutMs, () => {
      this.timer = null;
      this.fail(`no handshake within ${this.ctx.options.handshakeTimeoutMs} ms`);
    });
    try {
      this.connection = this.ctx.driver.dial(this.address, handlers);
    } catch (err) {
      this.connection = null;
      this.fail(`dial failed: ${describe(err)}`);
      return;
    }
    this.connection.setMaxFrameBytes(MAX_HANDSHAKE_FRAME_BYTES);
  }

  private handlers(): WireConnectionHandlers {
    // Each connection gets its own handlers: events of a connection the link already gave up
    // on (a late close, a late frame) must not touch the next one.
    let current = true;
    const mine = () => current && !this.closed;
    return {
      onOpen: () => {
        if (mine()) this.sendHello();
      },
      onFrame: (frame) => {
        // After a refusal or a protocol error, nothing more from this connection counts.
        if (mine() && !this.spoiled) this.receive(frame);
      },
      onDrain: () => {
        if (!mine() || this.state !== 'open') return;
        this.writable = true;
        this.stallTimer?.cancel();
        this.stallTimer = null;
        this.flush();
      },
      onFrameRejected: (kind, detail) => {
        if (!mine()) return;
        this.ctx.countRejectedFrame(kind);
        this.ctx.emit({
          type: 'frameRejected',
          kind,
          peer: this.peer,
          remoteAddress: this.address,
          message: detail,
        });
        this.ctx.logger.warn(
          { peer: this.peer, lane: this.lane, address: this.address, kind },
          `${this.ctx.options.id}: ${this.peer} at ${this.address} sent a frame this node rejected (${kind}): ${detail}`,
        );
      },
      onClose: (error) => {
        if (!current) return;
        current = false;
        if (this.closed) return;
        this.connection = null;
        const wasOpen = this.state === 'open';
        if (wasOpen) {
          this.ctx.emit({
            type: 'disconnected',
            peer: this.peer,
            lane: this.lane,
            direction: 'outbound',
            remoteAddress: this.address,
          });
        }
        if (wasOpen && this.queue.length === 0 && !this.spoiled) {
          // The peer closed an idle connection (its idle timeout, or it restarted): dial again
          // when there is something to send.
          this.cancelTimers();
          this.state = 'idle';
          this.ctx.logger.debug(
            {
              peer: this.peer,
              lane: this.lane,
              error: error === null ? undefined : describe(error),
            },
            `${this.ctx.options.id}: connection to ${this.peer} (${this.lane}) closed`,
          );
          return;
        }
        this.fail(error === null ? 'connection closed' : describe(error));
      },
    };
  }

  private sendHello(): void {
    if (this.state !== 'connecting' || this.connection === null) return;
    const o = this.ctx.options;
    this.helloBytes = encodeHello({
      handshakeVersion: HANDSHAKE_VERSION,
      codecVersion: WIRE_CODEC_VERSION,
      lane: this.lane,
      hasSecret: o.secret !== null,
      clusterId: o.clusterId,
      from: o.id,
      to: this.peer,
      listenAddress: this.ctx.listenAddress(),
      nonce: this.ctx.crypto.randomBytes(NONCE_BYTES),
    });
    this.connection.send([this.helloBytes]);
  }

  private receive(frame: Uint8Array): void {
    const kind = frameKind(frame);
    if (kind === FRAME_REFUSE) {
      let text: string;
      let reason: RefuseReason;
      try {
        ({ reason, text } = decodeRefuse(frame));
      } catch (err) {
        reason = 'malformed';
        text = `an unreadable refusal (${describe(err)})`;
      }
      this.refused(
        'peer',
        reason,
        `${this.peer} at ${this.address} refused ${this.ctx.options.id}: ${text}`,
      );
      return;
    }
    if (this.state !== 'connecting' || this.helloBytes === null || kind !== FRAME_WELCOME) {
      this.protocolError(`unexpected frame of kind ${kind} in state ${this.state}`);
      return;
    }
    let decoded: ReturnType<typeof decodeWelcome>;
    try {
      decoded = decodeWelcome(frame);
    } catch (err) {
      this.protocolError(describe(err));
      return;
    }
    const { welcome, body } = decoded;
    const o = this.ctx.options;
    const us = `${o.id} (cluster '${o.clusterId}', codec version ${WIRE_CODEC_VERSION})`;
    const them = `${welcome.nodeId} at ${this.address} (cluster '${welcome.clusterId}', codec version ${welcome.codecVersion})`;
    let refusal: [RefuseReason, string] | null = null;
    if (welcome.codecVersion !== WIRE_CODEC_VERSION) {
      refusal = ['version', `protocol version mismatch: ${us} cannot talk to ${them}`];
    } else if (welcome.clusterId !== o.clusterId) {
      refusal = ['cluster', `cluster mismatch: ${us} dialed ${them}`];
    } else if (welcome.nodeId !== this.peer) {
      refusal = [
        'wrongNode',
        `${o.id} dialed ${this.peer} at ${this.address}, but ${welcome.nodeId} answers there`,
      ];
    } else if (o.secret === null && welcome.hasSecret) {
      refusal = ['auth', `${welcome.nodeId} requires a cluster secret and ${o.id} has none`];
    } else if (o.secret !== null && !welcome.hasSecret) {
      refusal = ['auth', `${o.id} requires a cluster secret and ${welcome.nodeId} has none`];
    } else if (o.secret !== null) {
      const expected = handshakeProof(this.ctx.crypto, o.secret, 'listener', this.helloBytes, body);
      if (!constantTimeEqual(expected, welcome.proof)) {
        refusal = [
          'auth',
          `${welcome.nodeId} at ${this.address} failed to prove it holds the cluster secret of ${o.id} (different secrets)`,
        ];
      }
    }
    const connection = this.connection as WireConnection;
    if (refusal !== null) {
      connection.send([encodeRefuse({ reason: refusal[0], text: refusal[1] })]);
      this.refused('us', refusal[0], refusal[1]);
      return;
    }
    const proof =
      o.secret === null
        ? new Uint8Array(0)
        : handshakeProof(this.ctx.crypto, o.secret, 'dialer', this.helloBytes, body);
    connection.send([encodeProof(proof)]);
    this.opened();
  }

  private opened(): void {
    this.cancelTimers();
    const counters = this.ctx.counters(this.peer);
    counters.connects++;
    if (this.everOpened) counters.reconnects++;
    this.everOpened = true;
    if (this.failuresInRow > 0) {
      this.ctx.logger.info(
        { peer: this.peer, lane: this.lane, address: this.address, failures: this.failuresInRow },
        `${this.ctx.options.id}: connected to ${this.peer} at ${this.address} (${this.lane}) after ${this.failuresInRow} failed attempt(s)`,
      );
    } else {
      this.ctx.logger.debug(
        { peer: this.peer, lane: this.lane, address: this.address },
        `${this.ctx.options.id}: connected to ${this.peer} at ${this.address} (${this.lane})`,
      );
    }
    this.failuresInRow = 0;
    this.lastRefusal = '';
    this.backoff.reset();
    this.state = 'open';
    this.writable = true;
    this.helloBytes = null;
    this.ctx.emit({
      type: 'connected',
      peer: this.peer,
      lane: this.lane,
      direction: 'outbound',
      remoteAddress: this.address,
    });
    this.flush();
  }

  /**
   * The socket holds more than it wants: wait for its drain. If it finishes writing nothing at
   * all for `writeStallTimeoutMs` (the peer's host vanished without a reset, or stopped
   * reading), drop the connection and redial. A slow link that keeps writing is not a stall.
   */
  private blocked(): void {
    this.writable = false;
    if (this.stallTimer !== null) return;
    const connection = this.connection as WireConnection;
    let written = connection.writtenBytes();
    const check = () => {
      this.stallTimer = null;
      if (this.state !== 'open' || this.writable || this.connection !== connection) return;
      const now = connection.writtenBytes();
      if (now > written) {
        written = now;
        this.stallTimer = this.ctx.clock.setTimer(this.ctx.options.writeStallTimeoutMs, check);
        return;
      }
      this.ctx.logger.warn(
        { peer: this.peer, lane: this.lane, address: this.address },
        `${this.ctx.options.id}: ${this.peer} at ${this.address} took no bytes for ${this.ctx.options.writeStallTimeoutMs} ms; reconnecting`,
      );
      this.spoiled = true;
      connection.destroy();
    };
    this.stallTimer = this.ctx.clock.setTimer(this.ctx.options.writeStallTimeoutMs, check);
  }

  private refused(by: 'us' | 'peer', reason: RefuseReason, message: string): void {
    this.ctx.countRefused(reason);
    this.ctx.emit({
      type: 'refused',
      peer: this.peer,
      by,
      reason,
      remoteAddress: this.address,
      message,
    });
    // A refusal is a configuration problem that will not fix itself soon: log it once (until
    // it changes) and back off.
    const fields = { peer: this.peer, lane: this.lane, address: this.address, reason, by };
    if (message !== this.lastRefusal) this.ctx.logger.error(fields, message);
    else this.ctx.logger.debug(fields, message);
    this.lastRefusal = message;
    this.spoiled = true;
    this.connection?.end();
  }

  private protocolError(detail: string): void {
    this.ctx.countRejectedFrame('malformed');
    const message = `${this.ctx.options.id}: ${this.peer} at ${this.address} broke the handshake: ${detail}`;
    this.ctx.emit({
      type: 'frameRejected',
      kind: 'malformed',
      peer: this.peer,
      remoteAddress: this.address,
      message,
    });
    this.ctx.logger.warn({ peer: this.peer, lane: this.lane, address: this.address }, message);
    this.spoiled = true;
    this.connection?.destroy();
  }

  /** A dial, handshake or open connection failed: report, back off, redial if needed. */
  private fail(why: string): void {
    this.cancelTimers();
    const connection = this.connection;
    this.connection = null;
    connection?.destroy();
    this.writable = false;
    this.helloBytes = null;
    if (this.closed) return;
    this.failuresInRow++;
    this.ctx.counters(this.peer).connectFailures++;
    if (this.lane === 'bulk') {
      const dropped = this.queue.clear();
      if (dropped > 0) this.ctx.countDrop(this.peer, 'linkDown', dropped);
    }
    const fields = { peer: this.peer, lane: this.lane, address: this.address, error: why };
    const text = `${this.ctx.options.id}: cannot reach ${this.peer} at ${this.address} (${this.lane}): ${why}; retrying`;
    if (this.failuresInRow === 1) this.ctx.logger.warn(fields, text);
    else this.ctx.logger.debug(fields, text);
    this.ctx.emit({ type: 'unreachable', peer: this.peer });
    this.ctx.unreachable(this.peer);
    this.reported = true;
    this.state = 'backoff';
    this.timer = this.ctx.clock.setTimer(this.backoff.next(), () => {
      this.timer = null;
      if (this.closed || this.state !== 'backoff') return;
      if (this.queue.length > 0) this.dial();
      else this.state = 'idle';
    });
  }

  private cancelTimers(): void {
    this.timer?.cancel();
    this.timer = null;
    this.stallTimer?.cancel();
    this.stallTimer = null;
  }
}
