/**
 * The reference model and the generated operations of the log store property case: the log as
 * the `LogStore` contract defines it, an array of entries starting at `firstIndex`.
 *
 * Operations are generated relative to the model (a distance back from `lastIndex + 1`, an
 * offset from `firstIndex`) and resolved to concrete calls when they run. So every operation
 * is valid in every state, and removing operations while shrinking never turns a sequence into
 * one the contract does not cover (an append that would leave a gap, say): shrinking only ever
 * simplifies.
 */
import type { EntryKind, LogEntry, LogIndex } from '@raft/core';
import * as fc from 'fast-check';
import {
  MAX_PROPERTY_STEPS,
  type PayloadSpec,
  payloadBytes,
  payloadSize,
} from './store-property.js';

/** One generated entry: its term is the previous one's plus `termStep`. */
export interface EntrySpec extends PayloadSpec {
  readonly termStep: number;
  readonly kind: EntryKind;
}

/** A generated log store operation, resolved against the model when it runs. */
export type LogOperation =
  /** Entries from `lastIndex + 1 - back` (at least `firstIndex`): `back > 0` replaces a suffix. */
  | { readonly op: 'append'; readonly back: number; readonly entries: readonly EntrySpec[] }
  /** `compact(firstIndex - 1 + ahead)`: a no-op at `ahead <= 0`, past `lastIndex` when large. */
  | { readonly op: 'compact'; readonly ahead: number }
  /** `truncate(lastIndex + 1 - back)`: a no-op at `back <= 0`, everything when large. */
  | { readonly op: 'truncate'; readonly back: number }
  /** A read of a valid range: from `firstIndex + skip`, `length` entries (both clamped). */
  | { readonly op: 'read'; readonly skip: number; readonly length: number }
  /** A read that starts before `firstIndex`, ends past `lastIndex + 1`, or lies beyond it. */
  | {
      readonly op: 'readOutside';
      readonly side: 'before' | 'after' | 'beyond';
      readonly by: number;
      readonly length: number;
    }
  /** close(), the harness's reopen(), open(). */
  | { readonly op: 'reopen' };

const termStep = fc.oneof(
  { withCrossShrink: true },
  { weight: 6, arbitrary: fc.constant(0) },
  { weight: 3, arbitrary: fc.integer({ min: 1, max: 3 }) },
  // Terms past 2^31 and 2^32 catch a store that keeps them in 32 bits.
  { weight: 1, arbitrary: fc.integer({ min: 2 ** 31, max: 2 ** 32 + 1 }) },
);

const entrySpec: fc.Arbitrary<EntrySpec> = fc.record({
  termStep,
  kind: fc.constantFrom<EntryKind>('command', 'noop', 'membership'),
  size: payloadSize,
  seed: fc.nat(),
  view: fc.boolean(),
});

/** Weighted towards the edges where stores go wrong: 0 (the end), a few, far. */
function distance(min: number): fc.Arbitrary<number> {
  return fc.oneof(
    { withCrossShrink: true },
    { weight: 2, arbitrary: fc.integer({ min, max: 0 }) },
    { weight: 3, arbitrary: fc.integer({ min: 1, max: 4 }) },
    { weight: 1, arbitrary: fc.integer({ min: 5, max: 40 }) },
  );
}

const operation: fc.Arbitrary<LogOperation> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      op: fc.constant('append' as const),
      back: distance(0),
      entries: fc.array(entrySpec, { minLength: 1, maxLength: 6 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ op: fc.constant('compact' as const), ahead: distance(-3) }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ op: fc.constant('truncate' as const), back: distance(-3) }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('read' as const),
      skip: fc.integer({ min: 0, max: 40 }),
      length: fc.integer({ min: 0, max: 40 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('readOutside' as const),
      side: fc.constantFrom('before' as const, 'after' as const, 'beyond' as const),
      by: fc.integer({ min: 1, max: 3 }),
      length: fc.integer({ min: 0, max: 5 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('reopen' as const) }) },
);

/** Sequences of up to {@link MAX_PROPERTY_STEPS} log store operations. */
export const logOperations: fc.Arbitrary<readonly LogOperation[]> = fc.array(operation, {
  // Not 1: fast-check drops a trailing operation only by shrinking the rest of the list to
  // empty, which a minimum length of 1 forbids.
  minLength: 0,
  maxLength: MAX_PROPERTY_STEPS,
  // fast-check's default size stops near 10 operations; the bugs worth finding take several
  // compactions, replacements and reopens in one sequence.
  size: 'max',
});

