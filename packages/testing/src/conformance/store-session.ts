/**
 * What the store suites share: the harness an adapter author supplies for any durable store, and
 * the session a case drives the store through (closing what it opened, reopening it as a restart
 * would). One per interface would say the same thing three times.
 */
import type { MaybePromise } from '@raft/core';
import type { ConformanceCase, NamedHarness } from './conformance-case.js';
import { DEFAULT_TIMEOUT_MS, positiveOption, settle, withCleanup } from './support.js';

/**
 * One fresh, empty durable storage, created for a single case and never shared with another
 * case.
 *
 * @typeParam S - The store interface (for example `LogStore`).
 */
export interface StoreHarnessInstance<S> {
  /** A store over the new, empty storage (a log store is not opened yet: the case opens it). */
  readonly store: S;
  /**
   * Simulates a restart that keeps the disk. Called only after the case has closed the current
   * store; returns a NEW store over the same durable storage (same directory, same database,
   * same key prefix). An in-memory store, whose storage is the object itself, may return the
   * same instance.
   */
  reopen(): MaybePromise<S>;
  /**
   * Deletes the storage. Called exactly once, last, after every store the case used has been
   * closed (or failed to close).
   */
  cleanup(): MaybePromise<void>;
}

/** What an adapter author supplies to run a store's cases: a factory of fresh, empty storages. */
export interface StoreHarness<S> extends NamedHarness {
  create(): MaybePromise<StoreHarnessInstance<S>>;
  /** Bound on every single store call (and harness call), in milliseconds. Default 5000. */
  readonly timeoutMs?: number;
  /**
   * How many random operation sequences each property case runs (each over a fresh storage
   * from `create()`). A positive integer; default 30. Lower it for a store whose calls are slow
   * (a disk that takes milliseconds per fsync), raise it for a longer soak; 0 is refused (a
   * property case that runs nothing would pass without checking anything).
   */
  readonly propertyRuns?: number;
  /**
   * Seed of the property cases' generator, to replay a failure: the failure message of a
   * property case prints it. Default: a new seed for every check, printed on failure.
   */
  readonly propertySeed?: number;
  /**
   * With `propertySeed`, the path to one counterexample of one property case, as its failure
   * message prints it: the case then starts from that shrunk sequence. A path belongs to the
   * case that printed it, so run that case alone (a path is meaningless to the other cases).
   */
  readonly propertyPath?: string;
}

/** The store under test plus the bookkeeping that lets every case close what it opened. */
export abstract class StoreSession<S extends { close(): Promise<void> }> {
  protected store: S;

  /** `needsClose`: whether the store starts open (a log store is opened by the case). */
  constructor(
    private readonly instance: StoreHarnessInstance<S>,
    readonly timeoutMs: number,
    protected needsClose: boolean,
  ) {
    this.store = instance.store;
  }

  /** The store under test now (a new one after each restart), for cases that need a call's raw
   *  outcome rather than the checks of the session. */
  get current(): S {
    return this.store;
  }

  async close(): Promise<void> {
    if (!this.needsClose) return;
    this.needsClose = false;
    const store = this.store;
    await settle('close()', this.timeoutMs, () => store.close());
  }

  /** Closes the store and takes a new one over the same storage from the harness. */
  protected async reopen(): Promise<void> {
    await this.close();
    const instance = this.instance;
    this.store = await settle('the harness reopen()', this.timeoutMs, () => instance.reopen());
  }
}

/**
 * A case that runs `body` on a session over a fresh storage, then closes the store and cleans
 * the storage up, pass or fail.
 */
export function storeCase<S, T extends StoreSession<S & { close(): Promise<void> }>>(
  name: string,
  session: (instance: StoreHarnessInstance<S>, timeoutMs: number) => T,
  body: (session: T) => Promise<void>,
): ConformanceCase<StoreHarness<S>> {
  return {
    name,
    run: async (harness) => {
      const timeoutMs = positiveOption(harness.timeoutMs, 'timeoutMs', DEFAULT_TIMEOUT_MS);
      await withFreshSession(harness, timeoutMs, session, body);
    },
  };
}

/**
 * Creates a fresh storage through the harness, runs `body` on a session over it, then closes the
 * store and cleans the storage up, pass or fail. Every harness call is bounded by `timeoutMs`.
 */
export async function withFreshSession<
  S,
  T extends StoreSession<S & { close(): Promise<void> }>,
  R,
>(
  harness: StoreHarness<S>,
  timeoutMs: number,
  session: (instance: StoreHarnessInstance<S>, timeoutMs: number) => T,
  body: (session: T) => Promise<R>,
): Promise<R> {
  const instance = await settle('the harness create()', timeoutMs, () => harness.create());
  const s = session(instance, timeoutMs);
  return withCleanup(
    () => body(s),
    () =>
      withCleanup(
        () => s.close(),
        () => settle('the harness cleanup()', timeoutMs, () => instance.cleanup()),
      ),
  );
}
