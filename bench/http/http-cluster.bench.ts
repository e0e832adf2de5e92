/**
 * `pnpm bench:cluster`: raft-kv against etcd 3.4 over HTTP on this machine, in the same run.
 *
 * Both run as 3 (or 5) real processes on 127.0.0.1-N with the same heartbeat and election
 * timeout and fsync on; the same closed-loop generator (undici, an HDR histogram) drives
 * raft-kv's HTTP API and etcd's v3 JSON gateway, spread over every member, alternating which
 * system goes first cell by cell so machine noise hits both. Beside them, a bare node:http
 * server answering from a Map: the physical limit of one HTTP server with this client. Then
 * failover: SIGKILL the leader, time to the first acknowledged write, `--kills` times each.
 * Without etcd installed (`apt-get install -y etcd-server`) it says so and runs ours alone.
 *
 *   pnpm bench:cluster [--clients 1,16,64,256] [--workloads put,get,mix,cas]
 *     [--values 100,4096] [--seconds 8] [--stores file] [--transports tcp] [--nodes 3]
 *     [--kills 10] [--no-etcd] [--no-map] [--write] [--profile DIR] [--to all|leader]
 *     [--repeats 1] [--section cluster]
 *   --write updates BENCHMARKS.md (the part between its bench:SECTION markers) and, for the
 *   main section, docs/bench/*.svg; --repeats N runs every cell N times, alternating the systems,
 *   and reports the run of median throughput; --profile writes a V8 CPU profile of each raft-kv
 *   node (n1.cpuprofile, ...) into DIR. RAFT_BENCH_NODE_FLAGS="--perf-basic-prof ..." passes
 *   flags to node for each raft-kv member (for perf).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  type Cluster,
  etcdAvailable,
  startEtcd,
  startMapServer,
  startRaftKv,
  type Timing,
} from './clusters.js';
import { type FailoverResult, measureFailover } from './failover.js';
import { preload, runLoad, type Workload } from './load.js';
import { type Cell, chartSvg, comparisonTable, plainTable } from './report.js';
import { etcd, mapServer, raftKv, type Target } from './targets.js';

const argv = process.argv.slice(2);
const { values: flags } = parseArgs({
  args: argv[0] === '--' ? argv.slice(1) : argv,
  options: {
    clients: { type: 'string', default: '1,16,64,256' },
    workloads: { type: 'string', default: 'put,get,mix,cas' },
    values: { type: 'string', default: '100,4096' },
    seconds: { type: 'string', default: '8' },
    stores: { type: 'string', default: 'file' },
    transports: { type: 'string', default: 'tcp' },
    nodes: { type: 'string', default: '3' },
    kills: { type: 'string', default: '10' },
    keys: { type: 'string', default: '1000' },
    'heartbeat-ms': { type: 'string', default: '100' },
    'election-timeout-ms': { type: 'string', default: '1000' },
    'no-etcd': { type: 'boolean', default: false },
    'no-map': { type: 'boolean', default: false },
    write: { type: 'boolean', default: false },
    profile: { type: 'string' },
    to: { type: 'string', default: 'all' },
    repeats: { type: 'string', default: '1' },
    section: { type: 'string', default: 'cluster' },
  },
});
const list = (s: string) =>
  s
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
const clientsLevels = list(flags.clients).map(Number);
const workloads = list(flags.workloads) as Workload[];
const valueSizes = list(flags.values).map(Number);
const seconds = Number(flags.seconds);
const kills = Number(flags.kills);
const keys = Number(flags.keys);
const repeats = Math.max(1, Number(flags.repeats));
const timing: Timing = {
  heartbeatMs: Number(flags['heartbeat-ms']),
  electionTimeoutMs: Number(flags['election-timeout-ms']),
};
const etcdVersion = flags['no-etcd'] ? null : etcdAvailable();
if (!flags['no-etcd'] && etcdVersion === null) {
  console.warn(
    'etcd is not installed (apt-get install -y etcd-server): running raft-kv alone, without ratios',
  );
}
const scratch = mkdtempSync(join(tmpdir(), 'bench-http-'));
const log = (line: string) => process.stdout.write(`${line}\n`);
const cells: Cell[] = [];
const failovers: { system: string; config: string; result: FailoverResult }[] = [];
let open: Cluster[] = [];

async function measure(
  cluster: Cluster,
  target: Target,
  config: string,
  workload: Workload,
  valueBytes: number,
  clients: number,
): Promise<Cell> {
  // A short warm-up (connections, JIT, the leader's caches), not counted.
  await runLoad({
    target,
    endpoints: cluster.endpoints,
    clients,
    workload,
    valueBytes,
    seconds: 1,
    keys,
  });
  const cpu0 = cluster.cpuSeconds();
  const result = await runLoad({
    target,
    endpoints: cluster.endpoints,
    clients,
    workload,
    valueBytes,
    seconds,
    keys,
  });
  const serverCpu = (cluster.cpuSeconds() - cpu0) / result.seconds;
  log(
    `  ${target.name.padEnd(13)} ${config.padEnd(22)} ${workload.padEnd(4)} ${String(valueBytes).padStart(5)} B C=${String(clients).padStart(3)}: ${result.opsPerSecond.toFixed(0).padStart(6)} ops/s  p50 ${result.p50Ms.toFixed(1)} p99 ${result.p99Ms.toFixed(1)} p99.9 ${result.p999Ms.toFixed(1)} ms  server ${serverCpu.toFixed(2)} client ${result.clientCpu.toFixed(2)} cores  errors ${result.errors}${result.sampleErrors.length > 0 ? ` (${result.sampleErrors[0]})` : ''}`,
  );
  return { system: target.name, config, workload, valueBytes, clients, result, serverCpu };
}

/** The run of median throughput among `repeats` runs of one cell (its latencies come with it). */
function medianCell(runs: Cell[]): Cell {
  const sorted = [...runs].sort((a, b) => a.result.opsPerSecond - b.result.opsPerSecond);
  return sorted[Math.floor((sorted.length - 1) / 2)] as Cell;
}

