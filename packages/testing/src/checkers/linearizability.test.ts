/**
 * The linearizability checker against hand-written histories (known violations and their
 * counterexamples, indeterminate operations, validation), against histories a real store
 * produced (they must pass; one corrupted read mostly must not), against a brute-force search of
 * every order on small random histories, and at scale. Every history comes from a seeded `Prng`.
 */
import { describe, expect, it } from 'vitest';
import { Prng } from '../sim/prng.js';
import type { KvInput, KvOutput, RegisterInput, RegisterOutput } from './kv-model.js';
import { kvModel, registerModel } from './kv-model.js';
import type { LinearizabilityResult, Model, Operation } from './linearizability.js';
import { checkLinearizability, DEFAULT_LINEARIZABILITY_MAX_STEPS } from './linearizability.js';

type KvOp = Operation<KvInput, KvOutput>;
type RegisterOp = Operation<RegisterInput, RegisterOutput>;

// ------------------------------------------------------------------------- history builders

const put = (clientId: number, key: string, value: string, call: number, ret?: number): KvOp =>
  ret === undefined
    ? { clientId, input: { type: 'put', key, value }, call }
    : { clientId, input: { type: 'put', key, value }, call, return: ret, output: {} };

const get = (
  clientId: number,
  key: string,
  value: string | null,
  call: number,
  ret: number,
): KvOp => ({ clientId, input: { type: 'get', key }, call, return: ret, output: { value } });

const cas = (
  clientId: number,
  key: string,
  expected: string | null,
  value: string,
  call: number,
  ret?: number,
  ok = true,
): KvOp =>
  ret === undefined
    ? { clientId, input: { type: 'cas', key, expected, value }, call }
    : { clientId, input: { type: 'cas', key, expected, value }, call, return: ret, output: { ok } };

const del = (clientId: number, key: string, call: number, ret: number): KvOp => ({
  clientId,
  input: { type: 'delete', key },
  call,
  return: ret,
  output: {},
});

/** The counterexample of a failed check (fails the test otherwise). */
function counterexampleOf<I, O>(result: LinearizabilityResult<I, O>) {
  if (result.ok !== false) throw new Error(`expected a violation, got ok: ${String(result.ok)}`);
  return result.counterexample;
}

// ------------------------------------------------------------------------- a real store

interface SimulationOptions {
  readonly clients: number;
  readonly operations: number;
  readonly keys: readonly string[];
  /** Values are drawn from this many per key (small: ambiguous reads), or unique when 0. */
  readonly alphabet: number;
  /** Probability that an operation's outcome is unknown to its client. */
  readonly indeterminate: number;
  /** Mean operation latency and mean think time between a client's operations. */
  readonly latency: number;
  readonly think: number;
  /** Include `delete` (the register has none). */
  readonly deletes: boolean;
  /**
   * List the history shuffled (the checker must not rely on any order), or in completion
   * order (indeterminate operations last), as a recorder would.
   */
  readonly order?: 'shuffled' | 'completion';
}

interface Planned {
  readonly op: { clientId: number; input: KvInput; call: number; return?: number };
  /** When it takes effect on the store; undefined: never (an indeterminate op). */
  readonly effect: number | undefined;
}

/**
 * A history of a store that is linearizable by construction: each client issues operations one
 * at a time; each takes effect atomically at a random instant within its interval (an
 * indeterminate one: at a random instant after its call, even after its client timed out, or
 * never), and returns what a single map returns at that instant.
 */
