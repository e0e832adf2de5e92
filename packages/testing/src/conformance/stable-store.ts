/**
 * Conformance cases for {@link StableStore} implementations, checked against the contract in the
 * interface's doc comment: `load()` returns what the last resolved `save()` stored (null on a
 * fresh store), durably across a restart, and errors are StorageError rejections. The last case
 * is a property: random sequences of saves, loads and reopens (stable-store-model.ts).
 */
import type { HardState, StableStore } from '@raft/core';
import type { ConformanceCase } from './conformance-case.js';
import { type StableOperation, stableOperations } from './stable-store-model.js';
import { type PropertySteps, propertyCase } from './store-property.js';
import type { StoreHarness, StoreHarnessInstance } from './store-session.js';
import { StoreSession, storeCase } from './store-session.js';
import { assertEqual, expectOnlyStorageFailure, race, settle } from './support.js';

/** One fresh, empty durable storage for a stable store (see {@link StoreHarnessInstance}). */
export type StableStoreHarnessInstance = StoreHarnessInstance<StableStore>;

/**
 * What an adapter author supplies to run the stable store cases: a factory of fresh, empty
 * storages.
 *
 * @example
 * ```ts
 * const harness: StableStoreHarness = {
 *   name: 'sqlite stable store',
 *   create: async () => {
 *     const path = join(await mkdtemp(join(tmpdir(), 'raft-')), 'db.sqlite');
 *     const open = () => openSqliteStableStore({ path });
 *     return { store: open(), reopen: open, cleanup: () => rm(dirname(path), { recursive: true }) };
 *   },
 * };
 * ```
 */
export type StableStoreHarness = StoreHarness<StableStore>;

/** The stable store under test. */
class StableStoreSession extends StoreSession<StableStore> {
  async load(): Promise<HardState | null> {
    const store = this.store;
    return settle('load()', this.timeoutMs, () => store.load());
  }

  /** Loads and requires `expected` (compared field by field; no extra fields). */
  async expectLoad(expected: HardState | null, what = 'load()'): Promise<void> {
    assertEqual(await this.load(), expected, what);
  }

  save(state: HardState): Promise<void> {
    const store = this.store;
    return settle(`save(${describeState(state)})`, this.timeoutMs, () => store.save(state));
  }

  /** Closes the store and reopens the storage through the harness. */
  async restart(): Promise<void> {
    await this.reopen();
    this.needsClose = true;
  }
}

function stableCase(
  name: string,
  body: (session: StableStoreSession) => Promise<void>,
): ConformanceCase<StableStoreHarness> {
  return storeCase(
    name,
    (instance, timeoutMs) => new StableStoreSession(instance, timeoutMs, true),
    body,
  );
}

function describeState(state: HardState): string {
  const vote = state.votedFor === null ? 'null' : JSON.stringify(state.votedFor);
  return `{ term: ${state.term}, votedFor: ${vote}, commit: ${state.commit} }`;
}

/**
 * Runs one generated sequence: every load(), and the load() after every reopen, returns the
 * last state saved (null before any save), and so does a final reopen.
 */
async function runStableOperations(
  s: StableStoreSession,
  operations: readonly StableOperation[],
  steps: PropertySteps,
): Promise<void> {
  let saved: HardState | null = null;
  const expecting = (): string => `expecting ${saved === null ? 'null' : describeState(saved)}`;
  steps.begin('load() of the fresh store');
  await s.expectLoad(null);
  for (const op of operations) {
    switch (op.op) {
      case 'save':
        steps.begin(`save(${describeState(op.state)})`);
        await s.save(op.state);
        saved = op.state;
        break;
      case 'load':
        steps.begin(`load(), ${expecting()}`);
        await s.expectLoad(saved);
        break;
      case 'reopen':
        steps.begin(`close(), reopen, load(), ${expecting()}`);
        await s.restart();
        await s.expectLoad(saved, 'load() after a reopen');
        break;
    }
  }
  steps.begin(`close(), reopen, load() at the end, ${expecting()}`);
  await s.restart();
  await s.expectLoad(saved, 'load() after a reopen');
}

