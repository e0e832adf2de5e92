/**
 * What is particular to the WebSocket transport: mounting on an application's HTTP server,
 * answers to non-WebSocket requests, the ping/pong keepalive, permessage-deflate off by
 * default, the receive limit before authentication, and errors for bad options.
 */
import { createServer, get, type Server } from 'node:http';
import { connect, createServer as createNetServer, type Socket } from 'node:net';
import { CODEC_VERSION, type Logger, RaftError, type RaftMessage } from '@raft/core';
import {
  decodeRefuse,
  encodeHello,
  FRAME_REFUSE,
  FRAME_WELCOME,
  HANDSHAKE_VERSION,
  type NetworkTransport,
} from '@raft/core/wire';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { createWsTransport, type WsTransportOptions } from '../src/index.js';
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

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function until(what: string, check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function started(
  options: WsTransportOptions,
  inbox: RaftMessage[] = [],
): Promise<NetworkTransport> {
  const t = createWsTransport(options);
  await t.start({ onMessage: (m) => inbox.push(m) });
  cleanups.push(() => t.close());
  return t;
}

async function appServer(host: string): Promise<{ server: Server; address: string }> {
  const port = await freePort(host);
  const server = createServer((req, res) => res.end(`app:${req.url}`));
  await new Promise<void>((r) => server.listen(port, host, r));
  cleanups.push(
    () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
  return { server, address: `${host}:${port}` };
}

function fetchText(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    get(url, (res) => {
      let body = '';
      res.on('data', (c) => {
        body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    }).on('error', reject);
  });
}

function raw(url: string, options: ConstructorParameters<typeof WebSocket>[2] = {}) {
  const ws = new WebSocket(url, options);
  const frames: Buffer[] = [];
  ws.on('message', (d) => frames.push(d as Buffer));
  ws.on('error', () => {});
  let closed = false;
  ws.on('close', () => {
    closed = true;
  });
  cleanups.push(() => ws.terminate());
  const opened = new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return { ws, frames, opened, isClosed: () => closed };
}

const hello = (from: string, to: string, codecVersion = CODEC_VERSION) =>
  encodeHello({
    handshakeVersion: HANDSHAKE_VERSION,
    codecVersion,
    lane: 'control',
    hasSecret: false,
    clusterId: 'raft',
    from,
    to,
    listenAddress: '',
    nonce: new Uint8Array(32),
  });

describe('mounted on an application server', () => {
  it('answers upgrades on its path and leaves every other request to the application', async () => {
    const { server, address } = await appServer('127.0.0.1');
    const inbox: RaftMessage[] = [];
    await started({ id: 'n1', server, path: '/cluster/raft' }, inbox);
    expect((await fetchText(`http://${address}/status`)).body).toBe('app:/status');
    // Someone else's WebSocket endpoint on the same server is not answered by the transport.
    let otherUpgrade = false;
    server.on('upgrade', (req, socket) => {
      if (req.url === '/live') {
        otherUpgrade = true;
        socket.destroy();
      }
    });
    const other = raw(`ws://${address}/live`);
    await other.opened.catch(() => {});
    expect(otherUpgrade).toBe(true);
    // A node dials it on the mounted path.
    const peerAddress = `127.0.0.2:${await freePort('127.0.0.2')}`;
    const peer = await started({ id: 'n2', listen: peerAddress, path: '/cluster/raft' });
    peer.setPeers([{ id: 'n1', address, voter: true }]);
    for (let i = 0; i < 100 && inbox.length === 0; i++) {
      peer.send([{ type: 'heartbeat', from: 'n2', to: 'n1', term: 1, commit: 0, round: i }]);
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(inbox.length).toBeGreaterThan(0);
  });

  it('needs the server listening, or an advertise address', async () => {
    const server = createServer();
    const t = createWsTransport({ id: 'n1', server });
    const err = await t.start({ onMessage: () => {} }).catch((e: unknown) => e);
    expect(RaftError.is(err, 'UNAVAILABLE')).toBe(true);
    expect((err as Error).message).toMatch(/not listening yet/);
    const ok = createWsTransport({ id: 'n1', server, advertise: 'node-1.internal:8080' });
    await ok.start({ onMessage: () => {} });
    expect(ok.address).toBe('node-1.internal:8080');
    await ok.close();
    expect(server.listenerCount('upgrade')).toBe(0);
  });
});

describe('its own server', () => {
  it('answers plain HTTP with 426 and other paths with 404', async () => {
    const address = `127.0.0.1:${await freePort()}`;
    await started({ id: 'n1', listen: address });
    const res = await fetchText(`http://${address}/`);
    expect(res.status).toBe(426);
    const wrong = raw(`ws://${address}/elsewhere`);
    await expect(wrong.opened).rejects.toThrow(/404/);
  });

  it('negotiates no permessage-deflate by default, and does when asked', async () => {
    const a = `127.0.0.1:${await freePort()}`;
    await started({ id: 'n1', listen: a });
    const plain = raw(`ws://${a}/raft`, { perMessageDeflate: true });
    await plain.opened;
    expect(plain.ws.extensions).toBe('');
    const b = `127.0.0.1:${await freePort()}`;
    await started({ id: 'n2', listen: b, perMessageDeflate: true });
    const deflating = raw(`ws://${b}/raft`, { perMessageDeflate: true });
    await deflating.opened;
    expect(deflating.ws.extensions).toContain('permessage-deflate');
  });

  it('terminates a connection that stops answering pings', async () => {
    const address = `127.0.0.1:${await freePort()}`;
    const log: Line[] = [];
    const t = await started({ id: 'n1', listen: address, keepaliveMs: 50, logger: logger(log) });
    const quiet = raw(`ws://${address}/raft`, { autoPong: false });
    await quiet.opened;
    quiet.ws.send(hello('q', 'n1'), { binary: true });
    await until('the termination', () => quiet.isClosed(), 3000);
    expect(log.some((l) => /no pong from .* within 100 ms/.test(l.msg))).toBe(true);
    expect(t.stats().inboundConnections).toBe(0);
  });

  it('refuses another protocol version over a WebSocket, naming both', async () => {
    const address = `127.0.0.1:${await freePort()}`;
    const log: Line[] = [];
    await started({ id: 'n1', listen: address, logger: logger(log) });
    const old = raw(`ws://${address}/raft`);
    await old.opened;
    old.ws.send(hello('n5', 'n1', CODEC_VERSION - 1), { binary: true });
    await until('the refusal', () => old.frames.length > 0);
    expect(old.frames[0]?.[0]).toBe(FRAME_REFUSE);
    expect(decodeRefuse(old.frames[0] as Buffer).reason).toBe('version');
    expect(
      log.some(
        (l) => l.msg.includes(`codec version ${CODEC_VERSION - 1}`) && l.msg.includes('(n1)'),
      ),
    ).toBe(true);
  });

  it('with permessage-deflate on, a compressed message over 8 KiB before authentication is refused', async () => {
    const address = `127.0.0.1:${await freePort()}`;
    const t = await started({ id: 'n1', listen: address, perMessageDeflate: true });
    const bomb = raw(`ws://${address}/raft`, { perMessageDeflate: true });
    await bomb.opened;
    expect(bomb.ws.extensions).toContain('permessage-deflate');
    let code = 0;
    bomb.ws.on('close', (c) => {
      code = c;
    });
    // 1 MiB of zeros compresses to about a kilobyte: small on the wire, large inflated. The
    // inflater stops at the limit (close code 1009, "message too big") instead of inflating it
    // all for the size check after it.
    bomb.ws.send(new Uint8Array(1024 * 1024), { binary: true, compress: true });
    await until('the close', () => bomb.isClosed());
    expect(code).toBe(1009);
    expect(t.stats().rejectedFrames.oversize).toBe(1);
  });

  it('caps messages before authentication at 8 KiB, and rejects text messages', async () => {
    const address = `127.0.0.1:${await freePort()}`;
    const t = await started({ id: 'n1', listen: address });
    const big = raw(`ws://${address}/raft`);
    await big.opened;
    big.ws.send(new Uint8Array(9 * 1024), { binary: true });
    await until('the close', () => big.isClosed());
    const text = raw(`ws://${address}/raft`);
    await text.opened;
    text.ws.send('hello');
    await until('the close', () => text.isClosed());
    const stats = t.stats().rejectedFrames;
    expect(stats.oversize).toBe(1);
    expect(stats.malformed).toBe(1);
    // A proper HELLO still gets its WELCOME.
    const good = raw(`ws://${address}/raft`);
    await good.opened;
    good.ws.send(hello('g', 'n1'), { binary: true });
    await until('the welcome', () => good.frames.length > 0);
    expect(good.frames[0]?.[0]).toBe(FRAME_WELCOME);
  });
});

describe('between two nodes', () => {
  it('dials from the listen host, and heartbeats overtake a large transfer (separate lanes)', async () => {
    const inbox: RaftMessage[] = [];
    const events: string[] = [];
    const aAddress = `127.0.0.1:${await freePort('127.0.0.1')}`;
    const bAddress = `127.0.0.4:${await freePort('127.0.0.4')}`;
    const big = { maxFrameBytes: 64 * 1024 * 1024, maxQueueBytes: 256 * 1024 * 1024 };
    const a = await started({ id: 'n1', listen: aAddress, ...big });
    const b = await started({ id: 'n2', listen: bAddress, ...big }, inbox);
    b.subscribe((e) => {
      if (e.type === 'connected' && e.direction === 'inbound') events.push(e.remoteAddress);
    });
    a.setPeers([{ id: 'n2', address: bAddress, voter: true }]);
    b.setPeers([{ id: 'n1', address: aAddress, voter: true }]);
    const hb = (round: number): RaftMessage => ({
      type: 'heartbeat',
      from: 'n1',
      to: 'n2',
      term: 1,
      commit: 0,
      round,
    });
    const append = (i: number, data: Uint8Array): RaftMessage => ({
      type: 'append',
      from: 'n1',
      to: 'n2',
      term: 1,
      prevIndex: i,
      prevTerm: i === 0 ? 0 : 1,
      entries: data.length === 0 ? [] : [{ index: i + 1, term: 1, kind: 'command', data }],
      commit: 0,
    });
    a.send([hb(0), append(0, new Uint8Array(0))]);
    await until('both lanes up', () => inbox.length === 2);
    expect(events.every((r) => r.startsWith('127.0.0.1:'))).toBe(true);
    const data = new Uint8Array(24 * 1024 * 1024);
    const count = 6;
    for (let i = 0; i < count; i++) a.send([append(i, data)]);
    a.send([hb(99)]);
    await until(
      'the heartbeat',
      () => inbox.some((m) => m.type === 'heartbeat' && m.round === 99),
      20_000,
    );
    expect(inbox.filter((m) => m.type === 'append' && m.entries.length > 0).length).toBeLessThan(
      count,
    );
    await until(
      'every append',
      () => inbox.filter((m) => m.type === 'append').length === count + 1,
      30_000,
    );
  }, 60_000);
});

describe('slow and silent peers', () => {
  it('connections that never upgrade are closed after the handshake timeout, and bounded', async () => {
    const address = `127.0.0.1:${await freePort()}`;
    await started({ id: 'n1', listen: address, handshakeTimeoutMs: 150, maxPendingHandshakes: 3 });
    const port = Number(address.split(':')[1]);
    const closed = new Set<Socket>();
    const sockets: Socket[] = [];
    for (let i = 0; i < 6; i++) {
      const s = connect({ host: '127.0.0.1', port });
      s.on('error', () => {});
      s.on('close', () => closed.add(s));
      s.write('GET /raft HTTP/1.1\r\nHost: x'); // half a request, never finished
      sockets.push(s);
    }
    cleanups.push(() => {
      for (const s of sockets) s.destroy();
    });
    await until('every stalled socket closed', () => closed.size === 6, 3000);
  });

  it('the keepalive does not kill a large transfer on a slow link', async () => {
    const inbox: RaftMessage[] = [];
    const log: Line[] = [];
    const bAddress = `127.0.0.2:${await freePort('127.0.0.2')}`;
    await started({ id: 'n2', listen: bAddress, keepaliveMs: 200, logger: logger(log) }, inbox);
    // A proxy that passes about 2 MiB/s from the dialer to the listener.
    const port = await freePort('127.0.0.5');
    const proxySockets: Socket[] = [];
    const proxy = createNetServer((client) => {
      const upstream = connect({ host: '127.0.0.2', port: Number(bAddress.split(':')[1]) });
      proxySockets.push(client, upstream);
      for (const [a, b] of [
        [client, upstream],
        [upstream, client],
      ] as const) {
        a.on('error', () => b.destroy());
        a.on('close', () => b.destroy());
      }
      upstream.pipe(client);
      client.on('data', (chunk: Buffer) => {
        client.pause();
        upstream.write(chunk);
        setTimeout(() => client.resume(), (chunk.length / (2 * 1024 * 1024)) * 1000);
      });
    });
    await new Promise<void>((r) => proxy.listen(port, '127.0.0.5', r));
    cleanups.push(
      () =>
        new Promise<void>((r) => {
          for (const s of proxySockets) s.destroy();
          proxy.close(() => r());
        }),
    );
    const a = await started({
      id: 'n1',
      listen: `127.0.0.1:${await freePort()}`,
      keepaliveMs: 200,
      logger: logger(log),
    });
    a.setPeers([{ id: 'n2', address: `127.0.0.5:${port}`, voter: true }]);
    // One 3 MiB append: 1.5 s on the wire, 7 keepalive intervals without a whole message.
    a.send([
      {
        type: 'append',
        from: 'n1',
        to: 'n2',
        term: 1,
        prevIndex: 0,
        prevTerm: 0,
        entries: [{ index: 1, term: 1, kind: 'command', data: new Uint8Array(3 * 1024 * 1024) }],
        commit: 0,
      },
    ]);
    await until('the append', () => inbox.length === 1, 15_000);
    expect(log.filter((l) => /no pong/.test(l.msg))).toEqual([]);
  }, 30_000);
});

describe('errors a person can act on', () => {
  it('a port in use fails start() with UNAVAILABLE saying so', async () => {
    const { address } = await appServer('127.0.0.1');
    const t = createWsTransport({ id: 'n1', listen: address });
    const err = await t.start({ onMessage: () => {} }).catch((e: unknown) => e);
    expect(RaftError.is(err, 'UNAVAILABLE')).toBe(true);
    expect((err as Error).message).toMatch(
      /^cannot listen on 127\.0\.0\.1:\d+: the address is in use/,
    );
  });

  it('a member address whose scheme does not match the TLS setting is refused, not dialed', async () => {
    const log: Line[] = [];
    const t = await started({
      id: 'n1',
      listen: `127.0.0.1:${await freePort()}`,
      logger: logger(log),
    });
    t.setPeers([{ id: 'n2', address: 'wss://127.0.0.1:1/raft', voter: true }]);
    t.send([{ type: 'heartbeat', from: 'n1', to: 'n2', term: 1, commit: 0, round: 0 }]);
    await until('the refusal logged', () =>
      log.some((l) => /does not match this transport \(ws:\/\/ without tls\)/.test(l.msg)),
    );
  });

  it('bad options fail at creation with the field named', () => {
    expect(() => createWsTransport({ id: 'n1' })).toThrow(/^listen: give exactly one of `listen`/);
    const bad: [Partial<WsTransportOptions>, RegExp][] = [
      [{ server: createServer() }, /^listen: give exactly one/],
      [{ path: 'raft' }, /^path: must be a URL path/],
      [{ keepaliveMs: 0 }, /^keepaliveMs:/],
      [{ perMessageDeflate: 'yes' as never }, /^perMessageDeflate:/],
      [{ advertise: 'x' }, /^advertise:/],
      [{ secret: 'short' }, /^secret: must be at least 16 bytes/],
    ];
    for (const [options, message] of bad) {
      let error: unknown;
      try {
        createWsTransport({ id: 'n1', listen: '127.0.0.1:0', ...options } as WsTransportOptions);
      } catch (err) {
        error = err;
      }
      expect(RaftError.is(error, 'INVALID_CONFIG'), JSON.stringify(Object.keys(options))).toBe(
        true,
      );
      expect((error as Error).message).toMatch(message);
    }
  });
});
