/**
 * One chaos run of raft-kv (issue #18): real processes, a seeded schedule of faults, concurrent
 * clients, then every fault healed and the history checked.
 *
 * 1. Start `nodes` raft-kv processes (file store, TCP, elections of 300 ms, heartbeats of 50 ms,
 *    requests bounded at 1.5 s), each with its clock at a rate of its own drawn from the seed
 *    within ±4% (clock-skew.ts, libfaketime), and wait for a leader that commits a write.
 * 2. For `seconds`, clients read (linearizable and lease reads), write, CAS and delete a few keys
 *    through random nodes (workload.ts) while the nemesis (nemesis.ts) kills, pauses and
 *    partitions nodes and slows their disks; the last seconds are quiet.
 * 3. Heal everything (every node running, no packet filter rule), wait until the nodes agree on a
 *    leader and their applied indexes match, read every key on every node with
 *    `consistency=stale` (they must agree: convergence), then linearizably (recorded in the
 *    history, so an acknowledged write that went missing is a linearizability violation).
 * 4. Check the history with `checkLinearizability(kvModel, ...)`.
 *
 * What this machine cannot do (no packet filter, no cgroup to slow a disk with, no libfaketime)
 * is left out, with a loud warning and a line in the result. The result carries everything
 * needed to report a failure: the seed, the clock rates, the schedule as executed (times,
 * nemesis, targets), the anomalies (the checker's explanation among them) and, when the
 * run failed, the directory kept with each node's data and log.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { StatusBody } from '@raft/server';
import { checkLinearizability, kvModel, Prng } from '@raft/testing';
import {
  type ClockBackend,
  type ClockSkew,
  describeClocks,
  drawClockRates,
  openClockSkew,
} from './clock-skew.js';
import { ChaosCluster, type ChaosNode, killAllNodesSync } from './cluster.js';
import {
  type AppliedFault,
  describeSchedule,
  Nemesis,
  type PlannedFault,
  planSchedule,
} from './nemesis.js';
import {
  closeAllFiltersSync,
  type FilterBackend,
  openPacketFilter,
  type PacketFilter,
} from './packet-filter.js';
import { closeAllSlowDisksSync, type DiskBackend, openSlowDisk } from './slow-disk.js';
import { type ReadMode, send, Workload, type WorkloadStats } from './workload.js';

export interface ChaosOptions {
  /** 3 or 5 (any size from 3 works). */
  readonly nodes: number;
  /** Length of the workload, faults included (the last `quietMs` have none). */
  readonly seconds: number;
  readonly seed: number;
  /** Concurrent clients; default two per node. */
  readonly clients?: number;
  /** How many keys; default 5. */
  readonly keys?: number;
  /**
   * The clients' reads: `mixed` (default: half linearizable, half lease reads), one consistency
   * for all (`stale` shows the checker at work).
   */
  readonly readConsistency?: ReadMode;
  /** A packet filter to use (else one is opened for the run and closed after it). */
  readonly filter?: PacketFilter;
  /** Progress lines; default none. */
  readonly log?: (line: string) => void;
  /** Quiet time at the end of the workload, no fault. Default 3000. */
  readonly quietMs?: number;
}

