/**
 * Conformance cases for {@link Transport} implementations, checked against the contract in the
 * interface's doc comment: every message type arrives intact, in order per peer and lane (see
 * `messageLane`); `send()` never throws; messages to peers outside the last `setPeers()` are
 * dropped, except to a node that contacted this one (a joining node must answer the leader);
 * `onMessage` stays silent after `close()`. Then what a network transport needs on top, each
 * case run only against a harness that declares the feature it needs ({@link TransportFeatures}):
 * reconnecting to a restarted peer, bounded memory while a peer is down, refusing other clusters
 * and wrong secrets, surviving garbage and stalled handshakes on its listener; and last a
 * three-node cluster of RaftNodes on the transport.
 *
 * Delivery is asynchronous and may cross a real network, so cases poll with a bound (the
 * harness's `timeoutMs`) and never sleep-and-hope. While a connection is being established a
 * transport may lose messages (Raft tolerates loss), so a case first re-sends a probe until one
 * arrives, and only then requires what it sends next to arrive. That probe also serves as a
 * marker for the control lane (it is a `heartbeatResponse`): messages are delivered in order
 * per peer and lane, so once a probe sent after a control-lane message has arrived, that message
 * has arrived too or never will. Bulk-lane messages (appends, snapshot chunks, proposals) may be
 * overtaken by later control-lane ones, so cases wait for those explicitly.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import {
  createRaftNode,
  encodeMembership,
  encodeMessage,
  jsonCodec,
  type LogEntry,
  type LogIndex,
  type MaybePromise,
  type Member,
  type Membership,
  MemoryLogStore,
  MemorySnapshotStore,
  MemoryStableStore,
  messageLane,
  type NodeId,
  type ProposeRejection,
  RaftError,
  type RaftMessage,
  type RaftMessageType,
  type RaftNode,
  type StateMachine,
  type Transport,
  type TransportHandlers,
} from '@raft/core';
import * as fc from 'fast-check';
import type { ConformanceCase, NamedHarness } from './conformance-case.js';
import { ConformanceError, ConformancePropertyError } from './conformance-error.js';
import { propertySettings } from './store-property.js';
import {
  concat,
  DEFAULT_TIMEOUT_MS,
  describeDifference,
  fail,
  formatError,
  formatValue,
  positiveOption,
  settle,
  sleep,
  waitUntil,
  withCleanup,
} from './support.js';

/** One node's transport on a fabric, and the member record its peers dial it by. */
export interface TransportEndpoint {
  /** Not started yet: the case calls `start()`, `setPeers()` and `close()` itself. */
  readonly transport: Transport;
  /**
   * What the node's peers receive in `setPeers()`. `member.id` is the id the endpoint was
   * created for and `member.address` is fixed before `start()`, as in a cluster configuration
   * (for a TCP transport: a host and a port the harness chose).
   */
  readonly member: Member;
}

/**
 * Options of one endpoint. A case passes them only when the harness declares the feature each
 * one belongs to ({@link TransportFeatures}); otherwise `endpoint(id)` is called without them.
 */
export interface TransportEndpointOptions {
  /**
   * The cluster the endpoint belongs to (feature `identity`): endpoints of different clusters
   * must not get a message through to each other. Endpoints created without it share the
   * fabric's default cluster.
   */
  readonly clusterId?: string;
  /**
   * The shared cluster secret (feature `secret`): endpoints with different secrets, or one with
   * a secret and one without (`null`), must not get a message through to each other. Endpoints
   * created without this option share the fabric's default (which may be no secret). The cases
   * use secrets of 32 ASCII characters.
   */
  readonly secret?: string | null;
}

/**
 * A raw channel to an endpoint's listener, below the transport's protocol (feature `raw`): for
 * a TCP transport a plain socket, for a WebSocket transport a WebSocket. Cases write garbage on
 * it, or nothing at all, and require the transport to survive it.
 */
export interface RawConnection {
  /**
   * Queues `bytes` for the listener (an empty array is allowed and sends nothing).
   *
   * Contract: MUST NOT throw, also after the transport under test closed the channel (the
   * bytes are then dropped).
   */
  write(bytes: Uint8Array): void;
  /**
   * Closes the channel and releases everything it holds. Idempotent; resolves once the channel
   * is closed (then `closed` has resolved too).
   */
  close(): MaybePromise<void>;
  /**
   * Resolves once the channel is closed: by the transport under test (say, it refused what it
   * read), by `close()`, or because it failed. Never rejects.
   */
  readonly closed: Promise<void>;
}

/**
 * What a harness can do beyond the basic contract. A case that needs a feature runs only
 * against a harness that declares it (`true`); against any other harness it is left out of the
 * run (neither passed nor skipped, listed as not applicable in the report).
 */
export interface TransportFeatures {
  /**
   * `endpoint(id)` may be called again for an id whose transport was closed: the new transport
   * listens at the same address (a restarted process), so peers that still hold the old member
   * record reach it.
   */
  readonly restart?: boolean;
  /** `endpoint(id, { clusterId })` puts the endpoint in that cluster. */
  readonly identity?: boolean;
  /** `endpoint(id, { secret })` gives the endpoint that cluster secret (or none, `null`). */
  readonly secret?: boolean;
  /** The fabric implements `rawConnect()`. */
  readonly raw?: boolean;
}

/**
 * A set of nodes that can reach each other: a loopback interface with free ports, an in-process
 * network, a message broker. Created for a single case and never shared with another case.
 */
export interface TransportFabric {
  /**
   * The transport for node `id`, at an address the harness chooses. Called at most once per id
   * on a fabric, unless the harness has feature `restart` (then again for an id whose transport
   * was closed, and the new one listens at the same address), for at most a handful of ids.
   * `options` is given only with features `identity` or `secret`.
   */
  endpoint(id: NodeId, options?: TransportEndpointOptions): MaybePromise<TransportEndpoint>;
  /**
   * Opens a raw channel to the listener of the started endpoint whose member record is `member`
   * (feature `raw`; required with it). Rejects (or throws) only when the listener cannot be
   * reached.
   */
  rawConnect?(member: Member): MaybePromise<RawConnection>;
  /**
   * Releases the fabric (ports, servers, brokers). Called exactly once, last, after every
   * transport the case started has been closed (or failed to close), and every raw connection.
   */
  cleanup(): MaybePromise<void>;
}

/**
 * What an adapter author supplies to run the transport cases: a factory of fabrics.
 *
 * @example
 * ```ts
 * const harness: TransportHarness = {
 *   name: 'tcp transport',
 *   create: () => ({
 *     endpoint: async (id) => {
 *       const address = `127.0.0.1:${await freePort()}`;
 *       return { transport: createTcpTransport({ id, listen: address }), member: { id, address, voter: true } };
 *     },
 *     cleanup: () => {},
 *   }),
 * };
 * ```
 */
export interface TransportHarness extends NamedHarness {
  create(): MaybePromise<TransportFabric>;
  /**
   * Bound on every wait, in milliseconds: a call settling, a connection coming up (also to a
   * restarted peer: a transport's reconnect backoff must stay below it), a message arriving.
   * The cluster case, which elects, fails over and converges, gets four times as much in all.
   * Default 5000.
   */
  readonly timeoutMs?: number;
  /** What the harness can do beyond the basic contract. Default: nothing. */
  readonly features?: TransportFeatures;
  /** Runs of the garbage case (feature `raw`): each one a fresh raw connection. Default 30. */
  readonly propertyRuns?: number;
  /** With `propertyPath`, replays a failure of the garbage case: the seed it printed. */
  readonly propertySeed?: number;
  /** The path a failure of the garbage case printed (needs `propertySeed`). */
  readonly propertyPath?: string;
}

/** The term of the probes cases use to establish a link; no other message uses it. */
const PROBE_TERM = 4_242_424;
/** How often a probe is re-sent while waiting for the first one to arrive. */
const PROBE_INTERVAL_MS = 25;
/** How long a case watches for deliveries that must not happen (after `close()`). */
const QUIET_MS = 250;

function probe(from: NodeId, to: NodeId): RaftMessage {
  return { type: 'heartbeatResponse', from, to, term: PROBE_TERM, round: 0 };
}

function isProbe(message: RaftMessage): boolean {
  return message.type === 'heartbeatResponse' && message.term === PROBE_TERM;
}

/** A started-or-not transport plus everything it has delivered. */
class TestNode {
  readonly id: NodeId;
  readonly member: Member;
  /** Non-probe messages, in the order `onMessage` received them. */
  readonly inbox: RaftMessage[] = [];
  /** Messages (probes included) delivered after `close()` resolved. */
  readonly late: RaftMessage[] = [];
  private readonly probes = new Map<NodeId, number>();
  private state: 'created' | 'started' | 'closed' = 'created';

  constructor(
    private readonly endpoint: TransportEndpoint,
    private readonly timeoutMs: number,
    /** What the endpoint was created with (given again when it restarts). */
    readonly options: TransportEndpointOptions | undefined,
  ) {
    this.id = endpoint.member.id;
    this.member = endpoint.member;
  }

