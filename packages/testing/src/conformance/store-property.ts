/**
 * The runner behind the property cases of the store suites: fast-check generates sequences of
 * operations, each sequence runs against a fresh storage from the harness and against a
 * reference model, and a failure is shrunk to a short sequence and reported with the seed and
 * path that replay it.
 *
 * Why one fresh storage per sequence (and per shrink attempt): a sequence must start from the
 * empty storage for its counterexample to mean anything on its own, and a harness already knows
 * how to make one. It costs one `create()` and one `cleanup()` per run, which is cheap next to
 * the dozens of durable calls a sequence makes.
 */
import { ConfigError } from '@raft/core';
import * as fc from 'fast-check';
import type { ConformanceCase } from './conformance-case.js';
import {
  ConformanceError,
  ConformancePropertyError,
  type PropertyCounterexample,
} from './conformance-error.js';
import type { StoreHarness, StoreHarnessInstance, StoreSession } from './store-session.js';
import { withFreshSession } from './store-session.js';
import { DEFAULT_TIMEOUT_MS, formatError, positiveOption } from './support.js';

/** Sequences per property case unless the harness sets `propertyRuns`. */
export const DEFAULT_PROPERTY_RUNS = 30;

/** The longest sequence of operations a property case generates. */
export const MAX_PROPERTY_STEPS = 40;

/**
 * Wall time spent shrinking after the first failure. Past it the counterexample is the
 * smallest found so far: on a slow store a full shrink can take minutes, and the seed and path
 * printed replay whatever was found exactly.
 */
const SHRINK_BUDGET_MS = 10_000;

/** The property settings of a harness, validated. */
export interface PropertySettings {
  readonly runs: number;
  readonly seed: number | undefined;
  readonly path: string | undefined;
}

/** Reads and checks `propertyRuns`, `propertySeed` and `propertyPath`; throws ConfigError. */
export function propertySettings(harness: {
  readonly propertyRuns?: number;
  readonly propertySeed?: number;
  readonly propertyPath?: string;
}): PropertySettings {
  const { propertyRuns: runs, propertySeed: seed, propertyPath: path } = harness;
  if (runs !== undefined && !(Number.isSafeInteger(runs) && runs >= 1)) {
    throw new ConfigError('propertyRuns', `must be a positive integer, got ${String(runs)}`);
  }
  if (seed !== undefined && !Number.isSafeInteger(seed)) {
    throw new ConfigError(
      'propertySeed',
      `must be an integer (a seed a failure printed), got ${String(seed)}`,
    );
  }
  if (path !== undefined) {
    if (typeof path !== 'string' || !/^\d+(:\d+)*$/.test(path)) {
      throw new ConfigError(
        'propertyPath',
        `must be a path a failure printed, such as "3:1:0", got ${JSON.stringify(path)}`,
      );
    }
    if (seed === undefined) {
      throw new ConfigError('propertyPath', 'needs propertySeed: a path is relative to a seed');
    }
  }
  return { runs: runs ?? DEFAULT_PROPERTY_RUNS, seed, path };
}

/**
 * The steps of one run, in order, each a call with its arguments resolved against the model.
 * The body records a step before making its calls, so the last step of a failed run is the
 * one that failed.
 */
export class PropertySteps {
  private readonly list: string[] = [];

  /** Records the step about to run. */
  begin(description: string): void {
    this.list.push(description);
  }

  /** Every step recorded so far, the current one last. */
  get all(): readonly string[] {
    return this.list;
  }
}

/** What a failed run threw, with the steps it had taken. */
class RunFailure extends Error {
  constructor(
    readonly error: unknown,
    readonly steps: readonly string[],
  ) {
    super(error instanceof Error ? error.message : formatError(error));
    this.name = 'RunFailure';
  }
}

/**
 * A case that checks `body` on random sequences from `operations`: each sequence runs on a
 * session over a fresh storage (closed and cleaned up afterwards, pass or fail). `body` throws
 * (a ConformanceError, through the session's checks) when the store and its model disagree.
 *
 * On failure the case rejects with a {@link ConformancePropertyError} whose message starts with
 * the contract break and goes on with the steps, the shrunk sequence, and the seed and path.
 */
