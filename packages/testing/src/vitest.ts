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
  LogStoreHarness,
  NamedHarness,
  SnapshotStoreHarness,
  StableStoreHarness,
  TransportHarness,
} from './conformance/index.js';
import {
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
 * for the names in `options.skip`). The building block of the suites below; use it for cases
 * of your own written as {@link ConformanceCase}s.
 */
export function describeConformance<H extends NamedHarness>(
  title: string,
  cases: readonly ConformanceCase<H>[],
  harness: H,
  options: DescribeConformanceOptions = {},
): void {
  const planned = planConformance(cases, options);
  const timeout = options.testTimeoutMs ?? DEFAULT_TEST_TIMEOUT_MS;
  describe(title, () => {
    for (const { testCase, skip } of planned) {
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