  get closed(): boolean {
    return this.state === 'closed';
  }

  /** Probes from `from` delivered so far. */
  probesFrom(from: NodeId): number {
    return this.probes.get(from) ?? 0;
  }

  /** Non-probe messages from `from`, in arrival order. */
  from(from: NodeId): RaftMessage[] {
    return this.inbox.filter((m) => m.from === from);
  }

  async start(): Promise<void> {
    const transport = this.endpoint.transport;
    this.state = 'started';
    await settle(`start() of ${this.id}`, this.timeoutMs, () =>
      transport.start({ onMessage: (m) => this.receive(m) }),
    );
  }

  setPeers(peers: readonly TestNode[]): void {
    const members = peers.map((p) => p.member);
    try {
      this.endpoint.transport.setPeers(members);
    } catch (err) {
      fail(
        `setPeers([${peers.map((p) => p.id).join(', ')}]) on ${this.id} threw: ${formatError(err)}`,
        err,
      );
    }
  }

  /** Sends through the transport; a synchronous throw fails the case (send MUST NOT throw). */
  send(messages: readonly RaftMessage[], when = ''): void {
    try {
      this.endpoint.transport.send(messages);
    } catch (err) {
      const what = messages.length === 0 ? 'an empty array' : `${messages.length} message(s)`;
      fail(
        `send() of ${what} on ${this.id}${when === '' ? '' : ` ${when}`} threw (it MUST NOT throw): ${formatError(err)}`,
        err,
      );
    }
  }

  async close(): Promise<void> {
    if (this.state !== 'started') {
      this.state = 'closed';
      return;
    }
    const transport = this.endpoint.transport;
    try {
      await settle(`close() of ${this.id}`, this.timeoutMs, () => transport.close());
    } finally {
      this.state = 'closed';
    }
  }

  private receive(message: RaftMessage): void {
    if (this.state === 'closed') {
      this.late.push(message);
      return;
    }
    if (isProbe(message)) {
      this.probes.set(message.from, this.probesFrom(message.from) + 1);
      return;
    }
    this.inbox.push(message);
  }
}

/** The fabric under test and the nodes a case created on it. */
class TransportSession {
  private readonly nodes: TestNode[] = [];
  /** Clean-ups registered by the case, run (last first) before the nodes are closed. */
  private readonly cleanups: (() => Promise<void>)[] = [];

  constructor(
    private readonly fabric: TransportFabric,
    readonly timeoutMs: number,
    readonly harness: TransportHarness,
  ) {}

  /**
   * An endpoint from the harness, checked (its member's id is `id`), that the case manages
   * itself: {@link node} wraps one in a TestNode.
   */
  async endpoint(id: NodeId, options?: TransportEndpointOptions): Promise<TransportEndpoint> {
    const fabric = this.fabric;
    const call =
      options === undefined
        ? `endpoint(${JSON.stringify(id)})`
        : `endpoint(${JSON.stringify(id)}, ${formatValue(options)})`;
    const endpoint = await settle(`the harness ${call}`, this.timeoutMs, () =>
      options === undefined ? fabric.endpoint(id) : fabric.endpoint(id, options),
    );
    if (endpoint?.member?.id !== id) {
      fail(
        `the harness ${call} returned member ${formatValue(endpoint?.member)}: its id must be ${JSON.stringify(id)}`,
      );
    }
    return endpoint;
  }

  /** Creates (does not start) the node `id`. */
  async node(id: NodeId, options?: TransportEndpointOptions): Promise<TestNode> {
    const node = new TestNode(await this.endpoint(id, options), this.timeoutMs, options);
    this.nodes.push(node);
    return node;
  }

  /**
   * Creates (does not start) `closed`'s node again (feature `restart`), with the options it was
   * created with, and requires it at the same address: its peers still dial the old one.
   */
  async restart(closed: TestNode): Promise<TestNode> {
    if (!closed.closed) throw new Error(`restart(${closed.id}): close it first`);
    const node = await this.node(closed.id, closed.options);
    checkSameAddress(closed.id, closed.member, node.member);
    return node;
  }

  /**
   * A raw connection to `node`'s listener (feature `raw`), closed (bounded) when the case ends
   * unless the case closed it already.
   */
  async rawConnect(node: TestNode): Promise<RawConnection> {
    const fabric = this.fabric;
    const connect = fabric.rawConnect;
    if (typeof connect !== 'function') {
      fail(
        `the harness "${this.harness.name}" declares feature raw, but its fabric has no rawConnect()`,
      );
    }
    const connection = await settle(
      `the harness rawConnect(${formatValue(node.member)})`,
      this.timeoutMs,
      () => connect.call(fabric, node.member),
    );
    if (
      typeof connection?.write !== 'function' ||
      typeof connection.close !== 'function' ||
      typeof connection.closed?.then !== 'function'
    ) {
      fail(
        `the harness rawConnect(${formatValue(node.member)}) returned ${formatValue(connection)}, not a RawConnection`,
      );
    }
    this.onCleanup(() => closeRaw(connection, this.timeoutMs, 'a raw connection'));
    return connection;
  }

  /** Registers `cleanup` to run when the case ends, before the nodes are closed. */
  onCleanup(cleanup: () => Promise<void>): void {
    this.cleanups.push(cleanup);
  }

  /** Creates and starts the nodes, then gives each all the others as peers. */
  async mesh<const Ids extends readonly NodeId[]>(
    ...ids: Ids
  ): Promise<{ readonly [K in keyof Ids]: TestNode }> {
    const nodes: TestNode[] = [];
    for (const id of ids) nodes.push(await this.node(id));
    for (const node of nodes) await node.start();
    for (const node of nodes) node.setPeers(nodes.filter((n) => n !== node));
    return nodes as unknown as { readonly [K in keyof Ids]: TestNode };
  }

  /**
   * Re-sends a probe from `from` to `to` every few milliseconds until one arrives. Afterwards
   * the link is up, and (delivery being in order per peer and lane) every control-lane message
   * `from` sent to `to` before this call has either arrived or been dropped.
   */
  async connect(from: TestNode, to: TestNode): Promise<void> {
    const before = to.probesFrom(from.id);
    const deadline = performance.now() + this.timeoutMs;
    let sent = 0;
    for (;;) {
      from.send([probe(from.id, to.id)], `(a probe to ${to.id})`);
      sent++;
      const resend = Math.min(deadline, performance.now() + PROBE_INTERVAL_MS);
      while (performance.now() < resend) {
        if (to.probesFrom(from.id) > before) return;
        await sleep(5);
      }
      if (to.probesFrom(from.id) > before) return;
      if (performance.now() >= deadline) {
        fail(
          `timed out after ${this.timeoutMs} ms waiting for a message from ${from.id} to reach ${to.id} (${sent} probes sent, none arrived)`,
        );
      }
    }
  }

  async closeAll(): Promise<void> {
    let first: unknown;
    for (const cleanup of this.cleanups.splice(0).reverse()) {
      try {
        await cleanup();
      } catch (err) {
        first ??= err;
      }
    }
    for (const node of this.nodes) {
      try {
        await node.close();
      } catch (err) {
        first ??= err;
      }
    }
    if (first !== undefined) throw first;
  }
}

/** Fails unless a restarted endpoint kept its address (feature `restart`). */
function checkSameAddress(id: NodeId, before: Member, after: Member): void {
  if (after.address !== before.address) {
    fail(
      `the harness endpoint(${JSON.stringify(id)}) for a restarted node returned address ${JSON.stringify(after.address)}, but feature restart requires the address of the closed transport, ${JSON.stringify(before.address)} (its peers still dial that one)`,
    );
  }
}

/** Closes `connection` (bounded), then waits (bounded) for its `closed` promise. */
async function closeRaw(connection: RawConnection, timeoutMs: number, what: string): Promise<void> {
  await settle(`close() of ${what}`, timeoutMs, () => connection.close());
  await settle(
    `the closed promise of ${what} after its close()`,
    timeoutMs,
    () => connection.closed,
  );
}

async function withFabric(
  harness: TransportHarness,
  body: (session: TransportSession) => Promise<void>,
): Promise<void> {
  const timeoutMs = positiveOption(harness.timeoutMs, 'timeoutMs', DEFAULT_TIMEOUT_MS);
  const fabric = await settle('the harness create()', timeoutMs, () => harness.create());
  const session = new TransportSession(fabric, timeoutMs, harness);
  await withCleanup(
    () => body(session),
    () =>
      withCleanup(
        () => session.closeAll(),
        () => settle('the harness cleanup()', timeoutMs, () => fabric.cleanup()),
      ),
  );
}

/** Whether `harness` declares `feature`. */
function has(harness: TransportHarness, feature: keyof TransportFeatures): boolean {
  return harness.features?.[feature] === true;
}

