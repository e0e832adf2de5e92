/**
 * The handshake that opens every connection of a network transport, before any Raft message
 * may pass. It carries the protocol versions, the cluster id and both node ids, and, when the
 * cluster has a shared secret, proves in both directions that each side holds it (HMAC-SHA256
 * challenge-response over both sides' fresh nonces), without ever sending the secret.
 *
 * ```text
 * dialer                                             listener
 *   HELLO    magic "RAFT", handshake version, codec version, lane, flags(b0 has secret),
 *            cluster id, from, to, listen address, nonce (32 bytes)          ───────────►
 *            ◄───────────  WELCOME  codec version, flags(b0 has secret), cluster id, node id,
 *                                   nonce (32 bytes), proof (0 or 32 bytes)
 *   PROOF    proof (0 or 32 bytes)                                            ───────────►
 *   BATCH …  (Raft messages: only after the listener accepted the proof)      ───────────►
 * Either side may answer with REFUSE (reason code, text) and close instead.
 * ```
 *
 * Proofs: `HMAC(secret, label ‖ HELLO ‖ WELCOME-without-proof)`, with the label
 * `raft-wire/1 listener` for the listener's and `raft-wire/1 dialer` for the dialer's. Both
 * nonces are inside, so a recorded handshake cannot be replayed, and the labels differ, so one
 * side's proof is never valid as the other's. Without a secret on either side the proofs are
 * empty; a side with a secret refuses a peer without one.
 *
 * Connections are one-way: the dialer sends Raft messages and the listener only reads. Each
 * node dials its peers, so a reply travels on the replier's own connection, and a pair of
 * nodes can be partitioned in one direction by packet filters on source and destination.
 *
 * Frames are byte arrays whose first byte is the kind; how a transport delimits them (a length
 * prefix on TCP, one message per frame on WebSocket) is the transport's business. Strings are
 * a big-endian u16 byte length and well-formed UTF-8. The REFUSE layout never changes between
 * handshake versions, so a peer always learns why it was refused.
 */
import { CODEC_VERSION } from '../codec.js';
import { CodecError } from '../errors.js';
import { utf8Decode, utf8Encode } from '../utf8.js';
import type { MessageLane } from './lanes.js';

/** Version of the handshake layout, byte 5 of HELLO. */
export const HANDSHAKE_VERSION = 1;
/** Frame kinds (byte 0 of every frame). Never reused or renumbered. */
export const FRAME_HELLO = 1;
export const FRAME_WELCOME = 2;
export const FRAME_PROOF = 3;
export const FRAME_REFUSE = 4;
export const FRAME_BATCH = 5;

/** Bytes of each side's nonce. */
export const NONCE_BYTES = 32;
/** Bytes of a proof (HMAC-SHA256). */
export const PROOF_BYTES = 32;
/** Longest cluster id, node id or address accepted in a handshake, in UTF-8 bytes. */
export const MAX_HANDSHAKE_STRING_BYTES = 1024;
/** Longest handshake frame accepted before the peer is authenticated. */
export const MAX_HANDSHAKE_FRAME_BYTES = 8 * 1024;

const MAGIC = [0x52, 0x41, 0x46, 0x54]; // "RAFT"
const FLAG_HAS_SECRET = 0x01;
const LANE_CODES: readonly MessageLane[] = ['control', 'bulk'];

/** Why a side refused a connection. Codes are never reused. */
export type RefuseReason =
  | 'version'
  | 'cluster'
  | 'wrongNode'
  | 'auth'
  | 'malformed'
  | 'overloaded'
  | 'shutdown';

/** Every {@link RefuseReason}, by wire code. */
export const REFUSE_REASONS: readonly RefuseReason[] = [
  'version',
  'cluster',
  'wrongNode',
  'auth',
  'malformed',
  'overloaded',
  'shutdown',
];

/** The dialer's opening frame. */
export interface Hello {
  readonly handshakeVersion: number;
  readonly codecVersion: number;
  readonly lane: MessageLane;
  readonly hasSecret: boolean;
  readonly clusterId: string;
  /** The dialer's node id. */
  readonly from: string;
  /** The node id the dialer expects to reach. */
  readonly to: string;
  /** Where the dialer listens, so a listener that has no address for it can answer it. */
  readonly listenAddress: string;
  readonly nonce: Uint8Array;
}

/** The listener's answer to a {@link Hello}. */
export interface Welcome {
  readonly codecVersion: number;
  readonly hasSecret: boolean;
  readonly clusterId: string;
  readonly nodeId: string;
  readonly nonce: Uint8Array;
  /** Empty without a secret. */
  readonly proof: Uint8Array;
}

/** A refusal, either way. */
export interface Refuse {
  readonly reason: RefuseReason;
  readonly text: string;
}

/** What a transport gives the handshake for proofs and nonces (node:crypto, WebCrypto...). */
export interface WireCrypto {
  /** HMAC-SHA256 of `data` under `key` (32 bytes). */
  hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array;
  /** `length` cryptographically random bytes. */
  randomBytes(length: number): Uint8Array;
}

// ------------------------------------------------------------------------------- encoding

