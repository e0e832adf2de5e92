/**
 * What the conformance suite cannot see from outside: the wire over a real socket (refusals
 * with their log lines, limits before and after authentication, malformed frames), lanes under
 * a large transfer, the local address of outgoing connections, TLS refusals, and errors for
 * bad options and busy ports.
 */
import { connect, createServer, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { CODEC_VERSION, encodeMessage, type Logger, RaftError, type RaftMessage } from '@raft/core';
import {
  decodeRefuse,
  decodeWelcome,
  encodeBatch,
  encodeHello,
  encodeProof,
  FRAME_REFUSE,
  FRAME_WELCOME,
  HANDSHAKE_VERSION,
  type NetworkTransport,
  type TransportEvent,
} from '@raft/core/wire';
import { afterEach, describe, expect, it } from 'vitest';
import { FrameReader, frameHeader } from '../src/framing.js';
import { createTcpTransport, type TcpTransportOptions } from '../src/index.js';
import { otherCertificates, testCertificates } from './certificates.js';
import { freePort } from './free-port.js';

interface Line {
  level: string;
  msg: string;
}

function logger(lines: Line[]): Logger {
  const at =
    (level: string) =>
    (_fields: Record<string, unknown>, msg = '') => {
      lines.push({ level, msg });
    };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

interface Node {
  readonly id: string;
  readonly address: string;
  readonly transport: NetworkTransport;
  readonly inbox: RaftMessage[];
  readonly events: TransportEvent[];
  readonly log: Line[];
}

const open: Node[] = [];
const sockets: Socket[] = [];

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  for (const n of open.splice(0)) await n.transport.close();
});

async function node(
  id: string,
  host: string,
  options: Partial<TcpTransportOptions> = {},
): Promise<Node> {
  const address = `${host}:${await freePort(host)}`;
  const log: Line[] = [];
  const transport = createTcpTransport({
    id,
    listen: address,
    initialBackoffMs: 20,
    maxBackoffMs: 200,
    logger: logger(log),
    ...options,
  });
  const n: Node = { id, address, transport, inbox: [], events: [], log };
  transport.subscribe((e) => n.events.push(e));
  await transport.start({ onMessage: (m) => n.inbox.push(m) });
  open.push(n);
  return n;
}

function peers(...nodes: Node[]): void {
  for (const n of nodes) {
    n.transport.setPeers(
      nodes.filter((m) => m !== n).map((m) => ({ id: m.id, address: m.address, voter: true })),
    );
  }
}

