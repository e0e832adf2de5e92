/**
 * Conformance cases for {@link Transport} implementations, checked against the contract in the
 * interface's doc comment: every message type arrives intact, in order per peer; `send()` never
 * throws; messages to peers outside the last `setPeers()` are dropped, except to a node that
 * contacted this one (a joining node must answer the leader); `onMessage` stays silent after
 * `close()`.
 *
 * Delivery is asynchronous and may cross a real network, so cases poll with a bound (the
 * harness's `timeoutMs`) and never sleep-and-hope. While a connection is being established a
 * transport may lose messages (Raft tolerates loss), so a case first re-sends a probe until one
 * arrives, and only then requires what it sends next to arrive. That probe also serves as a
 * marker: messages are delivered in order per peer, so once a probe sent after a message has
 * arrived, that message has arrived too or never will.
 */
import {
  encodeMembership,
  type LogEntry,
  type MaybePromise,
  type Member,
  type NodeId,
  type ProposeRejection,
  type RaftMessage,
  type RaftMessageType,
  type Transport,
} from '@raft/core';
import type { ConformanceCase, NamedHarness } from './conformance-case.js';
import {
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
 * A set of nodes that can reach each other: a loopback interface with free ports, an in-process
 * network, a message broker. Created for a single case and never shared with another case.
 */
export interface TransportFabric {
  /**
   * The transport for node `id`, at an address the harness chooses. Called at most once per id
   * on a fabric, for at most a handful of ids.
   */
  endpoint(id: NodeId): MaybePromise<TransportEndpoint>;
  /**
   * Releases the fabric (ports, servers, brokers). Called exactly once, last, after every
   * transport the case started has been closed (or failed to close).
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
   * Bound on every wait, in milliseconds: a call settling, a connection coming up, a message
   * arriving. Default 5000.
   */
  readonly timeoutMs?: number;
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
  ) {
    this.id = endpoint.member.id;
    this.member = endpoint.member;
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

  constructor(
    private readonly fabric: TransportFabric,
    readonly timeoutMs: number,
  ) {}

  /** Creates (does not start) the node `id`. */
  async node(id: NodeId): Promise<TestNode> {
    const fabric = this.fabric;
    const endpoint = await settle(
      `the harness endpoint(${JSON.stringify(id)})`,
      this.timeoutMs,
      () => fabric.endpoint(id),
    );
    if (endpoint?.member?.id !== id) {
      fail(
        `the harness endpoint(${JSON.stringify(id)}) returned member ${formatValue(endpoint?.member)}: its id must be ${JSON.stringify(id)}`,
      );
    }
    const node = new TestNode(endpoint, this.timeoutMs);
    this.nodes.push(node);
    return node;
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
   * the link is up, and (delivery being in order per peer) everything `from` sent to `to` before
   * this call has either arrived or been dropped.
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

async function withFabric(
  harness: TransportHarness,
  body: (session: TransportSession) => Promise<void>,
): Promise<void> {
  const timeoutMs = positiveOption(harness.timeoutMs, 'timeoutMs', DEFAULT_TIMEOUT_MS);
  const fabric = await settle('the harness create()', timeoutMs, () => harness.create());
  const session = new TransportSession(fabric, timeoutMs);
  await withCleanup(
    () => body(session),
    () =>
      withCleanup(
        () => session.closeAll(),
        () => settle('the harness cleanup()', timeoutMs, () => fabric.cleanup()),
      ),
  );
}

function transportCase(
  name: string,
  body: (session: TransportSession) => Promise<void>,
): ConformanceCase<TransportHarness> {
  return { name, run: (harness) => withFabric(harness, body) };
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
 * arrivals in send order, with nothing else in between.
 */
async function expectInOrder(
  session: TransportSession,
  from: TestNode,
  node: TestNode,
  count: number,
): Promise<void> {
  const firstArrivals = (): number[] => {
    const seen = new Set<number>();
    const order: number[] = [];
    for (const m of node.from(from.id)) {
      const seq = seqOf(m);
      if (seq === null) fail(`${node.id} received an unexpected ${m.type} from ${from.id}`);
      if (!seen.has(seq)) {
        seen.add(seq);
        order.push(seq);
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
  for (const [position, seq] of firstArrivals().entries()) {
    if (seq !== position) {
      fail(
        `messages from ${from.id} reached ${node.id} out of order: arrival #${position} is message #${seq} (send order ${formatValue(firstArrivals().slice(0, position + 2))}…)`,
      );
    }
  }
}

/** Requires that no message with `term` arrived at `node` (probes sent later have arrived). */
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
];

/**
 * Every transport case, in a stable order. Run them with `runConformance` or register them with
 * `describeTransportConformance` from `@raft/testing/vitest`. New cases are appended.
 */
export const transportConformanceCases: readonly ConformanceCase<TransportHarness>[] =
  Object.freeze(cases);