function simulate(seed: number, o: SimulationOptions): KvOp[] {
  const rng = new Prng(seed);
  const planned: Planned[] = [];
  let serial = 0;
  const perClient = Math.ceil(o.operations / o.clients);
  for (let c = 0; c < o.clients && planned.length < o.operations; c++) {
    let t = rng.range(0, o.think);
    for (let i = 0; i < perClient && planned.length < o.operations; i++) {
      const key = rng.pick(o.keys);
      const value = o.alphabet === 0 ? `v${serial++}` : `v${rng.int(o.alphabet)}`;
      const expected = rng.chance(0.2)
        ? null
        : `v${rng.int(o.alphabet === 0 ? serial : o.alphabet)}`;
      const r = rng.next();
      const input: KvInput =
        r < 0.45
          ? { type: 'get', key }
          : r < 0.75
            ? { type: 'put', key, value }
            : r < 0.92 || !o.deletes
              ? { type: 'cas', key, expected, value }
              : { type: 'delete', key };
      const duration = rng.range(0, 2 * o.latency);
      const call = t;
      if (rng.chance(o.indeterminate)) {
        const effect = rng.chance(0.5) ? call + rng.range(0, 3 * duration) : undefined;
        planned.push({ op: { clientId: c, input, call }, effect });
      } else {
        const ret = call + duration;
        planned.push({
          op: { clientId: c, input, call, return: ret },
          effect: rng.range(call, ret),
        });
      }
      t = call + duration + rng.range(0, 2 * o.think);
    }
  }
  // Apply in effect order (ties: plan order) to one map, recording what each op returned.
  const order = planned
    .map((p, i) => ({ p, i }))
    .filter((x) => x.p.effect !== undefined)
    .sort((a, b) => (a.p.effect as number) - (b.p.effect as number) || a.i - b.i);
  const store = new Map<string, string>();
  const outputs = new Map<number, KvOutput>();
  for (const { p, i } of order) {
    const input = p.op.input;
    const current = store.get(input.key) ?? null;
    switch (input.type) {
      case 'get':
        outputs.set(i, { value: current });
        break;
      case 'put':
        store.set(input.key, input.value);
        outputs.set(i, {});
        break;
      case 'delete':
        store.delete(input.key);
        outputs.set(i, {});
        break;
      case 'cas': {
        const ok = current === input.expected;
        if (ok) store.set(input.key, input.value);
        outputs.set(i, { ok });
        break;
      }
    }
  }
  const history: KvOp[] = planned.map((p, i) => {
    const output = outputs.get(i);
    return p.op.return === undefined || output === undefined ? p.op : { ...p.op, output };
  });
  if (o.order === 'completion') {
    const end = (op: KvOp) => op.return ?? Number.POSITIVE_INFINITY;
    return history.sort((a, b) => end(a) - end(b) || a.call - b.call);
  }
  return rng.shuffle(history);
}

/** The same history as register operations (one key; no deletes). */
function toRegister(history: readonly KvOp[]): RegisterOp[] {
  return history.map((op) => {
    const input: RegisterInput =
      op.input.type === 'get'
        ? { type: 'read' }
        : op.input.type === 'put'
          ? { type: 'write', value: op.input.value }
          : op.input.type === 'cas'
            ? { type: 'cas', expected: op.input.expected, value: op.input.value }
            : { type: 'write', value: 'never' };
    const { input: _kv, ...rest } = op;
    return { ...rest, input } as RegisterOp;
  });
}

/** A random simulation's knobs for `seed` (few clients, short histories). */
function smallOptions(rng: Prng, keys: readonly string[]): SimulationOptions {
  return {
    clients: 2 + rng.int(5),
    operations: 10 + rng.int(60),
    keys,
    alphabet: rng.pick([0, 2, 3, 5]),
    indeterminate: rng.pick([0, 0.05, 0.15]),
    latency: rng.range(1, 10),
    think: rng.range(0, 10),
    deletes: keys.length > 1,
  };
}

// ------------------------------------------------------------------------- the tests

