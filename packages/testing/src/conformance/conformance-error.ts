/**
 * The errors a conformance case fails with when the implementation under test breaks its
 * contract. A crash of the harness itself (its `create()` throwing a TypeError, say) is not
 * one of them: it propagates as is, so the two are told apart by class.
 */

/**
 * A broken contract: the message says which call was made, what the contract expected and what
 * happened (`read(1, 5): [2].term: expected 2, got 1`).
 *
 * Test with `err instanceof ConformanceError` or `err.name === 'ConformanceError'` (the second
 * also holds for its subclass, whose `name` stays the same so reports group them).
 */
export class ConformanceError extends Error {
  constructor(message: string, options?: { readonly cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ConformanceError';
  }
}

/** What a failed property case found, with what it takes to replay it exactly. */
export interface PropertyCounterexample {
  /** The fast-check seed of the failing check. */
  readonly seed: number;
  /**
   * The fast-check path to the shrunk counterexample (`"12:3:0"`): with `seed`, it replays
   * that one sequence of operations directly, without the runs and shrinks before it.
   */
  readonly path: string;
  /** Runs until the first failure, the failing one included. */
  readonly runs: number;
  /** How many times the failing sequence was shrunk. */
  readonly shrinks: number;
  /** The shrunk sequence of operations as generated, in fast-check's notation. */
  readonly operations: string;
  /**
   * The calls the shrunk sequence made, one per step with its arguments resolved against the
   * model (`append([4..6] from 4, terms 3,3,4)`), up to and including the failing step.
   */
  readonly steps: readonly string[];
}

/**
 * A property case found a sequence of operations after which the store disagrees with the
 * reference model. The message holds everything needed to understand and replay it: the
 * contract break (first line), the seed and path, the shrunk sequence, and the calls it made.
 * `cause` is the error of the shrunk sequence's failing step.
 */
export class ConformancePropertyError extends ConformanceError {
  readonly counterexample: PropertyCounterexample;

  constructor(
    message: string,
    counterexample: PropertyCounterexample,
    options?: { readonly cause?: unknown },
  ) {
    super(message, options);
    this.counterexample = counterexample;
  }
}
