/**
 * A linearizability checker (Herlihy & Wing 1990): is there a total order of a concurrent
 * history's operations that respects real time (an operation that returned before another was
 * invoked comes first) and that a sequential model accepts, output by output?
 *
 * The search is Wing & Gong's (1993) with Lowe's memoization (2017), as Porcupine implements it
 * (Athalye, github.com/anishathalye/porcupine):
 *
 * - Calls and returns form one event list sorted by time. The operations that may come next
 *   are the calls listed before the first remaining return (an operation whose return is
 *   passed must already be linearized).
 * - Linearizing an operation lifts its call and return out of the (doubly linked) list;
 *   backtracking puts them back (dancing links), so a step costs O(1) besides the model.
 * - A cache of visited (set of linearized operations, model state) pairs cuts every branch
 *   that reaches a configuration seen before: from an equal configuration the same futures
 *   were already tried (and failed). Sets are bitsets with an incremental Zobrist hash; a
 *   cache entry stores only the words past the set's leading all-ones run.
 * - The search is an explicit stack, never recursion: a history may hold 100,000 operations.
 * - A model may split the history into independent partitions (per key for a key-value store);
 *   a history is linearizable iff every partition is (Herlihy & Wing's locality), and each
 *   partition is searched on its own, which keeps the search small.
 *
 * Time and ties: operations whose intervals only touch (one returns at the time the other is
 * invoked) are treated as concurrent: at equal times calls sort before returns. That is the
 * lenient choice: it never reports a violation that a finer clock could explain away.
 *
 * Indeterminate operations (no `return`, or `return: Infinity`: a timeout, an unknown outcome)
 * may take effect at any point after their call, or never. They get no return event and live in
 * a list of their own; the search succeeds as soon as every determinate operation is
 * linearized (Porcupine's "return at infinity", without scanning past them).
 *
 * Beyond Porcupine, a few reductions keep dead ends cheap. Each is sound: it only skips
 * configurations that another explored one covers (the test file checks the whole against a
 * brute-force search of every order):
 *
 * - Candidates are tried determinate first, in the order of their intervals' midpoints (where
 *   an operation that takes effect uniformly within its interval lands on average), then
 *   indeterminate ones in call order. This is an order, not a cut.
 * - A determinate candidate the model calls read-only (a read, a failed CAS) that the current
 *   state allows is linearized at once and its siblings are never tried: moving a read-only
 *   operation to the front of any valid order keeps the order valid.
 * - An indeterminate operation that leaves the state as it is, or that directly follows another
 *   indeterminate one x and gives the state it would give without x, is skipped: some other
 *   branch reaches that state with fewer operations spent. Indeterminate read-only operations
 *   are dropped up front.
 * - A cached configuration covers a new one with the same determinate set and state and a
 *   subset of its indeterminate operations (more left to spend can only help).
 *
 * Cost: a pending indeterminate operation stays a candidate for the rest of its partition, so
 * a partition with k of them pays about k model steps at each dead end. Memory and time are
 * bounded by `maxSteps` per partition: a search that needs more answers `ok: 'unknown'` rather
 * than running for hours (linearizability checking is NP-complete).
 */

/** One completed or pending operation of a concurrent history. */
export interface Operation<Input, Output> {
  /** Who issued it; used in messages only (the checker does not assume clients are sequential). */
  readonly clientId: number | string;
  /** What was asked of the object, e.g. `{ type: 'put', key, value }`. */
  readonly input: Input;
  /** Invoke time: any monotonic clock shared by all clients (e.g. virtual ms). Must be finite. */
  readonly call: number;
  /**
   * Return time; undefined (or Infinity) for an indeterminate operation (timed out / unknown
   * outcome): it may have taken effect at any point after `call`, or never. Invariant: `call <=
   * return`.
   */
  readonly return?: number;
  /**
   * What the object answered. Absent for an indeterminate operation (and ignored if given:
   * the model is stepped with `undefined`).
   */
  readonly output?: Output;
}

/**
 * A sequential specification of the object under test.
 *
 * Contract:
 * - `step` and `key` MUST be pure and deterministic, and MUST NOT mutate a state (the search
 *   keeps earlier states for backtracking).
 * - `key(a) === key(b)` MUST imply that `a` and `b` behave the same for every future input (it
 *   is what the cache compares); distinct behaviours MUST give distinct keys.
 * - `partition`, if given, MUST return partitions whose operations never affect one another's
 *   outputs (e.g. one per key), together holding every operation that matters.
 */
