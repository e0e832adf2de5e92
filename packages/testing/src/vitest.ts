/**
 * `@raft/testing/vitest`: registers the conformance suites of `@raft/testing/conformance` with
 * vitest (an optional peer dependency), one `it` per case inside one `describe` per suite, so an
 * adapter's `test/conformance.test.ts` is one call per interface.
 *
 * @example
 * ```ts
 * import { MemoryLogStore } from '@raft/core';
 * import { describeLogStoreConformance } from '@raft/testing/vitest';
 *
 * describeLogStoreConformance({
 *   name: 'MemoryLogStore',
 *   create: () => {
 *     const store = new MemoryLogStore();
 *     return { store, reopen: () => store, cleanup: () => {} };
 *   },
 * });
 * ```
 */
import { describe, it } from 'vitest';
import type {
  ConformanceCase,
  ConformanceOptions,
  CrashConsistencyOptions,
  LogStoreHarness,
  NamedHarness,
  SnapshotStoreHarness,
  StableStoreHarness,
  TransportHarness,
} from './conformance/index.js';
import {
  checkCrashConsistency,
  logStoreConformanceCases,
  snapshotStoreConformanceCases,
  stableStoreConformanceCases,
  transportConformanceCases,
} from './conformance/index.js';
import { planConformance } from './conformance/run-conformance.js';

/** Options of the `describe…Conformance` registrations. */
export interface DescribeConformanceOptions extends ConformanceOptions {
  /**
   * vitest's timeout for each case, in milliseconds. Default 60000: well above the harness's
   * own bound on each wait, so a stuck call fails with the case's message, not vitest's.
   */
  readonly testTimeoutMs?: number;
}

const DEFAULT_TEST_TIMEOUT_MS = 60_000;

/**
 * Registers `cases` against `harness` as `describe(title)` with one `it` per case (`it.skip`
 * for the names in `options.skip`). A case that does not apply to the harness (it needs a
 * feature the harness does not declare, see `ConformanceCase.appliesTo`) is not registered at
 * all: it is neither a skipped nor a passing test. The building block of the suites below; use
 * it for cases of your own written as {@link ConformanceCase}s.
 */
export function describeConformance<H extends NamedHarness>(
  title: string,
  cases: readonly ConformanceCase<H>[],
  harness: H,
  options: DescribeConformanceOptions = {},
): void {
  const planned = planConformance(cases, harness, options);
  const timeout = options.testTimeoutMs ?? DEFAULT_TEST_TIMEOUT_MS;
  describe(title, () => {
    for (const { testCase, skip } of planned.cases) {
      (skip ? it.skip : it)(testCase.name, () => testCase.run(harness), timeout);
    }
  });
}

/** Registers every log store conformance case against `harness`. */
export function describeLogStoreConformance(
  harness: LogStoreHarness,
  options?: DescribeConformanceOptions,
): void {
  describeConformance(
    `LogStore conformance: ${harness.name}`,
    logStoreConformanceCases,
    harness,
    options,
  );
}

/** Registers every stable store conformance case against `harness`. */
export function describeStableStoreConformance(
  harness: StableStoreHarness,
  options?: DescribeConformanceOptions,
): void {
  describeConformance(
    `StableStore conformance: ${harness.name}`,
    stableStoreConformanceCases,
    harness,
    options,
  );
}

/** Registers every snapshot store conformance case against `harness`. */
export function describeSnapshotStoreConformance(
  harness: SnapshotStoreHarness,
  options?: DescribeConformanceOptions,
): void {
  describeConformance(
    `SnapshotStore conformance: ${harness.name}`,
    snapshotStoreConformanceCases,
    harness,
    options,
  );
}

/** Registers every transport conformance case against `harness`. */
export function describeTransportConformance(
  harness: TransportHarness,
  options?: DescribeConformanceOptions,
): void {
  describeConformance(
    `Transport conformance: ${harness.name}`,
    transportConformanceCases,
    harness,
    options,
  );
}

/**
 * Registers one test that runs {@link checkCrashConsistency} with `options`: child processes
 * killed at random moments, the reopened storage checked each time. The seed is in the test's
 * name and in every failure, so `options.seed` replays it. vitest's timeout is
 * `options.testTimeoutMs` (default: the iterations times 30 s).
 *
 * @example
 * ```ts
 * describeCrashConsistency({
 *   name: 'file stores',
 *   module: fileURLToPath(new URL('../src/index.ts', import.meta.url)),
 *   exportName: 'openFileStores',
 *   execArgv: ['--conditions=@raft/source', '--import', 'tsx'],
 *   storage: () => {
 *     const dir = mkdtempSync(join(tmpdir(), 'crash-'));
 *     return { config: { dir }, cleanup: () => rmSync(dir, { recursive: true }) };
 *   },
 * });
 * ```
 */
export function describeCrashConsistency(
  options: CrashConsistencyOptions & { readonly testTimeoutMs?: number },
): void {
  const seed = options.seed ?? Math.floor(Math.random() * 2 ** 31);
  const iterations = options.iterations ?? 20;
  describe(`Crash consistency: ${options.name}`, () => {
    it(
      `${iterations} processes SIGKILLed at random moments lose nothing acknowledged (seed ${seed})`,
      async () => {
        const report = await checkCrashConsistency({ ...options, seed, iterations });
        // The kills must land mid-run, after real work, or the check proves nothing.
        if (report.acknowledged < iterations) {
          throw new Error(
            `${options.name}: only ${report.acknowledged} operations were acknowledged in ` +
              `${iterations} runs (seed ${seed}): raise maxKillDelayMs so the kills land mid-run`,
          );
        }
      },
      options.testTimeoutMs ?? iterations * 30_000,
    );
  });
}
