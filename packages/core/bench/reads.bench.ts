/**
 * `pnpm bench:reads`: linearizable reads per second beside writes per second, on one 3-node
 * in-process cluster (MemoryNetwork, memory stores, MemorySnapshotStore, the system clock,
 * `leaseReads: true` on every node, a counter state machine, 16-byte commands).
 *
 *   pnpm bench:reads [--seconds 3] [--warmup 1] [--concurrency 1,16,256] [--json]
 *                    [--workloads write,read-leader,read-follower,read-lease]
 *                    [--heartbeat-ms N] [--election-timeout-ms N] [--timeout-ms 5000]
 *                    [--per-call-timeout] [--fsync-ms 0]
 *
 * For each concurrency C and each workload, C closed-loop clients for `--seconds`:
 * - `write`: `propose()` on the leader (committed on a majority and applied on the leader);
 * - `read-leader`: `read({ consistency: 'linearizable' })` on the leader (ReadIndex: one
 *   heartbeat round shared by the reads that arrive meanwhile, no log write);
 * - `read-follower`: the same on a follower (it asks the leader for the read index, then waits
 *   until it has applied that far);
 * - `read-lease`: `read({ consistency: 'lease' })` on the leader (no round while the lease holds).
 * After a read resolves the client reads the counter, as a real read would. Latency is sampled on
 * every 8th call of each client (percentiles over hundreds of thousands of samples per cell), so
 * that the clock reads do not cost more than a lease read; throughput counts every call.
 *
 * A client issues at most one call per event-loop turn, as a client behind a socket would: a
 * lease read resolves without leaving the turn, and clients that chained them on microtasks
 * would starve the timers, the network and the other nodes. Calls that take a turn or more
 * (writes, ReadIndex reads) never wait for that.
 *
 * Every wait is bounded: each call by `--timeout-ms` (the nodes' `requestTimeoutMs`, their
 * shared deadline queue; `--per-call-timeout` passes it as `timeoutMs` to every call instead,
 * which arms one host timer per call), the election by 10 s (exit code 1 without a leader), the
 * whole run by a watchdog. Errors are counted by code, not thrown. Heartbeat rounds, forwarded
 * read requests and appends are counted with `MemoryNetwork.onSend`: a round is one heartbeat
 * broadcast by the leader, periodic (every `heartbeatMs`) or asked for by reads.
 *
 * `--fsync-ms N` makes every log append and hard-state save take N ms (a disk that syncs), which
 * writes pay and reads do not; by default the stores are the memory ones, whose writes cost
 * next to nothing.
 *
 * A benchmark, never a test: figures depend on the machine; compare ratios, not absolutes.
 */
import { parseArgs } from 'node:util';
import type { CommandCodec, Membership, RaftMessage, RaftNode, RaftNodeOptions } from '@raft/core';
import {
  createRaftNode,
  DEFAULT_OPTIONS,
  MemoryLogStore,
  MemoryNetwork,
  MemorySnapshotStore,
  MemoryStableStore,
  RaftError,
} from '@raft/core';
import { Counter, Histogram } from './support.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '3' },
    warmup: { type: 'string', default: '1' },
    concurrency: { type: 'string', default: '1,16,256' },
    workloads: { type: 'string', default: 'write,read-leader,read-follower,read-lease' },
    'heartbeat-ms': { type: 'string' },
    'election-timeout-ms': { type: 'string' },
    'timeout-ms': { type: 'string', default: '5000' },
    'per-call-timeout': { type: 'boolean', default: false },
    'fsync-ms': { type: 'string', default: '0' },
    json: { type: 'boolean', default: false },
  },
});

function positive(name: string, raw: string | undefined): number {
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) {
    console.error(`--${name} must be a positive number, got ${String(raw)}`);
    process.exit(2);
  }
  return n;
}
const seconds = positive('seconds', values.seconds);
const warmupSeconds = Number(values.warmup);
const levels = String(values.concurrency)
  .split(',')
  .map((c) => Math.round(positive('concurrency', c)));