/**
 * The log as the contract defines it. Every method mirrors one resolved store call, applied
 * only after the store's call resolved (a resolved call is durable, so a reopen must show it).
 */
export class LogModel {
  /** Index of `entries[0]`, or of the next append when the log is empty. Invariant: >= 1. */
  firstIndex: LogIndex = 1;
  /** Copies of the entries appended, so a store that writes into the caller's buffers shows. */
  readonly entries: LogEntry[] = [];
  /**
   * The highest term appended so far. New entries start from it, so terms never decrease
   * along the log, as in Raft (a suffix is replaced by a leader of a later or equal term).
   */
  private term = 1;

  get lastIndex(): LogIndex {
    return this.firstIndex + this.entries.length - 1;
  }

  /** The entries in `[from, to)`; the range must lie within the bounds. */
  slice(from: LogIndex, to: LogIndex): LogEntry[] {
    return this.entries.slice(from - this.firstIndex, to - this.firstIndex);
  }

  /** The batch an append operation sends: contiguous, from `[firstIndex, lastIndex + 1]`. */
  batch(op: Extract<LogOperation, { op: 'append' }>): LogEntry[] {
    const start = this.lastIndex + 1 - Math.min(op.back, this.entries.length);
    let term = this.term;
    return op.entries.map((spec, i) => {
      term += spec.termStep;
      return { index: start + i, term, kind: spec.kind, data: payloadBytes(spec) };
    });
  }

  append(batch: readonly LogEntry[]): void {
    const head = batch[0];
    if (head === undefined) return;
    this.entries.length = head.index - this.firstIndex;
    for (const e of batch) {
      this.entries.push({ index: e.index, term: e.term, kind: e.kind, data: e.data.slice() });
      this.term = e.term;
    }
  }

  /** The `upTo` of a compact operation (never negative: the runtime never passes one). */
  compactTarget(op: Extract<LogOperation, { op: 'compact' }>): LogIndex {
    return Math.max(0, this.firstIndex - 1 + op.ahead);
  }

  compact(upTo: LogIndex): void {
    if (upTo < this.firstIndex) return;
    this.entries.splice(0, Math.min(upTo - this.firstIndex + 1, this.entries.length));
    this.firstIndex = upTo + 1;
  }

  /** The `from` of a truncate operation (at least 1). */
  truncateTarget(op: Extract<LogOperation, { op: 'truncate' }>): LogIndex {
    return Math.max(1, this.lastIndex + 1 - op.back);
  }

  truncate(from: LogIndex): void {
    if (from > this.lastIndex) return;
    this.entries.length = Math.max(0, from - this.firstIndex);
  }

  /** The `[from, to)` of a read operation, within the bounds. */
  readRange(op: Extract<LogOperation, { op: 'read' }>): [LogIndex, LogIndex] {
    const from = this.firstIndex + Math.min(op.skip, this.entries.length);
    return [from, from + Math.min(op.length, this.lastIndex + 1 - from)];
  }

  /** The `[from, to)` of an out-of-range read operation: never within the bounds. */
  outsideRange(op: Extract<LogOperation, { op: 'readOutside' }>): [LogIndex, LogIndex] {
    const first = this.firstIndex;
    const end = this.lastIndex + 1;
    switch (op.side) {
      case 'before':
        return [Math.max(0, first - op.by), first + Math.min(op.length, this.entries.length)];
      case 'after':
        return [first + Math.min(op.length, this.entries.length), end + op.by];
      case 'beyond':
        return [end + op.by, end + op.by + op.length];
    }
  }

  /** `[firstIndex, lastIndex + 1)`, for messages. */
  describe(): string {
    return `[${this.firstIndex}, ${this.lastIndex + 1})`;
  }
}

/** `append([4..6]: t3 command 12B, t3 noop 0B view, …)`, noting what it replaces. */
export function describeAppend(batch: readonly LogEntry[], model: LogModel): string {
  const head = batch[0];
  const tail = batch[batch.length - 1];
  if (head === undefined || tail === undefined) return 'append([])';
  const parts = batch.map((e) => {
    const view = e.data.byteOffset > 0 || e.data.byteLength < e.data.buffer.byteLength;
    return `t${e.term} ${e.kind} ${e.data.length}B${view ? ' view' : ''}`;
  });
  const replaces =
    head.index <= model.lastIndex
      ? ` replacing [${head.index}..${model.lastIndex}] of ${model.describe()}`
      : ` onto ${model.describe()}`;
  return `append([${head.index}..${tail.index}]: ${parts.join(', ')})${replaces}`;
}