class Writer {
  private readonly parts: number[] = [];
  private readonly chunks: Uint8Array[] = [];
  private length = 0;

  byte(value: number): this {
    this.parts.push(value & 0xff);
    this.length++;
    return this;
  }

  bytes(value: Uint8Array | readonly number[]): this {
    this.flushParts();
    const chunk = value instanceof Uint8Array ? value : Uint8Array.from(value);
    this.chunks.push(chunk);
    this.length += chunk.length;
    return this;
  }

  string(value: string, field: string): this {
    const encoded = utf8Encode(value);
    if (encoded.length > MAX_HANDSHAKE_STRING_BYTES) {
      throw new CodecError(
        `${field} is ${encoded.length} bytes of UTF-8, more than ${MAX_HANDSHAKE_STRING_BYTES}`,
        this.length,
      );
    }
    this.byte(encoded.length >>> 8).byte(encoded.length);
    return this.bytes(encoded);
  }

  finish(): Uint8Array {
    this.flushParts();
    const out = new Uint8Array(this.length);
    let pos = 0;
    for (const c of this.chunks) {
      out.set(c, pos);
      pos += c.length;
    }
    return out;
  }

  private flushParts(): void {
    if (this.parts.length === 0) return;
    this.chunks.push(Uint8Array.from(this.parts));
    this.parts.length = 0;
  }
}

/** Encodes a HELLO frame. Throws CodecError for a string over the limit or a bad nonce. */
export function encodeHello(hello: Hello): Uint8Array {
  checkNonce(hello.nonce);
  return new Writer()
    .byte(FRAME_HELLO)
    .bytes(MAGIC)
    .byte(hello.handshakeVersion)
    .byte(hello.codecVersion)
    .byte(LANE_CODES.indexOf(hello.lane))
    .byte(hello.hasSecret ? FLAG_HAS_SECRET : 0)
    .string(hello.clusterId, 'cluster id')
    .string(hello.from, 'from')
    .string(hello.to, 'to')
    .string(hello.listenAddress, 'listen address')
    .bytes(hello.nonce)
    .finish();
}

/** The WELCOME frame without its proof: what both proofs sign, after the HELLO. */
export function encodeWelcomeBody(welcome: Omit<Welcome, 'proof'>): Uint8Array {
  checkNonce(welcome.nonce);
  return new Writer()
    .byte(FRAME_WELCOME)
    .byte(welcome.codecVersion)
    .byte(welcome.hasSecret ? FLAG_HAS_SECRET : 0)
    .string(welcome.clusterId, 'cluster id')
    .string(welcome.nodeId, 'node id')
    .bytes(welcome.nonce)
    .finish();
}

/** Encodes a WELCOME frame: its body, then the proof. */
export function encodeWelcome(welcome: Welcome): Uint8Array {
  return new Writer()
    .bytes(encodeWelcomeBody(welcome))
    .byte(welcome.proof.length)
    .bytes(welcome.proof)
    .finish();
}

/** Encodes a PROOF frame. */
export function encodeProof(proof: Uint8Array): Uint8Array {
  return new Writer().byte(FRAME_PROOF).byte(proof.length).bytes(proof).finish();
}

/** Encodes a REFUSE frame; `text` is cut to fit the string limit. */
export function encodeRefuse(refuse: Refuse): Uint8Array {
  let text = refuse.text;
  while (utf8Encode(text).length > MAX_HANDSHAKE_STRING_BYTES) text = text.slice(0, -16);
  return new Writer()
    .byte(FRAME_REFUSE)
    .byte(REFUSE_REASONS.indexOf(refuse.reason))
    .string(text, 'text')
    .finish();
}

function checkNonce(nonce: Uint8Array): void {
  if (!(nonce instanceof Uint8Array) || nonce.length !== NONCE_BYTES) {
    throw new CodecError(`a nonce must be ${NONCE_BYTES} bytes`, 0);
  }
}

// ------------------------------------------------------------------------------- decoding

class Reader {
  private pos = 1;

  constructor(
    private readonly bytes: Uint8Array,
    private readonly what: string,
  ) {}

  byte(field: string): number {
    const value = this.bytes[this.pos];
    if (value === undefined) throw this.error(`truncated before ${field}`);
    this.pos++;
    return value;
  }

  take(length: number, field: string): Uint8Array {
    if (this.pos + length > this.bytes.length) throw this.error(`truncated in ${field}`);
    const out = this.bytes.slice(this.pos, this.pos + length);
    this.pos += length;
    return out;
  }

  string(field: string): string {
    const length = (this.byte(field) << 8) | this.byte(field);
    if (length > MAX_HANDSHAKE_STRING_BYTES) {
      throw this.error(`${field} of ${length} bytes exceeds ${MAX_HANDSHAKE_STRING_BYTES}`);
    }
    const value = utf8Decode(this.take(length, field));
    if (value === null) throw this.error(`${field} is not well-formed UTF-8`);
    return value;
  }

  end(): void {
    if (this.pos !== this.bytes.length) {
      throw this.error(`${this.bytes.length - this.pos} trailing bytes`);
    }
  }