const timeoutMs = positive('timeout-ms', values['timeout-ms']);
const perCallTimeout = values['per-call-timeout'];
/** Simulated sync latency of the log and stable stores (0: the memory stores as they are). */
const fsyncMs = Number(values['fsync-ms']);
if (!Number.isFinite(fsyncMs) || fsyncMs < 0) {
  console.error(`--fsync-ms must be a non-negative number, got ${String(values['fsync-ms'])}`);
  process.exit(2);
}

/** A memory log store whose appends take `fsyncMs` to become durable, one at a time. */
class SlowLogStore extends MemoryLogStore {
  override async append(entries: Parameters<MemoryLogStore['append']>[0]): Promise<void> {
    await sleep(fsyncMs);
    return super.append(entries);
  }
}
class SlowStableStore extends MemoryStableStore {
  override async save(state: Parameters<MemoryStableStore['save']>[0]): Promise<void> {
    await sleep(fsyncMs);
    return super.save(state);
  }
}
const timings: Pick<RaftNodeOptions<Command, number>, 'heartbeatMs' | 'electionTimeoutMs'> = {
  ...(values['heartbeat-ms'] === undefined
    ? {}
    : { heartbeatMs: positive('heartbeat-ms', values['heartbeat-ms']) }),
  ...(values['election-timeout-ms'] === undefined
    ? {}
    : { electionTimeoutMs: positive('election-timeout-ms', values['election-timeout-ms']) }),
};
const heartbeatMs = timings.heartbeatMs ?? DEFAULT_OPTIONS.heartbeatMs;
const electionTimeoutMs = timings.electionTimeoutMs ?? DEFAULT_OPTIONS.electionTimeoutMs;
const ELECTION_BOUND_MS = 10_000;
const build = import.meta.resolve('@raft/core').includes('/src/') ? 'src' : 'dist';

const WORKLOADS = ['write', 'read-leader', 'read-follower', 'read-lease'] as const;
type Workload = (typeof WORKLOADS)[number];
const workloads = String(values.workloads)
  .split(',')
  .map((w) => {
    if (!(WORKLOADS as readonly string[]).includes(w)) {
      console.error(`--workloads: unknown workload ${w} (known: ${WORKLOADS.join(', ')})`);
      process.exit(2);
    }
    return w as Workload;
  });

type Command = Uint8Array;
const codec: CommandCodec<Command> = { encode: (c) => c, decode: (b) => b };
const command: Command = new Uint8Array(16).fill(7);

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const nextTurn = (): Promise<void> => new Promise((r) => setImmediate(r));

/** Event-loop turns, counted by an immediate that re-arms itself while a cell runs. */
let turn = 0;
let ticking = false;
function tick(): void {
  turn++;
  if (ticking) setImmediate(tick);
}

// ------------------------------------------------------------------ the cluster

const ids = ['n1', 'n2', 'n3'];
const network = new MemoryNetwork();
const machines = new Map<string, Counter<Command>>();
const membership: Membership = { members: ids.map((id) => ({ id, address: id, voter: true })) };
let nodes: RaftNode<Command, number>[];
try {
  nodes = ids.map((id) => {
    const stateMachine = new Counter<Command>();
    machines.set(id, stateMachine);
    return createRaftNode<Command, number>({
      id,
      stateMachine,
      codec,
      logStore: fsyncMs > 0 ? new SlowLogStore() : new MemoryLogStore(),
      stableStore: fsyncMs > 0 ? new SlowStableStore() : new MemoryStableStore(),
      snapshotStore: new MemorySnapshotStore(),
      transport: network.transport(id),
      leaseReads: true,
      requestTimeoutMs: timeoutMs,
      ...timings,
    });
  });
} catch (err) {
  // A flag the options reject (ConfigError names the field and its range).
  console.error('reads.bench:', err instanceof Error ? err.message : err);
  process.exit(2);
}

interface Roles {
  leader: RaftNode<Command, number>;
  leaderId: string;
  follower: RaftNode<Command, number>;
  leaderMachine: Counter<Command>;
  followerMachine: Counter<Command>;
}
let roles: Roles | null = null;