describe('checkLinearizability: basics', () => {
  it('accepts an empty history and a sequential one, counting partitions and operations', () => {
    expect(checkLinearizability(kvModel, [])).toEqual({
      ok: true,
      partitions: 0,
      operations: 0,
      steps: 0,
    });
    const history = [
      put(1, 'x', 'a', 0, 1),
      get(2, 'x', 'a', 2, 3),
      put(1, 'y', 'b', 4, 5),
      del(2, 'x', 6, 7),
      get(1, 'x', null, 8, 9),
      cas(2, 'y', 'b', 'c', 10, 11, true),
      cas(1, 'y', 'b', 'd', 12, 13, false),
      get(2, 'y', 'c', 14, 15),
    ];
    const result = checkLinearizability(kvModel, history);
    expect(result).toMatchObject({ ok: true, partitions: 2, operations: 8 });
  });

  it('allows either order for overlapping operations: a read concurrent with a write', () => {
    const write = put(1, 'x', 'a', 0, 100);
    expect(checkLinearizability(kvModel, [write, get(2, 'x', null, 10, 20)]).ok).toBe(true);
    expect(checkLinearizability(kvModel, [write, get(2, 'x', 'a', 10, 20)]).ok).toBe(true);
    // Two concurrent writes: later reads must agree on which came last.
    const writes = [put(1, 'x', 'a', 0, 10), put(2, 'x', 'b', 0, 10)];
    expect(
      checkLinearizability(kvModel, [...writes, get(3, 'x', 'a', 20, 30), get(3, 'x', 'a', 40, 50)])
        .ok,
    ).toBe(true);
    expect(
      checkLinearizability(kvModel, [...writes, get(3, 'x', 'b', 20, 30), get(3, 'x', 'a', 40, 50)])
        .ok,
    ).toBe(false);
  });

  it('treats touching intervals as concurrent (calls sort before returns at equal times)', () => {
    // The read is invoked at the instant the write returns: it may still precede it.
    expect(
      checkLinearizability(kvModel, [put(1, 'x', 'a', 0, 10), get(2, 'x', null, 10, 20)]).ok,
    ).toBe(true);
    // One instant later it may not.
    expect(
      checkLinearizability(kvModel, [put(1, 'x', 'a', 0, 10), get(2, 'x', null, 11, 20)]).ok,
    ).toBe(false);
    // Zero-length operations are fine.
    expect(checkLinearizability(kvModel, [put(1, 'x', 'a', 5, 5), get(2, 'x', 'a', 5, 5)]).ok).toBe(
      true,
    );
  });

  it('lists operations in any order: the history need not be sorted', () => {
    const history = [get(2, 'x', 'b', 40, 50), put(1, 'x', 'b', 20, 30), put(1, 'x', 'a', 0, 10)];
    expect(checkLinearizability(kvModel, history).ok).toBe(true);
    expect(checkLinearizability(kvModel, [...history, get(3, 'x', 'a', 60, 70)]).ok).toBe(false);
  });

  it('checks a model without partition as one partition; a null step means not allowed', () => {
    // A counter whose increments return the new value.
    const counter: Model<number, 'inc', number> = {
      init: () => 0,
      step: (state, _input, output) =>
        output === undefined || output === state + 1 ? state + 1 : null,
      key: (state) => String(state),
    };
    const inc = (clientId: number, call: number, ret: number, output: number) => ({
      clientId,
      input: 'inc' as const,
      call,
      return: ret,
      output,
    });
    const ok = checkLinearizability(counter, [inc(1, 0, 10, 2), inc(2, 0, 10, 1)]);
    expect(ok).toMatchObject({ ok: true, partitions: 1, operations: 2 });
    const twice = [inc(1, 0, 10, 1), inc(2, 20, 30, 1)];
    const bad = counterexampleOf(checkLinearizability(counter, twice));
    // The default description is JSON of input and output.
    expect(bad.explanation).toContain('op #1 client 2 [20, 30]: "inc" → 1: not allowed');
    expect(bad.linearized).toEqual([twice[0]]);
    expect(bad.state).toBe('"1"'); // no describeState: the key, as JSON
    // Nothing can come first: the prefix is empty.
    const none = counterexampleOf(
      checkLinearizability(counter, [inc(1, 0, 10, 2), inc(2, 0, 10, 2)]),
    );
    expect(none.linearized).toEqual([]);
    expect(none.candidates).toHaveLength(2);
    expect(none.explanation).toContain('No operation can come first');
  });

  it('validates the history, naming the operation', () => {
    const good = put(1, 'x', 'a', 0, 1);
    expect(() => checkLinearizability(kvModel, [good, { ...good, call: 5, return: 4 }])).toThrow(
      /operation 1: return 4 is before call 5/,
    );
    expect(() => checkLinearizability(kvModel, [{ ...good, call: Number.NaN }])).toThrow(
      RangeError,
    );
    expect(() =>
      checkLinearizability(kvModel, [good, good, { ...good, call: Number.POSITIVE_INFINITY }]),
    ).toThrow(/operation 2: call must be a finite number/);
    expect(() => checkLinearizability(kvModel, [{ ...good, return: Number.NaN }])).toThrow(
      TypeError,
    );
    expect(() =>
      checkLinearizability(kvModel, [{ ...good, call: '1' as unknown as number }]),
    ).toThrow(/operation 0/);
    expect(() => checkLinearizability(kvModel, [null as unknown as KvOp])).toThrow(TypeError);
    expect(() => checkLinearizability(kvModel, [good], { maxSteps: 0 })).toThrow(RangeError);
    expect(() => checkLinearizability(kvModel, [good], { maxSteps: 1.5 })).toThrow(RangeError);
    // A malformed output is the history's fault too: the model says so.
    const badGet = { ...get(1, 'x', null, 0, 1), output: { ok: true } };
    expect(() => checkLinearizability(kvModel, [badGet])).toThrow(/get output must be/);
  });
});