export interface ChaosResult {
  readonly ok: boolean;
  readonly seed: number;
  readonly nodes: number;
  readonly seconds: number;
  readonly packetFilter: FilterBackend;
  readonly packetFilterDetail: string;
  readonly slowDisk: DiskBackend;
  readonly slowDiskDetail: string;
  /** Each node's clock rate (all 1 when not skewed) and what the probe measured. */
  readonly clocks: {
    readonly backend: ClockBackend;
    readonly detail: string;
    readonly rates: Readonly<Record<string, number>>;
    /** `n1 x1.012 (measured 1.012), ...`, or `not skewed`. */
    readonly summary: string;
  };
  readonly warnings: string[];
  readonly plan: readonly PlannedFault[];
  readonly schedule: readonly AppliedFault[];
  readonly stats: WorkloadStats;
  /** Operations in the checked history (the final reads included). */
  readonly historyOps: number;
  readonly checker: {
    readonly result: 'linearizable' | 'violation' | 'unknown' | 'not run';
    readonly ms: number;
    readonly partitions?: number;
  };
  /** Every reason the run failed; empty when it passed. */
  readonly anomalies: string[];
  /** The checker's explanation, when it found a violation. */
  readonly counterexample: string | null;
  /** Each key's value on every node after healing (null: absent). */
  readonly finalValues: Record<string, string | null>;
  /** The leader, term and applied index the healed cluster settled on (null: it did not). */
  readonly settled: Settled | null;
  readonly timings: {
    readonly startupMs: number;
    readonly workloadMs: number;
    readonly healMs: number;
    readonly checkMs: number;
    readonly totalMs: number;
  };
  /** Where the data and the nodes' logs were kept (failed runs only). */
  readonly keptDir: string | null;
}

const TIMINGS = { electionTimeoutMs: 300, heartbeatMs: 50, requestTimeoutMs: 1500 };
const OP_TIMEOUT_MS = 2500;
const RECOVERY_MS = 60_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A random seed (printed with every run). */
export function randomSeed(): number {
  return Math.floor(Math.random() * 2 ** 31);
}

/** Data directories of the runs in progress. */
const activeRoots = new Set<string>();

/**
 * Cleans up after runs that did not finish (a signal, a test timeout), synchronously: every node
 * SIGKILLed, every packet filter rule and slow-disk cgroup removed, their data directories
 * deleted.
 */
export function cleanupSync(): void {
  killAllNodesSync();
  closeAllFiltersSync();
  closeAllSlowDisksSync();
  for (const root of activeRoots) rmSync(root, { recursive: true, force: true });
  activeRoots.clear();
}

