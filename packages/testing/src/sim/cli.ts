/**
 * `pnpm sim`: run many simulation scenarios from the command line.
 *
 *   pnpm sim --seeds 100000              seeds 1..100000, on every core
 *   pnpm sim --seeds 5000 --from 7000    seeds 7000..11999
 *   pnpm sim --seed 1234                 replay one seed and print its report
 *   options: --workers N (default: cores), --steps N (chaos events, default 2000),
 *            --nodes N (default: drawn per seed), --max-failures N (default 10),
 *            --profile default|figure8|disk-stall (fault profile, see SCENARIO_PROFILES;
 *            disk-stall: one disk stalled for 3-8 election timeouts on a healthy network, and
 *            no election or stopped write allowed meanwhile)
 *
 * Exits 1 if any scenario failed; each failure prints its seed and a replay command.
 */
import { fork } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import type { ScenarioConfig, ScenarioProfile } from './cluster.js';
import { SCENARIO_PROFILES } from './cluster.js';
import type { BatchReport } from './seeds.js';
import { runSeeds, seedRange } from './seeds.js';

const { values } = parseArgs({
  options: {
    seeds: { type: 'string' },
    from: { type: 'string', default: '1' },
    seed: { type: 'string' },
    workers: { type: 'string' },
    steps: { type: 'string' },
    nodes: { type: 'string' },
    profile: { type: 'string', default: 'default' },
    'max-failures': { type: 'string', default: '10' },
    worker: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

function positiveInt(name: string, raw: string | undefined, fallback?: number): number {
  if (raw === undefined) {
    if (fallback === undefined) throw new Error(`--${name} is required`);
    return fallback;
  }
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 0)
    throw new Error(`--${name} must be a non-negative integer, got ${raw}`);
  return n;
}

const usage =
  'usage: pnpm sim --seeds N [--from S] [--workers W] [--steps N] [--nodes 2..7] | --seed S';

async function main(): Promise<number> {
  if (values.help) {
    console.log(usage);
    return 0;
  }
  const profile = values.profile as string;
  if (!Object.hasOwn(SCENARIO_PROFILES, profile)) {
    throw new Error(
      `--profile must be one of ${Object.keys(SCENARIO_PROFILES).join(', ')}, got ${profile}`,
    );
  }
  const config: Omit<ScenarioConfig, 'seed'> = {
    ...SCENARIO_PROFILES[profile as ScenarioProfile],
    ...(values.steps !== undefined ? { steps: positiveInt('steps', values.steps) } : {}),
    ...(values.nodes !== undefined ? { nodes: positiveInt('nodes', values.nodes) } : {}),
  };
  const maxFailures = positiveInt('max-failures', values['max-failures'], 10);

  if (values.seed !== undefined) {
    const report = await runSeeds([positiveInt('seed', values.seed)], config, {
      onScenario: (r) => console.log(JSON.stringify(r, null, 2)),
    });
    for (const f of report.failures) console.error(f.message);
    return report.failures.length > 0 ? 1 : 0;
  }
  if (values.seeds === undefined) {
    console.error(usage);
    return 2;
  }
  const count = positiveInt('seeds', values.seeds);
  const from = positiveInt('from', values.from, 1);

  if (values.worker) {
    const report = await runSeeds(seedRange(from, count), config, { maxFailures });
    process.send?.({ ...report, failures: report.failures.map((f) => f.message) });
    return 0;
  }

  const workers = Math.max(
    1,
    Math.min(positiveInt('workers', values.workers, availableParallelism()), count),
  );
  const started = performance.now();
  const per = Math.ceil(count / workers);
  const parts = await Promise.all(
    Array.from({ length: workers }, (_, w) => {
      const partFrom = from + w * per;
      const partCount = Math.max(0, Math.min(per, from + count - partFrom));
      const args = [
        '--worker',
        '--from',
        String(partFrom),
        '--seeds',
        String(partCount),
        '--max-failures',
        String(maxFailures),
      ];
      if (values.steps !== undefined) args.push('--steps', values.steps);
      if (values.nodes !== undefined) args.push('--nodes', values.nodes);
      args.push('--profile', profile);
      return new Promise<Omit<BatchReport, 'failures'> & { failures: string[] }>(
        (resolve, reject) => {
          const child = fork(process.argv[1] as string, args, { execArgv: process.execArgv });
          let result: (Omit<BatchReport, 'failures'> & { failures: string[] }) | undefined;
          child.on('message', (m) => {
            result = m as typeof result;
          });
          child.on('exit', (code) =>
            result ? resolve(result) : reject(new Error(`worker ${w} exited with ${code}`)),
          );
        },
      );
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const sum = (
    key:
      | 'scenarios'
      | 'steps'
      | 'leaders'
      | 'crashes'
      | 'acked'
      | 'snapshotsTaken'
      | 'snapshotsInstalled'
      | 'membershipChanges'
      | 'transfers'
      | 'reads'
      | 'writes',
  ): number => parts.reduce((a, p) => a + p[key], 0);
  const failures = parts.flatMap((p) => p.failures);
  for (const f of failures) console.error(`\n${f}`);
  console.log(
    `${sum('scenarios')} scenarios (seeds ${from}..${from + count - 1}), ${sum('steps').toLocaleString('en-US')} events, ` +
      `${sum('leaders')} elections, ${sum('crashes')} crashes, ${sum('acked')} acknowledged writes, ` +
      `${sum('snapshotsTaken')} snapshots taken, ${sum('snapshotsInstalled')} installed, ` +
      `${sum('membershipChanges')} membership changes, ${sum('transfers')} transfers, ` +
      `${sum('writes')} writes and ${sum('reads')} reads checked for linearizability, profile ${profile}, ` +
      `${failures.length} failed, ${seconds.toFixed(1)} s on ${workers} worker(s)`,
  );
  return failures.length > 0 ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exitCode = 2;
  },
);
