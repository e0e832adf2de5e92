/**
 * The network transports against the bare socket (issue #16): messages/s and MB/s of appends
 * of 64 × 100-byte entries from n1 to n2 on loopback, and the round-trip time of a heartbeat and
 * its response, for @raft/transport-tcp and @raft/transport-ws, plain and with TLS.
 *
 * Beside them, the physical limit measured in the same run: a bare node:net (or node:tls)
 * socket that writes the BATCH frames the transports would write for one append (made once with
 * `encodeBatch` and reused, behind the TCP driver's 4-byte length prefix) to a server that
 * splits them on the length prefix and counts them, and a bare echo of one small frame for the
 * round trip. Every figure is read as a ratio to the bare socket in the same round (TLS rows to
 * `bare-tls`, the same over node:tls with the transport tests' certificates).
 *
 * `bare-codec` is the bare socket plus the codec and nothing else of a transport: the sender
 * builds every append and packs each refill into BATCH frames with `encodeBatch`, the receiver
 * decodes them with `decodeBatch` and checks them. The plain transports' ratio to it says what
 * the wire layer and the drivers cost beyond encoding and decoding.
 *
 * - Everything runs in this one process on one thread: the sender (127.0.0.1) and the
 *   receiver (127.0.0.2) share the event loop, the bare socket's as much as the transports',
 *   so the ratio is the CPU each system spends per message on both ends.
 * - Throughput: the sender keeps at most `--window` messages in flight (sent and not yet
 *   counted by the receiver: `onMessage` on n2, or a complete frame on the bare server) and
 *   refills the window from the receiver's callback, the transports through `send([append])`
 *   with a fresh append each time (its entry objects made for it, their data sharing one
 *   100-byte buffer), the bare socket with one corked write of the frames that fit. Nothing
 *   else paces the transports: they batch one turn's sends themselves.
 * - Round trip: one message in flight, `--round-trips` of them after a warm-up, in sequence:
 *   n1 sends a heartbeat, n2's `onMessage` answers with a heartbeatResponse, n1's records the
 *   time and sends the next.
 * - Honesty: every append must arrive, in order, with the right indexes (checked on every
 *   message; the entries' bytes on every 1024th), and the transports must drop, refuse,
 *   reject and reconnect nothing; the run fails otherwise.
 * - Systems alternate within each round (the order rotates each round) after one warm-up round,
 *   and each figure is the median over the rounds: the machine is shared and noisy.
 *
 *   pnpm bench:transports [--seconds 3] [--rounds 3] [--window 256] [--round-trips 20000]
 *                         [--warmup 1] [--systems bare,bare-codec,tcp,ws,bare-tls,tcp-tls,wss]
 *                         [--entries 64] [--entry-bytes 100]
 *
 * Goal (issue #16): both transports within 70% of the bare socket's throughput.
 */
import { readFileSync } from 'node:fs';
import { createServer as createNetServer, connect as netConnect, type Socket } from 'node:net';
import { cpus, loadavg } from 'node:os';
import { createServer as createTlsServer, connect as tlsConnect } from 'node:tls';
import { parseArgs } from 'node:util';
import {
  type AppendMessage,
  encodeMessage,
  type LogEntry,
  type RaftMessage,
  type Transport,
} from '@raft/core';
import {
  BATCH_HEADER_BYTES,
  batchItemBytes,
  decodeBatch,
  encodeBatch,
  type NetworkTransport,
  type SizedMessage,
  type TlsOptions,
} from '@raft/core/wire';
import { createTcpTransport } from '@raft/transport-tcp';
import { createWsTransport } from '@raft/transport-ws';

// `pnpm bench:transports -- --rounds 5` passes the `--` through: drop it.
const argv = process.argv.slice(2);
const { values } = parseArgs({
  args: argv[0] === '--' ? argv.slice(1) : argv,
  options: {
    seconds: { type: 'string', default: '3' },
    rounds: { type: 'string', default: '3' },
    window: { type: 'string', default: '256' },
    'round-trips': { type: 'string', default: '20000' },
    warmup: { type: 'string', default: '1' },
    entries: { type: 'string', default: '64' },
    'entry-bytes': { type: 'string', default: '100' },
    systems: { type: 'string', default: 'bare,bare-codec,tcp,ws,bare-tls,tcp-tls,wss' },
  },
});
const measureSeconds = Number(values.seconds);
const rounds = Number(values.rounds);
const windowOption = Number(values.window);
const roundTrips = Number(values['round-trips']);
const warmupSeconds = Number(values.warmup);
const systemNames = values.systems.split(',');
for (const [name, value, min] of [
  ['--seconds', measureSeconds, 0.1],
  ['--rounds', rounds, 1],
  ['--window', windowOption, 1],
  ['--round-trips', roundTrips, 1],
  ['--warmup', warmupSeconds, 0],
  ['--entries', Number(values.entries), 1],
  ['--entry-bytes', Number(values['entry-bytes']), 1],
] as const) {
  if (!Number.isFinite(value) || value < min) throw new Error(`${name} must be a number >= ${min}`);
}
if (windowOption > 4096) throw new Error('--window must be at most 4096 (maxQueueMessages)');