/** One chaos run. Never throws for what it finds: failures are in `anomalies`. */
export async function chaosRun(o: ChaosOptions): Promise<ChaosResult> {
  const log = o.log ?? (() => undefined);
  const started = performance.now();
  const root = mkdtempSync(join(tmpdir(), 'kv-chaos-'));
  activeRoots.add(root);
  const warnings: string[] = [];
  const anomalies: string[] = [];
  const filter = o.filter ?? (await openPacketFilter());
  if (filter.backend === 'none') {
    const w = `NO PACKET FILTER: this run has no network partitions, only kills and pauses (${filter.detail})`;
    warnings.push(w);
    console.warn(`\n!!! ${w}\n!!! (as root: apt-get install -y nftables)\n`);
  }
  const prng = new Prng(o.seed);
  const [disk, skew] = await Promise.all([
    openSlowDisk(root),
    openClockSkew(drawClockRates(prng.fork('clocks'), o.nodes)),
  ]);
  if (disk.backend === 'none') {
    const w = `NO SLOW DISK: this run slows no node's disk (${disk.detail})`;
    warnings.push(w);
    console.warn(
      `\n!!! ${w}\n!!! (needs root and a cgroup v1 blkio or v2 io controller, and the data on a disk)\n`,
    );
  }
  if (skew.backend === 'none') {
    const w = `CLOCKS NOT SKEWED: every node's clock runs at the real rate, lease reads meet no drift (${skew.detail})`;
    warnings.push(w);
    console.warn(`\n!!! ${w}\n!!! (as root: apt-get install -y faketime)\n`);
  }
  const keys = Array.from({ length: o.keys ?? 5 }, (_, i) => `chaos/k${i}`);
  const cluster = await ChaosCluster.create(o.nodes, root, TIMINGS, (i) => skew.envOf(i));
  const clocks = clocksOf(cluster, skew);
  let t0 = performance.now();
  const now = () => performance.now() - t0;
  const nemesis = new Nemesis(cluster, filter, disk, now);
  const totalMs = o.seconds * 1000;
  const plan = planSchedule(prng.fork('nemesis'), {
    size: o.nodes,
    startMs: 1000,
    endMs: Math.max(1000, totalMs - (o.quietMs ?? 3000)),
    partitions: filter.backend !== 'none',
    slowDisk: disk.backend !== 'none',
  });
  const workload = new Workload({
    endpoints: cluster.nodes.map((n) => n.http),
    keys,
    clients: o.clients ?? 2 * o.nodes,
    prng: prng.fork('workload'),
    now,
    opTimeoutMs: OP_TIMEOUT_MS,
    readConsistency: o.readConsistency ?? 'mixed',
    tag: cluster.clusterId,
  });
  const finalValues: Record<string, string | null> = {};
  let settled: ChaosResult['settled'] = null;
  let startupMs = 0;
  let workloadMs = 0;
  let healMs = 0;
  let checkMs = 0;
  let checker: ChaosResult['checker'] = { result: 'not run', ms: 0 };
  let counterexample: string | null = null;
  let keptDir: string | null = null;

  try {
    log(
      `chaos: ${o.nodes} nodes, ${o.seconds} s, seed ${o.seed}, ${plan.length} faults planned, packet filter: ${filter.backend}, slow disk: ${disk.backend}, clocks: ${clocks.summary}`,
    );
    cluster.startAll();
    await firstWrite(cluster);
    startupMs = performance.now() - started;

    // ---------------------------------------------------------------- workload and faults
    t0 = performance.now();
    workload.start();
    const progress = setInterval(() => {
      const s = workload.stats;
      log(
        `  +${(now() / 1000).toFixed(0)}s: ${workload.history.length} ops recorded (ok ${s.ok}, failed ${s.failed}, unknown ${s.indeterminate})`,
      );
    }, 10_000);
    try {
      for (const p of plan) {
        await sleep(p.at - now());
        const f = await nemesis.apply(p);
        log(
          `  +${(f.at / 1000).toFixed(1)}s ${f.kind} ${f.targets}${f.note ? ` (${f.note})` : ''}`,
        );
        await sleep(p.at + p.durationMs - now());
        await nemesis.heal();
      }
      await sleep(totalMs - now());
    } finally {
      clearInterval(progress);
      await workload.stop();
    }
    workloadMs = now();

    // ---------------------------------------------------------------- heal, converge, final reads
    const healStart = performance.now();
    await nemesis.healAll();
    const converged = await converge(cluster, keys, finalValues);
    if (typeof converged === 'string') anomalies.push(converged);
    else {
      settled = converged;
      for (const n of cluster.nodes) {
        for (const k of keys) {
          const deadline = performance.now() + 20_000;
          while (!(await workload.get(`final@${n.id}`, n.http, k, 'linearizable'))) {
            if (performance.now() > deadline) {
              anomalies.push(
                `no final linearizable read of ${k} on ${n.id} within 20 s of healing`,
              );
              break;
            }
            await sleep(200);
          }
        }
      }
    }
    healMs = performance.now() - healStart;

    // ---------------------------------------------------------------- checks
    anomalies.push(...cluster.crashes);
    for (const u of workload.stats.unexpected.slice(0, 20))
      anomalies.push(`unexpected answer: ${u}`);
    if (workload.stats.unexpected.length > 20) {
      anomalies.push(`... and ${workload.stats.unexpected.length - 20} more unexpected answers`);
    }
    const checkStart = performance.now();
    const result = checkLinearizability(kvModel, workload.history);
    checkMs = performance.now() - checkStart;
    if (result.ok === true) {
      checker = { result: 'linearizable', ms: checkMs, partitions: result.partitions };
    } else if (result.ok === false) {
      checker = { result: 'violation', ms: checkMs };
      counterexample = result.counterexample.explanation;
      anomalies.push(`${counterexample}\n(operation times: ms after the workload started)`);
    } else {
      checker = { result: 'unknown', ms: checkMs };
      anomalies.push(
        `the linearizability checker gave up (${result.reason}): the history is too hard to check; fewer clients, keys or seconds`,
      );
    }
  } catch (err) {
    anomalies.push(`the run failed: ${(err as Error).stack ?? String(err)}`);
  } finally {
    await workload.stop().catch(() => undefined);
    await filter.setCuts([]).catch(() => undefined);
    await disk.close().catch(() => undefined);
    if (anomalies.length > 0) {
      cluster.saveLogs();
      keptDir = root;
    }
    await cluster.destroy();
    if (o.filter === undefined) await filter.close();
    activeRoots.delete(root);
    if (keptDir === null) rmSync(root, { recursive: true, force: true });
  }

  return {
    ok: anomalies.length === 0,
    seed: o.seed,
    nodes: o.nodes,
    seconds: o.seconds,
    packetFilter: filter.backend,
    packetFilterDetail: filter.detail,
    slowDisk: disk.backend,
    slowDiskDetail: disk.detail,
    clocks,
    warnings,
    plan,
    schedule: nemesis.schedule,
    stats: workload.stats,
    historyOps: workload.history.length,
    checker,
    anomalies,
    counterexample,
    finalValues,
    settled,
    timings: { startupMs, workloadMs, healMs, checkMs, totalMs: performance.now() - started },
    keptDir,
  };
}

