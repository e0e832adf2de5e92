/**
 * @raft/transport-tcp against the shared transport conformance suite: plain TCP, and TLS with
 * mutual authentication. Every node listens on its own loopback address (127.0.0.1, .2, ...),
 * as the partition tests of the apps do.
 */
import { connect } from 'node:net';
import type { Member, NodeId } from '@raft/core';
import type { RawConnection, TransportHarness } from '@raft/testing/conformance';
import { describeTransportConformance } from '@raft/testing/vitest';
import { createTcpTransport, type TcpTransportOptions } from '../src/index.js';
import { testCertificates } from './certificates.js';
import { freePort } from './free-port.js';

function tcpHarness(name: string, extra: () => Partial<TcpTransportOptions>): TransportHarness {
  return {
    name,
    features: { restart: true, identity: true, secret: true, raw: true },
    create: () => {
      const addresses = new Map<NodeId, string>();
      let next = 1;
      return {
        endpoint: async (id, options) => {
          let address = addresses.get(id);
          if (address === undefined) {
            const host = `127.0.0.${next++}`;
            address = `${host}:${await freePort(host)}`;
            addresses.set(id, address);
          }
          const transport = createTcpTransport({
            id,
            listen: address,
            // Reconnect fast: cases restart peers and wait a bounded time for the link.
            initialBackoffMs: 20,
            maxBackoffMs: 200,
            ...extra(),
            ...(options?.clusterId === undefined ? {} : { clusterId: options.clusterId }),
            ...(options?.secret === undefined || options.secret === null
              ? {}
              : { secret: options.secret }),
          });
          return { transport, member: { id, address, voter: true } };
        },
        rawConnect: (member: Member) => rawConnect(member.address),
        cleanup: () => {},
      };
    },
  };
}

function rawConnect(address: string): Promise<RawConnection> {
  const at = address.lastIndexOf(':');
  const host = address.slice(0, at);
  const port = Number(address.slice(at + 1));
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    const closed = new Promise<void>((done) => socket.once('close', () => done()));
    socket.on('error', () => {});
    socket.once('connect', () =>
      resolve({
        write: (bytes) => {
          if (!socket.destroyed) socket.write(bytes);
        },
        close: () => {
          socket.destroy();
          return closed;
        },
        closed,
      }),
    );
    socket.once('error', reject);
  });
}

describeTransportConformance(tcpHarness('tcp', () => ({})));

describeTransportConformance(
  tcpHarness('tcp + mutual TLS', () => {
    const certs = testCertificates();
    return { tls: { cert: certs.cert, key: certs.key, ca: certs.ca } };
  }),
);
