/**
 * Links that are slow, silent or half-open: a throttling proxy between two nodes (a slow link
 * that keeps moving is not a stall), and a TLS listener facing clients that never finish the
 * TLS handshake (they are closed, bounded, and never hold close() up).
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { Logger, RaftMessage } from '@raft/core';
import type { NetworkTransport } from '@raft/core/wire';
import { afterEach, describe, expect, it } from 'vitest';
import { createTcpTransport, type TcpTransportOptions } from '../src/index.js';
import { testCertificates } from './certificates.js';
import { freePort } from './free-port.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function until(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function logLines(lines: string[]): Logger {
  const at = (_f: Record<string, unknown>, msg = '') => {
    lines.push(msg);
  };
  return { debug: at, info: at, warn: at, error: at };
}

async function transport(
  options: TcpTransportOptions,
  inbox: RaftMessage[] = [],
): Promise<NetworkTransport> {
  const t = createTcpTransport(options);
  await t.start({ onMessage: (m) => inbox.push(m) });
  cleanups.push(() => t.close());
  return t;
}

/** Forwards 127.0.0.5:<port> to `target`, at about `bytesPerSecond` from client to server. */
async function throttlingProxy(target: string, bytesPerSecond: number): Promise<string> {
  const port = await freePort('127.0.0.5');
  const [host, targetPort] = [
    target.slice(0, target.lastIndexOf(':')),
    Number(target.slice(target.lastIndexOf(':') + 1)),
  ];
  const sockets: Socket[] = [];
  const server: Server = createServer((client) => {
    const upstream = connect({ host, port: targetPort });
    sockets.push(client, upstream);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    upstream.pipe(client);
    client.on('data', (chunk: Buffer) => {
      // Pass each chunk in slices, pausing so the average rate is bytesPerSecond.
      client.pause();
      let offset = 0;
      const step = () => {
        if (upstream.destroyed) return;
        const slice = chunk.subarray(offset, offset + 16 * 1024);
        offset += slice.length;
        upstream.write(slice);
        if (offset < chunk.length) setTimeout(step, (slice.length / bytesPerSecond) * 1000);
        else setTimeout(() => client.resume(), (slice.length / bytesPerSecond) * 1000);
      };
      step();
    });
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.5', r));
  cleanups.push(
    () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  );
  return `127.0.0.5:${port}`;
}

describe('slow and silent links', () => {
  it('a slow link that keeps moving is not a stall: every append arrives, none is lost', async () => {
    const inbox: RaftMessage[] = [];
    const log: string[] = [];
    const bAddress = `127.0.0.2:${await freePort('127.0.0.2')}`;
    await transport({ id: 'n2', listen: bAddress }, inbox);
    const proxy = await throttlingProxy(bAddress, 2 * 1024 * 1024);
    const a = await transport({
      id: 'n1',
      listen: `127.0.0.1:${await freePort('127.0.0.1')}`,
      writeStallTimeoutMs: 400,
      logger: logLines(log),
    });
    a.setPeers([{ id: 'n2', address: proxy, voter: true }]);
    const data = new Uint8Array(256 * 1024);
    const count = 16; // 4 MiB at 2 MiB/s: the socket stays full far longer than 400 ms
    for (let i = 0; i < count; i++) {
      a.send([
        {
          type: 'append',
          from: 'n1',
          to: 'n2',
          term: 1,
          prevIndex: i,
          prevTerm: i === 0 ? 0 : 1,
          entries: [{ index: i + 1, term: 1, kind: 'command', data }],
          commit: 0,
        },
      ]);
    }
    await until('every append', () => inbox.length === count, 20_000);
    expect(log.filter((l) => /took no bytes/.test(l))).toEqual([]);
    expect(a.stats().peers[0]).toMatchObject({ reconnects: 0, dropped: 0 });
  }, 30_000);

  it('a TLS client that never finishes its handshake is closed, bounded, and never holds close() up', async () => {
    const certs = testCertificates();
    const address = `127.0.0.1:${await freePort()}`;
    const t = createTcpTransport({
      id: 'n1',
      listen: address,
      handshakeTimeoutMs: 200,
      maxPendingHandshakes: 3,
      tls: { cert: certs.cert, key: certs.key, ca: certs.ca },
    });
    await t.start({ onMessage: () => {} });
    const port = Number(address.split(':')[1]);
    const silent: Socket[] = [];
    const closed = new Set<Socket>();
    for (let i = 0; i < 6; i++) {
      const s = connect({ host: '127.0.0.1', port });
      s.on('error', () => {});
      s.on('close', () => closed.add(s));
      silent.push(s);
    }
    cleanups.push(() => {
      for (const s of silent) s.destroy();
    });
    // Three are over the limit and closed at once; the other three when the handshake times out.
    await until('every silent client closed', () => closed.size === 6, 3000);
    const started = Date.now();
    const late = connect({ host: '127.0.0.1', port });
    late.on('error', () => {});
    silent.push(late);
    await new Promise((r) => late.once('connect', r));
    await t.close();
    expect(Date.now() - started).toBeLessThan(1000);
  });
});