/** The clocks of a run, by node id, for the result. */
function clocksOf(cluster: ChaosCluster, skew: ClockSkew): ChaosResult['clocks'] {
  const ids = cluster.nodes.map((n) => n.id);
  return {
    backend: skew.backend,
    detail: skew.detail,
    rates: Object.fromEntries(ids.map((id, i) => [id, skew.rates[i] ?? 1])),
    summary: describeClocks(ids, skew),
  };
}

/** Waits for a leader that commits a write (not recorded: a key of its own). */
async function firstWrite(cluster: ChaosCluster): Promise<void> {
  const deadline = performance.now() + 60_000;
  for (let i = 0; ; i++) {
    const n = cluster.nodes[i % cluster.nodes.length] as ChaosNode;
    const reply = await send(
      `http://${n.http}/v1/kv/chaos%2Fwarmup`,
      { method: 'PUT', body: 'up', headers: { 'idempotency-key': `${cluster.clusterId}-warmup` } },
      3000,
    );
    if (reply.kind === 'answer' && reply.status === 200) return;
    if (cluster.crashes.length > 0) throw new Error(`a node exited: ${cluster.crashes.join('; ')}`);
    if (performance.now() > deadline) throw new Error('no leader committed a write within 60 s');
    await sleep(200);
  }
}

type Settled = { readonly leader: string; readonly term: number; readonly applied: number };

/**
 * After healing: waits until every node runs, all name one leader and their applied indexes
 * equal its commit index (twice in a row), then reads every key on every node with
 * `consistency=stale` into `values`; they must agree. Where the cluster settled when they do,
 * else the anomaly.
 */
async function converge(
  cluster: ChaosCluster,
  keys: readonly string[],
  values: Record<string, string | null>,
): Promise<Settled | string> {
  const deadline = performance.now() + RECOVERY_MS;
  const same = (a: Settled | null, b: Settled | null) =>
    a !== null &&
    b !== null &&
    a.leader === b.leader &&
    a.term === b.term &&
    a.applied === b.applied;
  let previous: Settled | null = null;
  let last: (StatusBody | null)[] = [];
  while (performance.now() < deadline) {
    await sleep(200);
    last = await cluster.statuses();
    const settled = settledOf(last);
    if (!same(settled, previous)) {
      previous = settled;
      continue;
    }
    // Matching applied indexes: the same state machine everywhere, or a divergence.
    const seen: Record<string, Record<string, string | null>> = {};
    let failed = false;
    for (const k of keys) {
      const row: Record<string, string | null> = {};
      seen[k] = row;
      for (const n of cluster.nodes) {
        const reply = await send(
          `http://${n.http}/v1/kv/${encodeURIComponent(k)}?consistency=stale`,
          { method: 'GET' },
          3000,
        );
        if (reply.kind !== 'answer' || (reply.status !== 200 && reply.status !== 404)) {
          failed = true;
          break;
        }
        row[n.id] = reply.status === 200 ? reply.text : null;
      }
      if (failed) break;
    }
    if (failed || !same(settledOf(await cluster.statuses()), settled)) {
      previous = null;
      continue;
    }
    const disagree = keys.filter((k) => new Set(Object.values(seen[k] ?? {})).size > 1);
    if (disagree.length > 0) {
      return `the nodes diverged: the same applied index ${settled?.applied}, different values: ${disagree
        .map((k) => `${k} ${JSON.stringify(seen[k])}`)
        .join('; ')}`;
    }
    for (const k of keys) values[k] = Object.values(seen[k] ?? {})[0] ?? null;
    return settled as Settled;
  }
  return `the cluster did not converge within ${RECOVERY_MS / 1000} s of healing: ${JSON.stringify(
    last.map((s) =>
      s === null
        ? null
        : {
            id: s.id,
            role: s.role,
            term: s.term,
            leader: s.leaderId,
            commit: s.commitIndex,
            applied: s.appliedIndex,
          },
    ),
  )}`;
}