describe('checkLinearizability: known-bad histories', () => {
  it('a stale read: a read after a completed write returns the older value', () => {
    const history = [
      put(1, 'x', 'a', 0, 10),
      put(1, 'x', 'b', 20, 30),
      get(2, 'x', 'a', 40, 50), // index 2
    ];
    const result = checkLinearizability(kvModel, history);
    const ce = counterexampleOf(result);
    expect(ce.partition).toBe(0);
    expect(ce.operations).toEqual(history);
    expect(ce.linearized).toEqual([history[0], history[1]]);
    expect(ce.state).toBe('"b"');
    expect(ce.candidates).toEqual([history[2]]);
    expect(ce.candidates[0]).toBe(history[2]); // the history's own objects
    expect(ce.explanation).toContain('op #2 client 2 [40, 50]: get("x") → "a": not allowed');
    expect(ce.explanation).toContain('after which the state is "b".');
    expect(ce.explanation).toContain('invoked by 50 (when op #2 returned); none can:');
  });

  it('a lost write: acknowledged, then never seen, with no other write', () => {
    const history = [put(1, 'x', 'a', 0, 10), get(2, 'x', null, 20, 30), get(2, 'x', null, 40, 50)];
    const ce = counterexampleOf(checkLinearizability(kvModel, history));
    expect(ce.linearized).toEqual([history[0]]);
    expect(ce.candidates).toEqual([history[1]]);
    expect(ce.explanation).toMatch(/get\("x"\) → null: not allowed/);
  });

  it('a duplicate apply: a write observed, overwritten, then observed again', () => {
    const history = [
      put(1, 'x', 'a', 0, 10),
      get(2, 'x', 'a', 20, 30),
      put(3, 'x', 'b', 40, 50),
      get(2, 'x', 'b', 60, 70),
      get(2, 'x', 'a', 80, 90),
    ];
    const ce = counterexampleOf(checkLinearizability(kvModel, history));
    expect(ce.linearized).toHaveLength(4);
    expect(ce.candidates).toEqual([history[4]]);
  });

  it('a duplicate apply: two CAS from the same expected value both succeed', () => {
    const history = [
      put(1, 'x', 'a', 0, 10),
      cas(2, 'x', 'a', 'b', 20, 40, true),
      cas(3, 'x', 'a', 'c', 25, 45, true),
    ];
    const ce = counterexampleOf(checkLinearizability(kvModel, history));
    expect(ce.linearized).toHaveLength(2);
    expect(ce.explanation).toMatch(/cas\("x", "a" → "[bc]"\) → ok: not allowed/);
    // Either may have won, so one failing is fine.
    history[2] = cas(3, 'x', 'a', 'c', 25, 45, false);
    expect(checkLinearizability(kvModel, history).ok).toBe(true);
  });

  it('a read of a value never written', () => {
    const history = [put(1, 'x', 'a', 0, 10), get(2, 'x', 'zzz', 5, 15)];
    const ce = counterexampleOf(checkLinearizability(kvModel, history));
    // Both orders were tried: the longest prefix is the write; nothing returns "zzz".
    expect(ce.linearized).toEqual([history[0]]);
    expect(ce.explanation).toContain('"zzz"');
  });

  it('a violation in one key is reported for that key alone', () => {
    const history = [
      put(1, 'x', 'a', 0, 10),
      put(1, 'y', 'b', 0, 10),
      get(2, 'x', 'a', 20, 30),
      get(2, 'y', null, 20, 30),
    ];
    const result = checkLinearizability(kvModel, history);
    const ce = counterexampleOf(result);
    expect(result.partitions).toBe(2);
    expect(ce.partition).toBe(1);
    expect(ce.operations).toEqual([history[1], history[3]]);
  });

  it('shortens the explanation of a long prefix', () => {
    const history: KvOp[] = [];
    for (let i = 0; i < 30; i++) history.push(put(1, 'x', `v${i}`, 10 * i, 10 * i + 5));
    history.push(get(2, 'x', 'v3', 1000, 1001));
    const ce = counterexampleOf(checkLinearizability(kvModel, history));
    expect(ce.linearized).toHaveLength(30);
    expect(ce.explanation).toContain('… 20 earlier');
    expect(ce.explanation.split('\n').length).toBeLessThan(20);
  });
});

