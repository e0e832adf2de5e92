/**
 * createWireTransport over an in-process fake driver and a manual clock: the handshake and its
 * refusals (with the log lines a person reads), limits, drops, queues, backoff and timeouts,
 * without sockets. The real drivers run the shared conformance suite in their own packages.
 */
import { describe, expect, it } from 'vitest';
import { CODEC_VERSION, encodedSize } from '../codec.js';
import type { Clock, TimerHandle } from '../interfaces/clock.js';
import type { Logger } from '../logger.js';
import type { HeartbeatMessage, RaftMessage } from '../messages.js';
import { hostNextTurn, queueMicrotask } from '../platform.js';
import type { NodeId } from '../types.js';
import { encodeBatch } from './batch.js';
import type { WireConnection, WireConnectionHandlers, WireDriver } from './driver.js';
import {
  decodeRefuse,
  encodeHello,
  encodeProof,
  encodeRefuse,
  encodeWelcome,
  FRAME_REFUSE,
  FRAME_WELCOME,
  HANDSHAKE_VERSION,
  type WireCrypto,
} from './handshake.js';
import type { TransportEvent } from './stats.js';
import type { WireOptions } from './wire-options.js';
import { createWireTransport, type NetworkTransport } from './wire-transport.js';

// ------------------------------------------------------------------------------- fakes

class ManualClock implements Clock {
  private time = 0;
  private timers: { at: number; seq: number; fn: () => void; live: boolean }[] = [];
  private seq = 0;

  now(): number {
    return this.time;
  }

  setTimer(delayMs: number, callback: () => void): TimerHandle {
    const t = { at: this.time + delayMs, seq: this.seq++, fn: callback, live: true };
    this.timers.push(t);
    return { cancel: () => (t.live = false) };
  }

  /** Moves time forward, firing due timers in order (and letting their I/O settle). */
  async advance(ms: number): Promise<void> {
    const end = this.time + ms;
    for (;;) {
      this.timers = this.timers.filter((t) => t.live);
      this.timers.sort((a, b) => a.at - b.at || a.seq - b.seq);
      const next = this.timers[0];
      if (next === undefined || next.at > end) break;
      this.time = next.at;
      next.live = false;
      next.fn();
      await turns();
    }
    this.time = end;
    await turns();
  }
}

/** A few event-loop turns: enough for microtask delivery and the transport's flush turn. */
async function turns(n = 4): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise<void>((r) => hostNextTurn(r));
}

/** In-process connections between fake drivers, frames copied as a wire would. */
class FakeNet {
  readonly listeners = new Map<string, (c: WireConnection) => WireConnectionHandlers>();
  dials: string[] = [];
  /** Every dialed connection, in order (the dialer's end). */
  readonly dialed: FakeConnection[] = [];

  driver(): WireDriver {
    let mine: string | null = null;
    return {
      name: 'fake',
      listen: async (accept) => {
        mine = `host-${this.listeners.size + 1}:9000`;
        this.listeners.set(mine, accept);
        return mine;
      },
      dial: (address, handlers) => {
        this.dials.push(address);
        const accept = this.listeners.get(address);
        const local = new FakeConnection(address);
        local.handlers = handlers;
        this.dialed.push(local);
        if (accept === undefined) {
          queueMicrotask(() => local.closeWith(new Error('connect ECONNREFUSED')));
          return local;
        }
        const remote = new FakeConnection(`from-${mine}`);
        local.peer = remote;
        remote.peer = local;
        remote.handlers = accept(remote);
        queueMicrotask(() => handlers.onOpen());
        return local;
      },
      close: async () => {
        if (mine !== null) this.listeners.delete(mine);
      },
    };
  }

  /** A raw client connected to `address`: what a process without the transport can do. */
  raw(address: string): RawPeer {
    const accept = this.listeners.get(address);
    if (accept === undefined) throw new Error(`nothing listens on ${address}`);
    const peer = new RawPeer();
    const local = new FakeConnection(address);
    const remote = new FakeConnection('raw');
    local.peer = remote;
    remote.peer = local;
    local.handlers = peer.handlers();
    remote.handlers = accept(remote);
    peer.connection = local;
    return peer;
  }
}