export interface Model<State, Input, Output> {
  /** Split a history into independent sub-histories (e.g. per key); default: one partition. */
  partition?(
    history: readonly Operation<Input, Output>[],
  ): readonly (readonly Operation<Input, Output>[])[];
  /** The state before any operation. */
  init(): State;
  /**
   * Applies input to state; returns the new state if `output` is what the object would return
   * (for an indeterminate op, output is undefined: accept any output), else undefined/null
   * meaning "not allowed". Must not mutate state.
   */
  step(state: State, input: Input, output: Output | undefined): State | undefined | null;
  /** A string key identifying a state, for memoizing visited (linearized-set, state) pairs. */
  key(state: State): string;
  /**
   * True when an operation with this input and output (undefined: indeterminate) leaves the
   * state as it is in every state `step` accepts it in: a read, a CAS that failed. Optional,
   * and only a speed-up:
   * - a determinate read-only operation that the current state allows is linearized at once,
   *   without trying other orders (nothing that must precede it is left, and it changes
   *   nothing for the others);
   * - an indeterminate read-only operation constrains nothing and is dropped before the search.
   *
   * Contract: MUST be false whenever the operation can change some state (a put of the value
   * already there is not read-only: elsewhere it changes the state). Default: false.
   */
  readOnly?(input: Input, output: Output | undefined): boolean;
  /** A state for messages, e.g. `"a"`. Default: {@link Model.key}. */
  describeState?(state: State): string;
  /** A short description for messages, e.g. `get("x") → "a"`. Default: JSON of input/output. */
  describeOperation?(op: Operation<Input, Output>): string;
}

/** Options of {@link checkLinearizability}. */
export interface LinearizabilityOptions {
  /**
   * Search budget per partition, in steps (a step enters a configuration, examines one
   * candidate operation, or backtracks once). A partition that needs more makes the result
   * `ok: 'unknown'`. Default {@link DEFAULT_LINEARIZABILITY_MAX_STEPS}; `Infinity` for no
   * bound.
   */
  readonly maxSteps?: number;
}

/** The default {@link LinearizabilityOptions.maxSteps}: a few seconds of search per partition. */
export const DEFAULT_LINEARIZABILITY_MAX_STEPS = 10_000_000;

/** Why a history is not linearizable: the failing partition and how far the search got. */
export interface LinearizabilityCounterexample<Input, Output> {
  /** Index of the failing partition among the model's partitions. */
  readonly partition: number;
  /**
   * The failing partition's operations (the history's own objects), as the model's `partition`
   * lists them (in history order for `kvModel`).
   */
  readonly operations: readonly Operation<Input, Output>[];
  /** The longest linearizable prefix the search found, in linearization order. */
  readonly linearized: readonly Operation<Input, Output>[];
  /** The state after `linearized`, as `model.describeState` (default `model.key`) gives it. */
  readonly state: string;
  /**
   * The operations that real time allows next after `linearized` (every unlinearized operation
   * invoked no later than the earliest unlinearized return), none of which could come next.
   */
  readonly candidates: readonly Operation<Input, Output>[];
  /** A human-readable account of the above, one operation per line. */
  readonly explanation: string;
}

/** What {@link checkLinearizability} found. `steps` counts search steps over all partitions. */
export type LinearizabilityResult<Input = unknown, Output = unknown> =
  | {
      readonly ok: true;
      readonly partitions: number;
      readonly operations: number;
      readonly steps: number;
    }
  | {
      readonly ok: false;
      readonly partitions: number;
      readonly operations: number;
      readonly steps: number;
      /**
       * The failing partition's operations, the longest linearizable prefix found (in order)
       * and the operations none of which could come next, with a human-readable explanation.
       */
      readonly counterexample: LinearizabilityCounterexample<Input, Output>;
    }
  | {
      /** The search exceeded its budget on some partition and found no violation elsewhere. */
      readonly ok: 'unknown';
      readonly reason: 'budget';
      readonly partitions: number;
      readonly operations: number;
      readonly steps: number;
      /** Indexes of the partitions whose search ran out of steps. */
      readonly unknownPartitions: readonly number[];
      /** The per-partition budget that was exceeded. */
      readonly maxSteps: number;
    };

/**
 * Checks that `history` is linearizable with respect to `model` (see the module comment for the
 * algorithm). Partitions are checked in order; the first one that is not linearizable is
 * reported. Pure: the history is not modified, and the counterexample holds its own objects.
 *
 * Throws a TypeError or RangeError, naming the operation's index, for a malformed history: a
 * `call` that is not a finite number, a `return` that is not a number or is NaN, or a return
 * before its call; and a RangeError for a `maxSteps` that is not a positive integer (or
 * Infinity). Whatever `model` throws propagates.
 *
 * @example
 * ```ts
 * const result = checkLinearizability(kvModel, history);
 * if (result.ok === false) throw new Error(result.counterexample.explanation);
 * ```
 */