/** The current leader and one follower; null if no leader is known within the bound. */
async function findRoles(): Promise<Roles | null> {
  let leaderId: string;
  try {
    ({ leaderId } = await (nodes[0] as RaftNode<Command, number>).waitForLeader({
      timeoutMs: ELECTION_BOUND_MS,
    }));
  } catch {
    return null;
  }
  const leader = nodes.find((n) => n.status().id === leaderId);
  const follower = nodes.find((n) => n.status().id !== leaderId);
  if (leader === undefined || follower === undefined) return null;
  const followerId = follower.status().id;
  return {
    leader,
    leaderId,
    follower,
    leaderMachine: machines.get(leaderId) as Counter<Command>,
    followerMachine: machines.get(followerId) as Counter<Command>,
  };
}

/** What the nodes hand to the network, counted as they send it. */
const traffic = { heartbeats: 0, round: 0, readIndex: 0, appends: 0 };
network.onSend((m: RaftMessage) => {
  if (roles === null || m.from !== roles.leaderId) {
    if (m.type === 'readIndex') traffic.readIndex++;
    return;
  }
  if (m.type === 'heartbeat') {
    traffic.heartbeats++;
    if (m.round > traffic.round) traffic.round = m.round;
  } else if (m.type === 'append') traffic.appends++;
});

// ------------------------------------------------------------------ the workloads

const writeOptions = perCallTimeout ? { timeoutMs } : undefined;
const linearizable = perCallTimeout
  ? ({ consistency: 'linearizable', timeoutMs } as const)
  : ({ consistency: 'linearizable' } as const);
const lease = perCallTimeout
  ? ({ consistency: 'lease', timeoutMs } as const)
  : ({ consistency: 'lease' } as const);
/** What the clients read from the state machines (kept so the reads are not dead code). */
let sink = 0;

/** A workload's call, and what a client does once it resolves (a read reads the counter). */
interface Operation {
  readonly call: () => Promise<unknown>;
  readonly machine: Counter<Command> | null;
}

function operation(workload: Workload, r: Roles): Operation {
  switch (workload) {
    case 'write':
      return { call: () => r.leader.propose(command, writeOptions), machine: null };
    case 'read-leader':
      return { call: () => r.leader.read(linearizable), machine: r.leaderMachine };
    case 'read-follower':
      return { call: () => r.follower.read(linearizable), machine: r.followerMachine };
    case 'read-lease':
      return { call: () => r.leader.read(lease), machine: r.leaderMachine };
  }
}

/** Latency is measured on one call in this many per client (two clock reads per sample cost
 *  as much as a lease read itself); throughput counts every call. */
const SAMPLE_EVERY = 8;

interface CellResult {
  workload: Workload;
  concurrency: number;
  ops: number;
  opsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  errors: Record<string, number>;
  /** Heartbeat rounds the leader broadcast during the cell (periodic ones included). */
  heartbeatRounds: number;
  /** Of which periodic, about: seconds / heartbeatMs. */
  periodicRounds: number;
  /** Read requests the follower forwarded to the leader. */
  forwardedReads: number;
  /** Append messages from the leader (one per follower per batch). */
  appends: number;
  /** The leader at the start of the cell no longer led at its end. */
  leaderChanged: boolean;
  /** Heap used at the end of the cell, MiB (no GC forced: live data and uncollected garbage). */
  heapMiB: number;
}

const histogram = new Histogram();