  error(message: string): CodecError {
    return new CodecError(`malformed ${this.what}: ${message}`, this.pos);
  }
}

/** The kind byte of a frame, or null for an empty frame. */
export function frameKind(frame: Uint8Array): number | null {
  return frame.length === 0 ? null : (frame[0] as number);
}

/**
 * Decodes a HELLO frame. A frame with the right magic but another handshake version decodes
 * to just that version (the rest of its layout is unknown), so the listener can refuse it by
 * name. Throws CodecError for anything else that is not a HELLO this module would write.
 */
export function decodeHello(frame: Uint8Array): Hello | { readonly handshakeVersion: number } {
  const r = new Reader(frame, 'HELLO');
  if (frame[0] !== FRAME_HELLO) throw r.error(`frame kind ${frame[0]} is not HELLO`);
  const magic = r.take(4, 'magic');
  if (magic.some((b, i) => b !== MAGIC[i])) throw r.error('bad magic (not a Raft peer)');
  const handshakeVersion = r.byte('handshake version');
  if (handshakeVersion !== HANDSHAKE_VERSION) return { handshakeVersion };
  const codecVersion = r.byte('codec version');
  const lane = LANE_CODES[r.byte('lane')];
  if (lane === undefined) throw r.error('unknown lane');
  const flags = r.byte('flags');
  if ((flags & ~FLAG_HAS_SECRET) !== 0) throw r.error('unknown flag bits');
  const clusterId = r.string('cluster id');
  const from = r.string('from');
  const to = r.string('to');
  const listenAddress = r.string('listen address');
  const nonce = r.take(NONCE_BYTES, 'nonce');
  r.end();
  return {
    handshakeVersion,
    codecVersion,
    lane,
    hasSecret: (flags & FLAG_HAS_SECRET) !== 0,
    clusterId,
    from,
    to,
    listenAddress,
    nonce,
  };
}

/** Decodes a WELCOME frame and returns it with the body its proofs sign. */
export function decodeWelcome(frame: Uint8Array): { welcome: Welcome; body: Uint8Array } {
  const r = new Reader(frame, 'WELCOME');
  if (frame[0] !== FRAME_WELCOME) throw r.error(`frame kind ${frame[0]} is not WELCOME`);
  const codecVersion = r.byte('codec version');
  const flags = r.byte('flags');
  if ((flags & ~FLAG_HAS_SECRET) !== 0) throw r.error('unknown flag bits');
  const clusterId = r.string('cluster id');
  const nodeId = r.string('node id');
  const nonce = r.take(NONCE_BYTES, 'nonce');
  const proofLength = r.byte('proof length');
  if (proofLength !== 0 && proofLength !== PROOF_BYTES) throw r.error('bad proof length');
  const proof = r.take(proofLength, 'proof');
  r.end();
  const body = frame.slice(0, frame.length - 1 - proofLength);
  return {
    welcome: {
      codecVersion,
      hasSecret: (flags & FLAG_HAS_SECRET) !== 0,
      clusterId,
      nodeId,
      nonce,
      proof,
    },
    body,
  };
}

/** Decodes a PROOF frame to its proof bytes. */
export function decodeProof(frame: Uint8Array): Uint8Array {
  const r = new Reader(frame, 'PROOF');
  if (frame[0] !== FRAME_PROOF) throw r.error(`frame kind ${frame[0]} is not PROOF`);
  const length = r.byte('proof length');
  if (length !== 0 && length !== PROOF_BYTES) throw r.error('bad proof length');
  const proof = r.take(length, 'proof');
  r.end();
  return proof;
}

/** Decodes a REFUSE frame. An unknown reason code decodes as `malformed`. */
export function decodeRefuse(frame: Uint8Array): Refuse {
  const r = new Reader(frame, 'REFUSE');
  if (frame[0] !== FRAME_REFUSE) throw r.error(`frame kind ${frame[0]} is not REFUSE`);
  const reason = REFUSE_REASONS[r.byte('reason')] ?? 'malformed';
  const text = r.string('text');
  r.end();
  return { reason, text };
}

// ------------------------------------------------------------------------------- proofs

const LISTENER_LABEL = utf8Encode('raft-wire/1 listener');
const DIALER_LABEL = utf8Encode('raft-wire/1 dialer');

/** The proof one side sends: HMAC over its role's label, the HELLO and the WELCOME body. */
export function handshakeProof(
  crypto: WireCrypto,
  secret: Uint8Array,
  role: 'listener' | 'dialer',
  hello: Uint8Array,
  welcomeBody: Uint8Array,
): Uint8Array {
  const label = role === 'listener' ? LISTENER_LABEL : DIALER_LABEL;
  const data = new Uint8Array(label.length + hello.length + welcomeBody.length);
  data.set(label, 0);
  data.set(hello, label.length);
  data.set(welcomeBody, label.length + hello.length);
  return crypto.hmacSha256(secret, data);
}

/** Compares two byte arrays in time that depends only on their lengths. */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= (a[i] as number) ^ (b[i] as number);
  return diff === 0;
}

/** The codec version this build speaks, for HELLO and WELCOME. */
export const WIRE_CODEC_VERSION = CODEC_VERSION;