export function checkLinearizability<State, Input, Output>(
  model: Model<State, Input, Output>,
  history: readonly Operation<Input, Output>[],
  options: LinearizabilityOptions = {},
): LinearizabilityResult<Input, Output> {
  const maxSteps = options.maxSteps ?? DEFAULT_LINEARIZABILITY_MAX_STEPS;
  if (!(maxSteps === Number.POSITIVE_INFINITY || (Number.isInteger(maxSteps) && maxSteps > 0))) {
    throw new RangeError(`maxSteps must be a positive integer or Infinity, got ${maxSteps}`);
  }
  if (!Array.isArray(history)) throw new TypeError('history must be an array of operations');
  for (let i = 0; i < history.length; i++) {
    validateOperation(history[i] as Operation<Input, Output>, i, -1);
  }
  const partitions = model.partition ? model.partition(history) : [history];
  if (!Array.isArray(partitions)) {
    throw new TypeError('model.partition must return an array of operation arrays');
  }
  const operations = history.length;
  let steps = 0;
  const unknownPartitions: number[] = [];
  for (let p = 0; p < partitions.length; p++) {
    const ops = partitions[p];
    if (!Array.isArray(ops)) {
      throw new TypeError(`model.partition returned a non-array at partition ${p}`);
    }
    // The model may build partitions of its own objects: check them as well (it is cheap).
    for (let i = 0; i < ops.length; i++) {
      validateOperation(ops[i] as Operation<Input, Output>, i, p);
    }
    const outcome = searchPartition(model, ops, maxSteps);
    steps += outcome.steps;
    if (outcome.kind === 'unknown') unknownPartitions.push(p);
    else if (outcome.kind === 'fail') {
      const indexOf = new Map<Operation<Input, Output>, number>();
      for (let i = history.length - 1; i >= 0; i--) {
        indexOf.set(history[i] as Operation<Input, Output>, i);
      }
      const counterexample = explainFailure(model, ops, p, outcome, indexOf);
      return { ok: false, partitions: partitions.length, operations, steps, counterexample };
    }
  }
  if (unknownPartitions.length > 0) {
    return {
      ok: 'unknown',
      reason: 'budget',
      partitions: partitions.length,
      operations,
      steps,
      unknownPartitions,
      maxSteps,
    };
  }
  return { ok: true, partitions: partitions.length, operations, steps };
}

// ------------------------------------------------------------------------- validation

/** True for an operation whose outcome is unknown (no return time, or +Infinity). */
function isIndeterminate(op: Operation<unknown, unknown>): boolean {
  return op.return === undefined || op.return === Number.POSITIVE_INFINITY;
}

function operationLabel(index: number, partition: number): string {
  return partition === -1 ? `operation ${index}` : `operation ${index} of partition ${partition}`;
}

/** Throws for a malformed operation: `index` in the history, or in `partition` (-1: none). */
function validateOperation(
  op: Operation<unknown, unknown>,
  index: number,
  partition: number,
): void {
  // The label is built only on error: this runs for every operation.
  if (typeof op !== 'object' || op === null) {
    throw new TypeError(`${operationLabel(index, partition)} is not an operation object`);
  }
  if (typeof op.call !== 'number' || !Number.isFinite(op.call)) {
    throw new RangeError(
      `${operationLabel(index, partition)}: call must be a finite number, got ${String(op.call)}`,
    );
  }
  const ret = op.return;
  if (ret === undefined) return;
  if (typeof ret !== 'number' || Number.isNaN(ret)) {
    throw new TypeError(
      `${operationLabel(index, partition)}: return must be a number or undefined, got ${String(ret)}`,
    );
  }
  if (ret < op.call) {
    throw new RangeError(
      `${operationLabel(index, partition)}: return ${ret} is before call ${op.call}`,
    );
  }
}

// ------------------------------------------------------------------------- the search

type PartitionOutcome =
  | { readonly kind: 'ok'; readonly steps: number }
  | { readonly kind: 'unknown'; readonly steps: number }
  | {
      readonly kind: 'fail';
      readonly steps: number;
      /** The longest linearized prefix, as indexes into the partition's operations. */
      readonly best: readonly number[];
      /** The operations the search considered (indeterminate read-only ones are dropped). */
      readonly searched: ReadonlySet<number>;
    };

const FULL_WORD = 0xffffffff;

/** What the search loop does next: enter a level, scan its candidates, or backtrack. */
type Mode = 0 | 1 | 2 | 3;
const ARRIVE: Mode = 0;
const DETERMINATE: Mode = 1;
const INDETERMINATE: Mode = 2;
const BACKTRACK: Mode = 3;

/** splitmix32: spreads an operation's id into a 32-bit Zobrist code. */
function mix32(x: number): number {
  let z = (x + 0x9e3779b9) | 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return z ^ (z >>> 16);
}

/**
 * The set of linearized operations, as bits: determinate operations (ids in call order) in
 * words `[0, detWords)`, indeterminate ones after them. Kept with a Zobrist hash of the
 * determinate part (XOR of one random code per member, updated in O(1); the cache looks
 * configurations up by determinate set and state) and the bounds of each region's interesting
 * words, so a snapshot for the cache copies only those: in the determinate region the words
 * after the leading all-ones run (operations are linearized roughly in call order, so the set
 * is nearly a prefix) up to the last nonzero one; in the indeterminate region, first to last
 * nonzero word. These bounds are canonical (equal sets have equal bounds), so snapshots compare
 * word by word.
 */