/** Where the cluster is when every node answers, names one leader and has applied its commit. */
function settledOf(statuses: readonly (StatusBody | null)[]): Settled | null {
  const first = statuses[0];
  if (first == null || first.leaderId === null) return null;
  const leader = statuses.find((s) => s?.id === first.leaderId);
  if (leader == null || leader.role !== 'leader') return null;
  for (const s of statuses) {
    if (s === null || s.leaderId !== leader.id || s.term !== leader.term) return null;
    if (s.appliedIndex !== leader.commitIndex) return null;
  }
  return { leader: leader.id, term: leader.term, applied: leader.commitIndex };
}

/** A result for people: the seed, the packet filter, counts, timings, the schedule, anomalies. */
export function formatResult(r: ChaosResult): string {
  const s = r.stats;
  const k = s.byKind;
  const sec = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  const reads = Object.entries(s.readsBy)
    .filter(([, n]) => n > 0)
    .map(([c, n]) => `${c} ${n}`)
    .join(', ');
  const lines = [
    `chaos run ${r.ok ? 'PASSED' : 'FAILED'}: ${r.nodes} nodes, ${r.seconds} s, seed ${r.seed} (rerun: RAFT_CHAOS_SEED=${r.seed}, or pnpm test:chaos --nodes ${r.nodes} --seconds ${r.seconds} --seed ${r.seed})`,
    `  packet filter: ${r.packetFilter} (${r.packetFilterDetail})`,
    `  slow disk: ${r.slowDisk} (${r.slowDiskDetail})`,
    `  clocks: ${r.clocks.backend === 'none' ? 'not skewed' : r.clocks.summary} (${r.clocks.detail})`,
    ...r.warnings.map((w) => `  WARNING: ${w}`),
    `  history: ${r.historyOps} operations; ok ${s.ok} (get ${k.get.ok}: ${reads}; put ${k.put.ok}, cas ${k.cas.ok}, delete ${k.delete.ok}), definite failures ${s.failed}, indeterminate writes ${s.indeterminate}, reads lost ${s.readsLost}`,
    `  checker: ${r.checker.result} in ${r.checker.ms.toFixed(0)} ms${r.checker.partitions === undefined ? '' : ` (${r.checker.partitions} keys)`}`,
    `  time: startup ${sec(r.timings.startupMs)}, workload ${sec(r.timings.workloadMs)}, heal and final reads ${sec(r.timings.healMs)}, check ${sec(r.timings.checkMs)}, total ${sec(r.timings.totalMs)}`,
    `  healed: ${r.settled === null ? 'did not settle' : `leader ${r.settled.leader}, term ${r.settled.term}, applied index ${r.settled.applied} on every node`}; final values ${JSON.stringify(r.finalValues)}`,
    `  schedule (${r.schedule.length} faults, times after the workload started):`,
    describeSchedule(r.schedule),
  ];
  if (r.anomalies.length > 0) {
    lines.push('  anomalies:');
    for (const a of r.anomalies) lines.push(a.replace(/^/gm, '    '));
  }
  if (r.keptDir !== null) lines.push(`  data and node logs kept in ${r.keptDir}`);
  return lines.join('\n');
}