/** A case that runs `body` on a fresh fabric, against harnesses that have every one of `needs`. */
function transportCase(
  name: string,
  body: (session: TransportSession) => Promise<void>,
  needs: readonly (keyof TransportFeatures)[] = [],
): ConformanceCase<TransportHarness> {
  const testCase: ConformanceCase<TransportHarness> = {
    name,
    run: (harness) => withFabric(harness, body),
  };
  if (needs.length === 0) return testCase;
  return { ...testCase, appliesTo: (harness) => needs.every((f) => has(harness, f)) };
}

// ---------------------------------------------------------------------------- sample messages

/** Every rejection reason; the Record type makes a new reason a compile error here. */
const REJECTIONS: Record<ProposeRejection, null> = {
  notLeader: null,
  entryTooLarge: null,
  dropped: null,
  staleTerm: null,
};

type SamplesByType = {
  readonly [K in RaftMessageType]: readonly Extract<RaftMessage, { type: K }>[];
};

function bytes(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = (seed * 29 + i * 7 + (i >>> 8)) & 0xff;
  return out;
}

/**
 * At least one message of every type in the union, with every optional field both present and
 * absent, and every term distinct (it identifies the message on arrival). A new message type is
 * a compile error here until it has samples.
 */
function sampleMessages(from: NodeId, to: NodeId): RaftMessage[] {
  let next = 1;
  const term = (): number => next++;
  const envelope = () => ({ from, to, term: term() });
  // Entry data as a view into a larger buffer: a transport must send the view, not the buffer.
  const backing = bytes(96, 5);
  const entries: LogEntry[] = [
    { index: 5, term: 1, kind: 'command', data: bytes(33, 1) },
    { index: 6, term: 2, kind: 'noop', data: new Uint8Array(0) },
    {
      index: 7,
      term: 2,
      kind: 'membership',
      data: encodeMembership({ members: [{ id: from, address: 'somewhere:1', voter: true }] }),
    },
    { index: 8, term: 3, kind: 'command', data: backing.subarray(17, 50) },
  ];
  // A voter and a learner.
  const snapshotMembership = {
    members: [
      { id: from, address: 'somewhere:1', voter: true },
      { id: to, address: 'elsewhere:2', voter: false },
    ],
  };
  const samples: SamplesByType = {
    vote: [
      { type: 'vote', ...envelope(), preVote: false, lastLogIndex: 10, lastLogTerm: 2 },
      { type: 'vote', ...envelope(), preVote: true, lastLogIndex: 0, lastLogTerm: 0 },
      {
        type: 'vote',
        ...envelope(),
        preVote: false,
        lastLogIndex: 3,
        lastLogTerm: 3,
        transfer: true,
      },
    ],
    voteResponse: [
      { type: 'voteResponse', ...envelope(), preVote: false, granted: true },
      { type: 'voteResponse', ...envelope(), preVote: true, granted: false },
      { type: 'voteResponse', ...envelope(), preVote: true, granted: true },
    ],
    append: [
      { type: 'append', ...envelope(), prevIndex: 4, prevTerm: 1, entries, commit: 3 },
      { type: 'append', ...envelope(), prevIndex: 0, prevTerm: 0, entries: [], commit: 0 },
    ],
    appendResponse: [
      { type: 'appendResponse', ...envelope(), success: true, matchIndex: 8 },
      {
        type: 'appendResponse',
        ...envelope(),
        success: false,
        matchIndex: 4,
        conflict: { index: 3, term: 1 },
      },
      {
        type: 'appendResponse',
        ...envelope(),
        success: false,
        matchIndex: 9,
        conflict: { index: 2, term: 0 },
      },
    ],
    heartbeat: [
      { type: 'heartbeat', ...envelope(), commit: 5, round: 3 },
      { type: 'heartbeat', ...envelope(), commit: 0, round: 0 },
    ],
    heartbeatResponse: [{ type: 'heartbeatResponse', ...envelope(), round: 3 }],
    timeoutNow: [{ type: 'timeoutNow', ...envelope() }],
    readIndex: [{ type: 'readIndex', ...envelope(), session: 2 ** 40, requestId: 3 }],
    readIndexResponse: [
      { type: 'readIndexResponse', ...envelope(), session: 9, requestId: 3, index: 17 },
      {
        type: 'readIndexResponse',
        ...envelope(),
        session: 9,
        requestId: 4,
        index: 0,
        rejected: { leaderId: 'n3' },
      },
    ],
    propose: [
      {
        type: 'propose',
        ...envelope(),
        session: 2 ** 52 + 7,
        requestId: 1,
        data: bytes(20, 9),
      },
      { type: 'propose', ...envelope(), session: 0, requestId: 2, data: new Uint8Array(0) },
    ],
    proposeResponse: [
      {
        type: 'proposeResponse',
        ...envelope(),
        session: 2 ** 52 + 7,
        requestId: 1,
        index: 9,
        entryTerm: 3,
      },
      ...(Object.keys(REJECTIONS) as ProposeRejection[]).flatMap((reason, i) => [
        {
          type: 'proposeResponse' as const,
          ...envelope(),
          session: 11,
          requestId: 2 + i,
          index: 0,
          entryTerm: 0,
          rejected: { leaderId: 'n3', reason },
        },
        {
          type: 'proposeResponse' as const,
          ...envelope(),
          session: 11,
          requestId: 20 + i,
          index: 0,
          entryTerm: 0,
          rejected: { leaderId: null, reason },
        },
      ]),
    ],
    installSnapshot: [
      {
        type: 'installSnapshot',
        ...envelope(),
        meta: { index: 40, term: 3, membership: snapshotMembership },
        size: 100,
        offset: 0,
        // A view into a larger buffer, as entry data above.
        data: backing.subarray(20, 70),
      },
      {
        type: 'installSnapshot',
        ...envelope(),
        meta: { index: 40, term: 3, membership: snapshotMembership },
        size: 100,
        offset: 50,
        data: bytes(50, 3),
      },
      {
        type: 'installSnapshot',
        ...envelope(),
        meta: {
          index: 2 ** 52 + 1,
          term: 2 ** 40,
          membership: { members: [{ id: to, address: '', voter: true }] },
        },
        size: 2 ** 52,
        offset: 2 ** 52,
        data: new Uint8Array(0),
      },
    ],
    installSnapshotResponse: [
      {
        type: 'installSnapshotResponse',
        ...envelope(),
        index: 40,
        snapshotTerm: 3,
        nextOffset: 50,
        done: false,
      },
      {
        type: 'installSnapshotResponse',
        ...envelope(),
        index: 2 ** 52 + 1,
        snapshotTerm: 2 ** 40,
        nextOffset: 2 ** 52,
        done: true,
      },
    ],
  };
  return Object.values(samples).flat();
}

/** Heartbeats whose `commit` numbers them `[from, to)`, every fourth one an append instead. */
function numbered(fromId: NodeId, toId: NodeId, from: number, to: number): RaftMessage[] {
  const out: RaftMessage[] = [];
  for (let seq = from; seq < to; seq++) {
    if (seq % 4 === 3) {
      out.push({
        type: 'append',
        from: fromId,
        to: toId,
        term: 1,
        prevIndex: seq,
        prevTerm: 1,
        entries: [{ index: seq + 1, term: 1, kind: 'command', data: bytes(2048, seq) }],
        commit: seq,
      });
    } else {
      out.push({ type: 'heartbeat', from: fromId, to: toId, term: 1, commit: seq, round: 0 });
    }
  }
  return out;
}

function item<T>(list: readonly T[], i: number): T {
  const value = list[i];
  if (value === undefined) throw new RangeError(`no item ${i} in a list of ${list.length}`);
  return value;
}

function seqOf(message: RaftMessage): number | null {
  return message.type === 'heartbeat' || message.type === 'append' ? message.commit : null;
}

/**
 * Waits until every message in `expected` (identified by its term) has arrived at `node` from
 * `from`, then requires every message that arrived to equal one that was sent: one of
 * `expected`, or of `mayArrive` (sent while delivery was not yet guaranteed). Exact duplicates
 * are tolerated.
 */
async function expectDelivered(
  session: TransportSession,
  from: TestNode,
  node: TestNode,
  expected: readonly RaftMessage[],
  mayArrive: readonly RaftMessage[] = [],
): Promise<void> {
  const missing = (): RaftMessage[] => {
    const got = new Set(node.from(from.id).map((m) => m.term));
    return expected.filter((m) => !got.has(m.term));
  };
  await waitUntil(
    `${expected.length} messages from ${from.id} to arrive at ${node.id}`,
    session.timeoutMs,
    () => missing().length === 0,
    () =>
      `still missing: ${missing()
        .map((m) => `${m.type} (term ${m.term})`)
        .join(', ')}`,
  );
  const byTerm = new Map([...expected, ...mayArrive].map((m) => [m.term, m]));
  for (const [i, got] of node.from(from.id).entries()) {
    const sent = byTerm.get(got.term);
    if (sent === undefined) {
      fail(
        `${node.id} received a message ${from.id} never sent (arrival #${i}): ${formatValue(got)}`,
      );
    }
    const d = describeDifference(sent, got);
    if (d !== null) {
      fail(`the ${sent.type} message with term ${sent.term} arrived at ${node.id} altered: ${d}`);
    }
  }
}

