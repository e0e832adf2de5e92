import { describe, expect, it } from 'vitest';
import { encodedSize } from '../codec.js';
import { RaftError } from '../errors.js';
import { decodeBatch, encodeBatch } from './batch.js';
import {
  constantTimeEqual,
  decodeHello,
  decodeProof,
  decodeRefuse,
  decodeWelcome,
  encodeHello,
  encodeProof,
  encodeRefuse,
  encodeWelcome,
  encodeWelcomeBody,
  HANDSHAKE_VERSION,
  type Hello,
  MAX_HANDSHAKE_STRING_BYTES,
} from './handshake.js';

const nonce = (seed: number) => Uint8Array.from({ length: 32 }, (_, i) => (seed + i * 7) & 0xff);

const hello: Hello = {
  handshakeVersion: HANDSHAKE_VERSION,
  codecVersion: 3,
  lane: 'bulk',
  hasSecret: true,
  clusterId: 'prod-ü',
  from: 'n1',
  to: 'n2',
  listenAddress: '[::1]:9001',
  nonce: nonce(1),
};

describe('handshake frames', () => {
  it('round-trip exactly', () => {
    expect(decodeHello(encodeHello(hello))).toEqual(hello);
    const welcome = {
      codecVersion: 3,
      hasSecret: false,
      clusterId: 'c',
      nodeId: 'n2',
      nonce: nonce(2),
      proof: new Uint8Array(0),
    };
    const bytes = encodeWelcome(welcome);
    const decoded = decodeWelcome(bytes);
    expect(decoded.welcome).toEqual(welcome);
    expect(decoded.body).toEqual(encodeWelcomeBody(welcome));
    const proof = nonce(9);
    expect(decodeProof(encodeProof(proof))).toEqual(proof);
    expect(decodeRefuse(encodeRefuse({ reason: 'cluster', text: 'no' }))).toEqual({
      reason: 'cluster',
      text: 'no',
    });
  });

  it('a HELLO of another handshake version decodes to its version only', () => {
    const bytes = encodeHello(hello);
    bytes[5] = HANDSHAKE_VERSION + 1;
    expect(decodeHello(bytes)).toEqual({ handshakeVersion: HANDSHAKE_VERSION + 1 });
  });

  it('rejects every truncation, trailing bytes, bad magic and unknown flags', () => {
    const bytes = encodeHello(hello);
    for (let n = 0; n < bytes.length; n++) {
      expect(() => decodeHello(bytes.subarray(0, n)), `truncated to ${n}`).toThrow(RaftError);
    }
    expect(() => decodeHello(Uint8Array.from([...bytes, 0]))).toThrow(/trailing/);
    const magic = bytes.slice();
    magic[1] = 0x51;
    expect(() => decodeHello(magic)).toThrow(/magic/);
    const flags = bytes.slice();
    flags[8] = 0x80;
    expect(() => decodeHello(flags)).toThrow(/flag/);
  });

  it('refuses strings over the limit on both sides', () => {
    const long = 'x'.repeat(MAX_HANDSHAKE_STRING_BYTES + 1);
    expect(() => encodeHello({ ...hello, clusterId: long })).toThrow(/cluster id/);
    // A refusal's text is cut, never refused: the peer must learn why.
    const refuse = decodeRefuse(encodeRefuse({ reason: 'auth', text: long }));
    expect(refuse.reason).toBe('auth');
    expect(refuse.text.length).toBeLessThanOrEqual(MAX_HANDSHAKE_STRING_BYTES);
  });

  it('an unknown refusal reason decodes as malformed', () => {
    const bytes = encodeRefuse({ reason: 'auth', text: 'x' });
    bytes[1] = 200;
    expect(decodeRefuse(bytes).reason).toBe('malformed');
  });

  it('constantTimeEqual compares contents and lengths', () => {
    expect(constantTimeEqual(nonce(1), nonce(1))).toBe(true);
    expect(constantTimeEqual(nonce(1), nonce(2))).toBe(false);
    expect(constantTimeEqual(nonce(1), nonce(1).subarray(1))).toBe(false);
  });
});

describe('batch frames', () => {
  const heartbeat = (round: number) =>
    ({ type: 'heartbeat', from: 'n1', to: 'n2', term: 3, commit: 1, round }) as const;

  it('round-trip a batch, entries as views into the frame', () => {
    const data = Uint8Array.from({ length: 300 }, (_, i) => i & 0xff);
    const append = {
      type: 'append' as const,
      from: 'n1',
      to: 'n2',
      term: 3,
      prevIndex: 9,
      prevTerm: 2,
      entries: [{ index: 10, term: 3, kind: 'command' as const, data }],
      commit: 8,
    };
    const frame = encodeBatch(
      [heartbeat(1), append, heartbeat(2)].map((message) => ({
        message,
        size: encodedSize(message),
      })),
    );
    const decoded = decodeBatch(frame);
    expect(decoded).toEqual([heartbeat(1), append, heartbeat(2)]);
    const entry = (decoded[1] as typeof append).entries[0];
    expect(entry?.data.buffer).toBe(frame.buffer);
  });

  it('decodes nothing from a batch with one bad message', () => {
    const frame = encodeBatch(
      [heartbeat(1), heartbeat(2)].map((message) => ({ message, size: encodedSize(message) })),
    );
    frame[frame.length - 1] = 0xff; // the second message's last varint byte: not minimal/terminated
    expect(() => decodeBatch(frame)).toThrow(/message #1/);
    expect(() => decodeBatch(frame.subarray(0, 1))).toThrow(/empty batch/);
    expect(() => decodeBatch(Uint8Array.from([5, 0x80]))).toThrow(/truncated/);
    expect(() => decodeBatch(Uint8Array.from([5, 0x7f, 1]))).toThrow(/past the end/);
  });
});
