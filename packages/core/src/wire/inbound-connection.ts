/**
 * A connection another node dialed to this one: the listener's side of the handshake, then the
 * Raft messages the authenticated peer sends on it.
 *
 * ```text
 *   hello ── valid HELLO, WELCOME sent ──► proof ── valid PROOF ──► open ── BATCH… ──► core
 *     │                                      │                       │
 *     └──── anything else, or timeout ───────┴─── REFUSE / close ────┴── bad frame: close
 * ```
 *
 * Until the PROOF is accepted nothing reaches the core and frames are capped at
 * MAX_HANDSHAKE_FRAME_BYTES, so an unauthenticated process costs a few kilobytes and one
 * handshake slot, for at most `handshakeTimeoutMs`. A frame that cannot be decoded closes the
 * connection; none of its messages is delivered.
 */
import type { TimerHandle } from '../interfaces/clock.js';
import type { RaftMessage } from '../messages.js';
import type { NodeId } from '../types.js';
import { decodeBatch } from './batch.js';
import { describeError } from './describe-error.js';
import type { FrameRejection, WireConnection, WireConnectionHandlers } from './driver.js';
import {
  constantTimeEqual,
  decodeHello,
  decodeProof,
  encodeRefuse,
  encodeWelcome,
  encodeWelcomeBody,
  FRAME_BATCH,
  FRAME_HELLO,
  FRAME_PROOF,
  FRAME_REFUSE,
  frameKind,
  HANDSHAKE_VERSION,
  type Hello,
  handshakeProof,
  MAX_HANDSHAKE_FRAME_BYTES,
  NONCE_BYTES,
  type RefuseReason,
  WIRE_CODEC_VERSION,
} from './handshake.js';
import type { MessageLane } from './lanes.js';
import type { WireContext } from './wire-context.js';

/** What the transport does when a connection authenticates or goes away. */
export interface InboundRegistry {
  /** The peer `peer` authenticated on `connection` for `lane`; `address` is where it listens. */
  authenticated(
    connection: InboundConnection,
    peer: NodeId,
    lane: MessageLane,
    address: string,
  ): void;
  /** The connection closed (after `authenticated` or not). */
  gone(connection: InboundConnection): void;
}

type State = 'hello' | 'proof' | 'open' | 'closed';

export class InboundConnection {
  private state: State = 'hello';
  private peerId: NodeId | null = null;
  private laneName: MessageLane | null = null;
  private hello: { bytes: Uint8Array; value: Hello } | null = null;
  private welcomeBody: Uint8Array | null = null;
  private timer: TimerHandle | null = null;
  /** `clock.now()` when the last frame arrived, for the idle timeout. */
  lastActivity: number;

  constructor(
    private readonly ctx: WireContext,
    private readonly registry: InboundRegistry,
    private readonly connection: WireConnection,
  ) {
    this.lastActivity = ctx.clock.now();
    connection.setMaxFrameBytes(MAX_HANDSHAKE_FRAME_BYTES);
    this.timer = ctx.clock.setTimer(ctx.options.handshakeTimeoutMs, () => {
      this.timer = null;
      if (this.state === 'hello' || this.state === 'proof') {
        this.ctx.logger.info(
          { remote: this.connection.remoteAddress, state: this.state },
          `${this.ctx.options.id}: closed a connection from ${this.connection.remoteAddress} that did not complete its handshake within ${this.ctx.options.handshakeTimeoutMs} ms`,
        );
        this.connection.destroy();
      }
    });
  }

  get authenticated(): boolean {
    return this.state === 'open';
  }

  get peer(): NodeId | null {
    return this.peerId;
  }

  get lane(): MessageLane | null {
    return this.laneName;
  }

  get remoteAddress(): string {
    return this.connection.remoteAddress;
  }

  handlers(): WireConnectionHandlers {
    return {
      onOpen: () => {},
      onFrame: (frame) => this.receive(frame),
      onDrain: () => {},
      onFrameRejected: (kind, detail) => this.report(kind, detail),
      onClose: () => {
        const wasOpen = this.state === 'open';
        this.state = 'closed';
        this.timer?.cancel();
        this.timer = null;
        if (wasOpen && this.peerId !== null && this.laneName !== null) {
          this.ctx.emit({
            type: 'disconnected',
            peer: this.peerId,
            lane: this.laneName,
            direction: 'inbound',
            remoteAddress: this.connection.remoteAddress,
          });
        }
        this.registry.gone(this);
      },
    };
  }

  /** Closes now (the transport closes, or a newer connection replaced this one). */
  destroy(): void {
    this.connection.destroy();
  }