describe('checkLinearizability: indeterminate operations', () => {
  it('an indeterminate write observed later passes; one never observed passes too', () => {
    const before = put(1, 'x', 'old', 0, 5);
    const pending = put(2, 'x', 'new', 10); // timed out
    expect(checkLinearizability(kvModel, [before, pending, get(3, 'x', 'new', 20, 30)]).ok).toBe(
      true,
    );
    // It may take effect long after its client gave up.
    expect(
      checkLinearizability(kvModel, [
        before,
        pending,
        get(3, 'x', 'old', 20, 30),
        get(3, 'x', 'new', 1000, 1001),
      ]).ok,
    ).toBe(true);
    expect(
      checkLinearizability(kvModel, [
        before,
        pending,
        get(3, 'x', 'old', 20, 30),
        get(3, 'x', 'old', 40, 50),
      ]).ok,
    ).toBe(true);
    // return: Infinity is the same as no return.
    const infinite = { ...put(2, 'x', 'new', 10, 20), return: Number.POSITIVE_INFINITY };
    expect(checkLinearizability(kvModel, [before, infinite, get(3, 'x', 'old', 30, 40)]).ok).toBe(
      true,
    );
  });

  it('an indeterminate write observed and then "unobserved" fails', () => {
    const history = [
      put(1, 'x', 'old', 0, 5),
      put(2, 'x', 'new', 10),
      get(3, 'x', 'new', 20, 30),
      get(3, 'x', 'old', 40, 50),
      get(3, 'x', 'new', 60, 70),
    ];
    const ce = counterexampleOf(checkLinearizability(kvModel, history));
    expect(ce.linearized).toEqual([history[0], history[1], history[2]]);
    expect(ce.candidates).toEqual([history[3]]);
    expect(ce.explanation).toContain('[10, ∞]: put("x", "new") → ?');
  });

  it('an indeterminate write spent on a dead end is still there on another path', () => {
    // The search first tries w2 before w1 and needs the pending write to explain the first
    // read; that dead-ends at the last read. The order w1, w2 reaches the same determinate set
    // and state without spending it, and needs it at the end.
    const history = [
      put(2, 'x', 'b', 0, 10), // w2
      put(1, 'x', 'a', 0, 10), // w1
      put(3, 'x', 'b', 0), // pending
      get(4, 'x', 'b', 20, 30),
      put(5, 'x', 'c', 40, 50),
      get(4, 'x', 'b', 60, 70),
    ];
    expect(checkLinearizability(kvModel, history).ok).toBe(true);
    const { readOnly: _hint, ...plain } = kvModel;
    expect(checkLinearizability(plain, history).ok).toBe(true);
  });

  it('an indeterminate write cannot take effect before its call', () => {
    const history = [put(1, 'x', 'a', 0, 5), get(3, 'x', 'b', 10, 20), put(2, 'x', 'b', 30)];
    expect(checkLinearizability(kvModel, history).ok).toBe(false);
  });

  it('an indeterminate CAS takes effect only if its expectation held', () => {
    const base = [put(1, 'x', 'a', 0, 5), cas(2, 'x', 'a', 'b', 10)];
    expect(checkLinearizability(kvModel, [...base, get(3, 'x', 'b', 20, 30)]).ok).toBe(true);
    const wrong = [put(1, 'x', 'a', 0, 5), cas(2, 'x', 'z', 'b', 10), get(3, 'x', 'b', 20, 30)];
    expect(checkLinearizability(kvModel, wrong).ok).toBe(false);
  });

  it('a history of indeterminate operations only is linearizable (none need take effect)', () => {
    const history = [put(1, 'x', 'a', 0), cas(2, 'x', 'q', 'r', 1), put(3, 'y', 'b', 2)];
    expect(checkLinearizability(kvModel, history)).toMatchObject({ ok: true, steps: 0 });
  });

  it('the register model treats them alike', () => {
    const w = (clientId: number, value: string, call: number, ret?: number): RegisterOp =>
      ret === undefined
        ? { clientId, input: { type: 'write', value }, call }
        : { clientId, input: { type: 'write', value }, call, return: ret, output: {} };
    const r = (clientId: number, value: string | null, call: number, ret: number): RegisterOp => ({
      clientId,
      input: { type: 'read' },
      call,
      return: ret,
      output: { value },
    });
    const ok = [w(1, 'a', 0, 5), w(2, 'b', 10), r(3, 'b', 20, 30), r(3, 'b', 40, 50)];
    expect(checkLinearizability(registerModel, ok)).toMatchObject({ ok: true, partitions: 1 });
    const bad = [w(1, 'a', 0, 5), w(2, 'b', 10), r(3, 'b', 20, 30), r(3, 'a', 40, 50)];
    const ce = counterexampleOf(checkLinearizability(registerModel, bad));
    expect(ce.explanation).toContain('read() → "a": not allowed');
    expect(ce.explanation).toContain('write("b") → ?');
  });
});