const ENTRIES_PER_APPEND = Number(values.entries);
const ENTRY_BYTES = Number(values['entry-bytes']);
const PAYLOAD_BYTES_PER_APPEND = ENTRIES_PER_APPEND * ENTRY_BYTES;
/** Warm-up inside every measurement, before its window opens (the dial, the handshake). */
const SETTLE_MS = 300;
/** The entries' bytes of every this-many-th append are compared in full at the receiver. */
const FULL_CHECK_EVERY = 1024;
/** Appends still in flight when the window closes must arrive within this. */
const DRAIN_TIMEOUT_MS = 10_000;
const SENDER_HOST = '127.0.0.1';
const RECEIVER_HOST = '127.0.0.2';

/** The bytes of every entry's data: not uniform, so a misplaced slice shows. */
const payload = Uint8Array.from({ length: ENTRY_BYTES }, (_, k) => (k * 7 + 3) & 0xff);

/** The append of the `--entries` entries after `prevIndex`, built fresh as a leader would. */
function appendAfter(prevIndex: number): AppendMessage {
  const entries: LogEntry[] = new Array(ENTRIES_PER_APPEND);
  for (let k = 0; k < ENTRIES_PER_APPEND; k++) {
    entries[k] = { index: prevIndex + 1 + k, term: 1, kind: 'command', data: payload };
  }
  return {
    type: 'append',
    from: 'n1',
    to: 'n2',
    term: 1,
    prevIndex,
    prevTerm: prevIndex === 0 ? 0 : 1,
    entries,
    commit: prevIndex,
  };
}

/**
 * What the window may hold, in encoded bytes: half the transports' default `maxQueueBytes`
 * (16 MiB). The first fill is sent in one turn, and a lane's queue refuses (drops, counted as
 * `queueFull`) what one turn sends beyond that bound; large entries shrink the window.
 */
const WINDOW_BUDGET_BYTES = 8 * 1024 * 1024;
const APPEND_BYTES = encodeMessage(appendAfter(0)).length;
const windowMessages = Math.max(
  1,
  Math.min(windowOption, Math.floor(WINDOW_BUDGET_BYTES / APPEND_BYTES)),
);

/** The transports' default `maxBatchBytes`: frames are packed up to it. */
const MAX_BATCH_BYTES = 1024 * 1024;
const appendSizes = new Map<string, number>();

/**
 * `encodedSize()` of one of this benchmark's appends (that function is internal to
 * @raft/core): they differ only in the varint widths of `prevIndex` and `commit` and in
 * `prevTerm` (0 before the first entry, whose term is then encoded, else 1), so the size of
 * the first append of each kind is remembered.
 */
function appendSize(message: AppendMessage): number {
  const width = (n: number): number => (n < 0x80 ? 1 : Math.ceil(Math.log2(n + 1) / 7));
  const key = `${message.prevTerm},${width(message.prevIndex)},${width(message.commit)}`;
  let size = appendSizes.get(key);
  if (size === undefined) {
    size = encodeMessage(message).length;
    appendSizes.set(key, size);
  }
  return size;
}

/** A BATCH frame of `message` behind the TCP driver's 4-byte big-endian length prefix. */
function lengthPrefixedBatch(message: RaftMessage): { wire: Buffer; batchBytes: number } {
  const batch = encodeBatch([{ message, size: encodeMessage(message).length }]);
  const wire = Buffer.alloc(4 + batch.length);
  wire.writeUInt32BE(batch.length, 0);
  wire.set(batch, 4);
  return { wire, batchBytes: batch.length };
}

/** Throughput over one measurement window. */
interface Throughput {
  readonly messagesPerSec: number;
  /** BATCH frame bytes per second (without the driver's own framing). */
  readonly wireBytesPerSec: number;
}