async function main(): Promise<void> {
  log(
    `bench:cluster: ${seconds} s per cell, heartbeat ${timing.heartbeatMs} ms, election timeout ${timing.electionTimeoutMs} ms, ${etcdVersion ?? 'no etcd'}`,
  );
  let port = 21_000;
  for (const nodes of list(flags.nodes).map(Number)) {
    for (const store of list(flags.stores) as ('file' | 'sqlite' | 'redis')[]) {
      for (const transport of list(flags.transports) as ('tcp' | 'ws')[]) {
        const config = `${store}/${transport} ${nodes} nodes`;
        log(`\n${config}`);
        const ours = await startRaftKv({
          size: nodes,
          store,
          transport,
          timing,
          dir: scratch,
          basePort: port + 300,
          ...(flags.profile === undefined ? {} : { profileDir: flags.profile }),
        });
        port += 300;
        open.push(ours);
        // etcd once per cluster size (it has no store or transport to vary).
        const ref =
          etcdVersion !== null &&
          !cells.some((c) => c.system === 'etcd' && c.config.endsWith(`${nodes} nodes`))
            ? await startEtcd({ size: nodes, timing, dir: scratch, basePort: port + 300 })
            : null;
        port += 300;
        if (ref !== null) open.push(ref);
        for (const valueBytes of valueSizes) {
          await preload(raftKv, ours.endpoints, keys, valueBytes);
          if (ref !== null) await preload(etcd, ref.endpoints, keys, valueBytes);
          let flip = false;
          for (const workload of workloads) {
            for (const clients of clientsLevels) {
              const runs: [Cluster, Target, string][] = [[ours, raftKv, config]];
              if (ref !== null) runs.push([ref, etcd, `etcd ${nodes} nodes`]);
              // With --repeats, each cell runs that many times, the systems alternating, and
              // the run of median throughput is reported (machine noise moves single runs).
              const taken = new Map<string, Cell[]>();
              for (let r = 0; r < repeats; r++) {
                if (flip) runs.reverse();
                flip = !flip;
                for (const [cluster, target, label] of runs) {
                  const cell = await measure(cluster, target, label, workload, valueBytes, clients);
                  taken.set(label, [...(taken.get(label) ?? []), cell]);
                }
              }
              for (const [, cellRuns] of taken) cells.push(medianCell(cellRuns));
            }
          }
        }
        if (kills > 0) {
          log(`failover (${kills} kills each)`);
          failovers.push({
            system: 'raft-kv',
            config,
            result: await measureFailover(ours, raftKv, kills, log),
          });
          if (ref !== null) {
            failovers.push({
              system: 'etcd',
              config: `etcd ${nodes} nodes`,
              result: await measureFailover(ref, etcd, kills, log),
            });
          }
        }
        await ours.stop();
        if (ref !== null) await ref.stop();
        open = [];
      }
    }
  }
  if (!flags['no-map']) {
    log('\nnode:http + Map (the physical limit)');
    port += 300;
    const map = await startMapServer(port);
    open.push(map);
    for (const valueBytes of valueSizes) {
      await preload(mapServer, map.endpoints, keys, valueBytes);
      for (const workload of workloads.filter((w) => w === 'put' || w === 'get')) {
        for (const clients of clientsLevels) {
          const cellRuns: Cell[] = [];
          for (let r = 0; r < repeats; r++)
            cellRuns.push(
              await measure(map, mapServer, 'one process', workload, valueBytes, clients),
            );
          cells.push(medianCell(cellRuns));
        }
      }
    }
    await map.stop();
    open = [];
  }
  report();
}

