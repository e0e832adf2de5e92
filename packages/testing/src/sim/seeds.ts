/**
 * Runs many scenarios and collects failures: shared by the vitest suites and the `pnpm sim`
 * command line.
 */
import type { ScenarioConfig, ScenarioReport } from './cluster.js';
import { runScenario, ScenarioFailure } from './cluster.js';

/** Totals over a batch of scenarios. */
export interface BatchReport {
  readonly scenarios: number;
  readonly steps: number;
  readonly virtualMs: number;
  readonly leaders: number;
  readonly crashes: number;
  readonly acked: number;
  /** Snapshots taken, and installed from a leader. */
  readonly snapshotsTaken: number;
  readonly snapshotsInstalled: number;
  /** Membership changes and leadership transfers that completed. */
  readonly membershipChanges: number;
  readonly transfers: number;
  /** Reads and writes (put and CAS) in the linearizability-checked KV histories. */
  readonly reads: number;
  readonly writes: number;
  readonly failures: readonly ScenarioFailure[];
}

/**
 * Runs one scenario per seed, in order. Stops after `maxFailures` failures. Errors other than
 * ScenarioFailure (a crash of the simulator itself) are wrapped so they also carry the seed.
 */
export async function runSeeds(
  seeds: Iterable<number>,
  config: Omit<ScenarioConfig, 'seed'> = {},
  options: {
    readonly maxFailures?: number;
    readonly onScenario?: (r: ScenarioReport) => void;
  } = {},
): Promise<BatchReport> {
  const failures: ScenarioFailure[] = [];
  let scenarios = 0;
  let steps = 0;
  let virtualMs = 0;
  let leaders = 0;
  let crashes = 0;
  let acked = 0;
  let snapshotsTaken = 0;
  let snapshotsInstalled = 0;
  let membershipChanges = 0;
  let transfers = 0;
  let reads = 0;
  let writes = 0;
  for (const seed of seeds) {
    scenarios++;
    try {
      const r = await runScenario({ ...config, seed });
      steps += r.steps;
      virtualMs += r.virtualMs;
      leaders += r.leaders;
      crashes += r.crashes;
      acked += r.acked;
      snapshotsTaken += r.snapshotsTaken;
      snapshotsInstalled += r.snapshotsInstalled;
      membershipChanges += r.membershipChanges;
      transfers += r.transfers;
      reads += r.history.reads;
      writes += r.history.writes + r.history.cas;
      options.onScenario?.(r);
    } catch (err) {
      failures.push(
        err instanceof ScenarioFailure
          ? err
          : new ScenarioFailure(
              seed,
              0,
              'simulator error',
              err instanceof Error ? (err.stack ?? err.message) : String(err),
              [],
              config.profile,
            ),
      );
      if (failures.length >= (options.maxFailures ?? 5)) break;
    }
  }
  return {
    scenarios,
    steps,
    virtualMs,
    leaders,
    crashes,
    acked,
    snapshotsTaken,
    snapshotsInstalled,
    membershipChanges,
    transfers,
    reads,
    writes,
    failures,
  };
}

/** Seeds `from, from + 1, ..., from + count - 1`. */
export function* seedRange(from: number, count: number): Generator<number> {
  for (let i = 0; i < count; i++) yield from + i;
}
