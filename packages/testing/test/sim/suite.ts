/**
 * Shared body of the simulation suites. Seeds are split over several files so vitest runs them
 * on both cores. `RAFT_SEED=<n>` replays exactly one seed (in the first file only);
 * `RAFT_FRESH_SEEDS=<n>` adds n random seeds (printed on failure, so they replay too).
 */
import { expect, it } from 'vitest';
import type { ScenarioProfile } from '../../src/sim/cluster.js';
import { SCENARIO_PROFILES } from '../../src/sim/cluster.js';
import { runSeeds, seedRange } from '../../src/sim/seeds.js';

/** Seeds of the targeted figure8 profile each CI run adds (see SCENARIO_PROFILES). */
export const FIGURE8_SEEDS = 500;

export const FIXED_SEEDS = 2000;

export function simulationSuite(part: number, parts: number): void {
  const replay = process.env.RAFT_SEED;
  const profileName = (process.env.RAFT_PROFILE ?? 'default') as ScenarioProfile;
  if (replay !== undefined) {
    if (part === 0) {
      it(`replays seed ${replay} (profile ${profileName})`, async () => {
        const report = await runSeeds([Number(replay)], SCENARIO_PROFILES[profileName]);
        expect(report.failures.map((f) => f.message)).toEqual([]);
      });
    } else {
      it('skipped while replaying one seed (see the first file)', () =>
        expect(replay).toBeDefined());
    }
    return;
  }
  const per = Math.ceil(FIXED_SEEDS / parts);
  const from = 1 + part * per;
  const count = Math.min(per, FIXED_SEEDS - part * per);
  it(`seeds ${from}..${from + count - 1}: every safety property holds and the cluster recovers`, async () => {
    const report = await runSeeds(seedRange(from, count));
    expect(report.failures.map((f) => f.message)).toEqual([]);
    expect(report.scenarios).toBe(count);
    // Every scenario ran its full chaos phase (2000 events) and then healed.
    expect(report.steps).toBeGreaterThanOrEqual(count * 2000);
    expect(report.crashes).toBeGreaterThan(count);
    expect(report.leaders).toBeGreaterThan(count);
  }, 600_000);
  const per8 = Math.ceil(FIGURE8_SEEDS / parts);
  it(`figure8 profile, seeds ${1 + part * per8}..${(part + 1) * per8}: leaders isolated at election and at commit`, async () => {
    const report = await runSeeds(seedRange(1 + part * per8, per8), SCENARIO_PROFILES.figure8);
    expect(report.failures.map((f) => f.message)).toEqual([]);
    expect(report.scenarios).toBe(per8);
  }, 600_000);
  const fresh = Number(process.env.RAFT_FRESH_SEEDS ?? 50);
  if (fresh > 0) {
    it(`${fresh} fresh random seeds`, async () => {
      const seeds = Array.from(
        { length: fresh },
        () => 1_000_000 + Math.floor(Math.random() * 2 ** 31),
      );
      const report = await runSeeds(seeds);
      expect(report.failures.map((f) => f.message)).toEqual([]);
    }, 600_000);
  }
}