describe('checkLinearizability: random histories of a real store', () => {
  const SEEDS = 300;

  it(`register histories pass (${SEEDS} seeds), and corrupting one read is caught`, () => {
    let corruptedFailed = 0;
    let corruptedPassed = 0;
    let corruptedUnknown = 0;
    const unexpected: string[] = [];
    for (let seed = 1; seed <= SEEDS; seed++) {
      const rng = new Prng(seed).fork('options');
      const history = toRegister(simulate(seed, smallOptions(rng, ['r'])));
      const result = checkLinearizability(registerModel, history);
      if (result.ok !== true) unexpected.push(`seed ${seed}: ok ${String(result.ok)}`);

      // Corrupt one completed read: another value (maybe still explainable), or one never
      // written (never explainable).
      const reads = history
        .map((op, i) => ({ op, i }))
        .filter(({ op }) => op.input.type === 'read' && op.return !== undefined);
      if (reads.length === 0) continue;
      const { op, i } = rng.pick(reads);
      const was = (op.output as { value: string | null }).value;
      const neverWritten = rng.chance(0.3);
      const value = neverWritten ? 'never-written' : was === null ? 'v0' : null;
      const corrupted = history.slice();
      corrupted[i] = { ...op, output: { value } };
      const bad = checkLinearizability(registerModel, corrupted);
      if (bad.ok === false) corruptedFailed++;
      else if (bad.ok === true) corruptedPassed++;
      else corruptedUnknown++;
      if (neverWritten && bad.ok !== false)
        unexpected.push(`seed ${seed}: never-written read passed`);
    }
    console.log(
      `register: ${SEEDS} linearizable histories passed; corrupted: ${corruptedFailed} failed, ` +
        `${corruptedPassed} still linearizable, ${corruptedUnknown} unknown`,
    );
    expect(unexpected).toEqual([]);
    expect(corruptedFailed).toBeGreaterThan(SEEDS / 2);
  });

  it(`key-value histories pass (${SEEDS} seeds), and corrupting one get is caught`, () => {
    let corruptedFailed = 0;
    const unexpected: string[] = [];
    for (let seed = 1; seed <= SEEDS; seed++) {
      const rng = new Prng(seed).fork('kv-options');
      const keys = ['a', 'b', 'c'].slice(0, 1 + rng.int(3));
      const history = simulate(seed + 1_000_000, smallOptions(rng, keys));
      const result = checkLinearizability(kvModel, history);
      if (result.ok !== true) unexpected.push(`seed ${seed}: ok ${String(result.ok)}`);
      const gets = history
        .map((op, i) => ({ op, i }))
        .filter(({ op }) => op.input.type === 'get' && op.return !== undefined);
      if (gets.length === 0) continue;
      const { op, i } = rng.pick(gets);
      const corrupted = history.slice();
      corrupted[i] = {
        ...op,
        output: { value: `not-${String((op.output as { value: unknown }).value)}` },
      };
      const bad = checkLinearizability(kvModel, corrupted);
      if (bad.ok === false) corruptedFailed++;
      else
        unexpected.push(`seed ${seed}: a get of a value never written gave ok ${String(bad.ok)}`);
    }
    expect(unexpected).toEqual([]);
    expect(corruptedFailed).toBeGreaterThan(0);
  });

  it('a long single-register history with heavy overlap passes (one partition)', () => {
    const history = toRegister(
      simulate(7, {
        clients: 8,
        operations: 20_000,
        keys: ['r'],
        alphabet: 0,
        indeterminate: 0.01,
        latency: 5,
        think: 2,
        deletes: false,
      }),
    );
    const started = performance.now();
    const result = checkLinearizability(registerModel, history);
    const ms = performance.now() - started;
    console.log(`register, 20,000 ops, 8 clients: ${ms.toFixed(0)} ms, ${result.steps} steps`);
    expect(result).toMatchObject({ ok: true, partitions: 1, operations: 20_000 });
  }, 60_000);
});