class LinearizedSet {
  readonly words: Uint32Array;
  /** Zobrist hash of the determinate members. */
  hash = 0;
  /** Determinate region: words below `lo1` are all ones, words from `hi1` on are zero. */
  lo1 = 0;
  hi1 = 0;
  /** Indeterminate region: first nonzero word and one past the last (equal when empty). */
  lo2: number;
  hi2: number;
  private readonly detWords: number;
  private readonly codes: Int32Array;

  constructor(detCount: number, indetCount: number) {
    this.detWords = Math.ceil(detCount / 32);
    this.words = new Uint32Array(this.detWords + Math.ceil(indetCount / 32));
    this.lo2 = this.detWords;
    this.hi2 = this.detWords;
    this.codes = new Int32Array(detCount);
    for (let i = 0; i < this.codes.length; i++) this.codes[i] = mix32(i);
  }

  /** Adds bit `bit` (determinate id, or `detWords * 32 + indeterminate id`). */
  add(bit: number): void {
    const w = bit >>> 5;
    const words = this.words;
    words[w] = (words[w] as number) | (1 << (bit & 31));
    if (w < this.detWords) {
      this.hash ^= this.codes[bit] as number;
      if (w >= this.hi1) this.hi1 = w + 1;
      if (w === this.lo1) {
        while (this.lo1 < this.detWords && words[this.lo1] === FULL_WORD) this.lo1++;
        if (this.hi1 < this.lo1) this.hi1 = this.lo1;
      }
    } else if (this.lo2 === this.hi2) {
      this.lo2 = w;
      this.hi2 = w + 1;
    } else {
      if (w < this.lo2) this.lo2 = w;
      if (w >= this.hi2) this.hi2 = w + 1;
    }
  }

  /** Removes a bit added by {@link add}. */
  remove(bit: number): void {
    const w = bit >>> 5;
    const words = this.words;
    const after = (words[w] as number) & ~(1 << (bit & 31));
    words[w] = after;
    if (w < this.detWords) {
      this.hash ^= this.codes[bit] as number;
      if (w < this.lo1) this.lo1 = w;
      if (w === this.hi1 - 1) while (this.hi1 > this.lo1 && words[this.hi1 - 1] === 0) this.hi1--;
    } else if (after === 0) {
      if (w === this.lo2) while (this.lo2 < this.hi2 && words[this.lo2] === 0) this.lo2++;
      if (this.lo2 === this.hi2) {
        this.lo2 = this.detWords;
        this.hi2 = this.detWords;
      } else if (w === this.hi2 - 1) {
        while (words[this.hi2 - 1] === 0) this.hi2--;
      }
    }
  }
}

/** Fields of one cache entry, stored flat in an Int32Array. */
const E_HASH = 0;
const E_STATE = 1;
const E_LO1 = 2;
const E_LEN1 = 3;
const E_LO2 = 4;
const E_LEN2 = 5;
const E_OFFSET = 6;
const ENTRY_INTS = 7;

/**
 * The visited configurations: (linearized set, interned state id) pairs in an open-addressing
 * hash table keyed by (determinate set, state). Each entry keeps a snapshot of the set's
 * interesting words in one shared arena, so a hash collision is always resolved by comparing
 * the sets themselves. A configuration is covered (not worth visiting) by an entry with the same
 * determinate set and state whose indeterminate set is a subset of its own: whatever it can
 * still do, the entry could too, with more indeterminate operations left.
 */
class VisitedCache {
  private slots = new Int32Array(1024);
  private entries = new Int32Array(512 * ENTRY_INTS);
  private arena = new Uint32Array(4096);
  private count = 0;
  private arenaUsed = 0;

  /** Adds (set, state) unless an entry covers it; returns false when one did. */
  insert(set: LinearizedSet, stateId: number): boolean {
    let h = Math.imul(set.hash ^ Math.imul(stateId + 1, 0x9e3779b1), 0x85ebca6b);
    h ^= h >>> 15;
    const len1 = set.hi1 - set.lo1;
    const len2 = set.hi2 - set.lo2;
    const mask = this.slots.length - 1;
    let slot = h & mask;
    for (;;) {
      const e = this.slots[slot] as number;
      if (e === 0) break;
      if (this.covers(e - 1, h, stateId, set, len1)) return false;
      slot = (slot + 1) & mask;
    }
    const index = this.count++;
    if ((index + 1) * ENTRY_INTS > this.entries.length) {
      const grown = new Int32Array(this.entries.length * 2);
      grown.set(this.entries);
      this.entries = grown;
    }
    if (this.arenaUsed + len1 + len2 > this.arena.length) {
      const grown = new Uint32Array(Math.max(this.arena.length * 2, this.arenaUsed + len1 + len2));
      grown.set(this.arena.subarray(0, this.arenaUsed));
      this.arena = grown;
    }
    const base = index * ENTRY_INTS;
    const entries = this.entries;
    entries[base + E_HASH] = h;
    entries[base + E_STATE] = stateId;
    entries[base + E_LO1] = set.lo1;
    entries[base + E_LEN1] = len1;
    entries[base + E_LO2] = set.lo2;
    entries[base + E_LEN2] = len2;
    entries[base + E_OFFSET] = this.arenaUsed;
    this.arena.set(set.words.subarray(set.lo1, set.hi1), this.arenaUsed);
    this.arena.set(set.words.subarray(set.lo2, set.hi2), this.arenaUsed + len1);
    this.arenaUsed += len1 + len2;
    this.slots[slot] = index + 1;
    if (this.count * 2 > this.slots.length) this.rehash();
    return true;
  }