/** Round-trip times of one measurement, in microseconds. */
interface RoundTrip {
  readonly p50Us: number;
  readonly p99Us: number;
}

interface Sample {
  readonly throughput: Throughput;
  /** Null where the round trip is another row's (bare-codec's is bare's). */
  readonly roundTrip: RoundTrip | null;
}

interface SystemSpec {
  /** The bare socket whose figures this system is compared to; null for a bare socket. */
  readonly baseline: string | null;
  /** The bare socket that also encodes and decodes, for the plain transports. */
  readonly codecBaseline: string | null;
  readonly run: (windowMs: number, trips: number) => Promise<Sample>;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves once `done()` holds, polling every 5 ms; rejects with `what` after `timeoutMs`. */
async function waitFor(done: () => boolean, timeoutMs: number, what: () => string): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!done()) {
    if (performance.now() > deadline) throw new Error(what());
    await sleep(5);
  }
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] as number;
}

// ---------------------------------------------------------------------------- TLS material

/** The transport tests' certificates (a CA and a node certificate for 127.0.0.1-8); public. */
function testTls(): { ca: string; cert: string; key: string } {
  const fixture = (name: string): string =>
    readFileSync(
      new URL(`../packages/transport-tcp/test/fixtures/${name}`, import.meta.url),
      'utf8',
    );
  return { ca: fixture('ca.pem'), cert: fixture('node.pem'), key: fixture('node.key') };
}

// ---------------------------------------------------------------------------- bare socket

/**
 * Splits a byte stream on 4-byte big-endian length prefixes and calls `onFrame` per complete
 * frame: with the frame's bytes when `keepBodies`, else with null (the bytes are skipped, not
 * copied: the least a receiver can do).
 */
function frameSplitter(
  keepBodies: boolean,
  onFrame: (frame: Uint8Array | null) => void,
): (chunk: Buffer) => void {
  let header = 0;
  let headerFill = 0;
  let bodyLeft = 0;
  let parts: Buffer[] = [];
  return (chunk) => {
    let pos = 0;
    while (pos < chunk.length) {
      if (bodyLeft === 0) {
        header = header * 256 + (chunk[pos++] as number);
        if (++headerFill === 4) {
          bodyLeft = header;
          header = 0;
          headerFill = 0;
        }
        continue;
      }
      const take = Math.min(bodyLeft, chunk.length - pos);
      if (keepBodies) parts.push(chunk.subarray(pos, pos + take));
      bodyLeft -= take;
      pos += take;
      if (bodyLeft === 0) {
        const frame = keepBodies ? (parts.length === 1 ? parts[0] : Buffer.concat(parts)) : null;
        parts = [];
        onFrame(frame ?? null);
      }
    }
  };
}

interface BarePair {
  /** The dialing side, on 127.0.0.1. */
  readonly client: Socket;
  /** The accepted side, on 127.0.0.2. */
  readonly server: Socket;
  close(): Promise<void>;
}

/** A connected socket pair from 127.0.0.1 to a server on 127.0.0.2, plain or TLS. */
async function openBarePair(tls: boolean): Promise<BarePair> {
  const material = tls ? testTls() : null;
  let resolveAccepted: (socket: Socket) => void = () => {};
  const accepted = new Promise<Socket>((resolve) => {
    resolveAccepted = resolve;
  });
  const onSocket = (socket: Socket): void => {
    socket.setNoDelay(true);
    resolveAccepted(socket);
  };
  const listener =
    material === null
      ? createNetServer(onSocket)
      : createTlsServer({ ...material, requestCert: true, rejectUnauthorized: true }, onSocket);
  await new Promise<void>((resolve) => listener.listen({ host: RECEIVER_HOST, port: 0 }, resolve));
  const address = listener.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  const client = await new Promise<Socket>((resolve, reject) => {
    const options = { host: RECEIVER_HOST, port, localAddress: SENDER_HOST };
    const socket =
      material === null
        ? netConnect(options, () => resolve(socket))
        : tlsConnect({ ...options, ...material, rejectUnauthorized: true }, () => resolve(socket));
    socket.once('error', reject);
  });
  client.setNoDelay(true);
  const server = await accepted;
  return {
    client,
    server,
    close: async () => {
      client.destroy();
      server.destroy();
      await new Promise<void>((resolve) => listener.close(() => resolve()));
    },
  };
}