const cases: ConformanceCase<StableStoreHarness>[] = [
  stableCase('load() on a fresh store returns null', async (s) => {
    await s.expectLoad(null);
  }),

  stableCase('save() then load() returns the saved state', async (s) => {
    const state: HardState = { term: 3, votedFor: 'n2', commit: 7 };
    await s.save(state);
    await s.expectLoad(state);
  }),

  stableCase('a later save() replaces the earlier one', async (s) => {
    await s.save({ term: 1, votedFor: 'n1', commit: 0 });
    const second: HardState = { term: 2, votedFor: 'n3', commit: 4 };
    await s.save(second);
    await s.expectLoad(second);
    const third: HardState = { term: 2, votedFor: 'n3', commit: 9 };
    await s.save(third);
    await s.expectLoad(third);
  }),

  stableCase('the saved state survives a reopen', async (s) => {
    const first: HardState = { term: 5, votedFor: 'n1', commit: 12 };
    await s.save(first);
    await s.restart();
    await s.expectLoad(first, 'load() after a reopen');
    const second: HardState = { term: 6, votedFor: 'n2', commit: 13 };
    await s.save(second);
    await s.restart();
    await s.expectLoad(second, 'load() after a second reopen');
  }),

  stableCase('a store never saved to still loads null after a reopen', async (s) => {
    await s.expectLoad(null);
    await s.restart();
    await s.expectLoad(null, 'load() after a reopen');
  }),

  stableCase(
    'votedFor null round-trips and replaces an earlier vote, also after a reopen',
    async (s) => {
      const noVote: HardState = { term: 1, votedFor: null, commit: 0 };
      await s.save(noVote);
      await s.expectLoad(noVote);
      await s.save({ term: 2, votedFor: 'n1', commit: 0 });
      const cleared: HardState = { term: 3, votedFor: null, commit: 2 };
      await s.save(cleared);
      await s.expectLoad(cleared);
      await s.restart();
      await s.expectLoad(cleared, 'load() after a reopen');
    },
  ),

  stableCase('numbers up to Number.MAX_SAFE_INTEGER and non-ASCII ids round-trip', async (s) => {
    const state: HardState = {
      term: Number.MAX_SAFE_INTEGER,
      votedFor: 'nœud-東京-🚀',
      commit: 2 ** 40 + 3,
    };
    await s.save(state);
    await s.expectLoad(state);
    await s.restart();
    await s.expectLoad(state, 'load() after a reopen');
  }),

  stableCase('after close(), calls fail only by rejecting with StorageError', async (s) => {
    const before: HardState = { term: 4, votedFor: 'n2', commit: 3 };
    await s.save(before);
    await s.close();
    const store = s.current;
    // The contract does not require a closed store to refuse calls, only that every failure is
    // a StorageError rejection. A save that resolves claims durability, so it must persist.
    const after: HardState = { term: 5, votedFor: 'n3', commit: 4 };
    const save = await race(`save(${describeState(after)}) after close()`, s.timeoutMs, () =>
      store.save(after),
    );
    expectOnlyStorageFailure(`save(${describeState(after)}) after close()`, save);
    const durable = save.kind === 'resolved' ? after : before;
    const load = await race('load() after close()', s.timeoutMs, () => store.load());
    expectOnlyStorageFailure('load() after close()', load);
    if (load.kind === 'resolved') assertEqual(load.value, durable, 'load() after close()');
    await s.restart();
    await s.expectLoad(durable, 'load() after a reopen');
  }),

  propertyCase(
    'random sequences of save, load and reopen load the last state saved',
    (instance, timeoutMs) => new StableStoreSession(instance, timeoutMs, true),
    stableOperations,
    runStableOperations,
  ),
];

/**
 * Every stable store case, in a stable order. Run them with `runConformance` or register them
 * with `describeStableStoreConformance` from `@raft/testing/vitest`. New cases are appended.
 */
export const stableStoreConformanceCases: readonly ConformanceCase<StableStoreHarness>[] =
  Object.freeze(cases);