  /**
   * Whether entry `index` covers (set, state): equal determinate part and state, and an
   * indeterminate part that is a subset of the set's.
   */
  private covers(
    index: number,
    h: number,
    stateId: number,
    set: LinearizedSet,
    len1: number,
  ): boolean {
    const base = index * ENTRY_INTS;
    const entries = this.entries;
    if (
      entries[base + E_HASH] !== h ||
      entries[base + E_STATE] !== stateId ||
      entries[base + E_LO1] !== set.lo1 ||
      entries[base + E_LEN1] !== len1
    ) {
      return false;
    }
    const len2 = entries[base + E_LEN2] as number;
    const offset = entries[base + E_OFFSET] as number;
    const arena = this.arena;
    const words = set.words;
    for (let i = 0; i < len1; i++) {
      if (arena[offset + i] !== words[set.lo1 + i]) return false;
    }
    // Subset, not equality: a configuration that used fewer indeterminate operations (same
    // determinate set, same state) can do everything this one can.
    if (len2 === 0) return true;
    const lo2 = entries[base + E_LO2] as number;
    if (lo2 < set.lo2 || lo2 + len2 > set.hi2) return false;
    for (let i = 0; i < len2; i++) {
      if (((arena[offset + len1 + i] as number) & ~(words[lo2 + i] as number)) !== 0) return false;
    }
    return true;
  }

  private rehash(): void {
    const slots = new Int32Array(this.slots.length * 2);
    const mask = slots.length - 1;
    for (let index = 0; index < this.count; index++) {
      let slot = (this.entries[index * ENTRY_INTS + E_HASH] as number) & mask;
      while (slots[slot] !== 0) slot = (slot + 1) & mask;
      slots[slot] = index + 1;
    }
    this.slots = slots;
  }
}

/**
 * The WGL search over one partition. Determinate operations get ids `0..nd-1` in call order
 * and two list nodes each (call `id`, return `nd + id`); indeterminate ones get ids `0..ni-1`
 * in call order and one node each in a second list (they have no return).
 *
 * A level is one configuration on the stack. Its candidates: the calls before the first return
 * in the determinate list, tried in the order of their intervals' midpoints (the expected
 * instant of an operation that takes effect uniformly within its interval, so the first order
 * tried is usually the right one), then the indeterminate calls invoked no later than that
 * return, in call order.
 */
