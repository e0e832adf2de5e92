/**
 * @raft/transport-ws against the shared transport conformance suite: on its own server, with
 * mutual TLS (wss://), and mounted on an HTTP server the test owns. Every node listens on its
 * own loopback address (127.0.0.1, .2, ...).
 */
import { createServer, type Server } from 'node:http';
import type { Member, NodeId } from '@raft/core';
import type { RawConnection, TransportHarness } from '@raft/testing/conformance';
import { describeTransportConformance } from '@raft/testing/vitest';
import { WebSocket } from 'ws';
import { createWsTransport, type WsTransportOptions } from '../src/index.js';
import { testCertificates } from './certificates.js';
import { freePort } from './free-port.js';

type Mode = 'own' | 'tls' | 'mounted';

function wsHarness(name: string, mode: Mode): TransportHarness {
  return {
    name,
    features: { restart: true, identity: true, secret: true, raw: true },
    create: () => {
      const addresses = new Map<NodeId, string>();
      const servers: Server[] = [];
      let next = 1;
      return {
        endpoint: async (id, options) => {
          let address = addresses.get(id);
          if (address === undefined) {
            const host = `127.0.0.${next++}`;
            address = `${host}:${await freePort(host)}`;
            addresses.set(id, address);
          }
          const at = address.lastIndexOf(':');
          const host = address.slice(0, at);
          const port = Number(address.slice(at + 1));
          let where: Partial<WsTransportOptions>;
          if (mode === 'mounted') {
            // An application server with its own routes, the transport mounted beside them.
            const server = createServer((_req, res) => res.end('app'));
            servers.push(server);
            await new Promise<void>((resolve) => server.listen(port, host, resolve));
            where = { server, localAddress: host };
          } else {
            where = { listen: address };
          }
          const certs = testCertificates();
          const transport = createWsTransport({
            id,
            ...where,
            initialBackoffMs: 20,
            maxBackoffMs: 200,
            ...(mode === 'tls' ? { tls: { cert: certs.cert, key: certs.key, ca: certs.ca } } : {}),
            ...(options?.clusterId === undefined ? {} : { clusterId: options.clusterId }),
            ...(options?.secret === undefined || options.secret === null
              ? {}
              : { secret: options.secret }),
          });
          if (mode === 'mounted') {
            // Closing the transport leaves the application's server alone; a restart of the
            // node is a new server on the same address.
            const close = transport.close.bind(transport);
            const server = servers[servers.length - 1] as Server;
            Object.assign(transport, {
              close: async () => {
                await close();
                server.closeAllConnections();
                await new Promise<void>((resolve) => server.close(() => resolve()));
              },
            });
          }
          return { transport, member: { id, address, voter: true } };
        },
        rawConnect: (member: Member) => rawConnect(member.address, mode === 'tls'),
        cleanup: async () => {
          for (const s of servers) {
            s.closeAllConnections();
            if (s.listening) await new Promise<void>((resolve) => s.close(() => resolve()));
          }
        },
      };
    },
  };
}

/** A WebSocket to the endpoint that speaks no handshake: what an attacker's client gets. */
function rawConnect(address: string, secure: boolean): Promise<RawConnection> {
  const certs = testCertificates();
  const ws = new WebSocket(
    `${secure ? 'wss' : 'ws'}://${address}/raft`,
    secure ? { ca: certs.ca, cert: certs.cert, key: certs.key } : {},
  );
  const closed = new Promise<void>((done) => ws.once('close', () => done()));
  ws.on('error', () => {});
  return new Promise((resolve, reject) => {
    ws.once('open', () =>
      resolve({
        write: (bytes) => {
          if (ws.readyState === WebSocket.OPEN) ws.send(bytes, { binary: true });
        },
        close: () => {
          ws.terminate();
          return closed;
        },
        closed,
      }),
    );
    ws.once('error', reject);
  });
}

describeTransportConformance(wsHarness('ws', 'own'));
describeTransportConformance(wsHarness('wss + mutual TLS', 'tls'));
describeTransportConformance(wsHarness('ws mounted on an HTTP server', 'mounted'));