/**
 * The bare socket's throughput: the client writes the frame of one append, reused, keeping at
 * most `windowMessages` frames in flight (refilled from the server's data handler, in one
 * corked write per refill, and waiting for 'drain' whenever the kernel did not take it all);
 * the server counts complete frames.
 *
 * With `codec` (the `bare-codec` row: what the codec costs without the rest of a transport),
 * the client builds every append and packs each refill into BATCH frames of at most 1 MiB with
 * `encodeBatch`, as a transport packs one turn's sends, and the server keeps every frame's
 * bytes (copying frames that span reads, as the TCP driver does), decodes it with
 * `decodeBatch` and checks every append as n2 does; the window counts appends.
 */
async function bareThroughput(tls: boolean, codec: boolean, windowMs: number): Promise<Throughput> {
  const label = `bare${tls ? '-tls' : ''}${codec ? '-codec' : ''}`;
  const pair = await openBarePair(tls);
  const { wire, batchBytes } = lengthPrefixedBatch(appendAfter(0));
  let sent = 0;
  let received = 0;
  let blocked = false;
  let stopping = false;
  let nextPrevIndex = 0;
  let wireBytes = 0;
  let failure: string | null = null;
  /** What the transports do with one turn's sends: pack them into BATCH frames of <= 1 MiB. */
  const writeEncoded = (count: number): void => {
    let items: SizedMessage[] = [];
    let frameBytes = BATCH_HEADER_BYTES;
    const writeFrame = (): void => {
      const frame = encodeBatch(items);
      const header = Buffer.allocUnsafe(4);
      header.writeUInt32BE(frame.length, 0);
      pair.client.write(header);
      pair.client.write(frame);
      wireBytes += frame.length;
      items = [];
      frameBytes = BATCH_HEADER_BYTES;
    };
    for (let k = 0; k < count; k++) {
      const message = appendAfter(nextPrevIndex);
      nextPrevIndex += ENTRIES_PER_APPEND;
      const size = appendSize(message);
      if (items.length > 0 && frameBytes + batchItemBytes(size) > MAX_BATCH_BYTES) writeFrame();
      items.push({ message, size });
      frameBytes += batchItemBytes(size);
    }
    if (items.length > 0) writeFrame();
  };
  const refill = (): void => {
    if (blocked || stopping) return;
    const n = windowMessages - (sent - received);
    if (n <= 0) return;
    // One writev for the whole refill. While corked, write() returns false past the stream's
    // 16 KiB high-water mark even though uncork() then hands everything to the kernel: what
    // says the socket is full is what it still holds after uncork().
    pair.client.cork();
    if (codec) writeEncoded(n);
    else for (let k = 0; k < n; k++) pair.client.write(wire);
    pair.client.uncork();
    sent += n;
    // ('drain' follows only a write() that returned false: wait for it only then.)
    if (pair.client.writableLength > 0 && pair.client.writableNeedDrain) blocked = true;
  };
  pair.client.on('drain', () => {
    blocked = false;
    refill();
  });
  let expectedPrevIndex = 0;
  pair.server.on(
    'data',
    frameSplitter(codec, (frame) => {
      if (frame === null) {
        received++;
        return;
      }
      for (const message of decodeBatch(frame)) {
        failure ??= checkAppend(message, expectedPrevIndex, received);
        expectedPrevIndex += ENTRIES_PER_APPEND;
        received++;
      }
    }),
  );
  // Refill once per chunk read, not once per frame: the write is then as large as it can be.
  pair.server.on('data', refill);
  try {
    refill();
    await sleep(SETTLE_MS);
    const from = received;
    const start = performance.now();
    await sleep(windowMs);
    const count = received - from;
    const elapsedSec = (performance.now() - start) / 1000;
    stopping = true;
    await waitFor(
      () => received === sent,
      DRAIN_TIMEOUT_MS,
      () => `${label}: ${sent - received} of ${sent} frames never arrived`,
    );
    if (failure !== null) throw new Error(`${label}: ${failure}`);
    // With the codec, frames hold many appends: the average per append.
    const bytesPerMessage = codec ? wireBytes / sent : batchBytes;
    return {
      messagesPerSec: count / elapsedSec,
      wireBytesPerSec: (count * bytesPerMessage) / elapsedSec,
    };
  } finally {
    await pair.close();
  }
}