async function until(what: string, check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const hb = (from: string, to: string, round: number): RaftMessage => ({
  type: 'heartbeat',
  from,
  to,
  term: 1,
  commit: 0,
  round,
});

/** A raw socket that speaks the wire by hand: frames in, frames out. */
class RawClient {
  readonly frames: Uint8Array[] = [];
  closed = false;
  private constructor(readonly socket: Socket) {
    const reader = new FrameReader(
      { frame: (f) => this.frames.push(f), reject: () => socket.destroy() },
      1 << 20,
    );
    socket.on('data', (chunk) => reader.push(chunk));
    socket.on('close', () => {
      this.closed = true;
    });
    socket.on('error', () => {});
  }

  static connect(address: string): Promise<RawClient> {
    const at = address.lastIndexOf(':');
    return new Promise((resolve, reject) => {
      const socket = connect({ host: address.slice(0, at), port: Number(address.slice(at + 1)) });
      sockets.push(socket);
      socket.once('connect', () => resolve(new RawClient(socket)));
      socket.once('error', reject);
    });
  }

  frame(bytes: Uint8Array): void {
    this.socket.write(frameHeader(bytes.length));
    this.socket.write(bytes);
  }

  /** HELLO, WELCOME, PROOF without a secret: an authenticated connection as `from`. */
  async handshake(from: string, to: string): Promise<void> {
    this.frame(hello({ from, to }));
    await until('WELCOME', () => this.frames.length > 0);
    expect(this.frames[0]?.[0]).toBe(FRAME_WELCOME);
    expect(decodeWelcome(this.frames[0] as Uint8Array).welcome.nodeId).toBe(to);
    this.frame(encodeProof(new Uint8Array(0)));
  }
}

function hello(overrides: Partial<Parameters<typeof encodeHello>[0]>): Uint8Array {
  return encodeHello({
    handshakeVersion: HANDSHAKE_VERSION,
    codecVersion: CODEC_VERSION,
    lane: 'control',
    hasSecret: false,
    clusterId: 'raft',
    from: 'raw',
    to: 'n1',
    listenAddress: '',
    nonce: new Uint8Array(32),
    ...overrides,
  });
}

describe('the wire over TCP', () => {
  it('refuses a peer of another protocol version and logs a line naming both', async () => {
    const a = await node('n1', '127.0.0.1');
    const raw = await RawClient.connect(a.address);
    raw.frame(hello({ from: 'n7', codecVersion: CODEC_VERSION + 1 }));
    await until('the refusal', () => raw.closed);
    const refusal = decodeRefuse(raw.frames.find((f) => f[0] === FRAME_REFUSE) as Uint8Array);
    expect(refusal.reason).toBe('version');
    const line = a.log.find((l) => l.msg.includes('protocol version mismatch'));
    expect(line?.level).toBe('warn');
    expect(line?.msg).toContain(`n7 at 127.0.0.1:`);
    expect(line?.msg).toContain(`codec version ${CODEC_VERSION + 1}`);
    expect(line?.msg).toContain(
      `this node (n1) is in cluster 'raft' with codec version ${CODEC_VERSION}`,
    );
    expect(a.transport.stats().refused.version).toBe(1);
  });

  it('caps frames at 8 KiB before authentication and at maxFrameBytes after, counting both', async () => {
    const a = await node('n1', '127.0.0.1', { maxFrameBytes: 64 * 1024 });
    const early = await RawClient.connect(a.address);
    early.socket.write(frameHeader(9 * 1024));
    await until('the early close', () => early.closed);
    const late = await RawClient.connect(a.address);
    await late.handshake('raw', 'n1');
    late.socket.write(frameHeader(65 * 1024));
    await until('the late close', () => late.closed);
    expect(a.transport.stats().rejectedFrames.oversize).toBe(2);
    expect(a.log.filter((l) => l.level === 'warn' && /oversize/.test(l.msg))).toHaveLength(2);
    expect(a.inbox).toEqual([]);
  });

  it('closes on a malformed frame after authentication and delivers none of it', async () => {
    const a = await node('n1', '127.0.0.1');
    const raw = await RawClient.connect(a.address);
    await raw.handshake('raw', 'n1');
    const good = hb('raw', 'n1', 1);
    const size = encodeMessage(good).length;
    const bytes = encodeBatch([
      { message: good, size },
      { message: good, size },
    ]);
    // Corrupt the second message's tag: the whole frame must be refused.
    bytes[bytes.length - size + 1] = 99;
    raw.frame(bytes);
    await until('the close', () => raw.closed);
    expect(a.inbox).toEqual([]);
    expect(a.transport.stats().rejectedFrames.malformed).toBe(1);
    // The process and the transport are fine: a legitimate peer still gets through.
    const b = await node('n2', '127.0.0.2');
    peers(a, b);
    b.transport.send([hb('n2', 'n1', 5)]);
    await until('the legitimate heartbeat', () => a.inbox.length === 1);
    expect(a.inbox).toEqual([hb('n2', 'n1', 5)]);
  });

  it('dials from the host it listens on, so packet filters can tell nodes apart', async () => {
    const a = await node('n1', '127.0.0.1');
    const b = await node('n2', '127.0.0.3');
    peers(a, b);
    b.transport.send([hb('n2', 'n1', 1)]);
    await until('the heartbeat', () => a.inbox.length === 1);
    const inbound = a.events.find((e) => e.type === 'connected' && e.direction === 'inbound');
    expect(inbound?.type === 'connected' && inbound.remoteAddress).toMatch(/^127\.0\.0\.3:\d+$/);
  });

  it('heartbeats overtake a large transfer to the same peer (separate lanes)', async () => {
    const a = await node('n1', '127.0.0.1', {
      maxFrameBytes: 64 * 1024 * 1024,
      maxQueueBytes: 256 * 1024 * 1024,
    });
    const b = await node('n2', '127.0.0.2', { maxFrameBytes: 64 * 1024 * 1024 });
    peers(a, b);
    a.transport.send([hb('n1', 'n2', 0)]);
    a.transport.send([
      {
        ...hb('n1', 'n2', 0),
        type: 'append',
        prevIndex: 0,
        prevTerm: 0,
        entries: [],
        commit: 0,
      } as RaftMessage,
    ]);
    await until('both lanes up', () => b.inbox.length === 2);
    const big = new Uint8Array(24 * 1024 * 1024);
    const count = 6;
    for (let i = 0; i < count; i++) {
      a.transport.send([
        {
          type: 'append',
          from: 'n1',
          to: 'n2',
          term: 1,
          prevIndex: i,
          prevTerm: i === 0 ? 0 : 1,
          entries: [{ index: i + 1, term: 1, kind: 'command', data: big }],
          commit: 0,
        },
      ]);
    }
    a.transport.send([hb('n1', 'n2', 99)]);
    await until(
      'the heartbeat',
      () => b.inbox.some((m) => m.type === 'heartbeat' && m.round === 99),
      20_000,
    );
    const appendsBefore = b.inbox.filter((m) => m.type === 'append' && m.entries.length > 0).length;
    expect(appendsBefore).toBeLessThan(count);
    await until(
      'every append',
      () => b.inbox.filter((m) => m.type === 'append').length === count + 1,
      30_000,
    );
  }, 60_000);

  it('counts reconnects when a peer restarts at the same address', async () => {
    const a = await node('n1', '127.0.0.1');
    const b = await node('n2', '127.0.0.2');
    peers(a, b);
    a.transport.send([hb('n1', 'n2', 1)]);
    await until('first delivery', () => b.inbox.length === 1);
    await b.transport.close();
    open.splice(open.indexOf(b), 1);
    const again = createTcpTransport({ id: 'n2', listen: b.address });
    const inbox: RaftMessage[] = [];
    await again.start({ onMessage: (m) => inbox.push(m) });
    try {
      for (let round = 2; inbox.length === 0; round++) {
        a.transport.send([hb('n1', 'n2', round)]);
        await new Promise((r) => setTimeout(r, 20));
        if (round > 250) throw new Error('no delivery after the restart');
      }
      const stats = a.transport.stats().peers.find((p) => p.id === 'n2');
      expect(stats?.reconnects).toBeGreaterThanOrEqual(1);
      expect(stats?.messagesSent).toBeGreaterThanOrEqual(2);
    } finally {
      await again.close();
    }
  });
});

describe('TLS', () => {
  const certs = testCertificates();
  const tls = { cert: certs.cert, key: certs.key, ca: certs.ca };

  it('refuses a node whose certificate another CA signed, in both directions', async () => {
    const a = await node('n1', '127.0.0.1', { tls });
    const other = otherCertificates();
    const b = await node('n2', '127.0.0.2', {
      tls: { cert: other.cert, key: other.key, ca: other.ca },
    });
    peers(a, b);
    for (let i = 0; i < 20; i++) {
      a.transport.send([hb('n1', 'n2', i)]);
      b.transport.send([hb('n2', 'n1', i)]);
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(a.inbox).toEqual([]);
    expect(b.inbox).toEqual([]);
    expect(
      a.log.some((l) => /cannot reach n2 .*certificate|refused a TLS connection/.test(l.msg)),
    ).toBe(true);
  });

  it('refuses a plain client and a TLS client without a certificate', async () => {
    const a = await node('n1', '127.0.0.1', { tls });
    const plain = await node('n2', '127.0.0.2');
    // requireClientCert is about what n3 accepts; n3 still presents its own certificate.
    const lenient = await node('n3', '127.0.0.3', { tls: { ...tls, requireClientCert: false } });
    peers(a, plain, lenient);
    for (let i = 0; i < 20; i++) {
      plain.transport.send([hb('n2', 'n1', i)]);
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(a.inbox).toEqual([]);
    lenient.transport.send([hb('n3', 'n1', 1)]);
    await until('n3 through', () => a.inbox.length === 1);
    // A TLS client that trusts the CA but presents no certificate is cut off by the server.
    const at = a.address.lastIndexOf(':');
    const anonymous = tlsConnect({
      host: '127.0.0.1',
      port: Number(a.address.slice(at + 1)),
      ca: certs.ca,
    });
    anonymous.on('error', () => {});
    anonymous.on('secureConnect', () => anonymous.write(frameHeader(1)));
    await until('the anonymous client closed', () => anonymous.destroyed || anonymous.closed);
    expect(a.inbox).toHaveLength(1);
    await until('the refusal logged', () =>
      a.log.some((l) => /refused a TLS connection/.test(l.msg)),
    );
  });

  it('checks that the dialed peer certificate names the host of its address', async () => {
    // The certificate names 127.0.0.1-8 and localhost, not 127.0.0.9.
    const a = await node('n1', '127.0.0.9', { tls });
    const strict = await node('n2', '127.0.0.2', { tls });
    const lax = await node('n3', '127.0.0.3', { tls: { ...tls, verifyHostname: false } });
    peers(a, strict, lax);
    lax.transport.send([hb('n3', 'n1', 1)]);
    await until('n3 through', () => a.inbox.length === 1);
    for (let i = 0; i < 10; i++) {
      strict.transport.send([hb('n2', 'n1', i)]);
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(a.inbox.map((m) => m.from)).toEqual(['n3']);
    await until('the mismatch logged', () =>
      strict.log.some((l) => /cannot reach n1 .*(altnames|IP: 127\.0\.0\.9)/.test(l.msg)),
    );
  });
});

describe('errors a person can act on', () => {
  it('a port in use fails start() with UNAVAILABLE saying so', async () => {
    const port = await freePort();
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(port, '127.0.0.1', r));
    try {
      const t = createTcpTransport({ id: 'n1', listen: `127.0.0.1:${port}` });
      const err = await t.start({ onMessage: () => {} }).catch((e: unknown) => e);
      expect(RaftError.is(err, 'UNAVAILABLE')).toBe(true);
      expect((err as Error).message).toBe(
        `cannot listen on 127.0.0.1:${port}: the address is in use (is another node or process running on that port?)`,
      );
      await t.close();
    } finally {
      await new Promise((r) => blocker.close(r));
    }
  });

  it('bad options fail at creation with the field named', () => {
    const bad: [Partial<TcpTransportOptions>, RegExp][] = [
      [{ listen: 'nope' }, /^listen: must be "host:port"/],
      [{ listen: '127.0.0.1:70000' }, /^listen:/],
      [{ secret: 'short' }, /^secret: must be at least 16 bytes/],
      [
        { tls: { certFile: '/nonexistent.pem', key: 'x' } },
        /^tls\.certFile: cannot read \/nonexistent\.pem/,
      ],
      [
        { tls: { cert: 'not a pem', key: 'not a key' } },
        /^tls: the certificate, key or CA is not usable/,
      ],
      [{ maxFrameBytes: 10 }, /^maxFrameBytes: must be an integer in \[65536, /],
      [{ listne: '127.0.0.1:1' } as never, /^listne: unknown option/],
      [{ id: '' }, /^id: must be a non-empty string/],
    ];
    for (const [options, message] of bad) {
      let error: unknown;
      try {
        createTcpTransport({ id: 'n1', listen: '127.0.0.1:0', ...options });
      } catch (err) {
        error = err;
      }
      expect(RaftError.is(error, 'INVALID_CONFIG'), JSON.stringify(options)).toBe(true);
      expect((error as Error).message).toMatch(message);
    }
  });
});