function goals(): string[] {
  const at = (system: string, workload: Workload, config: (c: string) => boolean) =>
    cells.find(
      (c) =>
        c.system === system &&
        c.workload === workload &&
        c.clients === 64 &&
        c.valueBytes === 100 &&
        config(c.config),
    )?.result;
  const file3 = (c: string) => c === 'file/tcp 3 nodes';
  const etcd3 = (c: string) => c === 'etcd 3 nodes';
  const lines: string[] = [];
  const put = at('raft-kv', 'put', file3);
  const ePut = at('etcd', 'put', etcd3);
  const get = at('raft-kv', 'get', file3);
  const eGet = at('etcd', 'get', etcd3);
  const mapPut = at('node-http-map', 'put', () => true);
  const check = (ok: boolean) => (ok ? 'met' : 'NOT met');
  if (put && ePut) {
    const r = put.opsPerSecond / ePut.opsPerSecond;
    lines.push(
      `- puts at C=64 (file store, 100 B): ${r.toFixed(2)}x etcd (goal 2x: ${check(r >= 2)}); p99 ${put.p99Ms.toFixed(1)} ms vs ${ePut.p99Ms.toFixed(1)} ms (goal no worse: ${check(put.p99Ms <= ePut.p99Ms)})`,
    );
  }
  if (get && eGet) {
    const r = get.opsPerSecond / eGet.opsPerSecond;
    lines.push(`- linearizable gets at C=64: ${r.toFixed(2)}x etcd (goal 2x: ${check(r >= 2)})`);
  }
  if (put && mapPut) {
    const r = put.opsPerSecond / mapPut.opsPerSecond;
    lines.push(
      `- puts at C=64 against the bare Map server (${mapPut.opsPerSecond.toFixed(0)} ops/s): ${(100 * r).toFixed(0)}% (goal 50%: ${check(r >= 0.5)})`,
    );
  }
  const fo = failovers.find((f) => f.system === 'raft-kv' && f.config === 'file/tcp 3 nodes');
  const efo = failovers.find((f) => f.system === 'etcd' && f.config === 'etcd 3 nodes');
  if (fo) {
    const m = fo.result.medianMs / timing.electionTimeoutMs;
    const e = efo ? efo.result.medianMs / timing.electionTimeoutMs : null;
    lines.push(
      `- failover median: ${fo.result.medianMs.toFixed(0)} ms = ${m.toFixed(2)}x the election timeout${e === null ? '' : `; etcd ${efo?.result.medianMs.toFixed(0)} ms = ${e.toFixed(2)}x (goal no worse: ${check(m <= e)})`}`,
    );
  }
  return lines;
}