  /** Closes gracefully (idle, or the transport is shutting down). */
  end(): void {
    this.connection.end();
  }

  /** Refuses the peer: tells it why, logs, and closes after the refusal is written. */
  refuseWith(reason: RefuseReason, message: string): void {
    if (this.state === 'closed') return;
    this.ctx.countRefused(reason);
    this.ctx.emit({
      type: 'refused',
      peer: this.hello?.value.from ?? null,
      by: 'us',
      reason,
      remoteAddress: this.connection.remoteAddress,
      message,
    });
    this.ctx.logger.warn(
      { remote: this.connection.remoteAddress, peer: this.hello?.value.from, reason },
      message,
    );
    this.connection.send([encodeRefuse({ reason, text: message })]);
    this.state = 'closed';
    this.connection.end();
  }

  private receive(frame: Uint8Array): void {
    if (this.state === 'closed' || !this.ctx.running()) return;
    this.lastActivity = this.ctx.clock.now();
    const limit =
      this.state === 'open' ? this.ctx.options.maxFrameBytes : MAX_HANDSHAKE_FRAME_BYTES;
    if (frame.length > limit) {
      this.reject('oversize', `a frame of ${frame.length} bytes exceeds the limit of ${limit}`);
      return;
    }
    const kind = frameKind(frame);
    switch (this.state) {
      case 'hello':
        if (kind !== FRAME_HELLO) {
          this.reject('malformed', `expected HELLO, got a frame of kind ${String(kind)}`);
          return;
        }
        this.receiveHello(frame);
        return;
      case 'proof':
        if (kind === FRAME_REFUSE) {
          // The dialer refused our WELCOME; it logs why. Nothing for us to add but a count.
          this.ctx.logger.info(
            { remote: this.connection.remoteAddress, peer: this.hello?.value.from },
            `${this.ctx.options.id}: ${this.describePeer()} refused this node's handshake`,
          );
          this.state = 'closed';
          this.connection.end();
          return;
        }
        if (kind !== FRAME_PROOF) {
          this.reject('malformed', `expected PROOF, got a frame of kind ${String(kind)}`);
          return;
        }
        this.receiveProof(frame);
        return;
      case 'open':
        if (kind !== FRAME_BATCH) {
          this.reject('malformed', `expected a BATCH frame, got kind ${String(kind)}`);
          return;
        }
        this.receiveBatch(frame);
        return;
    }
  }

  private receiveHello(frame: Uint8Array): void {
    let decoded: ReturnType<typeof decodeHello>;
    try {
      decoded = decodeHello(frame);
    } catch (err) {
      this.reject('malformed', describeError(err));
      return;
    }
    const o = this.ctx.options;
    const remote = this.connection.remoteAddress;
    if (decoded.handshakeVersion !== HANDSHAKE_VERSION || !('clusterId' in decoded)) {
      this.refuseWith(
        'version',
        `${o.id}: refused a peer at ${remote}: it speaks handshake version ${decoded.handshakeVersion}, this node (${o.id}) speaks ${HANDSHAKE_VERSION}`,
      );
      return;
    }
    const hello = decoded;
    this.hello = { bytes: frame, value: hello };
    const us = `this node (${o.id}) is in cluster '${o.clusterId}' with codec version ${WIRE_CODEC_VERSION}`;
    const them = `${hello.from} at ${remote} is in cluster '${hello.clusterId}' with codec version ${hello.codecVersion}`;
    if (hello.codecVersion !== WIRE_CODEC_VERSION) {
      this.refuseWith(
        'version',
        `${o.id}: refused ${hello.from}: protocol version mismatch: ${them}, ${us}`,
      );
      return;
    }
    if (hello.clusterId !== o.clusterId) {
      this.refuseWith(
        'cluster',
        `${o.id}: refused ${hello.from}: cluster mismatch: ${them}, ${us}`,
      );
      return;
    }
    if (hello.to !== o.id) {
      this.refuseWith(
        'wrongNode',
        `${o.id}: refused ${hello.from} at ${remote}: it dialed ${hello.to}, but this is ${o.id}`,
      );
      return;
    }
    if (hello.from === o.id) {
      this.refuseWith(
        'wrongNode',
        `${o.id}: refused a peer at ${remote} that claims this node's own id`,
      );
      return;
    }
    if (o.secret !== null && !hello.hasSecret) {
      this.refuseWith(
        'auth',
        `${o.id}: refused ${hello.from} at ${remote}: this node requires the cluster secret and ${hello.from} has none`,
      );
      return;
    }
    if (o.secret === null && hello.hasSecret) {
      this.refuseWith(
        'auth',
        `${o.id}: refused ${hello.from} at ${remote}: it has a cluster secret and this node (${o.id}) has none`,
      );
      return;
    }
    const welcome = {
      codecVersion: WIRE_CODEC_VERSION,
      hasSecret: o.secret !== null,
      clusterId: o.clusterId,
      nodeId: o.id,
      nonce: this.ctx.crypto.randomBytes(NONCE_BYTES),
    };
    this.welcomeBody = encodeWelcomeBody(welcome);
    const proof =
      o.secret === null
        ? new Uint8Array(0)
        : handshakeProof(this.ctx.crypto, o.secret, 'listener', frame, this.welcomeBody);
    this.state = 'proof';
    this.connection.send([encodeWelcome({ ...welcome, proof })]);
  }

