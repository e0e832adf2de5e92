/**
 * One named check of an interface contract, independent of any test framework.
 *
 * `run` resolves when the implementation under test honours the contract and rejects with an
 * `Error` whose message says what was expected and what happened when it does not. A case
 * creates what it needs through the harness, bounds every wait, and releases every resource it
 * acquired before it settles, pass or fail.
 *
 * Case names are stable: they are what a runner prints and what `skip` lists refer to.
 *
 * A case that needs something only some harnesses provide (a transport that can be restarted at
 * the same address, a raw socket to its listener) says so with `appliesTo`. Runners leave a case
 * out when it does not apply: it is neither run nor reported as skipped or passed, since a
 * feature the harness lacks proves nothing either way. The report lists such cases as not
 * applicable.
 *
 * @typeParam H - The harness the case runs against (for example a `LogStoreHarness`).
 */
export interface ConformanceCase<H> {
  /** Unique within its list; a sentence describing the behaviour checked. */
  readonly name: string;
  run(harness: H): Promise<void>;
  /**
   * Whether the case applies to `harness` (it declares every feature the case needs). Absent:
   * the case applies to every harness. Must not throw, and must give the same answer for the
   * same harness.
   */
  appliesTo?(harness: H): boolean;
}

/** What every harness has: a name for reports and test titles. */
export interface NamedHarness {
  /** Shown in reports and test titles, for example `'file log store'`. */
  readonly name: string;
}
