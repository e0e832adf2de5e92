/**
 * "Slow disks must not stop the cluster", in the simulator: the `disk-stall` profile (see
 * `ScenarioConfig.diskStall`) waits for a stable leader on a healthy network, stalls the disk of
 * the leader or of a follower (log, hard state and snapshots: one SimDisk) for 3 to 8 election
 * timeouts while a writer keeps proposing to the leader beside the KV clients, and checks after
 * every event that no term changes, nobody campaigns and the leader stays; then that every
 * proposal made during the stall committed or failed with a RaftError; when the other voters
 * were caught up as it began, that the leader's commit index moved during the stall (the
 * followers, or the leader and the other followers, are a quorum) and that writes were
 * acknowledged during a follower's stall; and, as in every scenario, safety, the heal phase's
 * liveness and linearizability. Seed 3431 (`pnpm sim --seed 3431 --profile disk-stall`) is a
 * stalled leader whose follower still needed a snapshot from it: nothing can commit then, and
 * nothing must be elected either.
 *
 * The seed draws the target and PreVote and CheckQuorum (each on or off, evenly); the first test
 * checks that every combination ran. A failure prints its seed and the replay line
 * (`RAFT_SEED=<n> RAFT_PROFILE=disk-stall`), which this file honours too. The last test plants
 * the bug of the issue (nothing leaves while a write waits) and shows that the scenario catches
 * it, on exactly the seeds that stall a leader.
 */
import { afterEach, expect, it } from 'vitest';
import { RawNode } from '../../../core/src/engine/raw-node.js';
import type { DiskStallReport } from '../../src/sim/cluster.js';
import { SCENARIO_PROFILES } from '../../src/sim/cluster.js';
import { runSeeds, seedRange } from '../../src/sim/seeds.js';

const PROFILE = SCENARIO_PROFILES['disk-stall'];
/** Fixed seeds each run (about half stall a leader, half a follower). */
const SEEDS = 160;
/** Seeds that once failed (see the module comment), run besides. */
const REGRESSION_SEEDS = [3431];
/** Election timeout of the simulated nodes (cluster.ts). */
const ELECTION_TIMEOUT_MS = 150;

const replay = process.env.RAFT_SEED;

