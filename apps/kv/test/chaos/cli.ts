/**
 * Long chaos runs: `pnpm test:chaos [--nodes 3|5] [--seconds N] [--seed S] [--runs K]`.
 *
 * Without --nodes each run is done with 3 and then 5 nodes. Seeds are random unless --seed gives
 * the first (the next runs take S+1, S+2, ...); every run prints its seed, schedule and result.
 * Exits 1 when any run found an anomaly, 2 on bad arguments, 130 on Ctrl-C (after killing every
 * node and removing every packet filter rule and slow-disk cgroup).
 */
import { killAll } from '../e2e/processes.js';
import { chaosRun, cleanupSync, formatResult, randomSeed } from './chaos-run.js';
import { openPacketFilter } from './packet-filter.js';

function usage(problem: string): never {
  console.error(
    `${problem}\nusage: pnpm test:chaos [--nodes 3|5] [--seconds N] [--seed S] [--runs K]`,
  );
  process.exit(2);
}

function parseArgs(argv: readonly string[]): {
  sizes: number[];
  seconds: number;
  seed: number | null;
  runs: number;
} {
  let sizes = [3, 5];
  let seconds = 60;
  let seed: number | null = null;
  let runs = 1;
  const args = argv.filter((a) => a !== '--');
  for (let i = 0; i < args.length; i++) {
    const flag = args[i] as string;
    const value = args[i + 1];
    const int = (min: number) => {
      const n = Number(value);
      if (value === undefined || !Number.isSafeInteger(n) || n < min) {
        usage(`${flag} needs an integer >= ${min}, got ${value ?? 'nothing'}`);
      }
      i++;
      return n;
    };
    if (flag === '--nodes') sizes = [int(3)];
    else if (flag === '--seconds') seconds = int(5);
    else if (flag === '--seed') seed = int(Number.MIN_SAFE_INTEGER);
    else if (flag === '--runs') runs = int(1);
    else if (flag === '--help' || flag === '-h') usage('');
    else usage(`unknown argument ${flag}`);
  }
  return { sizes, seconds, seed, runs };
}

const { sizes, seconds, seed, runs } = parseArgs(process.argv.slice(2));

let interrupted = false;
const onSignal = (signal: NodeJS.Signals) => {
  if (interrupted) process.exit(130);
  interrupted = true;
  console.error(`\n${signal}: killing the nodes, removing the packet filter rules and cgroups`);
  cleanupSync();
  void killAll().finally(() => process.exit(130));
};
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

const filter = await openPacketFilter();
console.log(`packet filter: ${filter.backend} (${filter.detail})`);
const failed: string[] = [];
let index = 0;
const started = Date.now();
try {
  for (let run = 0; run < runs; run++) {
    for (const nodes of sizes) {
      const s = seed === null ? randomSeed() : seed + index;
      index++;
      console.log(`\n=== run ${run + 1}/${runs}, ${nodes} nodes, seed ${s}`);
      const result = await chaosRun({
        nodes,
        seconds,
        seed: s,
        filter,
        log: (line) => console.log(line),
      });
      console.log(formatResult(result));
      if (!result.ok) failed.push(`${nodes} nodes, seed ${s}`);
    }
  }
} finally {
  await filter.close();
}
console.log(
  `\n${index - failed.length} of ${index} runs passed in ${((Date.now() - started) / 1000).toFixed(0)} s${
    failed.length > 0 ? `; FAILED: ${failed.join(', ')}` : ''
  }`,
);
process.exit(failed.length > 0 ? 1 : 0);