/** The bare echo: one small frame (a BATCH of one heartbeat) there and back, in sequence. */
async function bareRoundTrip(tls: boolean, trips: number): Promise<RoundTrip> {
  const pair = await openBarePair(tls);
  const { wire } = lengthPrefixedBatch({
    type: 'heartbeat',
    from: 'n1',
    to: 'n2',
    term: 1,
    commit: 0,
    round: 1,
  });
  const header = Buffer.alloc(4);
  pair.server.on(
    'data',
    frameSplitter(true, (frame) => {
      const body = frame as Uint8Array;
      header.writeUInt32BE(body.length, 0);
      pair.server.cork();
      pair.server.write(Buffer.from(header));
      pair.server.write(body);
      pair.server.uncork();
    }),
  );
  try {
    return await timeRoundTrips(`bare${tls ? '-tls' : ''}`, trips, (answered) => {
      pair.client.on('data', frameSplitter(false, answered));
      return () => pair.client.write(wire);
    });
  } finally {
    await pair.close();
  }
}

/** A round trip that has not come back after this long fails the run (a lost message). */
const ROUND_TRIP_TIMEOUT_MS = 5000;

/**
 * Times `trips` sequential round trips after `trips / 10` (at least 200) of warm-up.
 * `wire(answered)` installs `answered` as the callback of an answer and returns the function
 * that sends one request. Rejects if an answer does not come back within
 * ROUND_TRIP_TIMEOUT_MS.
 */
function timeRoundTrips(
  label: string,
  trips: number,
  wire: (answered: () => void) => () => void,
): Promise<RoundTrip> {
  const warmup = Math.max(200, Math.floor(trips / 10));
  const times = new Float64Array(trips);
  let done = -warmup;
  let sentAt = 0;
  return new Promise((resolve, reject) => {
    let seen = done;
    const watchdog = setInterval(() => {
      if (done === seen) {
        clearInterval(watchdog);
        reject(new Error(`${label}: round trip #${done + warmup} never came back`));
      }
      seen = done;
    }, ROUND_TRIP_TIMEOUT_MS);
    const request = wire(() => {
      const now = performance.now();
      if (done >= 0) times[done] = (now - sentAt) * 1000;
      done++;
      if (done === trips) {
        clearInterval(watchdog);
        times.sort();
        resolve({ p50Us: percentile(times, 0.5), p99Us: percentile(times, 0.99) });
        return;
      }
      sentAt = performance.now();
      request();
    });
    sentAt = performance.now();
    request();
  });
}

// ---------------------------------------------------------------------------- transports

type TransportKind = 'tcp' | 'ws';

interface TransportPair {
  readonly n1: NetworkTransport;
  readonly n2: NetworkTransport;
  /** Replaces what n1's / n2's `onMessage` does. */
  onN1(handler: (message: RaftMessage) => void): void;
  onN2(handler: (message: RaftMessage) => void): void;
  close(): Promise<void>;
}

/** n1 on 127.0.0.1 and n2 on 127.0.0.2, started, each in the other's peers. */
async function openTransportPair(kind: TransportKind, tls: boolean): Promise<TransportPair> {
  const tlsOptions: TlsOptions | undefined = tls ? testTls() : undefined;
  const make = (id: string, host: string): NetworkTransport => {
    const common = { id, clusterId: 'bench', listen: `${host}:0` };
    const withTls = tlsOptions === undefined ? common : { ...common, tls: tlsOptions };
    return kind === 'tcp' ? createTcpTransport(withTls) : createWsTransport(withTls);
  };
  const n1 = make('n1', SENDER_HOST);
  const n2 = make('n2', RECEIVER_HOST);
  let handler1: (message: RaftMessage) => void = () => {};
  let handler2: (message: RaftMessage) => void = () => {};
  await n1.start({ onMessage: (m) => handler1(m) });
  await n2.start({ onMessage: (m) => handler2(m) });
  const peers = [
    { id: 'n1', address: n1.address as string, voter: true },
    { id: 'n2', address: n2.address as string, voter: true },
  ];
  n1.setPeers(peers);
  n2.setPeers(peers);
  return {
    n1,
    n2,
    onN1: (handler) => {
      handler1 = handler;
    },
    onN2: (handler) => {
      handler2 = handler;
    },
    close: async () => {
      await n1.close();
      await n2.close();
    },
  };
}