function report(): void {
  const date = new Date().toISOString().slice(0, 10);
  const out: string[] = [
    `Run on ${date}: ${seconds} s per cell after a 1 s warm-up${repeats > 1 ? `, each cell run ${repeats} times (systems alternating) and the run of median throughput shown` : ''}, ${keys} keys, heartbeat ${timing.heartbeatMs} ms, election timeout ${timing.electionTimeoutMs} ms on both, ${etcdVersion ?? 'etcd not installed'}, Node ${process.version}; both systems fsync every write; clients spread over ${flags.to === 'leader' ? 'the leader alone' : 'every member'}; the two systems alternate which goes first, cell by cell.`,
    '',
    '**Goals**',
    '',
    ...goals(),
    '',
    comparisonTable(cells, 'raft-kv', 'etcd'),
  ];
  if (cells.some((c) => c.system === 'node-http-map')) {
    out.push(
      '',
      '**The bare node:http server answering from a Map** (no replication, no disk):',
      '',
      plainTable(cells, 'node-http-map'),
    );
  }
  if (failovers.length > 0) {
    out.push(
      '',
      '**Failover** (SIGKILL of the leader to the first acknowledged write on the new one):',
      '',
      '| system | median ms | max ms | median / election timeout | samples ms |',
      '| --- | ---: | ---: | ---: | --- |',
      ...failovers.map(
        (f) =>
          `| ${f.config.startsWith('etcd') ? f.config : `raft-kv ${f.config}`} | ${f.result.medianMs.toFixed(0)} | ${f.result.maxMs.toFixed(0)} | ${(f.result.medianMs / timing.electionTimeoutMs).toFixed(2)}x | ${f.result.samplesMs.map((s) => s.toFixed(0)).join(', ')} |`,
      ),
    );
  }
  const markdown = out.join('\n');
  log(`\n${markdown}\n`);
  const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
  const results = join(root, 'bench', 'results');
  mkdirSync(results, { recursive: true });
  writeFileSync(
    join(results, `${flags.section}-latest.json`),
    `${JSON.stringify({ date, timing, cells, failovers }, null, 2)}\n`,
  );
  if (flags.write) {
    const name = flags.section;
    const charts = join(root, 'docs', 'bench');
    mkdirSync(charts, { recursive: true });
    const drawn: string[] = [];
    // Charts only for the main section (one configuration of ours against etcd and the Map).
    for (const workload of name === 'cluster' ? (['put', 'get'] as const) : []) {
      if (!cells.some((c) => c.workload === workload && c.valueBytes === 100)) continue;
      const pick = cells.filter(
        (c) => c.config.endsWith('3 nodes') || c.system === 'node-http-map',
      );
      writeFileSync(
        join(charts, `cluster-${workload}.svg`),
        chartSvg(
          pick,
          workload,
          100,
          `${workload === 'put' ? 'puts' : 'linearizable gets'}, 100 B values, 3 nodes (file store, TCP) vs etcd 3.4 and a bare node:http Map server; ${date}`,
        ),
      );
      drawn.push(`![${workload}](docs/bench/cluster-${workload}.svg)`);
    }
    const file = join(root, 'BENCHMARKS.md');
    const text = readFileSync(file, 'utf8');
    const begin = `<!-- bench:${name}:begin (generated by pnpm bench:cluster --write${name === 'cluster' ? '' : ` --section ${name}`}) -->`;
    const end = `<!-- bench:${name}:end -->`;
    const section = `${begin}\n${drawn.join('\n')}\n\n${markdown}\n${end}`;
    const at = text.indexOf(begin);
    const next =
      at >= 0
        ? `${text.slice(0, at)}${section}${text.slice(text.indexOf(end) + end.length)}`
        : `${text.trimEnd()}\n\n## ${name === 'cluster' ? 'raft-kv against etcd over HTTP (`pnpm bench:cluster`)' : `bench:cluster, ${name}`}\n\n${section}\n`;
    writeFileSync(file, next);
    log(`wrote BENCHMARKS.md and ${drawn.length} chart(s) in docs/bench/`);
  }
}

const cleanup = async () => {
  await Promise.all(open.map((c) => c.stop().catch(() => {})));
  rmSync(scratch, { recursive: true, force: true });
};
process.once('SIGINT', () => {
  void cleanup().then(() => process.exit(130));
});
main().then(cleanup, async (err: unknown) => {
  console.error(err);
  await cleanup();
  process.exit(1);
});
