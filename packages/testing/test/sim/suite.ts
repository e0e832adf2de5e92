/**
 * Shared body of the simulation suites. Seeds are split over several files so vitest runs them
 * on both cores. `RAFT_SEED=<n>` replays exactly one seed (in the first file only);
 * `RAFT_FRESH_SEEDS=<n>` adds n random seeds (printed on failure, so they replay too).
 */
import { expect, it } from 'vitest';
import { runSeeds, seedRange } from '../../src/sim/seeds.js';

export const FIXED_SEEDS = 2000;

export function simulationSuite(part: number, parts: number): void {
  const replay = process.env.RAFT_SEED;
  if (replay !== undefined) {
    if (part === 0) {
      it(`replays seed ${replay}`, async () => {
        const report = await runSeeds([Number(replay)]);
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