/** Throws unless `transport` dropped, refused, rejected and reconnected nothing. */
function assertClean(label: string, id: string, transport: NetworkTransport): void {
  const s = transport.stats();
  const problems: string[] = [];
  const nonZero = (what: string, counts: Readonly<Record<string, number>>): void => {
    for (const [k, v] of Object.entries(counts)) if (v !== 0) problems.push(`${what}.${k}=${v}`);
  };
  nonZero('dropped', s.dropped);
  nonZero('refused', s.refused);
  nonZero('rejectedFrames', s.rejectedFrames);
  for (const p of s.peers) {
    if (p.reconnects !== 0) problems.push(`peer ${p.id} reconnects=${p.reconnects}`);
    if (p.connectFailures !== 0) problems.push(`peer ${p.id} connectFailures=${p.connectFailures}`);
  }
  if (problems.length > 0) throw new Error(`${label}: ${id} counted ${problems.join(', ')}`);
}

function bytesReceivedFrom(transport: NetworkTransport, peer: string): number {
  return transport.stats().peers.find((p) => p.id === peer)?.bytesReceived ?? 0;
}

/**
 * A transport's throughput: n1 sends fresh appends to n2, at most `windowMessages` not yet
 * delivered by n2's `onMessage`, which checks each one and refills the window.
 */
async function transportThroughput(
  label: string,
  kind: TransportKind,
  tls: boolean,
  windowMs: number,
): Promise<Throughput> {
  const pair = await openTransportPair(kind, tls);
  let sent = 0;
  let received = 0;
  let nextPrevIndex = 0;
  let expectedPrevIndex = 0;
  let stopping = false;
  let failure: string | null = null;
  const sendOne = (transport: Transport): void => {
    transport.send([appendAfter(nextPrevIndex)]);
    nextPrevIndex += ENTRIES_PER_APPEND;
    sent++;
  };
  pair.onN2((message) => {
    if (failure === null) failure = checkAppend(message, expectedPrevIndex, received);
    expectedPrevIndex += ENTRIES_PER_APPEND;
    received++;
    if (!stopping && sent - received < windowMessages) sendOne(pair.n1);
  });
  try {
    for (let k = 0; k < windowMessages; k++) sendOne(pair.n1);
    await sleep(SETTLE_MS);
    const from = received;
    const bytesFrom = bytesReceivedFrom(pair.n2, 'n1');
    const start = performance.now();
    await sleep(windowMs);
    const count = received - from;
    const bytes = bytesReceivedFrom(pair.n2, 'n1') - bytesFrom;
    const elapsedSec = (performance.now() - start) / 1000;
    stopping = true;
    await waitFor(
      () => received === sent || failure !== null,
      DRAIN_TIMEOUT_MS,
      () =>
        `${label}: ${sent - received} of ${sent} appends never arrived (stats of n1: ${JSON.stringify(pair.n1.stats().peers)})`,
    );
    // The counters first: a drop explains a gap better than the gap does.
    assertClean(label, 'n1', pair.n1);
    assertClean(label, 'n2', pair.n2);
    if (failure !== null) throw new Error(`${label}: ${failure}`);
    return { messagesPerSec: count / elapsedSec, wireBytesPerSec: bytes / elapsedSec };
  } finally {
    await pair.close();
  }
}

/** Null if `message` is the append expected after `expectedPrevIndex`, else what is wrong. */
function checkAppend(
  message: RaftMessage,
  expectedPrevIndex: number,
  ordinal: number,
): string | null {
  if (message.type !== 'append') return `message #${ordinal} is a ${message.type}`;
  if (message.from !== 'n1' || message.to !== 'n2') {
    return `append #${ordinal} from ${message.from} to ${message.to}`;
  }
  if (message.prevIndex !== expectedPrevIndex) {
    return `append #${ordinal} has prevIndex ${message.prevIndex}, expected ${expectedPrevIndex} (lost or reordered)`;
  }
  const entries = message.entries;
  if (entries.length !== ENTRIES_PER_APPEND) {
    return `append #${ordinal} has ${entries.length} entries`;
  }
  const first = entries[0] as LogEntry;
  const last = entries[ENTRIES_PER_APPEND - 1] as LogEntry;
  if (
    first.index !== expectedPrevIndex + 1 ||
    last.index !== expectedPrevIndex + ENTRIES_PER_APPEND
  ) {
    return `append #${ordinal} holds entries ${first.index}..${last.index}`;
  }
  if (ordinal % FULL_CHECK_EVERY === 0) {
    for (let k = 0; k < ENTRIES_PER_APPEND; k++) {
      const e = entries[k] as LogEntry;
      if (e.index !== expectedPrevIndex + 1 + k || e.term !== 1 || e.kind !== 'command') {
        return `append #${ordinal}, entry ${k}: index ${e.index}, term ${e.term}, kind ${e.kind}`;
      }
      if (e.data.length !== ENTRY_BYTES || e.data.some((b, j) => b !== payload[j])) {
        return `append #${ordinal}, entry ${k}: its ${e.data.length} bytes differ from what was sent`;
      }
    }
  }
  return null;
}