class FakeConnection implements WireConnection {
  handlers: WireConnectionHandlers | null = null;
  peer: FakeConnection | null = null;
  maxFrameBytes = Number.POSITIVE_INFINITY;
  /** Bytes finished writing. */
  written = 0;
  /** When set, frames wait here (a full socket) until `drip()` or `drain()`. */
  held: Uint8Array[] | null = null;
  private closed = false;

  constructor(readonly remoteAddress: string) {}

  send(frames: readonly Uint8Array[]): boolean {
    if (this.held !== null) {
      this.held.push(...frames);
      return this.held.length < 3;
    }
    for (const frame of frames) this.transmit(frame);
    return true;
  }

  writtenBytes(): number {
    return this.written;
  }

  /** A slow link: one held frame gets through; the socket drains once none is left. */
  drip(): void {
    const frame = this.held?.shift();
    if (frame !== undefined) this.transmit(frame);
    if (this.held?.length === 0) this.handlers?.onDrain();
  }

  /** The link catches up: everything held goes, and the socket drains. */
  drain(): void {
    const held = this.held ?? [];
    this.held = null;
    for (const frame of held) this.transmit(frame);
    this.handlers?.onDrain();
  }

  private transmit(frame: Uint8Array): void {
    this.written += frame.length;
    const copy = frame.slice();
    queueMicrotask(() => this.peer?.receive(copy));
  }

  receive(frame: Uint8Array): void {
    if (this.closed) return;
    if (frame.length > this.maxFrameBytes) {
      this.handlers?.onFrameRejected('oversize', `${frame.length} > ${this.maxFrameBytes}`);
      this.destroy();
      return;
    }
    this.handlers?.onFrame(frame);
  }

  setMaxFrameBytes(bytes: number): void {
    this.maxFrameBytes = bytes;
  }

  end(): void {
    queueMicrotask(() => this.destroy());
  }

  destroy(): void {
    this.closeWith(null);
    this.peer?.closeWith(null);
  }

  closeWith(error: unknown): void {
    if (this.closed) return;
    this.closed = true;
    const h = this.handlers;
    this.handlers = null;
    h?.onClose(error);
  }
}

class RawPeer {
  connection: FakeConnection | null = null;
  readonly frames: Uint8Array[] = [];
  closed = false;

  handlers(): WireConnectionHandlers {
    return {
      onOpen: () => {},
      onFrame: (f) => this.frames.push(f),
      onDrain: () => {},
      onFrameRejected: () => {},
      onClose: () => {
        this.closed = true;
      },
    };
  }

  send(frame: Uint8Array): void {
    this.connection?.send([frame]);
  }
}

let counter = 0;
const fakeCrypto: WireCrypto = {
  // Not an HMAC, but keyed and deterministic, which is all these tests need.
  hmacSha256: (key, data) => {
    const out = new Uint8Array(32);
    for (let i = 0; i < data.length; i++)
      out[i % 32] = ((out[i % 32] as number) * 31 + (data[i] as number)) & 0xff;
    for (let i = 0; i < key.length; i++)
      out[i % 32] = ((out[i % 32] as number) ^ (key[i] as number)) & 0xff;
    return out;
  },
  randomBytes: (length) => Uint8Array.from({ length }, () => counter++ & 0xff),
};

interface LogLine {
  level: string;
  msg: string;
  fields: Record<string, unknown>;
}