if (replay !== undefined) {
  it(`replays seed ${replay} when RAFT_PROFILE=disk-stall`, async () => {
    // Another profile's seed is replayed by the main simulation suite (sim-part-1).
    const seeds = process.env.RAFT_PROFILE === 'disk-stall' ? [Number(replay)] : [];
    const report = await runSeeds(seeds, PROFILE);
    expect(report.failures.map((f) => f.message)).toEqual([]);
    expect(report.scenarios).toBe(seeds.length);
  }, 600_000);
} else {
  it(`seeds 1..${SEEDS} and ${REGRESSION_SEEDS.join(', ')}: a stalled disk, the leader's or a follower's, costs no election and stops no write`, async () => {
    const stalls: DiskStallReport[] = [];
    const report = await runSeeds([...seedRange(1, SEEDS), ...REGRESSION_SEEDS], PROFILE, {
      onScenario: (r) => {
        if (r.diskStall !== undefined) stalls.push(r.diskStall);
      },
    });
    expect(report.failures.map((f) => f.message)).toEqual([]);
    expect(report.scenarios).toBe(SEEDS + REGRESSION_SEEDS.length);
    expect(stalls).toHaveLength(SEEDS + REGRESSION_SEEDS.length);
    // Every combination of target, PreVote and CheckQuorum ran several times.
    const combinations = new Map<string, number>();
    for (const s of stalls) {
      const key = `${s.target} preVote=${s.preVote} checkQuorum=${s.checkQuorum}`;
      combinations.set(key, (combinations.get(key) ?? 0) + 1);
    }
    expect(combinations.size).toBe(8);
    for (const [key, count] of combinations) expect(count, key).toBeGreaterThanOrEqual(10);
    for (const s of stalls) {
      const where = `seed with the stall of ${s.node} (${s.target})`;
      expect(s.stallMs, where).toBeGreaterThanOrEqual(3 * ELECTION_TIMEOUT_MS);
      expect(s.stallMs, where).toBeLessThan(8 * ELECTION_TIMEOUT_MS);
      expect(s.target === 'leader' ? s.node === s.leader : s.node !== s.leader, where).toBe(true);
      // The writer alone proposes every 5 to 25 ms during the stall.
      expect(s.proposals, where).toBeGreaterThanOrEqual(10);
      const failed = Object.values(s.failed).reduce((a, b) => a + b, 0);
      expect(s.committed + failed, where).toBe(s.proposals);
      expect(s.committed, where).toBeGreaterThan(0);
      if (s.followersCaughtUp) {
        expect(s.commitAtEnd, where).toBeGreaterThan(s.commitAtStart);
        if (s.target === 'follower') expect(s.committedDuringStall, where).toBeGreaterThan(0);
      }
    }
    // Commits during the stall were checked in most runs (the others began the stall while a
    // follower still needed entries the leader had compacted away).
    const caughtUp = stalls.filter((s) => s.followersCaughtUp);
    expect(caughtUp.filter((s) => s.target === 'leader').length).toBeGreaterThanOrEqual(SEEDS / 4);
    expect(caughtUp.filter((s) => s.target === 'follower').length).toBeGreaterThanOrEqual(
      SEEDS / 4,
    );
    // Nothing the leader was asked to do itself failed: only proposals to nodes that were not
    // the leader (NOT_LEADER, with followerProposals 'reject') and a few forwards through a
    // stalled follower that lagged past the leader's log (TIMEOUT, outcome unknown) may.
    const codes = new Set(stalls.flatMap((s) => Object.keys(s.failed)));
    for (const code of codes) expect(['NOT_LEADER', 'TIMEOUT']).toContain(code);
  }, 600_000);

  const fresh = Number(process.env.RAFT_FRESH_SEEDS ?? 20);
  if (fresh > 0) {
    it(`${fresh} fresh random seeds (a failure prints its seed)`, async () => {
      const seeds = Array.from(
        { length: fresh },
        () => 1_000_000 + Math.floor(Math.random() * 2 ** 31),
      );
      const report = await runSeeds(seeds, PROFILE);
      expect(report.failures.map((f) => f.message)).toEqual([]);
      expect(report.scenarios).toBe(fresh);
    }, 600_000);
  }

  const takeMessages = RawNode.prototype.takeMessages;
  afterEach(() => {
    RawNode.prototype.takeMessages = takeMessages;
  });

  it('a planted bug (nothing leaves while a write waits) fails every seed that stalls a leader, with a replay line that reproduces it', async () => {
    const seeds = [...seedRange(1, 20)];
    const leaderSeeds: number[] = [];
    const healthy = await runSeeds(seeds, PROFILE, {
      onScenario: (r) => {
        if (r.diskStall?.target === 'leader') leaderSeeds.push(r.seed);
      },
    });
    expect(healthy.failures).toEqual([]);
    expect(leaderSeeds.length).toBeGreaterThan(0);
    // The bug: what may leave while a write is pending waits for the next Ready, so a
    // stalled leader sends no heartbeat.
    RawNode.prototype.takeMessages = () => [];
    const planted = await runSeeds(seeds, PROFILE, { maxFailures: seeds.length });
    expect(planted.failures.map((f) => f.seed)).toEqual(leaderSeeds);
    for (const f of planted.failures) {
      expect(f.property).toBe('disk stall liveness');
      expect(f.message).toContain(`seed=${f.seed} `);
      expect(f.message).toContain(`RAFT_SEED=${f.seed} RAFT_PROFILE=disk-stall`);
      expect(f.message).toContain(`pnpm sim --seed ${f.seed} --profile disk-stall`);
    }
    // The same seed replays the same run, event for event: the same failure, word for word.
    const first = planted.failures[0];
    const again = await runSeeds([first?.seed as number], PROFILE);
    expect(again.failures.map((f) => f.message)).toEqual([first?.message]);
  }, 600_000);
}
