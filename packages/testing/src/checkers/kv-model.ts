/**
 * Ready-made models for {@link checkLinearizability}: a key-value store (`kvModel`, checked
 * per key) and a single register (`registerModel`). Values are strings; a missing key (or the
 * register's initial value) is `null`. Outputs are plain objects:
 *
 * | input                                   | output                        |
 * | --------------------------------------- | ----------------------------- |
 * | `{ type: 'get', key }`                  | `{ value: string \| null }`   |
 * | `{ type: 'put', key, value }`           | `{}` (an acknowledgement)     |
 * | `{ type: 'cas', key, expected, value }` | `{ ok: boolean }`             |
 * | `{ type: 'delete', key }`               | `{}`                          |
 *
 * A `cas` swaps when the key holds `expected` (`expected: null`: when the key is absent).
 *
 * The register's inputs are `read`, `write` and `cas`, the same without a key. An indeterminate
 * operation (no output) may or may not have taken effect: a `cas` whose outcome is unknown
 * applies only if its expectation held.
 */
import type { Model, Operation } from './linearizability.js';

/** An input of {@link kvModel}. */
export type KvInput =
  | { readonly type: 'get'; readonly key: string }
  | { readonly type: 'put'; readonly key: string; readonly value: string }
  | {
      readonly type: 'cas';
      readonly key: string;
      /** The value the key must hold for the swap to happen; `null`: the key must be absent. */
      readonly expected: string | null;
      readonly value: string;
    }
  | { readonly type: 'delete'; readonly key: string };

/** The output of a `get` (or `read`): the value, `null` when the key is absent. */
export interface KvValueOutput {
  readonly value: string | null;
}

/** The output of a `cas`: whether the swap happened. */
export interface KvCasOutput {
  readonly ok: boolean;
}

/** The output of a `put`, `delete` or `write`: an empty acknowledgement, `{}`. */
export type KvAckOutput = Readonly<Record<string, never>>;

/** An output of {@link kvModel}: a value, a CAS outcome or an acknowledgement. */
export type KvOutput = KvValueOutput | KvCasOutput | KvAckOutput;

/**
 * The state of {@link kvModel} within one partition: the value of the partition's key (`null`:
 * absent), boxed because a `null` step result means "not allowed". The model relies on its
 * `partition` (one key per partition), which `checkLinearizability` always applies.
 */
export interface KvState {
  readonly value: string | null;
}

/** An input of {@link registerModel}. */
export type RegisterInput =
  | { readonly type: 'read' }
  | { readonly type: 'write'; readonly value: string }
  | { readonly type: 'cas'; readonly expected: string | null; readonly value: string };

/** An output of {@link registerModel}: the same shapes as {@link KvOutput}. */
export type RegisterOutput = KvValueOutput | KvCasOutput | KvAckOutput;

/** The state of {@link registerModel}: its value, `null` before the first write (boxed). */
export interface RegisterState {
  readonly value: string | null;
}

const ABSENT: KvState = Object.freeze({ value: null });

/** The boxed state holding `value`. */
function box(value: string | null): KvState {
  return value === null ? ABSENT : { value };
}

/** Whether a read saw `state`; throws for an output that is not `{ value: string | null }`. */
function readMatches(state: KvState, output: unknown, what: string): boolean {
  const value = (output as { value?: unknown } | null)?.value;
  if (
    typeof output !== 'object' ||
    output === null ||
    !(typeof value === 'string' || value === null)
  ) {
    throw new TypeError(
      `${what} output must be { value: string | null }, got ${JSON.stringify(output)}`,
    );
  }
  return value === state.value;
}

/** The state after a cas, or undefined when `output` contradicts it. */
function casStep(
  state: KvState,
  expected: string | null,
  value: string,
  output: unknown,
): KvState | undefined {
  const swaps = state.value === expected;
  if (output === undefined) return swaps ? box(value) : state;
  const ok = (output as { ok?: unknown } | null)?.ok;
  if (typeof ok !== 'boolean') {
    throw new TypeError(`cas output must be { ok: boolean }, got ${JSON.stringify(output)}`);
  }
  if (ok !== swaps) return undefined;
  return swaps ? box(value) : state;
}

