/**
 * A checker that never fails is worth nothing: plant real bugs in the engine and show that the
 * simulator catches each one within the seeds CI runs, as a violated SAFETY property (not a
 * crash of the harness). The engine is patched through its prototypes, so production code
 * carries no bug switches.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { committedIndex } from '../../core/src/engine/quorum/majority.js';
import { Raft } from '../../core/src/engine/raft.js';
import { RaftLog } from '../../core/src/engine/raft-log.js';
import type { RaftMessage } from '../../core/src/messages.js';
import type { ScenarioConfig, ScenarioFailure } from '../src/sim/cluster.js';
import { SCENARIO_PROFILES } from '../src/sim/cluster.js';
import { runSeeds, seedRange } from '../src/sim/seeds.js';

const SAFETY_PROPERTIES = [
  'Election Safety',
  'Leader Append-Only',
  'Log Matching',
  'Leader Completeness',
  'State Machine Safety',
  'durability',
  'vote safety',
  'monotonic term',
  'no engine errors',
];

const restore: (() => void)[] = [];
afterEach(() => {
  for (const fn of restore.splice(0)) fn();
});

function patch<T extends object, K extends keyof T>(target: T, key: K, value: T[K]): void {
  const original = target[key];
  target[key] = value;
  restore.push(() => {
    target[key] = original;
  });
}

/**
 * The first seed in [from, from + count) whose failure is a violated safety property. (A bug
 * may first show as a liveness failure on some seeds: counted as caught, but the test asks
 * for the stronger evidence.)
 */
async function firstSafetyFailure(
  from: number,
  count: number,
  config: Omit<ScenarioConfig, 'seed'> = {},
): Promise<ScenarioFailure | undefined> {
  const report = await runSeeds(seedRange(from, count), config, { maxFailures: 50 });
  return report.failures.find((f) => SAFETY_PROPERTIES.includes(f.property));
}

describe('planted bugs are caught by the simulator', () => {
  it('granting votes without the §5.4.1 up-to-date check', async () => {
    patch(RaftLog.prototype, 'isUpToDate', () => true);
    const failure = await firstSafetyFailure(1, 200);
    expect(failure, 'no seed caught the planted bug').toBeDefined();
    expect(SAFETY_PROPERTIES).toContain(failure?.property);
    expect(failure?.message).toContain(`seed=${failure?.seed}`);
    expect(failure?.message).toContain(`RAFT_SEED=${failure?.seed}`);
  }, 120_000);

  it('sending votes and append acknowledgements before they are durable', async () => {
    // Every message leaves at once: a crash can now lose a vote or an entry already promised.
    patch(
      Raft.prototype as unknown as { send(m: RaftMessage): void },
      'send',
      function (this: Raft, m: RaftMessage) {
        this.msgs.push(m);
      },
    );
    const failure = await firstSafetyFailure(1, 1000);
    expect(failure, 'no seed caught the planted bug').toBeDefined();
    expect(SAFETY_PROPERTIES).toContain(failure?.property);
  }, 300_000);

  it('committing an earlier-term entry by counting replicas (§5.4.2, Figure 8)', async () => {
    patch(Raft.prototype, 'maybeCommit', function (this: Raft) {
      const self = this as unknown as {
        voters: string[];
        progress: Map<string, { match: number }>;
      };
      const index = committedIndex(self.voters, (id) => self.progress.get(id)?.match ?? 0);
      return index > this.log.committed ? this.log.commitTo(index) : false;
    });
    // The default profile rarely opens this window; the figure8 profile aims at it.
    const failure = await firstSafetyFailure(1, 300, SCENARIO_PROFILES.figure8);
    expect(failure, 'no seed caught the planted bug').toBeDefined();
    expect(SAFETY_PROPERTIES).toContain(failure?.property);
    expect(failure?.message).toContain(`--profile figure8`);
  }, 300_000);

  it('the healthy engine passes the same seeds', async () => {
    const report = await runSeeds(seedRange(1, 200));
    expect(report.failures.map((f) => f.message)).toEqual([]);
    const targeted = await runSeeds(seedRange(1, 300), SCENARIO_PROFILES.figure8);
    expect(targeted.failures.map((f) => f.message)).toEqual([]);
  }, 120_000);
});
