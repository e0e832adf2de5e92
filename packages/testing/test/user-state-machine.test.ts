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