/**
 * The definition, searched naively (no cache, no pruning, every order): some order of all
 * determinate operations and any subset of the indeterminate ones that respects real time (an
 * operation that returned before another was invoked comes first) and that the model accepts.
 */
function bruteForce<S, I, O>(model: Model<S, I, O>, history: readonly Operation<I, O>[]): boolean {
  const pending = (op: Operation<I, O>) => op.return === undefined;
  const determinate = history.filter((op) => !pending(op)).length;
  const placed = new Set<Operation<I, O>>();
  const search = (state: S, done: number): boolean => {
    if (done === determinate) return true;
    for (const op of history) {
      if (placed.has(op)) continue;
      // Every determinate operation that returned before this call must already be placed.
      const blocked = history.some(
        (other) => !placed.has(other) && !pending(other) && (other.return as number) < op.call,
      );
      if (blocked) continue;
      const after = model.step(state, op.input, pending(op) ? undefined : op.output);
      if (after === undefined || after === null) continue;
      placed.add(op);
      const found = search(after, done + (pending(op) ? 0 : 1));
      placed.delete(op);
      if (found) return true;
    }
    return false;
  };
  return search(model.init(), 0);
}

/** A small register history with random outputs (often not linearizable) and tied times. */
function randomRegisterHistory(rng: Prng): RegisterOp[] {
  const values = ['a', 'b'];
  const n = 2 + rng.int(6);
  const history: RegisterOp[] = [];
  for (let i = 0; i < n; i++) {
    const call = rng.int(8);
    const ret = call + rng.int(5);
    const r = rng.next();
    const input: RegisterInput =
      r < 0.4
        ? { type: 'read' }
        : r < 0.75
          ? { type: 'write', value: rng.pick(values) }
          : { type: 'cas', expected: rng.pick([null, ...values]), value: rng.pick(values) };
    const output: RegisterOutput =
      input.type === 'read'
        ? { value: rng.pick([null, ...values]) }
        : input.type === 'cas'
          ? { ok: rng.chance(0.5) }
          : {};
    history.push(
      rng.chance(0.2)
        ? { clientId: i, input, call }
        : { clientId: i, input, call, return: ret, output },
    );
  }
  return history;
}