/** A transport's round trip: n1's heartbeat, n2's heartbeatResponse, in sequence. */
async function transportRoundTrip(
  label: string,
  kind: TransportKind,
  tls: boolean,
  trips: number,
): Promise<RoundTrip> {
  const pair = await openTransportPair(kind, tls);
  let round = 0;
  let failure: string | null = null;
  pair.onN2((message) => {
    if (message.type !== 'heartbeat') {
      failure ??= `n2 received a ${message.type}`;
      return;
    }
    pair.n2.send([
      { type: 'heartbeatResponse', from: 'n2', to: 'n1', term: 1, round: message.round },
    ]);
  });
  try {
    const result = await timeRoundTrips(label, trips, (answered) => {
      pair.onN1((message) => {
        if (message.type !== 'heartbeatResponse' || message.round !== round) {
          failure ??= `n1 received a ${message.type} (round ${'round' in message ? message.round : '-'}) waiting for round ${round}`;
          return;
        }
        answered();
      });
      return () => {
        round++;
        pair.n1.send([{ type: 'heartbeat', from: 'n1', to: 'n2', term: 1, commit: 0, round }]);
      };
    });
    if (failure !== null) throw new Error(`${label}: ${failure}`);
    assertClean(label, 'n1', pair.n1);
    assertClean(label, 'n2', pair.n2);
    return result;
  } catch (err) {
    // A lost answer stalls the loop: say what else was seen.
    if (failure === null || !(err instanceof Error) || err.message.includes(failure)) throw err;
    throw new Error(`${err.message} (${failure})`);
  } finally {
    await pair.close();
  }
}

// ---------------------------------------------------------------------------- the run

const SYSTEMS: Record<string, SystemSpec> = {
  bare: {
    baseline: null,
    codecBaseline: null,
    run: async (windowMs, trips) => ({
      throughput: await bareThroughput(false, false, windowMs),
      roundTrip: await bareRoundTrip(false, trips),
    }),
  },
  'bare-codec': {
    baseline: 'bare',
    codecBaseline: null,
    run: async (windowMs) => ({
      throughput: await bareThroughput(false, true, windowMs),
      roundTrip: null,
    }),
  },
  'bare-tls': {
    baseline: null,
    codecBaseline: null,
    run: async (windowMs, trips) => ({
      throughput: await bareThroughput(true, false, windowMs),
      roundTrip: await bareRoundTrip(true, trips),
    }),
  },
};
for (const [name, kind, tls] of [
  ['tcp', 'tcp', false],
  ['ws', 'ws', false],
  ['tcp-tls', 'tcp', true],
  ['wss', 'ws', true],
] as const) {
  SYSTEMS[name] = {
    baseline: tls ? 'bare-tls' : 'bare',
    codecBaseline: tls ? null : 'bare-codec',
    run: async (windowMs, trips) => ({
      throughput: await transportThroughput(name, kind, tls, windowMs),
      roundTrip: await transportRoundTrip(name, kind, tls, trips),
    }),
  };
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1
    ? (s[mid] as number)
    : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};
const int = (n: number): string => Math.round(n).toLocaleString('en-US');
const mb = (bytesPerSec: number): string => (bytesPerSec / 1e6).toFixed(0);
const pct = (r: number): string => `${(r * 100).toFixed(0)}%`;

