/**
 * Assertions, bounded waits and clean-up shared by the conformance cases. Internal: nothing here
 * is exported from the package. Kept free of any test framework so the cases run anywhere.
 */
import { RaftError, type RaftErrorCode } from '@raft/core';
import { ConformanceError } from './conformance-error.js';

/** Default bound, in milliseconds, on every single wait a case performs. */
export const DEFAULT_TIMEOUT_MS = 5_000;

/** How often bounded waits re-check their condition. */
const POLL_INTERVAL_MS = 5;

/** Throws a {@link ConformanceError}. */
export function fail(message: string, cause?: unknown): never {
  throw new ConformanceError(message, cause === undefined ? undefined : { cause });
}

/** Resolves after `ms` of wall time. Only for retry intervals and observed silences. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

const MAX_BYTES_SHOWN = 16;
const MAX_CHARS_SHOWN = 200;

/** A short, readable rendering of any value for failure messages. */
export function formatValue(value: unknown): string {
  const text = render(value, 0);
  return text.length > MAX_CHARS_SHOWN ? `${text.slice(0, MAX_CHARS_SHOWN)}…` : text;
}

function render(value: unknown, depth: number): string {
  if (value instanceof Uint8Array) {
    const shown = Array.from(value.subarray(0, MAX_BYTES_SHOWN), (b) =>
      b.toString(16).padStart(2, '0'),
    ).join(' ');
    const more = value.length > MAX_BYTES_SHOWN ? ' …' : '';
    return `Uint8Array(${value.length}) [${shown}${more}]`;
  }
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (value === null || typeof value !== 'object') return String(value);
  if (value instanceof Error) return formatError(value);
  if (depth > 3) return Array.isArray(value) ? '[…]' : '{…}';
  if (Array.isArray(value)) return `[${value.map((v) => render(v, depth + 1)).join(', ')}]`;
  const fields = Object.entries(value)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}: ${render(v, depth + 1)}`);
  return `{ ${fields.join(', ')} }`;
}

/** `Name [CODE]: message` for errors, {@link formatValue} for anything else thrown. */
export function formatError(err: unknown): string {
  if (!(err instanceof Error)) return `non-Error ${formatValue(err)}`;
  const code = RaftError.is(err) ? ` [${err.code}]` : '';
  return `${err.name}${code}: ${err.message}`;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The first difference between `expected` and `actual` as `path: expected …, got …` (a path
 * such as `[2].term`, omitted at the root), or null when they are equal. Byte arrays compare by content (a Buffer equals a Uint8Array with the same
 * bytes); object fields whose value is `undefined` count as absent.
 */
export function describeDifference(expected: unknown, actual: unknown, path = ''): string | null {
  const at = label(path);
  if (expected instanceof Uint8Array) {
    if (!(actual instanceof Uint8Array)) {
      return `${at}expected a Uint8Array, got ${formatValue(actual)}`;
    }
    if (expected.length !== actual.length) {
      return `${at}expected ${expected.length} bytes, got ${actual.length}`;
    }
    for (let i = 0; i < expected.length; i++) {
      if (expected[i] !== actual[i]) {
        return `${at}byte ${i}: expected ${expected[i]}, got ${actual[i]} (of ${expected.length} bytes)`;
      }
    }
    return null;
  }
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual)) return `${at}expected an array, got ${formatValue(actual)}`;
    const common = Math.min(expected.length, actual.length);
    for (let i = 0; i < common; i++) {
      const d = describeDifference(expected[i], actual[i], `${path}[${i}]`);
      if (d !== null) return d;
    }
    if (expected.length !== actual.length) {
      return `${at}expected ${expected.length} items, got ${actual.length} (first ${common} equal)`;
    }
    return null;
  }
  if (isPlainObject(expected)) {
    if (!isPlainObject(actual)) return `${at}expected an object, got ${formatValue(actual)}`;
    const keys = new Set([...Object.keys(expected), ...Object.keys(actual)]);
    for (const key of keys) {
      const e = expected[key];
      const a = actual[key];
      const sub = `${path}.${key}`;
      if (e === undefined && a !== undefined) {
        return `${label(sub)}unexpected field with value ${formatValue(a)}`;
      }
      if (e !== undefined && a === undefined) {
        return `${label(sub)}missing (expected ${formatValue(e)})`;
      }
      const d = describeDifference(e, a, sub);
      if (d !== null) return d;
    }
    return null;
  }
  return Object.is(expected, actual)
    ? null
    : `${at}expected ${formatValue(expected)}, got ${formatValue(actual)}`;
}

/** `path: ` without a leading dot, or nothing at the root. */
function label(path: string): string {
  if (path === '') return '';
  return `${path.startsWith('.') ? path.slice(1) : path}: `;
}

/** Fails with `<what>: <path>: expected …, got …` unless `actual` equals `expected`. */
export function assertEqual(actual: unknown, expected: unknown, what: string): void {
  const d = describeDifference(expected, actual);
  if (d !== null) fail(`${what}: ${d}`);
}

/**
 * Calls `start` and awaits its promise for at most `timeoutMs`. A synchronous throw, a rejection
 * or a timeout fails the case, naming `what`.
 */
export async function settle<T>(
  what: string,
  timeoutMs: number,
  start: () => Promise<T> | T,
): Promise<T> {
  const outcome = await race(what, timeoutMs, start);
  if (outcome.kind === 'threw') {
    fail(
      `${what} threw synchronously instead of rejecting: ${formatError(outcome.error)}`,
      outcome.error,
    );
  }
  if (outcome.kind === 'rejected') {
    fail(`${what} rejected: ${formatError(outcome.error)}`, outcome.error);
  }
  return outcome.value;
}

/**
 * Calls `start` and requires it to reject within `timeoutMs` with an error that `check` accepts
 * (`check` returns null for an acceptable error, or what is wrong with it).
 */
export async function expectRejection(
  what: string,
  timeoutMs: number,
  start: () => Promise<unknown>,
  expectation: string,
  check: (err: unknown) => string | null,
): Promise<void> {
  const outcome = await race(what, timeoutMs, start);
  if (outcome.kind === 'threw') {
    fail(
      `${what}: expected a rejected promise (${expectation}), but it threw synchronously: ${formatError(outcome.error)}`,
      outcome.error,
    );
  }
  if (outcome.kind === 'resolved') {
    fail(
      `${what}: expected it to reject (${expectation}), but it resolved with ${formatValue(outcome.value)}`,
    );
  }
  const problem = check(outcome.error);
  if (problem !== null) {
    fail(
      `${what}: expected a rejection ${expectation}, got ${formatError(outcome.error)} (${problem})`,
      outcome.error,
    );
  }
}

/** A `check` for {@link expectRejection}: a RaftError (from any package copy) with `code`. */
export function hasCode(code: RaftErrorCode): (err: unknown) => string | null {
  return (err) => {
    if (!RaftError.is(err)) return 'not a RaftError';
    return err.code === code ? null : `code ${err.code}`;
  };
}

/** How a call settled, as reported by {@link race}. */
export type Outcome<T> =
  | { readonly kind: 'resolved'; readonly value: T }
  | { readonly kind: 'rejected'; readonly error: unknown }
  | { readonly kind: 'threw'; readonly error: unknown };

/**
 * Runs `start` and reports how it settled. Fails the case if it has not settled within
 * `timeoutMs`: every wait is bounded.
 */
export async function race<T>(
  what: string,
  timeoutMs: number,
  start: () => Promise<T> | T,
): Promise<Outcome<T>> {
  let pending: Promise<T> | T;
  try {
    pending = start();
  } catch (error) {
    return { kind: 'threw', error };
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs);
  });
  try {
    const settled = await Promise.race([
      Promise.resolve(pending).then(
        (value): Outcome<T> => ({ kind: 'resolved', value }),
        (error: unknown): Outcome<T> => ({ kind: 'rejected', error }),
      ),
      timeout,
    ]);
    if (settled === 'timeout') fail(`${what} did not settle within ${timeoutMs} ms`);
    return settled;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Polls `condition` every few milliseconds until it holds, failing after `timeoutMs` with
 * `what` and, if given, a description of the state reached.
 */
export async function waitUntil(
  what: string,
  timeoutMs: number,
  condition: () => boolean,
  state?: () => string,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() >= deadline) {
      fail(
        `timed out after ${timeoutMs} ms waiting for ${what}${state === undefined ? '' : `; ${state()}`}`,
      );
    }
    await sleep(POLL_INTERVAL_MS);
  }
}

/**
 * Runs `body`, then `cleanup` whatever happened. The body's error wins; a clean-up error is
 * reported only when the body succeeded.
 */
export async function withCleanup<T>(
  body: () => Promise<T>,
  cleanup: () => Promise<void>,
): Promise<T> {
  let result: T;
  try {
    result = await body();
  } catch (err) {
    try {
      await cleanup();
    } catch {
      // The body's failure is the one worth reporting.
    }
    throw err;
  }
  await cleanup();
  return result;
}

/** A positive integer option, or the default when absent. */
export function positiveOption(value: number | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value <= 0) {
    throw new RaftError('INVALID_ARGUMENT', `${name} must be a positive number, got ${value}`);
  }
  return value;
}

/**
 * For calls the contract lets either succeed or fail (such as calls after `close()`): fails the
 * case if the call threw synchronously or rejected with anything but a StorageError.
 */
export function expectOnlyStorageFailure(what: string, outcome: Outcome<unknown>): void {
  if (outcome.kind === 'threw') {
    fail(
      `${what} threw synchronously instead of rejecting: ${formatError(outcome.error)}`,
      outcome.error,
    );
  }
  if (outcome.kind === 'rejected' && hasCode('STORAGE')(outcome.error) !== null) {
    fail(
      `${what}: expected it to resolve or to reject with a StorageError, got ${formatError(outcome.error)}`,
      outcome.error,
    );
  }
}

/** The bytes of `chunks`, in order, as one array. */
export function concat(chunks: readonly Uint8Array[]): Uint8Array {
  let size = 0;
  for (const c of chunks) size += c.length;
  const out = new Uint8Array(size);
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.length;
  }
  return out;
}
