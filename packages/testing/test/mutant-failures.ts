/**
 * Shared by the mutant tests: which cases of a list fail against a harness, with their messages.
 */
import { type ConformanceCase, runConformance } from '@raft/testing/conformance';

/** Runs `cases` against `harness` and maps each failed case's name to its error message. */
export async function failures<H extends { readonly name: string }>(
  cases: readonly ConformanceCase<H>[],
  harness: H,
): Promise<Map<string, string>> {
  const report = await runConformance(cases, harness);
  const failed = new Map<string, string>();
  for (const r of report.results) {
    if (r.status === 'failed') failed.set(r.name, (r.error as Error).message);
  }
  return failed;
}