function recordingLogger(lines: LogLine[]): Logger {
  const at =
    (level: string) =>
    (fields: Record<string, unknown>, msg = '') =>
      lines.push({ level, msg, fields });
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

interface TestNode {
  readonly id: NodeId;
  readonly transport: NetworkTransport;
  readonly inbox: RaftMessage[];
  readonly unreachable: NodeId[];
  readonly events: TransportEvent[];
  readonly log: LogLine[];
  address: string;
}

async function node(
  net: FakeNet,
  clock: ManualClock,
  id: NodeId,
  options: Partial<WireOptions> = {},
): Promise<TestNode> {
  const log: LogLine[] = [];
  const transport = createWireTransport(
    { id, clock, random: () => 0.5, logger: recordingLogger(log), ...options },
    { driver: net.driver(), crypto: fakeCrypto },
  );
  const n: TestNode = { id, transport, inbox: [], unreachable: [], events: [], log, address: '' };
  transport.subscribe((e) => n.events.push(e));
  await transport.start({
    onMessage: (m) => n.inbox.push(m),
    onUnreachable: (p) => n.unreachable.push(p),
  });
  n.address = transport.address as string;
  return n;
}

function connectPeers(...nodes: TestNode[]): void {
  for (const n of nodes) {
    n.transport.setPeers(
      nodes.filter((m) => m !== n).map((m) => ({ id: m.id, address: m.address, voter: true })),
    );
  }
}

const hb = (from: NodeId, to: NodeId, round: number, term = 1): HeartbeatMessage => ({
  type: 'heartbeat',
  from,
  to,
  term,
  commit: 0,
  round,
});

function appendOf(from: NodeId, to: NodeId, bytes: number, index = 1): RaftMessage {
  return {
    type: 'append',
    from,
    to,
    term: 1,
    prevIndex: index - 1,
    prevTerm: index > 1 ? 1 : 0,
    entries: [{ index, term: 1, kind: 'command', data: new Uint8Array(bytes) }],
    commit: 0,
  };
}

function hello(overrides: Partial<Parameters<typeof encodeHello>[0]>): Uint8Array {
  return encodeHello({
    handshakeVersion: HANDSHAKE_VERSION,
    codecVersion: CODEC_VERSION,
    lane: 'control',
    hasSecret: false,
    clusterId: 'raft',
    from: 'intruder',
    to: 'n1',
    listenAddress: 'nowhere:1',
    nonce: new Uint8Array(32),
    ...overrides,
  });
}

// ------------------------------------------------------------------------------- cases

describe('createWireTransport', () => {
  it('delivers on both lanes and counts what it sent and received, per peer', async () => {
    const net = new FakeNet();
    const clock = new ManualClock();
    const a = await node(net, clock, 'n1');
    const b = await node(net, clock, 'n2');
    connectPeers(a, b);
    // Heartbeats queued while a link is still connecting coalesce, so the second one waits
    // until the link is open.
    a.transport.send([hb('n1', 'n2', 1), appendOf('n1', 'n2', 100)]);
    await turns();
    a.transport.send([hb('n1', 'n2', 2)]);
    await turns();
    expect(b.inbox.map((m) => m.type).sort()).toEqual(['append', 'heartbeat', 'heartbeat']);
    const sent = a.transport.stats().peers.find((p) => p.id === 'n2');
    expect(sent).toMatchObject({ messagesSent: 3, connects: 2, connectFailures: 0, dropped: 0 });
    expect(sent?.lanes.control.state).toBe('open');
    expect(sent?.lanes.bulk.state).toBe('open');
    const received = b.transport.stats().peers.find((p) => p.id === 'n1');
    expect(received?.messagesReceived).toBe(3);
    expect(received?.bytesReceived).toBe(sent?.bytesSent);
    expect(
      b.events
        .filter((e) => e.type === 'connected')
        .map((e) => e.type === 'connected' && e.lane)
        .sort(),
    ).toEqual(['bulk', 'control']);
    await a.transport.close();
    await b.transport.close();
  });

  it('refuses a peer of another cluster, and both sides log a line naming both', async () => {
    const net = new FakeNet();
    const clock = new ManualClock();
    const a = await node(net, clock, 'n1', { clusterId: 'alpha' });
    const b = await node(net, clock, 'n2', { clusterId: 'beta' });
    connectPeers(a, b);
    a.transport.send([hb('n1', 'n2', 1)]);
    await turns();
    expect(b.inbox).toEqual([]);
    const listener = b.log.find((l) => l.level === 'warn' && l.fields.reason === 'cluster');
    expect(listener?.msg).toMatch(
      /n2: refused n1: cluster mismatch: n1 at .* is in cluster 'alpha'.*this node \(n2\) is in cluster 'beta'/,
    );
    const dialer = a.log.find((l) => l.level === 'error' && l.fields.reason === 'cluster');
    expect(dialer?.msg).toContain("cluster 'alpha'");
    expect(dialer?.msg).toContain("cluster 'beta'");
    expect(b.transport.stats().refused.cluster).toBe(1);
    expect(a.transport.stats().refused.cluster).toBe(1);
    expect(a.unreachable).toContain('n2');
    // The dialer backs off instead of hammering: one more attempt after the first delay.
    const dials = net.dials.length;
    a.transport.send([hb('n1', 'n2', 2)]);
    await turns();
    expect(net.dials.length).toBe(dials);
    await clock.advance(100);
    expect(net.dials.length).toBe(dials + 1);
    // The same refusal again is logged once at error level, then at debug.
    expect(a.log.filter((l) => l.level === 'error' && l.fields.reason === 'cluster')).toHaveLength(
      1,
    );
    await a.transport.close();
    await b.transport.close();
  });

  it('refuses another protocol version, naming both versions', async () => {
    const net = new FakeNet();
    const clock = new ManualClock();
    const a = await node(net, clock, 'n1');
    const raw = net.raw(a.address);
    raw.send(hello({ codecVersion: CODEC_VERSION - 1, from: 'old' }));
    await turns();
    const refusal = raw.frames.find((f) => f[0] === FRAME_REFUSE) as Uint8Array;
    expect(decodeRefuse(refusal).reason).toBe('version');
    expect(decodeRefuse(refusal).text).toContain(`codec version ${CODEC_VERSION - 1}`);
    expect(decodeRefuse(refusal).text).toContain(`codec version ${CODEC_VERSION}`);
    expect(raw.closed).toBe(true);
    const other = net.raw(a.address);
    const future = hello({});
    future[5] = HANDSHAKE_VERSION + 1;
    other.send(future);
    await turns();
    expect(decodeRefuse(other.frames[0] as Uint8Array).text).toMatch(
      new RegExp(`handshake version ${HANDSHAKE_VERSION + 1}.*speaks ${HANDSHAKE_VERSION}`),
    );
    expect(a.transport.stats().refused.version).toBe(2);
    await a.transport.close();
  });

  it('without the secret, nothing gets through; with it, everything does', async () => {
    const net = new FakeNet();
    const clock = new ManualClock();
    const secret = 'correct horse battery staple';
    const a = await node(net, clock, 'n1', { secret });
    const b = await node(net, clock, 'n2', { secret: 'another secret, 16+ bytes' });
    const c = await node(net, clock, 'n3');
    const d = await node(net, clock, 'n4', { secret });
    connectPeers(a, b, c, d);
    for (const from of [b, c, d]) from.transport.send([hb(from.id, 'n1', 1)]);
    a.transport.send([hb('n1', 'n2', 1), hb('n1', 'n3', 1), hb('n1', 'n4', 1)]);
    await turns(8);
    expect(a.inbox.map((m) => m.from)).toEqual(['n4']);
    expect(b.inbox).toEqual([]);
    expect(c.inbox).toEqual([]);
    expect(d.inbox.map((m) => m.from)).toEqual(['n1']);
    expect(a.transport.stats().refused.auth).toBeGreaterThanOrEqual(2);
    expect(a.log.some((l) => /n3 has none|has a cluster secret and this node/.test(l.msg))).toBe(
      true,
    );
    // A raw client that skips the proof and sends a batch is cut off, and nothing is delivered.
    const raw = net.raw(a.address);
    raw.send(hello({ hasSecret: true }));
    await turns();
    raw.send(
      encodeBatch([
        { message: hb('intruder', 'n1', 9), size: encodedSize(hb('intruder', 'n1', 9)) },
      ]),
    );
    await turns();
    expect(raw.frames[0]?.[0]).toBe(FRAME_WELCOME);
    expect(raw.closed).toBe(true);
    expect(a.inbox.map((m) => m.from)).toEqual(['n4']);
    expect(a.transport.stats().rejectedFrames.malformed).toBeGreaterThanOrEqual(1);
    for (const n of [a, b, c, d]) await n.transport.close();
  });

  it('rejects frames before the handshake and messages whose sender is not the peer', async () => {
    const net = new FakeNet();
    const clock = new ManualClock();
    const a = await node(net, clock, 'n1');
    const early = net.raw(a.address);
    early.send(encodeBatch([{ message: hb('x', 'n1', 1), size: encodedSize(hb('x', 'n1', 1)) }]));
    await turns();
    expect(early.closed).toBe(true);
    // Authenticated as "mallory", sending as "n2": dropped and counted.
    const spoof = net.raw(a.address);
    spoof.send(hello({ from: 'mallory' }));
    await turns();
    spoof.send(Uint8Array.from([3, 0]));
    const forged = [hb('n2', 'n1', 1), hb('mallory', 'n1', 2), hb('mallory', 'n9', 3)];
    spoof.send(encodeBatch(forged.map((message) => ({ message, size: encodedSize(message) }))));
    await turns();
    expect(a.inbox).toEqual([hb('mallory', 'n1', 2)]);
    expect(a.transport.stats().dropped.misaddressed).toBe(2);
    // An oversized frame after authentication closes the connection.
    spoof.send(new Uint8Array(17 * 1024 * 1024));
    await turns();
    expect(spoof.closed).toBe(true);
    expect(a.transport.stats().rejectedFrames.oversize).toBe(1);
    await a.transport.close();
  });

  it('send() never throws: bad messages, oversize messages, unknown peers, not running', async () => {
    const net = new FakeNet();
    const clock = new ManualClock();
    const a = await node(net, clock, 'n1', { maxFrameBytes: 64 * 1024 });
    const b = await node(net, clock, 'n2');
    connectPeers(a, b);
    const bad = [
      { ...hb('n1', 'n2', 1), term: -1 },
      { ...hb('n1', 'n2', 1), type: 'nonsense' },
      null,
      'text',
      appendOf('n1', 'n2', 100 * 1024),
      hb('n1', 'ghost', 1),
      hb('n1', 'n1', 1),
    ] as unknown as RaftMessage[];
    expect(() => a.transport.send(bad)).not.toThrow();
    expect(() => a.transport.send(null as unknown as RaftMessage[])).not.toThrow();
    a.transport.send([hb('n1', 'n2', 7)]);
    await turns();
    expect(b.inbox).toEqual([hb('n1', 'n2', 7)]);
    const dropped = a.transport.stats().dropped;
    expect(dropped).toMatchObject({ encode: 4, oversize: 1, noAddress: 2 });
    expect(a.log.some((l) => l.level === 'error' && /cannot be encoded/.test(l.msg))).toBe(true);
    expect(a.log.some((l) => l.level === 'error' && /larger than maxFrameBytes/.test(l.msg))).toBe(
      true,
    );
    await a.transport.close();
    expect(() => a.transport.send([hb('n1', 'n2', 8)])).not.toThrow();
    expect(a.transport.stats().dropped.notRunning).toBe(1);
    await b.transport.close();
  });

  it('a peer that is down costs a bounded queue, heartbeats coalesce, and dials back off', async () => {
    const net = new FakeNet();
    const clock = new ManualClock();
    const a = await node(net, clock, 'n1', {
      maxQueueMessages: 10,
      maxQueueBytes: 16 * 1024 * 1024,
      initialBackoffMs: 100,
      maxBackoffMs: 1600,
    });
    a.transport.setPeers([{ id: 'n2', address: 'addr-down', voter: true }]);
    for (let i = 0; i < 1000; i++) a.transport.send([hb('n1', 'n2', i)]);
    for (let i = 0; i < 50; i++) a.transport.send([appendOf('n1', 'n2', 1000, i + 1)]);
    await turns();
    // While the first dial was under way: one coalesced heartbeat, ten appends queued, forty
    // refused. Once it failed, the queued appends were dropped (stale), the heartbeat kept.
    const peer = a.transport.stats().peers.find((p) => p.id === 'n2');
    expect(peer?.lanes.control.queuedMessages).toBe(1);
    expect(peer?.lanes.bulk.queuedMessages).toBe(0);
    expect(a.transport.stats().dropped).toMatchObject({ queueFull: 40, linkDown: 10 });
    expect(a.unreachable.length).toBeGreaterThanOrEqual(1);
    // While it backs off, appends are not queued at all.
    a.transport.send([appendOf('n1', 'n2', 1000, 51)]);
    expect(a.transport.stats().dropped.linkDown).toBe(11);
    // Dials: at once, then after about 100, 200, 400, 800, 1600, 1600... ms (jitter 0.5 → 0.75x).
    const dialsAt: number[] = [];
    const before = net.dials.length;
    for (let t = 0; t < 6000; t += 25) {
      await clock.advance(25);
      while (net.dials.length - before > dialsAt.length) dialsAt.push(clock.now());
    }
    // The control lane (its heartbeat stays queued) redials after 75, 150, 300, 600, then every
    // 1200 ms (base 100 · 2^n up to 1600, the jitter at 0.75); the bulk lane, whose appends
    // were dropped, goes idle after its first backoff and dials only when there is more.
    expect(dialsAt.length).toBeGreaterThanOrEqual(6);
    expect(dialsAt.length).toBeLessThanOrEqual(10);
    expect(dialsAt.filter((t) => t >= 3000).length).toBeLessThanOrEqual(3);
    // The peer comes up: the newest heartbeat and the queued appends arrive, no more.
    const b = await node(net, clock, 'n2');
    a.transport.setPeers([{ id: 'n2', address: b.address, voter: true }]);
    a.transport.send([hb('n1', 'n2', 5000)]);
    await turns(8);
    expect(b.inbox.filter((m) => m.type === 'heartbeat')).toEqual([hb('n1', 'n2', 5000)]);
    await a.transport.close();
    await b.transport.close();
  });

  it('holds one turn of sends to an open peer, far beyond a batch (the leader pipelines appends)', async () => {
    const net = new FakeNet();
    const clock = new ManualClock();
    const a = await node(net, clock, 'n1');
    const b = await node(net, clock, 'n2');
    connectPeers(a, b);
    a.transport.send([appendOf('n1', 'n2', 10, 1)]);
    await turns();
    // 48 appends of 1 MiB in one turn: the default window (64 × 1 MiB) must get through.
    for (let i = 2; i < 50; i++) a.transport.send([appendOf('n1', 'n2', 1024 * 1024, i)]);
    // A flush hands about 4 MiB to the socket per turn.
    await turns(30);
    expect(b.inbox).toHaveLength(49);
    expect(a.transport.stats().dropped.queueFull).toBe(0);
    expect(a.unreachable).toEqual([]);
    await a.transport.close();
    await b.transport.close();
  });

  it('a slow link that keeps writing is not a stall; one that writes nothing is redialed', async () => {
    const net = new FakeNet();
    const clock = new ManualClock();
    const a = await node(net, clock, 'n1', { writeStallTimeoutMs: 1000, maxBatchBytes: 4096 });
    const b = await node(net, clock, 'n2');
    connectPeers(a, b);
    a.transport.send([appendOf('n1', 'n2', 10, 1)]);
    await turns();
    const bulk = net.dialed.at(-1) as FakeConnection;
    bulk.held = [];
    for (let i = 2; i <= 11; i++) a.transport.send([appendOf('n1', 'n2', 3000, i)]);
    await turns();
    // One frame every 900 ms, each within the stall timeout though the socket stays full for
    // seconds at a time: nothing is torn down.
    for (let i = 0; i < 10; i++) {
      await clock.advance(900);
      bulk.drip();
      await turns();
    }
    bulk.drain();
    await turns(8);
    expect(b.inbox.filter((m) => m.type === 'append')).toHaveLength(11);
    expect(a.log.some((l) => /took no bytes/.test(l.msg))).toBe(false);
    // Now a dead link: nothing moves for the whole timeout.
    bulk.held = [];
    for (let i = 12; i < 17; i++) a.transport.send([appendOf('n1', 'n2', 3000, i)]);
    await turns();
    await clock.advance(1000);
    expect(a.log.some((l) => /took no bytes for 1000 ms; reconnecting/.test(l.msg))).toBe(true);
    const stats = a.transport.stats().peers.find((p) => p.id === 'n2');
    expect(stats?.reconnects).toBe(0);
    expect(stats?.lanes.bulk.state).toBe('backoff');
    await a.transport.close();
    await b.transport.close();
  });

  it('counts a reconnect only when a lane comes back, not when the second lane opens', async () => {
    const net = new FakeNet();
    const clock = new ManualClock();
    const a = await node(net, clock, 'n1');
    const b = await node(net, clock, 'n2', { idleTimeoutMs: 1000 });
    connectPeers(a, b);
    a.transport.send([hb('n1', 'n2', 1), appendOf('n1', 'n2', 10, 1)]);
    await turns();
    expect(a.transport.stats().peers[0]).toMatchObject({ connects: 2, reconnects: 0 });
    await clock.advance(1600); // n2 closes both idle connections
    a.transport.send([hb('n1', 'n2', 2)]);
    await turns();
    expect(a.transport.stats().peers[0]).toMatchObject({ connects: 3, reconnects: 1 });
    await a.transport.close();
    await b.transport.close();
  });

  it('after a refusal, nothing else from that connection counts (REFUSE then WELCOME in one read)', async () => {
    const net = new FakeNet();
    const clock = new ManualClock();
    const a = await node(net, clock, 'n1');
    // A listener that answers every HELLO with a refusal and, in the same breath, a WELCOME.
    net.listeners.set('liar', (connection) => ({
      onOpen: () => {},
      onFrame: () => {
        connection.send([
          encodeRefuse({ reason: 'cluster', text: 'go away' }),
          encodeWelcome({
            codecVersion: CODEC_VERSION,
            hasSecret: false,
            clusterId: 'raft',
            nodeId: 'n2',
            nonce: new Uint8Array(32),
            proof: new Uint8Array(0),
          }),
        ]);
      },
      onDrain: () => {},
      onFrameRejected: () => {},
      onClose: () => {},
    }));
    a.transport.setPeers([{ id: 'n2', address: 'liar', voter: true }]);
    a.transport.send([hb('n1', 'n2', 1)]);
    await turns();
    expect(a.events.map((e) => e.type)).not.toContain('connected');
    expect(a.transport.stats().peers[0]).toMatchObject({ connects: 0, messagesSent: 0 });
    await a.transport.close();
  });

  it('ids that strangers make up do not grow the counters; addresses they announce are checked', async () => {
    const net = new FakeNet();
    const clock = new ManualClock();
    const a = await node(net, clock, 'n1');
    for (let i = 0; i < 30; i++) {
      const raw = net.raw(a.address);
      raw.send(hello({ from: `junk-${i}`, listenAddress: i % 2 === 0 ? 'not an address' : '' }));
      await turns();
      raw.send(encodeProof(new Uint8Array(0)));
      const m = hb(`junk-${i}`, 'n1', 1);
      raw.send(encodeBatch([{ message: m, size: encodedSize(m) }]));
      await turns();
    }
    expect(a.inbox).toHaveLength(30);
    expect(a.transport.stats().peers).toEqual([]);
    await a.transport.close();
  });

  it('a message that changes after send() so it no longer encodes is dropped, not thrown', async () => {
    const net = new FakeNet();
    const clock = new ManualClock();
    const a = await node(net, clock, 'n1');
    const b = await node(net, clock, 'n2');
    connectPeers(a, b);
    a.transport.send([hb('n1', 'n2', 0)]);
    await turns();
    const changing = appendOf('n1', 'n2', 10, 1) as unknown as { entries: { data: Uint8Array }[] };
    const fine = hb('n1', 'n2', 1);
    a.transport.send([changing as unknown as RaftMessage, fine]);
    (changing.entries[0] as { data: Uint8Array }).data = new Uint8Array(5000);
    await turns();
    expect(b.inbox).toContainEqual(fine);
    expect(a.transport.stats().dropped.encode).toBe(1);
    await a.transport.close();
    await b.transport.close();
  });

  it('close() during start() waits for the listener and releases it; start() rejects', async () => {
    const net = new FakeNet();
    let released = 0;
    const driver = net.driver();
    const slow: WireDriver = {
      ...driver,
      listen: async (accept) => {
        await turns();
        return driver.listen(accept);
      },
      close: async () => {
        released++;
        await driver.close();
      },
    };
    const t = createWireTransport({ id: 'n1' }, { driver: slow, crypto: fakeCrypto });
    const starting = t.start({ onMessage: () => {} });
    await t.close();
    expect(released).toBe(1);
    expect(net.listeners.size).toBe(0);
    await expect(starting).rejects.toMatchObject({ code: 'SHUTDOWN' });
  });

  it('closes connections that never finish the handshake, and limits how many may pend', async () => {
    const net = new FakeNet();
    const clock = new ManualClock();
    const a = await node(net, clock, 'n1', { maxPendingHandshakes: 2, handshakeTimeoutMs: 1000 });
    const silent = [net.raw(a.address), net.raw(a.address)];
    const third = net.raw(a.address);
    await turns();
    expect(decodeRefuse(third.frames[0] as Uint8Array).reason).toBe('overloaded');
    expect(third.closed).toBe(true);
    expect(silent.every((s) => !s.closed)).toBe(true);
    await clock.advance(1000);
    expect(silent.every((s) => s.closed)).toBe(true);
    expect(a.transport.stats().inboundConnections).toBe(0);
    await a.transport.close();
  });

  it('an idle accepted connection is closed, and the dialer redials without calling it a failure', async () => {
    const net = new FakeNet();
    const clock = new ManualClock();
    const a = await node(net, clock, 'n1');
    const b = await node(net, clock, 'n2', { idleTimeoutMs: 1000 });
    connectPeers(a, b);
    a.transport.send([hb('n1', 'n2', 1)]);
    await turns();
    expect(b.transport.stats().inboundConnections).toBe(1);
    await clock.advance(1600);
    expect(b.transport.stats().inboundConnections).toBe(0);
    expect(a.transport.stats().peers.find((p) => p.id === 'n2')?.lanes.control.state).toBe('idle');
    a.transport.send([hb('n1', 'n2', 2)]);
    await turns();
    expect(b.inbox).toEqual([hb('n1', 'n2', 1), hb('n1', 'n2', 2)]);
    expect(a.unreachable).toEqual([]);
    expect(a.transport.stats().peers.find((p) => p.id === 'n2')?.reconnects).toBe(1);
    await a.transport.close();
    await b.transport.close();
  });

  it('answers a node it has no address for, at the address the node announced', async () => {
    const net = new FakeNet();
    const clock = new ManualClock();
    const a = await node(net, clock, 'n1');
    const joiner = await node(net, clock, 'n9');
    joiner.transport.setPeers([]);
    a.transport.setPeers([{ id: 'n9', address: joiner.address, voter: false }]);
    a.transport.send([hb('n1', 'n9', 1)]);
    await turns();
    joiner.transport.send([{ type: 'heartbeatResponse', from: 'n9', to: 'n1', term: 1, round: 1 }]);
    await turns();
    expect(a.inbox).toEqual([
      { type: 'heartbeatResponse', from: 'n9', to: 'n1', term: 1, round: 1 },
    ]);
    await a.transport.close();
    await joiner.transport.close();
  });
});