function searchPartition<State, Input, Output>(
  model: Model<State, Input, Output>,
  ops: readonly Operation<Input, Output>[],
  maxSteps: number,
): PartitionOutcome {
  const callOf = new Float64Array(ops.length);
  let nd = 0;
  let ni = 0;
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i] as Operation<Input, Output>;
    callOf[i] = op.call;
    if (!isIndeterminate(op)) nd++;
    else if (!model.readOnly?.(op.input, undefined)) ni++;
  }
  if (nd === 0) return { kind: 'ok', steps: 0 };
  // det[id] / indet[id]: the partition index of each operation, ids in call order.
  const det = new Int32Array(nd);
  const indet = new Int32Array(ni);
  for (let i = 0, d = 0, n = 0; i < ops.length; i++) {
    const op = ops[i] as Operation<Input, Output>;
    if (!isIndeterminate(op)) det[d++] = i;
    else if (!model.readOnly?.(op.input, undefined)) indet[n++] = i;
  }
  const byCall = (a: number, b: number) => (callOf[a] as number) - (callOf[b] as number) || a - b;
  det.sort(byCall);
  indet.sort(byCall);

  const detCall = new Float64Array(nd);
  const detReturn = new Float64Array(nd);
  const detMid = new Float64Array(nd);
  const readOnly = new Uint8Array(nd);
  for (let id = 0; id < nd; id++) {
    const op = ops[det[id] as number] as Operation<Input, Output>;
    const ret = op.return as number;
    detCall[id] = op.call;
    detReturn[id] = ret;
    detMid[id] = op.call + (ret - op.call) / 2;
    if (model.readOnly?.(op.input, op.output)) readOnly[id] = 1;
  }
  const indetCall = new Float64Array(ni);
  for (let id = 0; id < ni; id++) indetCall[id] = callOf[indet[id] as number] as number;

  // The determinate event list: sorted by time; at equal times calls first (touching intervals
  // are concurrent), then by id, so the order is deterministic. Calls are in id order already
  // (ids follow call order): sort the returns and merge.
  const returns = new Int32Array(nd);
  for (let id = 0; id < nd; id++) returns[id] = id;
  returns.sort((a, b) => (detReturn[a] as number) - (detReturn[b] as number) || a - b);
  const head = 2 * nd;
  const next = new Int32Array(2 * nd + 1);
  const prev = new Int32Array(2 * nd + 1);
  let last = head;
  for (let c = 0, r = 0; c < nd || r < nd; ) {
    let node: number;
    if (
      c < nd &&
      (r === nd || (detCall[c] as number) <= (detReturn[returns[r] as number] as number))
    ) {
      node = c++;
    } else {
      node = nd + (returns[r++] as number);
    }
    next[last] = node;
    prev[node] = last;
    last = node;
  }
  next[last] = -1;

  const indetHead = ni;
  const indetNext = new Int32Array(ni + 1);
  const indetPrev = new Int32Array(ni + 1);
  for (let id = 0; id < ni; id++) {
    indetNext[id] = id + 1 < ni ? id + 1 : -1;
    indetPrev[id] = id === 0 ? indetHead : id - 1;
  }
  indetNext[indetHead] = ni > 0 ? 0 : -1;

  const set = new LinearizedSet(nd, ni);
  const indetBitBase = Math.ceil(nd / 32) * 32;
  const cache = new VisitedCache();
  const stateIds = new Map<string, number>();
  const internState = (s: State): number => {
    const k = model.key(s);
    let id = stateIds.get(k);
    if (id === undefined) {
      id = stateIds.size;
      stateIds.set(k, id);
    }
    return id;
  };

  // The current level: its determinate candidates are candidates[levelStart, levelEnd), the
  // next to try at `cursor`; `bound` is the time of its first return (indeterminate calls up to
  // it are candidates too); `cur` walks the indeterminate list.
  let candidates = new Int32Array(64);
  let levelStart = 0;
  let levelEnd = 0;
  let cursor = 0;
  let bound = 0;
  let cur = -1;

  // The stack of linearized operations: encoded `id` (determinate) or `nd + id`, and the level
  // it was chosen at (state, candidates, cursor, bound; `forced` when no sibling needs trying).
  const depthMax = nd + ni;
  const stackOp = new Int32Array(depthMax);
  const stackState: State[] = new Array<State>(depthMax);
  const stackStateId = new Int32Array(depthMax);
  const stackStart = new Int32Array(depthMax);
  const stackEnd = new Int32Array(depthMax);
  const stackCursor = new Int32Array(depthMax);
  const stackBound = new Float64Array(depthMax);
  const stackForced = new Uint8Array(depthMax);
  let depth = 0;
  // The longest prefix seen: best[0..bestLength); its first `common` entries equal the stack's
  // (so a new record copies only what changed since, amortized O(1) per push).
  const best = new Int32Array(depthMax);
  let bestLength = 0;
  let common = 0;

  let state = model.init();
  let stateId = internState(state);
  let remaining = nd;
  let steps = 0;

  const push = (encoded: number, after: State, afterId: number, forced: boolean): void => {
    stackOp[depth] = encoded;
    stackState[depth] = state;
    stackStateId[depth] = stateId;
    stackStart[depth] = levelStart;
    stackEnd[depth] = levelEnd;
    stackCursor[depth] = cursor;
    stackBound[depth] = bound;
    stackForced[depth] = forced ? 1 : 0;
    state = after;
    stateId = afterId;
    if (common === depth) {
      if (depth < bestLength) {
        if (best[depth] === encoded) common++;
      } else {
        best[depth] = encoded;
        bestLength = depth + 1;
        common = depth + 1;
      }
    }
    depth++;
    if (depth > bestLength) {
      for (let i = common; i < depth; i++) best[i] = stackOp[i] as number;
      bestLength = depth;
      common = depth;
    }
  };

  /** Lifts determinate `id`: its call and return leave the list. */
  const liftDeterminate = (id: number, after: State, afterId: number, forced: boolean): void => {
    push(id, after, afterId, forced);
    const r = nd + id;
    next[prev[id] as number] = next[id] as number;
    prev[next[id] as number] = prev[id] as number;
    const pr = prev[r] as number;
    const nr = next[r] as number;
    next[pr] = nr;
    if (nr !== -1) prev[nr] = pr;
    remaining--;
  };

  // Whether linearizing an indeterminate operation (giving state `afterId`) now can matter.
  // Two reductions, both sound because an indeterminate operation may also never take effect
  // (drop it from any linearization and the rest stays valid):
  // - it leaves the state as it is: the same configuration minus it is the current one;
  // - it directly follows another indeterminate operation x, and skipping x gives the same
  //   state: the sibling branch that linearizes it instead of x reaches that state with x
  //   still unused (for a register: of two blind writes in a row only the last matters).
  // Without them, k pending indeterminate writes make every dead end try all 2^k subsets.
  const usefulIndeterminate = (input: Input, afterId: number): boolean => {
    if (afterId === stateId) return false;
    if (depth === 0 || (stackOp[depth - 1] as number) < nd) return true;
    const skipped = model.step(stackState[depth - 1] as State, input, undefined);
    return skipped === undefined || skipped === null || internState(skipped) !== afterId;
  };

  let mode: Mode = ARRIVE;
  for (;;) {
    if (++steps > maxSteps) return { kind: 'unknown', steps: steps - 1 };
    if (mode === ARRIVE) {
      // A new level: collect its determinate candidates. A read-only one (a read, a failed
      // CAS) that the state allows can go first: nothing that must precede it is left (it is a
      // candidate), and it changes nothing for the others wherever it goes. That child covers
      // every other order from here, so the level tries it alone.
      levelStart = depth === 0 ? 0 : (stackEnd[depth - 1] as number);
      levelEnd = levelStart;
      let node = next[head] as number;
      let forced = -1;
      let forcedState: State | undefined;
      for (; node < nd; node = next[node] as number) {
        const op = ops[det[node] as number] as Operation<Input, Output>;
        if (readOnly[node] === 1) {
          const after = model.step(state, op.input, op.output);
          if (after !== undefined && after !== null) {
            forced = node;
            forcedState = after;
            break;
          }
        }
        if (levelEnd === candidates.length) {
          const grown = new Int32Array(candidates.length * 2);
          grown.set(candidates);
          candidates = grown;
        }
        candidates[levelEnd++] = node;
      }
      if (forced !== -1) {
        set.add(forced);
        if (cache.insert(set, stateId)) {
          levelEnd = levelStart;
          liftDeterminate(forced, forcedState as State, stateId, true);
          if (remaining === 0) return { kind: 'ok', steps };
        } else {
          // Its configuration was explored and failed: so does this one.
          set.remove(forced);
          mode = BACKTRACK;
        }
        continue;
      }
      bound = detReturn[node - nd] as number; // node is the first return (remaining > 0)
      // Insertion sort by midpoint (levels hold a handful of candidates).
      for (let i = levelStart + 1; i < levelEnd; i++) {
        const c = candidates[i] as number;
        const m = detMid[c] as number;
        let j = i - 1;
        while (j >= levelStart && (detMid[candidates[j] as number] as number) > m) {
          candidates[j + 1] = candidates[j] as number;
          j--;
        }
        candidates[j + 1] = c;
      }
      cursor = levelStart;
      mode = DETERMINATE;
      continue;
    }
    if (mode === DETERMINATE) {
      if (cursor < levelEnd) {
        const id = candidates[cursor++] as number;
        const op = ops[det[id] as number] as Operation<Input, Output>;
        const after = model.step(state, op.input, op.output);
        if (after !== undefined && after !== null) {
          set.add(id);
          const afterId = internState(after);
          if (cache.insert(set, afterId)) {
            liftDeterminate(id, after, afterId, false);
            if (remaining === 0) return { kind: 'ok', steps };
            mode = ARRIVE;
            continue;
          }
          set.remove(id);
        }
        continue;
      }
      mode = INDETERMINATE;
      cur = indetNext[indetHead] as number;
      continue;
    }
    if (mode === INDETERMINATE) {
      if (cur !== -1 && (indetCall[cur] as number) <= bound) {
        const id = cur;
        const op = ops[indet[id] as number] as Operation<Input, Output>;
        const after = model.step(state, op.input, undefined);
        const afterId = after === undefined || after === null ? -1 : internState(after);
        if (afterId !== -1 && usefulIndeterminate(op.input, afterId)) {
          set.add(indetBitBase + id);
          if (cache.insert(set, afterId)) {
            push(nd + id, after as State, afterId, false);
            indetNext[indetPrev[id] as number] = indetNext[id] as number;
            const following = indetNext[id] as number;
            if (following !== -1) indetPrev[following] = indetPrev[id] as number;
            mode = ARRIVE;
            continue;
          }
          set.remove(indetBitBase + id);
        }
        cur = indetNext[id] as number;
        continue;
      }
      mode = BACKTRACK;
    }
    // No candidate left at this level: backtrack.
    if (depth === 0) {
      const searched = new Set<number>(det);
      for (const i of indet) searched.add(i);
      const bestOps: number[] = [];
      for (let i = 0; i < bestLength; i++) {
        const encoded = best[i] as number;
        bestOps.push((encoded < nd ? det[encoded] : indet[encoded - nd]) as number);
      }
      return { kind: 'fail', steps, best: bestOps, searched };
    }
    depth--;
    if (common > depth) common = depth;
    const encoded = stackOp[depth] as number;
    state = stackState[depth] as State;
    stateId = stackStateId[depth] as number;
    stackState[depth] = undefined as State; // let the state be collected
    levelStart = stackStart[depth] as number;
    levelEnd = stackEnd[depth] as number;
    cursor = stackCursor[depth] as number;
    bound = stackBound[depth] as number;
    if (encoded < nd) {
      const id = encoded;
      set.remove(id);
      remaining++;
      const r = nd + id;
      const pr = prev[r] as number;
      const nr = next[r] as number;
      next[pr] = r;
      if (nr !== -1) prev[nr] = r;
      next[prev[id] as number] = id;
      prev[next[id] as number] = id;
      // A forced level has no other order worth trying: keep backtracking.
      if (stackForced[depth] === 0) mode = DETERMINATE;
    } else {
      const id = encoded - nd;
      set.remove(indetBitBase + id);
      indetNext[indetPrev[id] as number] = id;
      const following = indetNext[id] as number;
      if (following !== -1) indetPrev[following] = id;
      mode = INDETERMINATE;
      cur = following;
    }
  }
}

