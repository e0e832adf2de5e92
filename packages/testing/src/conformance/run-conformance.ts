import { RaftError } from '@raft/core';
import type { ConformanceCase, NamedHarness } from './conformance-case.js';
import { formatError } from './support.js';

/** Options shared by {@link runConformance} and the vitest registrations. */
export interface ConformanceOptions {
  /**
   * Names of cases not to run (reported as skipped), for a contract point an implementation
   * knowingly does not meet yet. Every name must match a case: a typo or a renamed case is an
   * error, never a case that silently runs or silently disappears. Naming a case that does not
   * apply to the harness (it needs a feature the harness does not declare) is an error too: that
   * case is left out anyway, so the entry would do nothing, and it usually means the feature was
   * meant to be declared.
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
  /** The cases run or skipped, in case order (not the ones in `notApplicable`). */
  readonly results: readonly ConformanceResult[];
  /**
   * Names of the cases left out because they do not apply to the harness (it lacks a feature
   * they need), in case order. They were not run and are not counted as passed or skipped.
   */
  readonly notApplicable: readonly string[];
}

/** A case with whether the options skip it. Shared with the vitest registration. */
export interface PlannedCase<H> {
  readonly testCase: ConformanceCase<H>;
  readonly skip: boolean;
}

/** What {@link planConformance} decided: the cases to register, and the ones left out. */
export interface ConformancePlan<H> {
  /** The cases that apply to the harness, in case order, each with whether to skip it. */
  readonly cases: readonly PlannedCase<H>[];
  /** Names of the cases that do not apply to the harness, in case order. */
  readonly notApplicable: readonly string[];
}

/**
 * Checks the case list and the options (unique names, every skipped name known and applicable
 * to `harness`), leaves out the cases that do not apply to `harness`, and pairs each other case
 * with whether to skip it. Throws a RaftError with code INVALID_ARGUMENT otherwise.
 */
export function planConformance<H>(
  cases: readonly ConformanceCase<H>[],
  harness: H,
  options: ConformanceOptions = {},
): ConformancePlan<H> {
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
  const planned: PlannedCase<H>[] = [];
  const notApplicable: string[] = [];
  for (const testCase of cases) {
    if (testCase.appliesTo === undefined || testCase.appliesTo(harness)) {
      planned.push({ testCase, skip: skip.has(testCase.name) });
    } else {
      notApplicable.push(testCase.name);
    }
  }
  const skippedButLeftOut = notApplicable.filter((name) => skip.has(name));
  if (skippedButLeftOut.length > 0) {
    throw new RaftError(
      'INVALID_ARGUMENT',
      skippedButLeftOut.length === 1
        ? `skip names a case that does not apply to this harness (it needs a feature the harness does not declare, so it is left out anyway): "${skippedButLeftOut[0]}"; remove it from skip, or declare the feature`
        : `skip names cases that do not apply to this harness (they need features the harness does not declare, so they are left out anyway): ${skippedButLeftOut.map((n) => `"${n}"`).join(', ')}; remove them from skip, or declare the features`,
    );
  }
  return { cases: planned, notApplicable };
}

/**
 * Runs `cases` one after another against `harness`, from any test framework or a plain script,
 * and reports every outcome. Cases that do not apply to the harness (see
 * {@link ConformanceCase.appliesTo}) are left out and listed in `report.notApplicable`. It
 * never throws for a failing case (check `report.ok`); it throws a RaftError with code
 * INVALID_ARGUMENT for duplicate case names or a `skip` name that is unknown or names a case
 * that does not apply.
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
  const plan = planConformance(cases, harness, options);
  for (const { testCase, skip } of plan.cases) {
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
    notApplicable: plan.notApplicable,
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
  const notApplicable = report.notApplicable.length;
  lines.push(
    `${report.passed} passed, ${report.failed} failed, ${report.skipped} skipped${notApplicable === 0 ? '' : `, ${notApplicable} not applicable (they need a feature the harness does not declare): ${report.notApplicable.map((n) => `"${n}"`).join(', ')}`}`,
  );
  return lines.join('\n');
}