describe('checkLinearizability agrees with a brute-force search of every order', () => {
  const SEEDS = 4000;
  // Without the read-only hint too: the generic search, without its shortcuts for reads.
  const { readOnly: _hint, ...plainRegister } = registerModel;

  it(`on ${SEEDS} small random register histories (with ties and pending operations)`, () => {
    const counts = { linearizable: 0, not: 0 };
    const disagreements: string[] = [];
    for (let seed = 1; seed <= SEEDS; seed++) {
      const history = randomRegisterHistory(new Prng(seed));
      const expected = bruteForce(registerModel, history);
      counts[expected ? 'linearizable' : 'not']++;
      for (const model of [registerModel, plainRegister]) {
        const result = checkLinearizability(model, history);
        if (result.ok !== expected) {
          disagreements.push(`seed ${seed}: expected ${expected}, got ${String(result.ok)}`);
        }
      }
    }
    expect(disagreements).toEqual([]);
    // Both answers are common, so both directions are tested.
    expect(counts.linearizable).toBeGreaterThan(SEEDS / 5);
    expect(counts.not).toBeGreaterThan(SEEDS / 5);
  });
});

describe('checkLinearizability: scale and budget', () => {
  it('checks a key-value history of 100,000 operations (50 keys, 10 clients)', () => {
    const keys = Array.from({ length: 50 }, (_, i) => `k${i}`);
    const history = simulate(2024, {
      clients: 10,
      operations: 100_000,
      keys,
      alphabet: 3,
      indeterminate: 0.01,
      latency: 10,
      think: 3,
      deletes: true,
      order: 'completion',
    });
    const started = performance.now();
    const result = checkLinearizability(kvModel, history);
    const ms = performance.now() - started;
    console.log(
      `kv, 100,000 ops, 50 keys, 10 clients: ${ms.toFixed(0)} ms, ${result.steps} steps, ` +
        `ok ${String(result.ok)}`,
    );
    expect(result).toMatchObject({ ok: true, partitions: 50, operations: 100_000 });
  }, 60_000);

  it('answers unknown, not forever, when the search exceeds its budget', () => {
    // 40 concurrent writes, then a read of a value none wrote: proving it needs every subset of
    // the writes (2^40 configurations).
    const history: KvOp[] = [];
    for (let i = 0; i < 40; i++) history.push(put(i, 'x', `v${i}`, 0, 100));
    history.push(get(99, 'x', 'nobody', 200, 210));
    const result = checkLinearizability(kvModel, history, { maxSteps: 200_000 });
    expect(result).toMatchObject({
      ok: 'unknown',
      reason: 'budget',
      unknownPartitions: [0],
      maxSteps: 200_000,
      steps: 200_000,
    });
    // A violation in another partition is still reported.
    const withBadKey = [...history, put(1, 'y', 'a', 0, 1), get(2, 'y', null, 5, 6)];
    expect(checkLinearizability(kvModel, withBadKey, { maxSteps: 200_000 }).ok).toBe(false);
  });

  it('stops at the default budget too', () => {
    const history: KvOp[] = [];
    for (let i = 0; i < 40; i++) history.push(put(i, 'x', `v${i}`, 0, 100));
    history.push(get(99, 'x', 'nobody', 200, 210));
    const result = checkLinearizability(kvModel, history);
    expect(result).toMatchObject({ ok: 'unknown', steps: DEFAULT_LINEARIZABILITY_MAX_STEPS });
  }, 60_000);
});
