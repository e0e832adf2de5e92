import { RaftError } from '@raft/core';
import type { ConformanceCase, NamedHarness } from './conformance-case.js';
import { formatError } from './support.js';

/** Options shared by {@link runConformance} and the vitest registrations. */
export interface ConformanceOptions {
  /**
   * Names of cases not to run (reported as skipped), for a contract point an implementation
   * knowingly does not meet yet. Every name must match a case: a typo or a renamed case is an
   * error, never a case that silently runs or silently disappears.
   */
  readonly skip?: readonly string[];
}

/** How one case ended. */
export type ConformanceStatus = 'passed' | 'failed' | 'skipped';

/** The outcome of one case in a {@link ConformanceReport}. */
export interface ConformanceResult {
  readonly name: string;
  readonly status: ConformanceStatus;
  /** What the case threw (`failed` only): an Error stating what was expected and what happened. */
  readonly error?: unknown;
  /** Wall time the case took (0 when skipped). */
  readonly durationMs: number;
}

/** Everything {@link runConformance} observed, in case order. */
export interface ConformanceReport {
  /** The harness's `name`. */
  readonly harness: string;
  /** True when no case failed. */
  readonly ok: boolean;
  readonly passed: number;
  readonly failed: number;
  readonly skipped: number;
  readonly results: readonly ConformanceResult[];
}

/** A case with whether the options skip it. Shared with the vitest registration. */
export interface PlannedCase<H> {
  readonly testCase: ConformanceCase<H>;
  readonly skip: boolean;
}

/**
 * Checks the case list and the options (unique names, every skipped name known) and pairs each
 * case with whether to skip it. Throws a RaftError with code INVALID_ARGUMENT otherwise.
 */
export function planConformance<H>(
  cases: readonly ConformanceCase<H>[],
  options: ConformanceOptions = {},
): PlannedCase<H>[] {
  const names = new Set<string>();
  for (const c of cases) {
    if (names.has(c.name)) {
      throw new RaftError('INVALID_ARGUMENT', `two conformance cases are named "${c.name}"`);
    }
    names.add(c.name);
  }
  const skip = new Set(options.skip ?? []);
  const unknown = [...skip].filter((name) => !names.has(name));
  if (unknown.length > 0) {
    throw new RaftError(
      'INVALID_ARGUMENT',
      `skip names no case: ${unknown.map((n) => `"${n}"`).join(', ')}`,
    );
  }
  return cases.map((testCase) => ({ testCase, skip: skip.has(testCase.name) }));
}

/**
 * Runs `cases` one after another against `harness`, from any test framework or a plain script,
 * and reports every outcome. It never throws for a failing case (check `report.ok`); it throws
 * a RaftError with code INVALID_ARGUMENT for duplicate case names or an unknown `skip` name.
 *
 * @example
 * ```ts
 * const report = await runConformance(logStoreConformanceCases, harness);
 * if (!report.ok) throw new Error(formatConformanceReport(report));
 * ```
 */
export async function runConformance<H extends NamedHarness>(
  cases: readonly ConformanceCase<H>[],
  harness: H,
  options?: ConformanceOptions,
): Promise<ConformanceReport> {
  const results: ConformanceResult[] = [];
  for (const { testCase, skip } of planConformance(cases, options)) {
    if (skip) {
      results.push({ name: testCase.name, status: 'skipped', durationMs: 0 });
      continue;
    }
    const started = performance.now();
    try {
      await testCase.run(harness);
      results.push({
        name: testCase.name,
        status: 'passed',
        durationMs: performance.now() - started,
      });
    } catch (error) {
      results.push({
        name: testCase.name,
        status: 'failed',
        error,
        durationMs: performance.now() - started,
      });
    }
  }
  const count = (status: ConformanceStatus): number =>
    results.filter((r) => r.status === status).length;
  return {
    harness: harness.name,
    ok: count('failed') === 0,
    passed: count('passed'),
    failed: count('failed'),
    skipped: count('skipped'),
    results,
  };
}

/** A plain-text summary of a report: one line per case, failures with their message. */
export function formatConformanceReport(report: ConformanceReport): string {
  const lines = [`${report.harness}:`];
  for (const r of report.results) {
    const mark = r.status === 'passed' ? 'ok  ' : r.status === 'failed' ? 'FAIL' : 'skip';
    lines.push(`  ${mark} ${r.name}`);
    if (r.status === 'failed') lines.push(`       ${formatError(r.error)}`);
  }
  lines.push(`${report.passed} passed, ${report.failed} failed, ${report.skipped} skipped`);
  return lines.join('\n');
}