/** A state's cache key: '' for null, '=' + value otherwise (never equal). */
function valueKey(state: KvState): string {
  return state.value === null ? '' : `=${state.value}`;
}

function show(value: string | null): string {
  return value === null ? 'null' : JSON.stringify(value);
}

/** The output part of a description: ` → …`, `?` for an indeterminate operation. */
function shownOutput(op: Operation<unknown, unknown>): string {
  if (op.return === undefined || op.return === Number.POSITIVE_INFINITY) return ' → ?';
  const output = op.output as Partial<KvValueOutput & KvCasOutput> | undefined;
  if (output !== undefined && 'value' in output) return ` → ${show(output.value ?? null)}`;
  if (output !== undefined && 'ok' in output) return output.ok ? ' → ok' : ' → failed';
  return ' → ok';
}

/**
 * A linearizable key-value store: `get`, `put`, `cas` and `delete` on string values (see the
 * module comment for inputs and outputs). Partitions the history by key, so each key is
 * searched alone. Throws a TypeError when a determinate operation's output has the wrong shape.
 */
export const kvModel: Model<KvState, KvInput, KvOutput> = {
  partition(history) {
    const byKey = new Map<string, Operation<KvInput, KvOutput>[]>();
    for (const op of history) {
      const list = byKey.get(op.input.key);
      if (list === undefined) byKey.set(op.input.key, [op]);
      else list.push(op);
    }
    return [...byKey.values()];
  },
  init: () => ABSENT,
  step(state, input, output) {
    switch (input.type) {
      case 'get':
        return output === undefined || readMatches(state, output, 'get') ? state : undefined;
      case 'put':
        return box(input.value);
      case 'delete':
        return ABSENT;
      case 'cas':
        return casStep(state, input.expected, input.value, output);
    }
  },
  key: valueKey,
  describeState: (state) => (state.value === null ? 'absent' : JSON.stringify(state.value)),
  readOnly: (input, output) =>
    input.type === 'get' ||
    (input.type === 'cas' && (output as KvCasOutput | undefined)?.ok === false),
  describeOperation(op) {
    const input = op.input;
    const key = JSON.stringify(input.key);
    switch (input.type) {
      case 'get':
        return `get(${key})${shownOutput(op)}`;
      case 'put':
        return `put(${key}, ${show(input.value)})${shownOutput(op)}`;
      case 'delete':
        return `delete(${key})${shownOutput(op)}`;
      case 'cas':
        return `cas(${key}, ${show(input.expected)} → ${show(input.value)})${shownOutput(op)}`;
    }
  },
};

/**
 * A linearizable single register of strings: `read`, `write` and `cas` (initially `null`).
 * One partition. Throws a TypeError when a determinate operation's output has the wrong shape.
 */
export const registerModel: Model<RegisterState, RegisterInput, RegisterOutput> = {
  init: () => ABSENT,
  step(state, input, output) {
    switch (input.type) {
      case 'read':
        return output === undefined || readMatches(state, output, 'read') ? state : undefined;
      case 'write':
        return box(input.value);
      case 'cas':
        return casStep(state, input.expected, input.value, output);
    }
  },
  key: valueKey,
  describeState: (state) => show(state.value),
  readOnly: (input, output) =>
    input.type === 'read' ||
    (input.type === 'cas' && (output as KvCasOutput | undefined)?.ok === false),
  describeOperation(op) {
    const input = op.input;
    switch (input.type) {
      case 'read':
        return `read()${shownOutput(op)}`;
      case 'write':
        return `write(${show(input.value)})${shownOutput(op)}`;
      case 'cas':
        return `cas(${show(input.expected)} → ${show(input.value)})${shownOutput(op)}`;
    }
  },
};
