/**
 * The CI chaos runs (issue #18): raft-kv as real processes, 3 and 5 nodes, under SIGKILLs and
 * restarts, SIGSTOP pauses, network partitions (nftables or iptables) and slowed disks (a cgroup's
 * write throttle), every node's clock at its own rate (libfaketime, within ±4%), with concurrent
 * clients (linearizable and lease reads) whose history must be linearizable and nodes that must
 * converge once healed. What the machine cannot do is left out with a warning. See chaos-run.ts.
 *
 * Each cluster size gets a random seed, printed; `RAFT_CHAOS_SEED=S` (one seed for both, or
 * `S3,S5`) replays a schedule. `RAFT_CHAOS_SECONDS` changes the length of each run (default 60).
 * `RAFT_CHAOS_PACKET_FILTER=none`, `RAFT_CHAOS_SLOW_DISK=none` and `RAFT_CHAOS_CLOCK_SKEW=none`
 * turn the partitions, the slow disks and the skewed clocks off (each with its warning).
 * Longer runs: `pnpm test:chaos` (cli.ts).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { killAll } from '../e2e/processes.js';
import { chaosRun, cleanupSync, formatResult, randomSeed } from './chaos-run.js';

const SECONDS = Number(process.env.RAFT_CHAOS_SECONDS ?? 60);
const envSeeds = (process.env.RAFT_CHAOS_SEED ?? '')
  .split(',')
  .map((s) => s.trim())
  .filter((s) => s.length > 0)
  .map(Number);

function seedFor(run: number): number {
  const s = envSeeds[Math.min(run, envSeeds.length - 1)];
  return s === undefined || !Number.isSafeInteger(s) ? randomSeed() : s;
}

afterAll(async () => {
  cleanupSync();
  await killAll();
});

describe('raft-kv under chaos', () => {
  it.each([
    { nodes: 3, run: 0 },
    { nodes: 5, run: 1 },
  ])(
    '$nodes nodes: linearizable under kills, pauses, partitions, slow disks and skewed clocks, converging once healed',
    async ({ nodes, run }) => {
      const seed = seedFor(run);
      console.log(`chaos ${nodes} nodes: seed ${seed} (RAFT_CHAOS_SEED=${seed} replays it)`);
      const result = await chaosRun({ nodes, seconds: SECONDS, seed });
      const report = formatResult(result);
      console.log(report);
      expect(result.anomalies, report).toEqual([]);
      // The run did something: operations completed and faults were injected.
      expect(result.stats.ok).toBeGreaterThan(100);
      expect(result.stats.readsBy.lease).toBeGreaterThan(0);
      expect(result.schedule.length).toBeGreaterThan(0);
    },
    (SECONDS + 150) * 1000,
  );
});