/**
 * Waits for the numbered messages `[0, count)` from `from` at `node` and requires their first
 * arrivals in send order within each lane (heartbeats among themselves, appends among
 * themselves: a network transport sends each lane on its own connection, so a heartbeat may
 * overtake an append sent before it), with nothing else from `from` in between.
 */
async function expectInOrder(
  session: TransportSession,
  from: TestNode,
  node: TestNode,
  count: number,
): Promise<void> {
  const firstArrivals = (): RaftMessage[] => {
    const seen = new Set<number>();
    const order: RaftMessage[] = [];
    for (const m of node.from(from.id)) {
      const seq = seqOf(m);
      if (seq === null) fail(`${node.id} received an unexpected ${m.type} from ${from.id}`);
      if (!seen.has(seq)) {
        seen.add(seq);
        order.push(m);
      }
    }
    return order;
  };
  await waitUntil(
    `${count} messages from ${from.id} to arrive at ${node.id}`,
    session.timeoutMs,
    () => firstArrivals().length >= count,
    () => `${firstArrivals().length} of ${count} arrived`,
  );
  const lanes = new Map<string, number[]>();
  for (const m of firstArrivals()) {
    const lane = messageLane(m);
    const seqs = lanes.get(lane) ?? [];
    lanes.set(lane, seqs);
    const seq = seqOf(m) as number;
    const previous = seqs[seqs.length - 1];
    seqs.push(seq);
    if (previous !== undefined && seq < previous) {
      const shown = seqs.length > 6 ? `…, ${seqs.slice(-6).join(', ')}` : seqs.join(', ');
      fail(
        `${lane}-lane messages from ${from.id} reached ${node.id} out of order: message #${seq} (${m.type}) arrived after message #${previous} (${lane}-lane arrival order ${shown}; messages are numbered in send order)`,
      );
    }
  }
}

/** A heartbeat from `from` to `to`; its `term` identifies it on arrival. */
function heartbeat(from: TestNode, to: TestNode | NodeId, term: number): RaftMessage {
  return {
    type: 'heartbeat',
    from: from.id,
    to: typeof to === 'string' ? to : to.id,
    term,
    commit: 0,
    round: 0,
  };
}

/**
 * Adds `context` in front of a ConformanceError's message (other errors, harness crashes,
 * propagate unchanged), so a failure inside a shared helper says which step it was.
 */
async function inContext<T>(context: string, body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (err) {
    if (err instanceof ConformanceError && !(err instanceof ConformancePropertyError)) {
      throw new ConformanceError(
        `${context}: ${err.message}`,
        err.cause === undefined ? undefined : { cause: err.cause },
      );
    }
    throw err;
  }
}

/** Resolves on the next turn of the event loop (after pending I/O callbacks). */
function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function mib(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
}

// ---------------------------------------------------------------------------- a peer that is down

/** Appends the bounded-memory case sends to a peer that is down, each carrying one entry. */
const DOWN_APPENDS = 1500;
/** Size of that entry: one array shared by every append, so the case itself holds 256 KiB. */
const DOWN_ENTRY_BYTES = 256 * 1024;
/** Heartbeats sent along with the appends. */
const DOWN_HEARTBEATS = 5000;
/** The case yields to the event loop every this many messages... */
const DOWN_BATCH = 50;
/** ...and spreads the whole volume over at least this long (a reconnect timer may fire). */
const DOWN_SPREAD_MS = 300;
/** Retained memory may grow by this much while the peer is down (against ~375 MiB sent). */
const MAX_RETAINED_GROWTH_BYTES = 64 * 1024 * 1024;
/** Heartbeats sent while the peer was down that may reach it once it is back. */
const MAX_STALE_HEARTBEATS = 64;

let gc: (() => void) | undefined;

/**
 * `heapUsed + arrayBuffers` after a full garbage collection: what the process still holds. The
 * collector is reached without `--expose-gc` on the command line: the flag is set at run time,
 * then a new context (which is created with `gc` once the flag is on) hands out its `gc`.
 */
function retainedBytes(): number {
  if (gc === undefined) {
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as () => void;
  }
  // Twice: the first pass may only run finalizers that free what the second one collects.
  gc();
  gc();
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.arrayBuffers;
}

/**
 * Sends `to` (down) {@link DOWN_APPENDS} appends, all carrying `entry`, spread evenly among
 * {@link DOWN_HEARTBEATS} heartbeats (numbered by `commit` from 1), one message per `send()`,
 * over several turns of the event loop and at least {@link DOWN_SPREAD_MS}.
 */
async function sendWhileDown(from: TestNode, to: NodeId, entry: Uint8Array): Promise<void> {
  const total = DOWN_APPENDS + DOWN_HEARTBEATS;
  const started = performance.now();
  let appends = 0;
  let heartbeats = 0;
  for (let i = 0; i < total; i++) {
    if (Math.floor(((i + 1) * DOWN_APPENDS) / total) > appends) {
      appends++;
      const data = entry;
      from.send(
        [
          {
            type: 'append',
            from: from.id,
            to,
            term: 1,
            prevIndex: appends - 1,
            prevTerm: 1,
            entries: [{ index: appends, term: 1, kind: 'command', data }],
            commit: 0,
          },
        ],
        `to ${to}, which is down`,
      );
    } else {
      heartbeats++;
      from.send(
        [{ type: 'heartbeat', from: from.id, to, term: 1, commit: heartbeats, round: 0 }],
        `to ${to}, which is down`,
      );
    }
    if ((i + 1) % DOWN_BATCH === 0) {
      await nextTurn();
      const behind = started + (DOWN_SPREAD_MS * (i + 1)) / total - performance.now();
      if (behind >= 1) await sleep(behind);
    }
  }
}

// ---------------------------------------------------------------------------- refusals

/** How many times, and how often, a refused link is tried. */
const REFUSAL_ROUNDS = 20;
const REFUSAL_INTERVAL_MS = 25;
/** Terms of the heartbeats sent over refused links. */
const REFUSAL_TERM = 9_100_000;

/**
 * For each `[from, to]` pair, sends a heartbeat and a probe {@link REFUSAL_ROUNDS} times over
 * about half a second, then requires that none of them arrived. `describe` says what sets the
 * two ends apart; `rule` is the contract point.
 */
async function expectRefused(
  pairs: readonly (readonly [TestNode, TestNode])[],
  describe: (node: TestNode) => string,
  rule: string,
): Promise<void> {
  for (let round = 0; round < REFUSAL_ROUNDS; round++) {
    for (const [from, to] of pairs) {
      from.send(
        [heartbeat(from, to, REFUSAL_TERM + round), probe(from.id, to.id)],
        `to ${to.id}, which must refuse it`,
      );
    }
    await sleep(REFUSAL_INTERVAL_MS);
  }
  for (const [from, to] of pairs) {
    const messages = to.from(from.id);
    const got = messages.length + to.probesFrom(from.id);
    if (got > 0) {
      const first = messages[0] === undefined ? 'a probe' : formatValue(messages[0]);
      fail(
        `${to.id} (${describe(to)}) received ${got} of the ${2 * REFUSAL_ROUNDS} messages ${from.id} (${describe(from)}) sent it, first ${first}: ${rule}`,
      );
    }
  }
}

/**
 * The secrets the secret case gives its endpoints: 32 ASCII characters each, as long as a
 * transport may require (`openssl rand -hex 16` makes one of that length).
 */
const ALPHA_SECRET = 'alpha-secret-0123456789abcdef012';
const OTHER_SECRET = 'other-secret-0123456789abcdef012';

function clusterOf(node: TestNode): string {
  return `cluster ${JSON.stringify(node.options?.clusterId)}`;
}

function secretOf(node: TestNode): string {
  const secret = node.options?.secret;
  return typeof secret === 'string' ? `secret ${JSON.stringify(secret)}` : 'no secret';
}

// ---------------------------------------------------------------------------- raw connections

/** A rejected write on a raw connection: the harness's RawConnection broke its contract. */
function writeRaw(connection: RawConnection, bytes: Uint8Array, to: TestNode): void {
  try {
    connection.write(bytes);
  } catch (err) {
    fail(
      `write() of ${bytes.length} bytes on a raw connection to ${to.id} threw (it MUST NOT throw): ${formatError(err)}`,
      err,
    );
  }
}

/**
 * Collects uncaught exceptions and unhandled rejections while a case runs (listening with
 * `uncaughtExceptionMonitor`, which leaves the process's own handling as it is, and
 * `unhandledRejection`). `stop()` removes both listeners.
 */