async function runCell(
  workload: Workload,
  concurrency: number,
  cellSeconds: number,
  r: Roles,
): Promise<CellResult> {
  const { call, machine } = operation(workload, r);
  histogram.reset();
  const errors: Record<string, number> = {};
  const before = { ...traffic };
  const termBefore = r.leader.status().term;
  let stopped = false;
  let ops = 0;
  const client = async (): Promise<void> => {
    let lastTurn = -1;
    let calls = 0;
    while (!stopped) {
      if (turn === lastTurn) await nextTurn();
      lastTurn = turn;
      const sampled = calls++ % SAMPLE_EVERY === 0;
      const t0 = sampled ? performance.now() : 0;
      try {
        await call();
        if (machine !== null) sink += machine.count;
        if (!stopped) {
          if (sampled) histogram.record(performance.now() - t0);
          ops++;
        }
      } catch (err) {
        const code = RaftError.is(err) ? err.code : 'OTHER';
        errors[code] = (errors[code] ?? 0) + 1;
        await sleep(1);
      }
    }
  };
  ticking = true;
  setImmediate(tick);
  const start = performance.now();
  const clients = Array.from({ length: concurrency }, client);
  await sleep(cellSeconds * 1000);
  stopped = true;
  const elapsed = (performance.now() - start) / 1000;
  const heapMiB = Math.round(process.memoryUsage().heapUsed / 1048576);
  const after = { ...traffic };
  await Promise.all(clients);
  ticking = false;
  const status = r.leader.status();
  return {
    workload,
    concurrency,
    ops,
    opsPerSecond: Math.round(ops / elapsed),
    p50Ms: histogram.percentile(50),
    p99Ms: histogram.percentile(99),
    maxMs: Math.round(histogram.max * 1000) / 1000,
    errors,
    heartbeatRounds: after.round - before.round,
    periodicRounds: Math.round((elapsed * 1000) / heartbeatMs),
    forwardedReads: after.readIndex - before.readIndex,
    appends: after.appends - before.appends,
    leaderChanged: status.role !== 'leader' || status.term !== termBefore,
    heapMiB,
  };
}

// ------------------------------------------------------------------ checks of the read paths

class PathError extends Error {}

function check(ok: boolean, what: string): void {
  if (!ok) throw new PathError(what);
}

/** Asserts once that each read goes through its path. */
async function checkPaths(r: Roles): Promise<void> {
  const call = { timeoutMs: ELECTION_BOUND_MS };
  const written = await r.leader.propose(command, call);

  let round = traffic.round;
  const onLeader = await r.leader.read({ consistency: 'linearizable', ...call });
  check(onLeader.index >= written.index, 'a linearizable read on the leader missed a write');
  check(traffic.round > round, 'a linearizable read on the leader sent no heartbeat round');

  const forwarded = traffic.readIndex;
  const onFollower = await r.follower.read({ consistency: 'linearizable', ...call });
  check(traffic.readIndex === forwarded + 1, 'a follower read was not forwarded to the leader');
  check(
    onFollower.index >= written.index && r.followerMachine.count >= written.result,
    'a linearizable read on a follower missed a completed write',
  );

  // The lease holds from the round just confirmed; retried a few times in case a periodic
  // heartbeat happens to leave between the call and its resolution.
  for (let attempt = 0; ; attempt++) {
    round = traffic.round;
    const heartbeats = traffic.heartbeats;
    const onLease = await r.leader.read({ consistency: 'lease', ...call });
    check(onLease.index >= written.index, 'a lease read on the leader missed a write');
    if (traffic.heartbeats === heartbeats && traffic.round === round) break;
    check(attempt < 5, 'a lease read on the leader never resolved without a heartbeat round');
    await sleep(heartbeatMs);
  }
}

// ------------------------------------------------------------------ the run

const fmt = (n: number): string => n.toLocaleString('en-US');
const ms = (n: number): string => (Number.isNaN(n) ? '-' : n.toFixed(3));

function describe(c: CellResult): string {
  const errs = Object.entries(c.errors)
    .map(([code, n]) => `${code} ${n}`)
    .join(', ');
  const extra =
    c.workload === 'write'
      ? `appends ${fmt(c.appends)}`
      : c.workload === 'read-lease'
        ? `rounds ${fmt(c.heartbeatRounds)} (periodic ~${c.periodicRounds})`
        : `rounds ${fmt(c.heartbeatRounds)} (${(c.ops / Math.max(1, c.heartbeatRounds)).toFixed(1)} reads/round)${c.workload === 'read-follower' ? ` forwarded ${fmt(c.forwardedReads)}` : ''}`;
  return `C ${String(c.concurrency).padStart(3)}  ${c.workload.padEnd(13)} ${fmt(c.opsPerSecond).padStart(10)} ops/s   p50 ${ms(c.p50Ms)}  p99 ${ms(c.p99Ms)}  max ${ms(c.maxMs)} ms   heap ${c.heapMiB} MiB   ${extra}${errs === '' ? '' : `   errors: ${errs}`}${c.leaderChanged ? '   LEADER CHANGED' : ''}`;
}

