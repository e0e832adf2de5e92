/**
 * The node's Prometheus metrics (prom-client), in a registry of its own (several nodes may
 * share a process, as in tests): the node's state read at scrape time, proposals and reads with
 * their latency, replication lag per peer (on the leader), snapshots, the transport's counters
 * and the HTTP answers.
 */
import type { NetworkTransport } from '@raft/core/wire';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ServiceNode } from '../node/assemble-node.js';

const LATENCY_BUCKETS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];
const ROLES = ['follower', 'preCandidate', 'candidate', 'leader'] as const;

/** What the server records into; read through `registry.metrics()`. */
export interface NodeMetrics {
  readonly registry: Registry;
  /** A proposal finished: `outcome` is ok or the error code. */
  observeProposal(seconds: number, outcome: string): void;
  observeRead(seconds: number, consistency: string, outcome: string): void;
  observeHttp(method: string, route: string, status: number): void;
  close(): void;
}

/**
 * The child of `metric` for these label values, made once and remembered (prom-client hashes a
 * label object on every inc or observe otherwise). For small, fixed sets of values only.
 */
function bound<C>(metric: { labels(...values: string[]): C }): (...values: string[]) => C {
  const children = new Map<string, C>();
  return (...values) => {
    const key = values.join('\u0000');
    let child = children.get(key);
    if (child === undefined) {
      child = metric.labels(...values);
      children.set(key, child);
    }
    return child;
  };
}

function transportGauges(registry: Registry, transport: NetworkTransport): void {
  const perPeer = (
    name: string,
    help: string,
    pick: (p: ReturnType<NetworkTransport['stats']>['peers'][number]) => number,
  ) =>
    new Counter({
      name,
      help,
      labelNames: ['peer'],
      registers: [registry],
      collect() {
        this.reset();
        for (const p of transport.stats().peers) this.inc({ peer: p.id }, pick(p));
      },
    });
  perPeer('raft_transport_messages_sent_total', 'Messages sent to a peer', (p) => p.messagesSent);
  perPeer('raft_transport_bytes_sent_total', 'Frame bytes sent to a peer', (p) => p.bytesSent);
  perPeer(
    'raft_transport_messages_received_total',
    'Messages received from a peer',
    (p) => p.messagesReceived,
  );
  perPeer(
    'raft_transport_bytes_received_total',
    'Frame bytes received from a peer',
    (p) => p.bytesReceived,
  );
  perPeer('raft_transport_reconnects_total', 'Reconnects of a lane to a peer', (p) => p.reconnects);
  perPeer(
    'raft_transport_connect_failures_total',
    'Dials or handshakes to a peer that failed',
    (p) => p.connectFailures,
  );
  new Counter({
    name: 'raft_transport_dropped_total',
    help: 'Messages the transport dropped, by reason',
    labelNames: ['reason'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [reason, n] of Object.entries(transport.stats().dropped)) this.inc({ reason }, n);
    },
  });
}

/** Creates the metrics of `sn`. */
export function createNodeMetrics(sn: ServiceNode<unknown, unknown, unknown>): NodeMetrics {
  const { node } = sn;
  const registry = new Registry();
  registry.setDefaultLabels({ service: sn.service.name, node: sn.config.id });
  const fromStatus = (
    name: string,
    help: string,
    pick: (s: ReturnType<typeof node.status>) => number,
  ) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(pick(node.status()));
      },
    });
  new Gauge({
    name: 'raft_role',
    help: 'The role of this node (1 for the current one)',
    labelNames: ['role'],
    registers: [registry],
    collect() {
      const role = node.status().role;
      for (const r of ROLES) this.set({ role: r }, r === role ? 1 : 0);
    },
  });
  fromStatus('raft_term', 'Current term', (s) => s.term);
  fromStatus('raft_commit_index', 'Highest log index known committed', (s) => s.commitIndex);
  fromStatus('raft_applied_index', 'Highest log index applied here', (s) => s.appliedIndex);
  fromStatus('raft_last_log_index', 'Last index in this node log', (s) => s.lastLogIndex);
  fromStatus('raft_snapshot_index', 'Index of the latest snapshot held', (s) => s.snapshotIndex);
  fromStatus('raft_members', 'Members in the configuration in force here', (s) => s.members.length);
  new Gauge({
    name: 'raft_replication_lag_entries',
    help: 'On the leader: entries the peer has not replicated yet (last index - match)',
    labelNames: ['peer'],
    registers: [registry],
    collect() {
      this.reset();
      const s = node.status();
      for (const [peer, p] of Object.entries(s.progress ?? {})) {
        this.set({ peer }, Math.max(0, s.lastLogIndex - p.match));
      }
    },
  });
  const proposals = new Counter({
    name: 'raft_proposals_total',
    help: 'Proposals answered by this node, by outcome (ok or the error code)',
    labelNames: ['outcome'],
    registers: [registry],
  });
  const proposalSeconds = new Histogram({
    name: 'raft_proposal_duration_seconds',
    help: 'Time from propose to applied here, for proposals that succeeded',
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  const reads = new Counter({
    name: 'raft_reads_total',
    help: 'Reads answered by this node, by consistency and outcome',
    labelNames: ['consistency', 'outcome'],
    registers: [registry],
  });
  const readSeconds = new Histogram({
    name: 'raft_read_duration_seconds',
    help: 'Time a read waited for read() (ReadIndex, lease or none), for reads that succeeded',
    labelNames: ['consistency'],
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  const snapshots = new Counter({
    name: 'raft_snapshots_total',
    help: 'Snapshots this node took',
    registers: [registry],
  });
  const installed = new Counter({
    name: 'raft_snapshots_installed_total',
    help: 'Snapshots from the leader installed here',
    registers: [registry],
  });
  const snapshotSeconds = new Histogram({
    name: 'raft_snapshot_duration_seconds',
    help: 'Time to take a snapshot, from the image being fixed to durable',
    buckets: [0.001, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60],
    registers: [registry],
  });
  const http = new Counter({
    name: 'raft_http_requests_total',
    help: 'HTTP requests answered, by method, route and status',
    labelNames: ['method', 'route', 'status'],
    registers: [registry],
  });
  transportGauges(registry, sn.transport);
  const unsubscribe = node.subscribe((e) => {
    if (e.type === 'snapshotInstalled') installed.inc();
    if (e.type === 'snapshotTaken') {
      snapshots.inc();
      const started = sn.snapshotStartedAt();
      if (started !== null) snapshotSeconds.observe((Date.now() - started) / 1000);
    }
  });
  // Per-request paths use children bound to their label values once.
  const proposalsBy = bound(proposals);
  const readsBy = bound(reads);
  const readSecondsBy = bound(readSeconds);
  const httpBy = bound(http);
  return {
    registry,
    observeProposal(seconds, outcome) {
      proposalsBy(outcome).inc();
      if (outcome === 'ok') proposalSeconds.observe(seconds);
    },
    observeRead(seconds, consistency, outcome) {
      readsBy(consistency, outcome).inc();
      if (outcome === 'ok') readSecondsBy(consistency).observe(seconds);
    },
    observeHttp(method, route, status) {
      // Routes are registered patterns (or 'unmatched'), so the set of values stays small.
      httpBy(method, route, String(status)).inc();
    },
    close() {
      unsubscribe();
    },
  };
}