// ------------------------------------------------------------------------- the explanation

/** How many operations of a long prefix the explanation lists (the last ones). */
const PREFIX_LINES = 10;
/** How many candidates the explanation lists. */
const CANDIDATE_LINES = 20;

function defaultDescribe(op: Operation<unknown, unknown>): string {
  const output = isIndeterminate(op) ? '?' : JSON.stringify(op.output);
  return `${JSON.stringify(op.input)} → ${output}`;
}

function formatTime(t: number | undefined): string {
  return t === undefined || t === Number.POSITIVE_INFINITY ? '∞' : String(t);
}

function explainFailure<State, Input, Output>(
  model: Model<State, Input, Output>,
  ops: readonly Operation<Input, Output>[],
  partition: number,
  outcome: Extract<PartitionOutcome, { kind: 'fail' }>,
  indexOf: ReadonlyMap<Operation<Input, Output>, number>,
): LinearizabilityCounterexample<Input, Output> {
  const describe = (op: Operation<Input, Output>, i: number): string => {
    const index = indexOf.get(op);
    const name = index === undefined ? `partition ${partition} op ${i}` : `op #${index}`;
    const what = model.describeOperation ? model.describeOperation(op) : defaultDescribe(op);
    return `${name} client ${op.clientId} [${op.call}, ${formatTime(op.return)}]: ${what}`;
  };
  const outputFor = (op: Operation<Input, Output>) => (isIndeterminate(op) ? undefined : op.output);

  // Replay the longest prefix to get its state.
  let state = model.init();
  for (const i of outcome.best) {
    const op = ops[i] as Operation<Input, Output>;
    state = model.step(state, op.input, outputFor(op)) as State;
  }
  const linearized = new Set(outcome.best);
  // The earliest unlinearized return bounds what may come next.
  let deadline = -1;
  for (const i of outcome.searched) {
    const op = ops[i] as Operation<Input, Output>;
    if (linearized.has(i) || isIndeterminate(op)) continue;
    const d = deadline === -1 ? undefined : (ops[deadline] as Operation<Input, Output>);
    if (d === undefined || (op.return as number) < (d.return as number)) deadline = i;
  }
  const deadlineOp = ops[deadline] as Operation<Input, Output>;
  const bound = deadlineOp.return as number;
  const candidateIndexes = [...outcome.searched]
    .filter((i) => !linearized.has(i) && (ops[i] as Operation<Input, Output>).call <= bound)
    .sort((a, b) => a - b);
  const candidates = candidateIndexes.map((i) => ops[i] as Operation<Input, Output>);
  const showState = (st: State): string =>
    model.describeState ? model.describeState(st) : JSON.stringify(model.key(st));
  const stateText = showState(state);

  const lines: string[] = [
    `not linearizable: partition ${partition} (${ops.length} operations) has no valid order.`,
  ];
  const n = outcome.best.length;
  if (n === 0) {
    lines.push(`No operation can come first: the initial state is ${stateText}.`);
  } else {
    lines.push(`The longest linearizable prefix found has ${n} operation${n === 1 ? '' : 's'}:`);
    if (n > PREFIX_LINES) lines.push(`  … ${n - PREFIX_LINES} earlier`);
    for (const i of outcome.best.slice(-PREFIX_LINES)) {
      lines.push(`  ${describe(ops[i] as Operation<Input, Output>, i)}`);
    }
    lines.push(`after which the state is ${stateText}.`);
  }
  const deadlineIndex = indexOf.get(deadlineOp);
  const deadlineName =
    deadlineIndex === undefined ? `partition ${partition} op ${deadline}` : `op #${deadlineIndex}`;
  lines.push(
    `Next must come one of the operations invoked by ${bound} ` +
      `(when ${deadlineName} returned); none can:`,
  );
  for (const i of candidateIndexes.slice(0, CANDIDATE_LINES)) {
    const op = ops[i] as Operation<Input, Output>;
    const after = model.step(state, op.input, outputFor(op));
    const why =
      after === undefined || after === null
        ? 'not allowed in this state'
        : `allowed (state ${showState(after)}), but no order continues from there`;
    lines.push(`  ${describe(op, i)}: ${why}`);
  }
  if (candidateIndexes.length > CANDIDATE_LINES) {
    lines.push(`  … ${candidateIndexes.length - CANDIDATE_LINES} more`);
  }
  return {
    partition,
    operations: ops,
    linearized: outcome.best.map((i) => ops[i] as Operation<Input, Output>),
    state: stateText,
    candidates,
    explanation: lines.join('\n'),
  };
}