function watchProcessErrors(): { readonly errors: readonly unknown[]; stop(): void } {
  const errors: unknown[] = [];
  const onException = (error: unknown): void => {
    errors.push(error);
  };
  const onRejection = (reason: unknown): void => {
    errors.push(reason);
  };
  process.on('uncaughtExceptionMonitor', onException);
  process.on('unhandledRejection', onRejection);
  return {
    errors,
    stop: () => {
      process.off('uncaughtExceptionMonitor', onException);
      process.off('unhandledRejection', onRejection);
    },
  };
}

/** The term of the message embedded in framed garbage; no legitimate peer sends it. */
const INTRUDER_TERM = 0xbad_bad;
/** Raw connections the stalled-handshake case keeps open. */
const STALLED_CONNECTIONS = 50;
/** Wall time spent shrinking a garbage failure (as in the store property cases). */
const GARBAGE_SHRINK_BUDGET_MS = 10_000;
/** Longest counterexample printed; the seed and path replay it whole. */
const MAX_COUNTEREXAMPLE_CHARS = 2000;

/** `value` as an unsigned LEB128 varint. */
function varint(value: number): Uint8Array {
  const out: number[] = [];
  let rest = value;
  while (rest >= 0x80) {
    out.push((rest & 0x7f) | 0x80);
    rest = Math.floor(rest / 0x80);
  }
  out.push(rest);
  return Uint8Array.from(out);
}

/** Common ways to frame a message on a stream: a 4-byte length either way, a varint, none. */
const FRAMINGS = ['u32be', 'u32le', 'varint', 'bare'] as const;

/** `payload` behind a length prefix the way common framings write one (or bare). */
function framed(payload: Uint8Array, framing: (typeof FRAMINGS)[number]): Uint8Array {
  if (framing === 'bare') return payload;
  if (framing === 'varint') return concat([varint(payload.length), payload]);
  const header = new Uint8Array(4);
  new DataView(header.buffer).setUint32(0, payload.length, framing === 'u32le');
  return concat([header, payload]);
}

/** The encoded message framed garbage carries: a heartbeat claiming to be from `claimedFrom`. */
function garbageIntruder(claimedFrom: NodeId, to: NodeId): Uint8Array {
  return encodeMessage({
    type: 'heartbeat',
    from: claimedFrom,
    to,
    term: INTRUDER_TERM,
    commit: 0,
    round: 0,
  });
}

/**
 * What one write on a raw connection carries: random bytes (short and up to 4 KiB), nothing, a
 * huge length prefix with a tail (`ff ff ff ff`, 64 MiB as a 4-byte big-endian length, 2^32 - 1
 * as a varint), and a well-formed encoded message behind common framings. The last one is what
 * a peer would send after its handshake: a transport that decodes frames before the handshake
 * completed delivers it, and it claims to come from `claimedFrom`, a legitimate peer.
 */
function garbageChunk(claimedFrom: NodeId, to: NodeId): fc.Arbitrary<Uint8Array> {
  const intruder = garbageIntruder(claimedFrom, to);
  return fc.oneof(
    { weight: 4, arbitrary: fc.uint8Array({ maxLength: 64 }) },
    { weight: 2, arbitrary: fc.uint8Array({ minLength: 65, maxLength: 4096 }) },
    { weight: 1, arbitrary: fc.constant(new Uint8Array(0)) },
    {
      weight: 2,
      arbitrary: fc
        .tuple(
          fc.constantFrom(
            Uint8Array.of(0xff, 0xff, 0xff, 0xff),
            Uint8Array.of(0x04, 0, 0, 0),
            Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0x0f),
          ),
          fc.uint8Array({ maxLength: 64 }),
        )
        .map(([header, tail]) => concat([header, tail])),
    },
    {
      weight: 2,
      arbitrary: fc.constantFrom(...FRAMINGS).map((framing) => framed(intruder, framing)),
    },
  );
}

/** A write, shortly: its length and first bytes. */
function describeWrite(bytes: Uint8Array): string {
  return `write(${formatValue(bytes)})`;
}

/** What a failed garbage run threw, with the steps it had taken. */
class GarbageRunFailure extends Error {
  constructor(
    readonly error: unknown,
    readonly steps: readonly string[],
  ) {
    super(error instanceof Error ? error.message : formatError(error));
    this.name = 'GarbageRunFailure';
  }
}

/**
 * Runs the garbage property: each run opens a raw connection to `target`, makes the writes
 * fast-check generated (yielding a turn between them, so they arrive as separate reads), closes
 * it, and calls `check`, which fails if `target` delivered anything, or an uncaught error
 * happened, since `mark()` was taken at the start of the run (so a shrunk run is blamed for
 * what it did, not for what an earlier run left behind). A failure is shrunk and thrown as a
 * {@link ConformancePropertyError} with the seed and path. Returns the seed used.
 */
async function garbageProperty<Mark>(
  s: TransportSession,
  target: TestNode,
  claimedFrom: NodeId,
  watch: { mark(): Mark; check(when: string, since: Mark): void },
): Promise<number> {
  const settings = propertySettings(s.harness);
  let firstFailureAt: number | undefined;
  const writes = fc.array(garbageChunk(claimedFrom, target.id), { minLength: 1, maxLength: 6 });
  const property = fc.asyncProperty(writes, async (chunks) => {
    if (
      firstFailureAt !== undefined &&
      performance.now() - firstFailureAt > GARBAGE_SHRINK_BUDGET_MS
    ) {
      return;
    }
    const steps: string[] = [];
    const since = watch.mark();
    try {
      steps.push(`rawConnect(${target.id})`);
      const connection = await s.rawConnect(target);
      for (const chunk of chunks) {
        steps.push(describeWrite(chunk));
        writeRaw(connection, chunk, target);
        await nextTurn();
      }
      steps.push('close()');
      await closeRaw(connection, s.timeoutMs, `a raw connection to ${target.id}`);
      watch.check(`after ${chunks.length} write(s) on a raw connection to ${target.id}`, since);
    } catch (error) {
      firstFailureAt ??= performance.now();
      throw new GarbageRunFailure(error, steps);
    }
  });
  // Tried first on every check, whatever the seed: an encoded message behind each framing, and
  // the largest length prefix, each alone on its connection.
  const intruder = garbageIntruder(claimedFrom, target.id);
  const examples: [Uint8Array[]][] = [
    ...FRAMINGS.map((framing): [Uint8Array[]] => [[framed(intruder, framing)]]),
    [[Uint8Array.of(0xff, 0xff, 0xff, 0xff)]],
  ];
  const details = await fc.check(property, {
    numRuns: settings.runs,
    examples,
    ...(settings.seed === undefined ? {} : { seed: settings.seed }),
    ...(settings.path === undefined ? {} : { path: settings.path }),
  });
  if (!details.failed) return details.seed;
  const counterexample = details.counterexample;
  const path = details.counterexamplePath;
  const thrown = details.errorInstance;
  if (counterexample === null || path === null) {
    throw new ConformanceError(
      `the garbage check failed without a counterexample (seed ${details.seed}, ${details.numRuns} runs${details.interrupted ? ', interrupted' : ''})`,
      { cause: thrown },
    );
  }
  const error = thrown instanceof GarbageRunFailure ? thrown.error : thrown;
  const steps = thrown instanceof GarbageRunFailure ? thrown.steps : [];
  let operations = fc.stringify(counterexample[0]);
  if (operations.length > MAX_COUNTEREXAMPLE_CHARS) {
    operations = `${operations.slice(0, MAX_COUNTEREXAMPLE_CHARS)}…`;
  }
  const lines = [error instanceof ConformanceError ? error.message : formatError(error)];
  if (steps.length > 0) {
    lines.push('  steps of the shrunk run (the last one failed):');
    for (const [i, step] of steps.entries()) lines.push(`    ${i + 1}. ${step}`);
  }
  lines.push(
    `  counterexample (found on run ${details.numRuns}, shrunk ${details.numShrinks} times): ${operations}`,
    `  replay: seed ${details.seed}, path "${path}": set { propertySeed: ${details.seed}, propertyPath: "${path}" } on the harness and run this case alone`,
  );
  throw new ConformancePropertyError(
    lines.join('\n'),
    {
      seed: details.seed,
      path,
      runs: details.numRuns,
      shrinks: details.numShrinks,
      operations,
      steps,
    },
    { cause: error },
  );
}

// ---------------------------------------------------------------------------- a cluster

/** The cluster case's budget, in multiples of `timeoutMs`: it elects, fails over, converges. */
const CLUSTER_BUDGET_FACTOR = 4;
/** Commands written before and after a node's transport is killed. */
const CLUSTER_WRITES = 20;

/** A command of the cluster case's state machine: `key = value`. Applying it twice is harmless. */
interface SetCommand {
  readonly key: string;
  readonly value: number;
}

/** A map of numbers, snapshotted as JSON. */
class KeyValueMachine implements StateMachine<SetCommand, null> {
  data = new Map<string, number>();

