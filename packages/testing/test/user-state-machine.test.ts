/**
 * runScenario with the user's own state machine: the simulator drives it with seeded client
 * commands under the same faults and checks that the replicas agree.
 */
import { jsonCodec } from '@raft/core';
import type { ScenarioStateMachine } from '@raft/testing';
import { runScenario, ScenarioFailure } from '@raft/testing';
import { describe, expect, it } from 'vitest';

type Command = { readonly op: 'add'; readonly key: string; readonly by: number };

/** A map of counters; each apply returns the counter's new value. */
const counters: ScenarioStateMachine<Command, number> = {
  create: () => {
    const values = new Map<string, number>();
    return {
      apply(command) {
        const next = (values.get(command.key) ?? 0) + command.by;
        values.set(command.key, next);
        return next;
      },
    };
  },
  codec: jsonCodec<Command>(),
  command: (random) => ({
    op: 'add',
    key: `k${Math.floor(random() * 4)}`,
    by: 1 + Math.floor(random() * 9),
  }),
};

describe('runScenario with a user state machine', () => {
  it('a deterministic state machine passes every seed, faults included', async () => {
    let applies = 0;
    for (let seed = 1; seed <= 60; seed++) {
      const report = await runScenario({ seed, stateMachine: counters });
      applies += report.applies;
    }
    expect(applies).toBeGreaterThan(1000);
  }, 120_000);

  it('a state machine that is not deterministic is caught as replica agreement', async () => {
    // Each replica counts from its own starting point: the results differ between nodes.
    let nodeSalt = 0;
    const drifting: ScenarioStateMachine<Command, number> = {
      ...counters,
      create: () => {
        const salt = nodeSalt++;
        let total = salt;
        return { apply: (c) => (total += c.by) };
      },
    };
    const err = await runScenario({ seed: 3, stateMachine: drifting }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ScenarioFailure);
    expect((err as ScenarioFailure).property).toBe('replica agreement');
    expect((err as ScenarioFailure).message).toContain('RAFT_SEED=3');
  });

  it('a state machine that throws for some commands gives the same outcome on every replica', async () => {
    const picky: ScenarioStateMachine<Command, number> = {
      ...counters,
      create: () => {
        const inner = counters.create('x');
        return {
          apply(command, at) {
            if (command.by === 7) throw new RangeError('seven is not allowed');
            return inner.apply(command, at);
          },
        };
      },
    };
    for (let seed = 1; seed <= 20; seed++) await runScenario({ seed, stateMachine: picky });
  }, 60_000);
});

/** The counters with snapshots: the image is the map as JSON, restored whole. */
class SnapshotCounters {
  values = new Map<string, number>();
  restores = 0;
  constructor(private readonly lossy = false) {}
  apply(command: Command): number {
    const next = (this.values.get(command.key) ?? 0) + command.by;
    this.values.set(command.key, next);
    return next;
  }
  snapshot(): Uint8Array[] {
    return [new TextEncoder().encode(JSON.stringify([...this.values]))];
  }
  async restore(chunks: AsyncIterable<Uint8Array>): Promise<void> {
    const parts: Uint8Array[] = [];
    for await (const c of chunks) parts.push(c.slice());
    const entries = JSON.parse(new TextDecoder().decode(Buffer.concat(parts))) as [
      string,
      number,
    ][];
    // The lossy one forgets a key on every restore.
    this.values = new Map(this.lossy ? entries.slice(1) : entries);
    this.restores++;
  }
}

function snapshotting(
  lossy: boolean,
  made: SnapshotCounters[],
): ScenarioStateMachine<Command, number> {
  return {
    ...counters,
    create: () => {
      const sm = new SnapshotCounters(lossy);
      made.push(sm);
      return sm;
    },
    digest: (m) => JSON.stringify([...(m as unknown as SnapshotCounters).values].sort()),
  };
}

describe('runScenario with a user state machine that snapshots', () => {
  it('is snapshotted, compacted behind and restored, and the replicas agree', async () => {
    const made: SnapshotCounters[] = [];
    let installed = 0;
    let taken = 0;
    for (let seed = 1; seed <= 40; seed++) {
      const report = await runScenario({
        seed,
        stateMachine: snapshotting(false, made),
        knobs: { snapshotThreshold: 5, trailingEntries: 0 },
      });
      installed += report.snapshotsInstalled;
      taken += report.snapshotsTaken;
    }
    expect(taken).toBeGreaterThan(100);
    expect(installed).toBeGreaterThan(0);
    expect(made.reduce((n, sm) => n + sm.restores, 0)).toBeGreaterThan(0);
  }, 120_000);

  it('a restore that loses state is caught as replica agreement', async () => {
    let caught: ScenarioFailure | undefined;
    for (let seed = 1; seed <= 40 && caught === undefined; seed++) {
      await runScenario({
        seed,
        stateMachine: snapshotting(true, []),
        knobs: { snapshotThreshold: 5, trailingEntries: 0 },
      }).catch((e: unknown) => {
        caught = e as ScenarioFailure;
      });
    }
    expect(caught).toBeInstanceOf(ScenarioFailure);
    expect(['replica agreement', 'result integrity']).toContain(caught?.property);
  }, 120_000);
});
