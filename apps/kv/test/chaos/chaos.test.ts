/**
 * The CI chaos runs (issue #18): raft-kv as real processes, 3 and 5 nodes, under SIGKILLs and
 * restarts, SIGSTOP pauses and network partitions (nftables or iptables; kill/pause only, with a
 * warning, where neither works), with concurrent clients whose history must be linearizable and
 * nodes that must converge once healed. See chaos-run.ts.
 *
 * Each cluster size gets a random seed, printed; `RAFT_CHAOS_SEED=S` (one seed for both, or
 * `S3,S5`) replays a schedule. `RAFT_CHAOS_SECONDS` changes the length of each run (default 60).
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
    '$nodes nodes: linearizable under kills, pauses and partitions, converging once healed',
    async ({ nodes, run }) => {
      const seed = seedFor(run);
      console.log(`chaos ${nodes} nodes: seed ${seed} (RAFT_CHAOS_SEED=${seed} replays it)`);
      const result = await chaosRun({ nodes, seconds: SECONDS, seed });
      const report = formatResult(result);
      console.log(report);
      expect(result.anomalies, report).toEqual([]);
      // The run did something: operations completed and faults were injected.
      expect(result.stats.ok).toBeGreaterThan(100);
      expect(result.schedule.length).toBeGreaterThan(0);
    },
    (SECONDS + 150) * 1000,
  );
});