  apply(command: SetCommand): null {
    this.data.set(command.key, command.value);
    return null;
  }

  snapshot(): Uint8Array[] {
    return [new TextEncoder().encode(JSON.stringify([...this.data]))];
  }

  async restore(chunks: AsyncIterable<Uint8Array>): Promise<void> {
    const parts: Uint8Array[] = [];
    for await (const chunk of chunks) parts.push(chunk);
    this.data = new Map(JSON.parse(new TextDecoder().decode(concat(parts))) as [string, number][]);
  }

  /** The state, in a form two replicas compare by equality. */
  digest(): string {
    return JSON.stringify([...this.data].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  }
}

/**
 * The transport a RaftNode of the cluster case is given: it forwards to the harness's
 * transport, which the case can kill (close, while the node keeps running unaware: it then
 * sends into the void and hears nothing) and, with feature `restart`, bring back (a new
 * endpoint for the same id, started with the node's handlers and the last `setPeers()` list).
 * A transport that throws from `send()` or `setPeers()` is recorded in `problems`.
 */
class KillableTransport implements Transport {
  /** Problems seen on the way through (calls that threw), reported at the end of the case. */
  readonly problems: string[] = [];
  private current: Transport | null;
  private handlers: TransportHandlers | null = null;
  private peers: readonly Member[] | null = null;
  private stopped = false;
  /** Inner transports started and not yet closed. */
  private readonly open = new Set<Transport>();

  constructor(
    readonly member: Member,
    transport: Transport,
    private readonly timeoutMs: number,
  ) {
    this.current = transport;
  }

  get alive(): boolean {
    return this.current !== null;
  }

  async start(handlers: TransportHandlers): Promise<void> {
    this.handlers = handlers;
    if (this.current !== null) await this.startInner(this.current, handlers);
  }

  send(messages: readonly RaftMessage[]): void {
    const inner = this.current;
    if (inner === null) return;
    try {
      inner.send(messages);
    } catch (err) {
      this.problems.push(
        `send() on ${this.member.id} threw (it MUST NOT throw): ${formatError(err)}`,
      );
    }
  }

  setPeers(peers: readonly Member[]): void {
    this.peers = peers;
    try {
      this.current?.setPeers(peers);
    } catch (err) {
      this.problems.push(`setPeers() on ${this.member.id} threw: ${formatError(err)}`);
    }
  }

  async close(): Promise<void> {
    this.stopped = true;
    const inner = this.current;
    this.current = null;
    if (inner !== null) await this.closeInner(inner);
  }

  /** Closes the harness's transport; the node keeps running. */
  async kill(): Promise<void> {
    const inner = this.current;
    this.current = null;
    if (inner !== null) await this.closeInner(inner);
  }

  /** Puts the transport of a restarted endpoint under the node, as it was before the kill. */
  async revive(endpoint: TransportEndpoint): Promise<void> {
    if (this.stopped) return;
    const inner = endpoint.transport;
    this.current = inner;
    if (this.peers !== null) this.setPeers(this.peers);
    if (this.handlers !== null) await this.startInner(inner, this.handlers);
  }

  /** Closes whatever the node did not (a node that failed to start, or to stop). */
  async closeLeftover(): Promise<void> {
    for (const inner of [...this.open]) await this.closeInner(inner);
  }

  private async startInner(inner: Transport, handlers: TransportHandlers): Promise<void> {
    const onMessage = (message: RaftMessage): void => {
      if (this.current === inner) handlers.onMessage(message);
    };
    const onUnreachable = handlers.onUnreachable;
    const forward: TransportHandlers =
      onUnreachable === undefined
        ? { onMessage }
        : {
            onMessage,
            onUnreachable: (peer) => {
              if (this.current === inner) onUnreachable.call(handlers, peer);
            },
          };
    this.open.add(inner);
    await settle(`start() of ${this.member.id}'s transport`, this.timeoutMs, () =>
      inner.start(forward),
    );
  }