export function propertyCase<S, T extends StoreSession<S & { close(): Promise<void> }>, Op>(
  name: string,
  session: (instance: StoreHarnessInstance<S>, timeoutMs: number) => T,
  operations: fc.Arbitrary<readonly Op[]>,
  body: (session: T, operations: readonly Op[], steps: PropertySteps) => Promise<void>,
): ConformanceCase<StoreHarness<S>> {
  return {
    name,
    run: async (harness) => {
      const timeoutMs = positiveOption(harness.timeoutMs, 'timeoutMs', DEFAULT_TIMEOUT_MS);
      const settings = propertySettings(harness);
      let firstFailureAt: number | undefined;
      const property = fc.asyncProperty(operations, async (ops) => {
        // Every run after the first failure is a shrink attempt: once the budget is spent,
        // let the remaining attempts pass untried so fast-check settles on the smallest
        // failure it has seen.
        if (firstFailureAt !== undefined && performance.now() - firstFailureAt > SHRINK_BUDGET_MS) {
          return;
        }
        const steps = new PropertySteps();
        try {
          await withFreshSession(harness, timeoutMs, session, (s) => body(s, ops, steps));
        } catch (error) {
          firstFailureAt ??= performance.now();
          throw new RunFailure(error, steps.all.slice());
        }
      });
      const details = await fc.check(property, {
        numRuns: settings.runs,
        ...(settings.seed === undefined ? {} : { seed: settings.seed }),
        ...(settings.path === undefined ? {} : { path: settings.path }),
      });
      if (!details.failed) return;
      const counterexample = details.counterexample;
      const path = details.counterexamplePath;
      if (counterexample === null || path === null) {
        throw new ConformanceError(
          `the property check failed without a counterexample (seed ${details.seed}, ${details.numRuns} runs${details.interrupted ? ', interrupted' : ''})`,
          { cause: details.errorInstance },
        );
      }
      throw propertyError(details.errorInstance, {
        seed: details.seed,
        path,
        runs: details.numRuns,
        shrinks: details.numShrinks,
        operations: fc.stringify(counterexample[0]),
        steps: details.errorInstance instanceof RunFailure ? details.errorInstance.steps : [],
      });
    },
  };
}

function propertyError(
  thrown: unknown,
  counterexample: PropertyCounterexample,
): ConformancePropertyError {
  const error = thrown instanceof RunFailure ? thrown.error : thrown;
  // A broken contract reads as the example cases' messages do; anything else (a harness that
  // crashed, a TypeError) keeps its class name so it is not mistaken for one.
  const headline = error instanceof ConformanceError ? error.message : formatError(error);
  const { seed, path, runs, shrinks, operations, steps } = counterexample;
  const lines = [headline];
  if (steps.length > 0) {
    lines.push(`  steps of the shrunk sequence (the last one failed):`);
    for (const [i, step] of steps.entries()) lines.push(`    ${i + 1}. ${step}`);
  }
  lines.push(
    `  counterexample (found on run ${runs}, shrunk ${shrinks} times): ${operations}`,
    `  replay: seed ${seed}, path "${path}": set { propertySeed: ${seed}, propertyPath: "${path}" } on the harness and run this case alone`,
  );
  return new ConformancePropertyError(lines.join('\n'), counterexample, { cause: error });
}

/**
 * `size` bytes from a seed (a xorshift stream): a sequence carries a seed and a size per
 * payload, not the bytes, so generating kilobytes costs nothing and a counterexample prints
 * short, and shrinking a size keeps the bytes it keeps.
 */
export function seededBytes(seed: number, size: number): Uint8Array {
  const out = new Uint8Array(size);
  let x = (seed ^ 0x9e3779b9) >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

/**
 * Payload sizes: empty, small, and up to 4 KiB, weighted so most sequences carry each kind. A
 * size shrinks towards 0 (cross-shrinking, here and in the other weighted choices, lets a value
 * drawn from a later branch shrink into the first, simplest one).
 */
export const payloadSize: fc.Arbitrary<number> = fc.oneof(
  { withCrossShrink: true },
  { weight: 2, arbitrary: fc.constant(0) },
  { weight: 5, arbitrary: fc.integer({ min: 1, max: 64 }) },
  { weight: 2, arbitrary: fc.integer({ min: 65, max: 4096 }) },
);

/**
 * A payload: its bytes from `seed`, of `size` bytes, as a view into a larger buffer when
 * `view` (as a decoder hands them out), so a store that writes the whole backing buffer shows.
 */
export interface PayloadSpec {
  readonly size: number;
  readonly seed: number;
  readonly view: boolean;
}

/** Arbitrary {@link PayloadSpec}s. */
export const payloadSpec: fc.Arbitrary<PayloadSpec> = fc.record({
  size: payloadSize,
  seed: fc.nat(),
  view: fc.boolean(),
});

/** Bytes of a payload: a fresh array, or a view at an offset into a larger one. */
export function payloadBytes(spec: PayloadSpec): Uint8Array {
  if (!spec.view) return seededBytes(spec.seed, spec.size);
  const backing = seededBytes(spec.seed ^ 0x5bd1e995, spec.size + 24);
  backing.set(seededBytes(spec.seed, spec.size), 11);
  return backing.subarray(11, 11 + spec.size);
}

/** Node ids as the cases generate them: mostly short ASCII, some unicode (graphemes). */
export const nodeId: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom('n1', 'n2', 'n3', 'node-10') },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 12 }) },
);

/** Terms and indexes: mostly small, sometimes past 2^32 up to Number.MAX_SAFE_INTEGER. */
export const bigOrSmall: fc.Arbitrary<number> = fc.oneof(
  { withCrossShrink: true },
  { weight: 4, arbitrary: fc.integer({ min: 0, max: 20 }) },
  { weight: 1, arbitrary: fc.maxSafeNat() },
);