  private receiveProof(frame: Uint8Array): void {
    const hello = this.hello as { bytes: Uint8Array; value: Hello };
    const o = this.ctx.options;
    let proof: Uint8Array;
    try {
      proof = decodeProof(frame);
    } catch (err) {
      this.reject('malformed', describeError(err));
      return;
    }
    if (o.secret !== null) {
      const expected = handshakeProof(
        this.ctx.crypto,
        o.secret,
        'dialer',
        hello.bytes,
        this.welcomeBody as Uint8Array,
      );
      if (!constantTimeEqual(expected, proof)) {
        this.refuseWith(
          'auth',
          `${o.id}: refused ${hello.value.from} at ${this.connection.remoteAddress}: it failed to prove it holds this cluster's secret (different secrets)`,
        );
        return;
      }
    } else if (proof.length !== 0) {
      this.reject('malformed', 'a proof without a cluster secret');
      return;
    }
    this.timer?.cancel();
    this.timer = null;
    this.state = 'open';
    this.peerId = hello.value.from;
    this.laneName = hello.value.lane;
    this.hello = null;
    this.welcomeBody = null;
    this.connection.setMaxFrameBytes(o.maxFrameBytes);
    this.registry.authenticated(
      this,
      hello.value.from,
      hello.value.lane,
      hello.value.listenAddress,
    );
    this.ctx.emit({
      type: 'connected',
      peer: hello.value.from,
      lane: hello.value.lane,
      direction: 'inbound',
      remoteAddress: this.connection.remoteAddress,
    });
  }

  private receiveBatch(frame: Uint8Array): void {
    const peer = this.peerId as NodeId;
    let messages: RaftMessage[];
    try {
      messages = decodeBatch(frame, { maxBytes: this.ctx.options.maxFrameBytes });
    } catch (err) {
      this.reject('malformed', describeError(err));
      return;
    }
    const id = this.ctx.options.id;
    let accepted = messages;
    for (const m of messages) {
      if (m.from !== peer || m.to !== id) {
        accepted = messages.filter((x) => x.from === peer && x.to === id);
        this.ctx.countDrop(peer, 'misaddressed', messages.length - accepted.length);
        this.ctx.logger.warn(
          { peer, from: m.from, to: m.to },
          `${id}: dropped ${messages.length - accepted.length} message(s) from ${peer} addressed from ${m.from} to ${m.to}`,
        );
        break;
      }
    }
    const counters = this.ctx.counters(peer);
    counters.messagesReceived += accepted.length;
    counters.bytesReceived += frame.length;
    if (accepted.length > 0) this.ctx.deliver(accepted);
  }

  private reject(kind: FrameRejection, detail: string): void {
    this.report(kind, detail);
    this.state = 'closed';
    this.connection.destroy();
  }

  /** Counts, emits and logs a rejected frame (the driver's or our own). */
  private report(kind: FrameRejection, detail: string): void {
    this.ctx.countRejectedFrame(kind);
    const message = `${this.ctx.options.id}: rejected a frame from ${this.describePeer()} (${kind}): ${detail}; closing the connection`;
    this.ctx.emit({
      type: 'frameRejected',
      kind,
      peer: this.peerId,
      remoteAddress: this.connection.remoteAddress,
      message,
    });
    this.ctx.logger.warn(
      { remote: this.connection.remoteAddress, peer: this.peerId, kind },
      message,
    );
  }

  private describePeer(): string {
    const id = this.peerId ?? this.hello?.value.from;
    return id === undefined || id === null
      ? `an unauthenticated peer at ${this.connection.remoteAddress}`
      : `${id} at ${this.connection.remoteAddress}`;
  }
}