  private async closeInner(inner: Transport): Promise<void> {
    if (!this.open.delete(inner)) return;
    await settle(`close() of ${this.member.id}'s transport`, this.timeoutMs, () => inner.close());
  }
}

/** One node of the cluster case. */
interface Replica {
  readonly id: NodeId;
  readonly transport: KillableTransport;
  readonly machine: KeyValueMachine;
  readonly node: RaftNode<SetCommand, null>;
}

/** Errors a write retries: no leader yet, or it changed under the proposal. */
const RETRIED_CODES = new Set([
  'NOT_LEADER',
  'NO_LEADER',
  'PROPOSAL_DROPPED',
  'LEADERSHIP_LOST',
  'TIMEOUT',
]);

/**
 * Three RaftNodes (memory stores, a key-value map) on transports from the harness. They elect
 * a leader and commit {@link CLUSTER_WRITES} commands; then one node's transport is killed
 * while the node runs on: with feature `restart` the leader's, which comes back after the other
 * two elected a new leader and committed as many commands again, and all three must converge;
 * without it a follower's, for good, and the other two must go on committing and converge.
 */
async function clusterCase(s: TransportSession): Promise<void> {
  const restart = has(s.harness, 'restart');
  const budget = CLUSTER_BUDGET_FACTOR * s.timeoutMs;
  const deadline = performance.now() + budget;
  const left = (): number => Math.max(1, Math.ceil(deadline - performance.now()));
  const replicas: Replica[] = [];
  const describe = (): string =>
    replicas
      .map((r) => {
        const killed = r.transport.alive ? '' : ' (transport killed)';
        if (r.node.state !== 'running') return `${r.id}${killed}: ${r.node.state}`;
        const st = r.node.status();
        return `${r.id}${killed}: ${st.role} of term ${st.term}, commit ${st.commitIndex}, applied ${st.appliedIndex}, ${r.machine.data.size} keys`;
      })
      .join('; ');
  const transports: KillableTransport[] = [];
  for (const id of ['n1', 'n2', 'n3']) {
    const endpoint = await s.endpoint(id);
    const transport = new KillableTransport(endpoint.member, endpoint.transport, s.timeoutMs);
    s.onCleanup(() => transport.closeLeftover());
    transports.push(transport);
  }
  const membership: Membership = { members: transports.map((t) => t.member) };
  for (const transport of transports) {
    const machine = new KeyValueMachine();
    const node = createRaftNode<SetCommand, null>({
      id: transport.member.id,
      stateMachine: machine,
      codec: jsonCodec<SetCommand>(),
      logStore: new MemoryLogStore(),
      stableStore: new MemoryStableStore(),
      snapshotStore: new MemorySnapshotStore(),
      transport,
      electionTimeoutMs: 200,
      heartbeatMs: 40,
      requestTimeoutMs: s.timeoutMs,
    });
    replicas.push({ id: transport.member.id, transport, machine, node });
  }
  s.onCleanup(async () => {
    let first: unknown;
    for (const r of replicas) {
      try {
        await settle(`stop() of the RaftNode ${r.id}`, 2 * s.timeoutMs, () => r.node.stop());
      } catch (err) {
        first ??= err;
      }
    }
    if (first !== undefined) throw first;
  });

  const leaderAmong = (group: readonly Replica[]): Replica | undefined =>
    group.find(
      (r) => r.transport.alive && r.node.state === 'running' && r.node.status().role === 'leader',
    );
  const elect = async (group: readonly Replica[], when: string): Promise<Replica> => {
    await waitUntil(
      `a leader among ${group.map((r) => r.id).join(', ')} ${when}`,
      Math.min(s.timeoutMs, left()),
      () => leaderAmong(group) !== undefined,
      describe,
    );
    return leaderAmong(group) as Replica;
  };
  let lastIndex: LogIndex = 0;
  const write = async (group: readonly Replica[], from: number, to: number): Promise<void> => {
    for (let k = from; k < to; k++) {
      const command: SetCommand = { key: `k${k}`, value: k };
      for (;;) {
        if (performance.now() >= deadline) {
          fail(
            `the cluster did not commit ${formatValue(command)} within the case's budget of ${budget} ms (${CLUSTER_BUDGET_FACTOR} × timeoutMs); ${describe()}`,
          );
        }
        const leader = leaderAmong(group);
        if (leader === undefined) {
          await sleep(5);
          continue;
        }
        try {
          const result = await leader.node.propose(command, {
            timeoutMs: Math.min(s.timeoutMs, left()),
          });
          lastIndex = Math.max(lastIndex, result.index);
          break;
        } catch (err) {
          if (RaftError.is(err) && RETRIED_CODES.has(err.code)) {
            await sleep(5);
            continue;
          }
          fail(
            `propose(${formatValue(command)}) on ${leader.id}, the leader, failed: ${formatError(err)}; ${describe()}`,
            err,
          );
        }
      }
    }
  };
  const converge = async (group: readonly Replica[], when: string): Promise<void> => {
    const expected = new KeyValueMachine();
    for (let k = 0; k < 2 * CLUSTER_WRITES; k++) expected.apply({ key: `k${k}`, value: k });
    const done = (): boolean =>
      group.every((r) => {
        if (r.node.state !== 'running') return false;
        const first = group[0] as Replica;
        return (
          r.node.status().appliedIndex >= lastIndex &&
          r.node.status().appliedIndex === first.node.status().appliedIndex &&
          r.machine.digest() === expected.digest()
        );
      });
    await waitUntil(
      `${group.map((r) => r.id).join(', ')} to apply the same ${2 * CLUSTER_WRITES} commands up to the same index (at least ${lastIndex}) ${when}`,
      left(),
      done,
      describe,
    );
  };

  await Promise.all(
    replicas.map((r) =>
      settle(`start() of the RaftNode ${r.id}`, s.timeoutMs, () =>
        r.node.start({ bootstrap: membership }),
      ),
    ),
  );
  const leader = await elect(replicas, 'after the three nodes started');
  await write(replicas, 0, CLUSTER_WRITES);
  const victim = restart ? leader : (replicas.find((r) => r !== leader) as Replica);
  await victim.transport.kill();
  const others = replicas.filter((r) => r !== victim);
  if (restart) await elect(others, `after the transport of ${victim.id}, the leader, was killed`);
  await write(others, CLUSTER_WRITES, 2 * CLUSTER_WRITES);
  if (restart) {
    const endpoint = await s.endpoint(victim.id);
    checkSameAddress(victim.id, victim.transport.member, endpoint.member);
    await victim.transport.revive(endpoint);
    await converge(replicas, `after the transport of ${victim.id} came back`);
  } else {
    await converge(others, `while the transport of ${victim.id}, a follower, is dead`);
  }
  const problems = replicas.flatMap((r) => r.transport.problems);
  if (problems.length > 0) fail(problems.join('; '));
}

// ---------------------------------------------------------------------------- the cases

const cases: ConformanceCase<TransportHarness>[] = [
  transportCase('every message type arrives with all its fields intact', async (s) => {
    const [a, b] = await s.mesh('n1', 'n2');
    await s.connect(a, b);
    const sent = sampleMessages(a.id, b.id);
    a.send(sent);
    await expectDelivered(s, a, b, sent);
  }),

  transportCase('delivered messages stay intact while later traffic arrives', async (s) => {
    // A decoder may hand out views into its read buffer; reusing that buffer for the next
    // frame would corrupt entries a receiver still holds (a log store may keep references).
    const [a, b] = await s.mesh('n1', 'n2');
    await s.connect(a, b);
    const first = sampleMessages(a.id, b.id);
    a.send(first);
    await expectDelivered(s, a, b, first);
    const later = numbered(a.id, b.id, 0, 40).map((m, i) => ({ ...m, term: 1000 + i }));
    for (const m of later) a.send([m]);
    await expectDelivered(s, a, b, [...first, ...later]);
  }),

  transportCase('a burst arrives complete and in send order, per peer', async (s) => {
    const [a, b, c] = await s.mesh('n1', 'n2', 'n3');
    await s.connect(a, b);
    await s.connect(a, c);
    await s.connect(b, a);
    const half = 30;
    const toB = numbered(a.id, b.id, 0, 2 * half);
    const toC = numbered(a.id, c.id, 0, 2 * half);
    const toA = numbered(b.id, a.id, 0, 2 * half);
    // One send() per message, alternating peers; then one send() carrying both peers' rest.
    for (let i = 0; i < half; i++) {
      a.send([item(toB, i)]);
      a.send([item(toC, i)]);
      b.send([item(toA, i)]);
    }
    const mixed: RaftMessage[] = [];
    for (let i = half; i < 2 * half; i++) mixed.push(item(toB, i), item(toC, i));
    a.send(mixed);
    b.send(toA.slice(half));
    await expectInOrder(s, a, b, 2 * half);
    await expectInOrder(s, a, c, 2 * half);
    await expectInOrder(s, b, a, 2 * half);
  }),

  transportCase('a 1 MiB entry and a 1 MiB proposal arrive intact', async (s) => {
    // The default maxCommandBytes is 1 MiB: such a command is forwarded and replicated whole.
    const [a, b] = await s.mesh('n1', 'n2');
    await s.connect(a, b);
    const big = bytes(1024 * 1024, 3);
    const sent: RaftMessage[] = [
      {
        type: 'append',
        from: a.id,
        to: b.id,
        term: 2,
        prevIndex: 1,
        prevTerm: 1,
        entries: [{ index: 2, term: 2, kind: 'command', data: big }],
        commit: 1,
      },
      { type: 'propose', from: a.id, to: b.id, term: 3, session: 1, requestId: 1, data: big },
    ];
    a.send(sent);
    await expectDelivered(s, a, b, sent);
  }),

  transportCase('send() of an empty array does not throw and delivers nothing', async (s) => {
    const [a, b] = await s.mesh('n1', 'n2');
    await s.connect(a, b);
    a.send([]);
    a.send([]);
    const marker = heartbeat(a, b, 7);
    a.send([marker]);
    await expectDelivered(s, a, b, [marker]);
  }),

  transportCase(
    'send() to a peer not given to setPeers() does not throw, and known peers still receive',
    async (s) => {
      const a = await s.node('n1');
      const b = await s.node('n2');
      await a.start();
      await b.start();
      b.setPeers([a]);
      a.setPeers([]);
      // n2 is running, but n1 was never told about it; "ghost" has no endpoint at all. A
      // transport with no address for a peer drops what is sent to it; one that can reach it
      // anyway (in-process) may deliver it: either way send() returns normally.
      a.send([heartbeat(a, b, 11)], 'to a peer it was not given');
      a.send([heartbeat(a, 'ghost', 12)], 'to an id with no endpoint');
      await s.connect(b, a);
      a.setPeers([b]);
      await s.connect(a, b);
    },
  ),

  transportCase(
    'a node answers a node that contacted it before setPeers() lists it (a joining node)',
    async (s) => {
      // A node added to a cluster starts with an empty log: it knows no configuration, so its
      // transport has no peers, and it must answer the leader that contacts it.
      const leader = await s.node('n1');
      const joiner = await s.node('n2');
      await leader.start();
      await joiner.start();
      leader.setPeers([joiner]);
      joiner.setPeers([]);
      await s.connect(leader, joiner);
      await s.connect(joiner, leader);
    },
  ),

  transportCase(
    'send() to a peer removed by setPeers() does not throw; re-adding it works',
    async (s) => {
      const [a, b] = await s.mesh('n1', 'n2');
      await s.connect(a, b);
      a.setPeers([]);
      a.send([heartbeat(a, b, 21)], 'to a removed peer');
      a.setPeers([b]);
      await s.connect(a, b);
    },
  ),

  transportCase(
    'send() to a closed peer does not throw and other peers still receive',
    async (s) => {
      const [a, b, c] = await s.mesh('n1', 'n2', 'n3');
      await s.connect(a, b);
      await s.connect(a, c);
      await c.close();
      for (let i = 0; i < 10; i++) {
        a.send([heartbeat(a, c, 31 + i)], 'to a closed peer');
        await sleep(2);
      }
      const marker = heartbeat(a, b, 50);
      a.send([marker]);
      await expectDelivered(s, a, b, [marker]);
    },
  ),

  transportCase('send() before start() and after close() does not throw', async (s) => {
    const a = await s.node('n1');
    const b = await s.node('n2');
    a.send([heartbeat(a, b, 1)], 'before setPeers() and start()');
    a.setPeers([b]);
    a.send([heartbeat(a, b, 2)], 'before start()');
    await b.start();
    b.setPeers([a]);
    await a.start();
    await s.connect(a, b);
    await a.close();
    a.send([heartbeat(a, b, 3)], 'after close()');
    a.send([], 'after close()');
  }),

  transportCase('onMessage is not called after close() resolves', async (s) => {
    const [a, b] = await s.mesh('n1', 'n2');
    await s.connect(a, b);
    // Messages in flight while n2 closes, then more after it closed.
    a.send(numbered(a.id, b.id, 0, 20));
    await b.close();
    const deadline = performance.now() + Math.min(QUIET_MS, s.timeoutMs);
    let seq = 20;
    while (performance.now() < deadline) {
      a.send(numbered(a.id, b.id, seq, seq + 2), 'to a closed peer');
      seq += 2;
      await sleep(10);
    }
    if (b.late.length > 0) {
      fail(
        `n2's onMessage was called ${b.late.length} time(s) after its close() resolved, first with ${formatValue(b.late[0])}`,
      );
    }
  }),

  transportCase('a peer added by setPeers() after start() receives messages', async (s) => {
    const [a, b] = await s.mesh('n1', 'n2');
    await s.connect(a, b);
    const c = await s.node('n3');
    await c.start();
    c.setPeers([a, b]);
    a.setPeers([b, c]);
    await s.connect(a, c);
    const toC = heartbeat(a, c, 61);
    const toB = heartbeat(a, b, 62);
    a.send([toC, toB]);
    await expectDelivered(s, a, c, [toC]);
    await expectDelivered(s, a, b, [toB]);
  }),

  transportCase(
    'setPeers() before start(), as the runtime calls it, names peers that start later',
    async (s) => {
      const a = await s.node('n1');
      const b = await s.node('n2');
      a.setPeers([b]);
      await a.start();
      const early = heartbeat(a, b, 71);
      a.send([early], 'to a peer that has not started yet');
      b.setPeers([a]);
      await b.start();
      await s.connect(a, b);
      await s.connect(b, a);
      const ab = heartbeat(a, b, 72);
      const ba = heartbeat(b, a, 73);
      a.send([ab]);
      b.send([ba]);
      await expectDelivered(s, a, b, [ab], [early]);
      await expectDelivered(s, b, a, [ba]);
    },
  ),

  transportCase(
    'a node reconnects to a peer that restarted at the same address',
    async (s) => {
      const [a, b] = await s.mesh('n1', 'n2');
      await s.connect(a, b);
      await s.connect(b, a);
      await b.close();
      const back = await s.restart(b);
      await back.start();
      back.setPeers([a]);
      await inContext('after n2 restarted at the same address', async () => {
        await s.connect(a, back);
        await s.connect(back, a);
        a.send(numbered(a.id, back.id, 0, 40));
        await expectInOrder(s, a, back, 40);
      });
    },
    ['restart'],
  ),

  transportCase(
    'memory stays bounded while a peer is down, and few stale heartbeats reach it once it is back',
    async (s) => {
      // A transport queues per peer while it reconnects; that queue MUST be bounded (the
      // contract: "queue per peer (bounded) and drop on overflow"), or a peer that is down for
      // long exhausts the sender's memory. Heartbeats carry nothing worth keeping.
      const [a, b] = await s.mesh('n1', 'n2');
      await s.connect(a, b);
      await b.close();
      const entry = bytes(DOWN_ENTRY_BYTES, 7);
      const before = retainedBytes();
      await sendWhileDown(a, b.id, entry);
      const after = retainedBytes();
      if (after - before > MAX_RETAINED_GROWTH_BYTES) {
        fail(
          `retained memory (heapUsed + arrayBuffers after a forced GC) grew by ${mib(after - before)}, from ${mib(before)} to ${mib(after)}, while n1 sent n2, which was down, ${DOWN_APPENDS} appends of ${DOWN_ENTRY_BYTES / 1024} KiB (${mib(DOWN_APPENDS * DOWN_ENTRY_BYTES)}) and ${DOWN_HEARTBEATS} heartbeats: a transport MUST bound what it queues for a peer (growth allowed: ${mib(MAX_RETAINED_GROWTH_BYTES)})`,
        );
      }
      if (!has(s.harness, 'restart')) return;
      const back = await s.restart(b);
      await back.start();
      back.setPeers([a]);
      await inContext('after n2 restarted', () => s.connect(a, back));
      // The probe travels on the control lane, behind every heartbeat sent before it.
      const stale = back.from(a.id).filter((m) => m.type === 'heartbeat').length;
      if (stale > MAX_STALE_HEARTBEATS) {
        fail(
          `${stale} of the ${DOWN_HEARTBEATS} heartbeats n1 sent while n2 was down reached n2 after its restart (at most ${MAX_STALE_HEARTBEATS}): a transport keeps a bounded queue and coalesces heartbeats, a stale one being worthless`,
        );
      }
    },
  ),

  transportCase(
    'endpoints of different clusters get no message through to each other',
    async (s) => {
      const n1 = await s.node('n1', { clusterId: 'alpha' });
      const n2 = await s.node('n2', { clusterId: 'beta' });
      const n3 = await s.node('n3', { clusterId: 'alpha' });
      for (const n of [n1, n2, n3]) await n.start();
      n1.setPeers([n2, n3]);
      n2.setPeers([n1]);
      n3.setPeers([n1]);
      // The positive control: the same cluster gets through, both ways.
      await s.connect(n3, n1);
      await s.connect(n1, n3);
      await expectRefused(
        [
          [n2, n1],
          [n1, n2],
        ],
        clusterOf,
        'endpoints of different clusters MUST NOT get a message through to each other',
      );
      await inContext('after n2 of another cluster tried to reach n1', () => s.connect(n3, n1));
    },
    ['identity'],
  ),

  transportCase(
    'endpoints whose secrets differ, or of which only one has a secret, get no message through to each other',
    async (s) => {
      const n1 = await s.node('n1', { secret: ALPHA_SECRET });
      const n2 = await s.node('n2', { secret: OTHER_SECRET });
      const n3 = await s.node('n3', { secret: null });
      const n4 = await s.node('n4', { secret: ALPHA_SECRET });
      for (const n of [n1, n2, n3, n4]) await n.start();
      n1.setPeers([n2, n3, n4]);
      for (const n of [n2, n3, n4]) n.setPeers([n1]);
      await s.connect(n4, n1);
      await s.connect(n1, n4);
      await expectRefused(
        [
          [n2, n1],
          [n3, n1],
          [n1, n2],
          [n1, n3],
        ],
        secretOf,
        'endpoints whose secrets differ, or of which only one has a secret, MUST NOT get a message through to each other',
      );
      await inContext('after n2 and n3 tried to reach n1', () => s.connect(n4, n1));
    },
    ['secret'],
  ),

  transportCase(
    'garbage written to the listener harms neither the transport nor its legitimate peers',
    async (s) => {
      const [a, b] = await s.mesh('n1', 'n2');
      await s.connect(b, a);
      const watch = watchProcessErrors();
      try {
        interface Mark {
          readonly inbox: number;
          readonly errors: number;
        }
        const noErrors = (when: string, since: number): void => {
          const first = watch.errors[since];
          if (first !== undefined) {
            fail(
              `${when}: ${watch.errors.length - since} uncaught exception(s) or unhandled rejection(s), the first ${formatError(first)}`,
              first,
            );
          }
        };
        // Until the legitimate burst, n2 sends only probes: n1's inbox stays empty.
        const seed = await garbageProperty(s, a, b.id, {
          mark: (): Mark => ({ inbox: a.inbox.length, errors: watch.errors.length }),
          check: (when, since) => {
            const intruder = a.inbox[since.inbox];
            if (intruder !== undefined) {
              fail(
                `${when}: n1 delivered ${formatValue(intruder)}, which no peer sent: it came from bytes on a raw connection that never completed a handshake`,
              );
            }
            noErrors(when, since.errors);
          },
        });
        await inContext(`after the garbage runs (seed ${seed})`, async () => {
          await s.connect(b, a);
          const sent = numbered(b.id, a.id, 0, 40);
          b.send(sent);
          await expectInOrder(s, b, a, 40);
          // Late deliveries from the raw connections would show now.
          await sleep(Math.min(QUIET_MS, s.timeoutMs));
          for (const m of a.inbox) {
            const seq = seqOf(m);
            const original = seq === null || m.from !== b.id ? undefined : sent[seq];
            if (original === undefined || original.term !== m.term) {
              fail(`n1 delivered ${formatValue(m)}, which no peer sent`);
            }
            const d = describeDifference(original, m);
            if (d !== null) fail(`message #${seq} from n2 arrived at n1 altered: ${d}`);
          }
          noErrors('at the end', 0);
        });
      } finally {
        watch.stop();
      }
    },
    ['raw'],
  ),

  transportCase(
    'connections that never finish a handshake do not block legitimate peers',
    async (s) => {
      const a = await s.node('n1');
      await a.start();
      const stalled: RawConnection[] = [];
      for (let i = 0; i < STALLED_CONNECTIONS; i++) {
        const connection = await s.rawConnect(a);
        // Half send nothing, half one byte of something that could begin a handshake.
        if (i % 2 === 1) writeRaw(connection, Uint8Array.of(i), a);
        stalled.push(connection);
      }
      const b = await s.node('n2');
      await b.start();
      a.setPeers([b]);
      b.setPeers([a]);
      await inContext(
        `with ${STALLED_CONNECTIONS} raw connections to n1 open that never finished a handshake`,
        async () => {
          await s.connect(b, a);
          await s.connect(a, b);
        },
      );
      for (const connection of stalled) {
        await closeRaw(connection, s.timeoutMs, `a raw connection to ${a.id}`);
      }
      const intruder = a.inbox[0];
      if (intruder !== undefined) {
        fail(`n1 delivered ${formatValue(intruder)}, which no peer sent`);
      }
    },
    ['raw'],
  ),

  transportCase(
    "a 3-node cluster of RaftNodes on this transport commits through the loss of a node's transport and converges",
    clusterCase,
  ),
];

/**
 * Every transport case, in a stable order. Run them with `runConformance` or register them with
 * `describeTransportConformance` from `@raft/testing/vitest`. New cases are appended.
 */
export const transportConformanceCases: readonly ConformanceCase<TransportHarness>[] =
  Object.freeze(cases);