interface Ratio {
  concurrency: number;
  readLeader: number;
  readFollower: number;
  readLease: number;
}

const cellsTotal = levels.length * workloads.length;
const watchdogMs =
  ELECTION_BOUND_MS * 3 + (warmupSeconds + cellsTotal * seconds) * 1000 + cellsTotal * timeoutMs;
const watchdog = setTimeout(() => {
  console.error(`reads.bench: still running after ${watchdogMs} ms, giving up`);
  process.exit(3);
}, watchdogMs);
watchdog.unref();

let exitCode = 0;
const results: CellResult[] = [];
const ratios: Ratio[] = [];
try {
  await Promise.all(nodes.map((n) => n.start({ bootstrap: membership })));
  roles = await findRoles();
  if (roles === null) {
    console.error(`reads.bench: no leader elected within ${ELECTION_BOUND_MS} ms`);
    exitCode = 1;
  } else {
    await checkPaths(roles);
    if (!values.json) {
      console.log(
        `@raft/core from ${build}/, 3 nodes in process, heartbeatMs ${heartbeatMs}, electionTimeoutMs ${electionTimeoutMs}, leaseReads, ${fsyncMs > 0 ? `fsync ${fsyncMs} ms, ` : ''}${seconds} s per cell, timeout ${timeoutMs} ms ${perCallTimeout ? 'per call' : '(requestTimeoutMs)'}; leader ${roles.leaderId}, follower ${roles.follower.status().id}; read paths checked`,
      );
    }
    if (warmupSeconds > 0)
      for (const w of workloads) await runCell(w, 16, warmupSeconds / workloads.length, roles);
    for (const c of levels) {
      const rates = new Map<Workload, number>();
      for (const w of workloads) {
        const r: Roles | null = roles.leader.status().role === 'leader' ? roles : await findRoles();
        if (r === null) throw new PathError('the cluster lost its leader and found no other');
        roles = r;
        const cell = await runCell(w, c, seconds, r);
        results.push(cell);
        rates.set(w, cell.opsPerSecond);
        if (!values.json) console.log(describe(cell));
      }
      const write = rates.get('write') ?? 0;
      const ratio = (w: Workload): number =>
        write === 0 || !rates.has(w)
          ? Number.NaN
          : Math.round(((rates.get(w) ?? 0) / write) * 100) / 100;
      const row: Ratio = {
        concurrency: c,
        readLeader: ratio('read-leader'),
        readFollower: ratio('read-follower'),
        readLease: ratio('read-lease'),
      };
      if (!rates.has('write')) continue;
      ratios.push(row);
      if (!values.json) {
        console.log(
          `C ${String(c).padStart(3)}  reads / writes: leader ${row.readLeader}x, follower ${row.readFollower}x, lease ${row.readLease}x`,
        );
      }
    }
    const at256 = ratios.find((r) => r.concurrency === 256);
    if (!values.json && at256 !== undefined) {
      console.log(
        `goal (ReadIndex reads on the leader >= 3x writes at 256 clients): ${at256.readLeader >= 3 ? 'met' : 'not met'} (${at256.readLeader}x)`,
      );
    }
  }
} catch (err) {
  console.error('reads.bench:', err instanceof Error ? err.message : err);
  exitCode = 1;
} finally {
  await Promise.allSettled(nodes.map((n) => n.stop()));
}
if (values.json) {
  console.log(
    JSON.stringify(
      {
        node: process.version,
        build,
        seconds,
        warmupSeconds,
        heartbeatMs,
        electionTimeoutMs,
        timeoutMs,
        perCallTimeout,
        results,
        ratios,
        ok: exitCode === 0,
      },
      null,
      2,
    ),
  );
}
if (sink < 0) console.log(sink);
process.exitCode = exitCode;