async function main(): Promise<void> {
  for (const name of systemNames) {
    if (SYSTEMS[name] === undefined) {
      throw new Error(`unknown system ${name} (known: ${Object.keys(SYSTEMS).join(', ')})`);
    }
  }
  const load = (): string =>
    loadavg()
      .map((l) => l.toFixed(2))
      .join(' ');
  console.log(
    `transports on loopback, one process: appends of ${ENTRIES_PER_APPEND} × ${ENTRY_BYTES}-byte entries, ` +
      `window ${windowMessages} messages${windowMessages < windowOption ? ` (${windowOption} capped to ${WINDOW_BUDGET_BYTES / 2 ** 20} MiB)` : ''}, ${rounds} rounds of ${measureSeconds} s per system (interleaved, ` +
      `after a warm-up round of ${warmupSeconds} s each), ${int(roundTrips)} round trips`,
  );
  console.log(
    `node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, load average ${load()}`,
  );
  if (warmupSeconds > 0) {
    for (const name of systemNames) {
      await (SYSTEMS[name] as SystemSpec).run(warmupSeconds * 1000, Math.min(roundTrips, 2000));
    }
  }
  const results = new Map<string, Sample[]>(systemNames.map((n) => [n, []]));
  for (let round = 0; round < rounds; round++) {
    // Rotate the order each round so no system always runs first (or right after another).
    const order = systemNames.map(
      (_, k) => systemNames[(k + round) % systemNames.length] as string,
    );
    for (const name of order) {
      const sample = await (SYSTEMS[name] as SystemSpec).run(measureSeconds * 1000, roundTrips);
      (results.get(name) as Sample[]).push(sample);
      const t = sample.throughput;
      console.log(
        `  round ${round + 1} ${name}: ${int(t.messagesPerSec)} msgs/s, ` +
          `${mb(t.messagesPerSec * PAYLOAD_BYTES_PER_APPEND)} MB/s payload, ${mb(t.wireBytesPerSec)} MB/s wire` +
          (sample.roundTrip === null
            ? ''
            : `, RTT p50 ${sample.roundTrip.p50Us.toFixed(0)} µs, p99 ${sample.roundTrip.p99Us.toFixed(0)} µs`),
      );
    }
  }
  console.log(`\nload average ${load()}\n`);
  console.log(
    '| system | msgs/s | entries/s | payload MB/s | wire MB/s | vs baseline, per round | vs baseline | vs bare-codec | RTT p50 µs | RTT p99 µs | RTT p50 vs baseline |',
  );
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  const verdicts: string[] = [];
  const rateOf = (s: Sample): number => s.throughput.messagesPerSec;
  /** This row's msgs/s over `baseline`'s, round by round (the same round shares the noise). */
  const ratiosTo = (samples: readonly Sample[], baseline: string | null): number[] => {
    const base = baseline === null ? undefined : results.get(baseline);
    if (base === undefined) return [];
    return samples.map((s, r) => rateOf(s) / rateOf(base[r] as Sample));
  };
  const medianRoundTrip = (samples: readonly Sample[] | undefined, p: 'p50Us' | 'p99Us') => {
    const values = (samples ?? []).flatMap((s) => (s.roundTrip === null ? [] : [s.roundTrip[p]]));
    return values.length === 0 ? Number.NaN : median(values);
  };
  const us = (n: number): string => (Number.isNaN(n) ? '' : n.toFixed(0));
  for (const name of systemNames) {
    const samples = results.get(name) as Sample[];
    const spec = SYSTEMS[name] as SystemSpec;
    const rate = median(samples.map(rateOf));
    const wire = median(samples.map((s) => s.throughput.wireBytesPerSec));
    const p50 = medianRoundTrip(samples, 'p50Us');
    const p99 = medianRoundTrip(samples, 'p99Us');
    const ratios = ratiosTo(samples, spec.baseline);
    const codecRatios = ratiosTo(samples, spec.codecBaseline);
    const ratio = ratios.length === 0 ? Number.NaN : median(ratios);
    const basePing =
      spec.baseline === null ? Number.NaN : medianRoundTrip(results.get(spec.baseline), 'p50Us');
    if (!name.startsWith('bare') && ratios.length > 0) {
      verdicts.push(
        `${name} ${pct(ratio)} of ${spec.baseline} (${ratio >= 0.7 ? 'met' : 'missed'})`,
      );
    }
    console.log(
      `| ${name} | ${int(rate)} | ${int(rate * ENTRIES_PER_APPEND)} | ${mb(rate * PAYLOAD_BYTES_PER_APPEND)} | ` +
        `${mb(wire)} | ${ratios.map(pct).join(' ')} | ` +
        `${ratios.length === 0 ? '' : `${pct(ratio)} of ${spec.baseline}`} | ` +
        `${codecRatios.length === 0 ? '' : pct(median(codecRatios))} | ${us(p50)} | ${us(p99)} | ` +
        `${Number.isNaN(p50 / basePing) ? '' : `${(p50 / basePing).toFixed(1)}x`} |`,
    );
  }
  if (verdicts.length > 0) {
    console.log(`\ngoal, 70% of the bare socket's msgs/s: ${verdicts.join('; ')}`);
  }
}

await main();
