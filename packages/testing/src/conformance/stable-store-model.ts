/**
 * The generated operations of the stable store property case. The model is one value, the
 * last state saved (null before the first save), so it lives in the case itself.
 */
import type { HardState } from '@raft/core';
import * as fc from 'fast-check';
import { bigOrSmall, MAX_PROPERTY_STEPS, nodeId } from './store-property.js';

/** A generated stable store operation. */
export type StableOperation =
  | { readonly op: 'save'; readonly state: HardState }
  | { readonly op: 'load' }
  /** close(), the harness's reopen(), load(). */
  | { readonly op: 'reopen' };

/** Any state, not only one Raft would save next: the store must keep whatever it is given. */
const hardState: fc.Arbitrary<HardState> = fc.record({
  term: bigOrSmall,
  votedFor: fc.oneof({ weight: 1, arbitrary: fc.constant(null) }, { weight: 2, arbitrary: nodeId }),
  commit: bigOrSmall,
});

const operation: fc.Arbitrary<StableOperation> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant('save' as const), state: hardState }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('load' as const) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('reopen' as const) }) },
);

/** Sequences of up to {@link MAX_PROPERTY_STEPS} stable store operations. */
export const stableOperations: fc.Arbitrary<readonly StableOperation[]> = fc.array(operation, {
  // Not 1: fast-check drops a trailing operation only by shrinking the rest of the list to
  // empty, which a minimum length of 1 forbids.
  minLength: 0,
  maxLength: MAX_PROPERTY_STEPS,
  size: 'max',
});
