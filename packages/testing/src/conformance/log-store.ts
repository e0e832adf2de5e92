/**
 * Conformance cases for {@link LogStore} implementations, checked against the contract in the
 * interface's doc comment: bounds reported by `open()`, `[from, to)` reads, atomic suffix
 * replacement, durability across a restart, and how errors are reported.
 */
import type { EntryKind, LogBounds, LogEntry, LogIndex, LogStore } from '@raft/core';
import type { ConformanceCase } from './conformance-case.js';
import type { StoreHarness, StoreHarnessInstance } from './store-session.js';
import { StoreSession, storeCase } from './store-session.js';
import {
  assertEqual,
  expectOnlyStorageFailure,
  expectRejection,
  fail,
  hasCode,
  race,
  settle,
} from './support.js';

/** One fresh, empty durable storage for a log store (see {@link StoreHarnessInstance}). */
export type LogStoreHarnessInstance = StoreHarnessInstance<LogStore>;

/**
 * What an adapter author supplies to run the log store cases: a factory of fresh, empty
 * storages.
 *
 * @example
 * ```ts
 * const harness: LogStoreHarness = {
 *   name: 'file log store',
 *   create: async () => {
 *     const dir = await mkdtemp(join(tmpdir(), 'log-'));
 *     return {
 *       store: openFileLogStore({ dir }),
 *       reopen: () => openFileLogStore({ dir }),
 *       cleanup: () => rm(dir, { recursive: true }),
 *     };
 *   },
 * };
 * ```
 */
export type LogStoreHarness = StoreHarness<LogStore>;

/** The log store under test, opened by the case itself. */
class LogStoreSession extends StoreSession<LogStore> {
  async open(): Promise<LogBounds> {
    this.needsClose = true;
    const store = this.store;
    const bounds = await settle('open()', this.timeoutMs, () => store.open());
    if (typeof bounds !== 'object' || bounds === null) {
      fail(`open(): expected { firstIndex, lastIndex }, got ${String(bounds)}`);
    }
    return bounds;
  }

  /** Opens and requires exactly these bounds. */
  async expectOpen(firstIndex: LogIndex, lastIndex: LogIndex): Promise<void> {
    const bounds = await this.open();
    assertEqual(
      { firstIndex: bounds.firstIndex, lastIndex: bounds.lastIndex },
      { firstIndex, lastIndex },
      'open()',
    );
  }

  append(entries: readonly LogEntry[]): Promise<void> {
    const store = this.store;
    return settle(`append(${describeBatch(entries)})`, this.timeoutMs, () => store.append(entries));
  }

  read(from: LogIndex, to: LogIndex): Promise<LogEntry[]> {
    const store = this.store;
    return settle(`read(${from}, ${to})`, this.timeoutMs, () => store.read(from, to));
  }

  /** Requires read(from, to) to reject with INVALID_ARGUMENT. */
  expectReadRejected(from: LogIndex, to: LogIndex, why: string): Promise<void> {
    const store = this.store;
    return expectRejection(
      `read(${from}, ${to}) ${why}`,
      this.timeoutMs,
      () => store.read(from, to),
      "with a RaftError of code 'INVALID_ARGUMENT'",
      hasCode('INVALID_ARGUMENT'),
    );
  }

  /** Closes the store, reopens the storage through the harness and opens the new store. */
  async restart(): Promise<LogBounds> {
    await this.reopen();
    return this.open();
  }

  /** Closes, reopens and requires exactly these bounds. */
  async expectRestart(firstIndex: LogIndex, lastIndex: LogIndex): Promise<void> {
    const bounds = await this.restart();
    assertEqual(
      { firstIndex: bounds.firstIndex, lastIndex: bounds.lastIndex },
      { firstIndex, lastIndex },
      'open() after a reopen',
    );
  }

  /**
   * Requires the log to hold exactly `expected` (contiguous, starting at `firstIndex`): one read
   * of the whole range returns them, and a read one past the end is rejected.
   */
  async expectLog(expected: readonly LogEntry[], firstIndex: LogIndex = 1): Promise<void> {
    const to = firstIndex + expected.length;
    assertEqual(await this.read(firstIndex, to), expected, `read(${firstIndex}, ${to})`);
    await this.expectReadRejected(firstIndex, to + 1, `(one past lastIndex ${to - 1})`);
  }
}

function logCase(
  name: string,
  body: (session: LogStoreSession) => Promise<void>,
): ConformanceCase<LogStoreHarness> {
  return storeCase(
    name,
    (instance, timeoutMs) => new LogStoreSession(instance, timeoutMs, false),
    body,
  );
}

/** A payload that differs for every (index, term, position), so a misplaced byte shows. */
function payload(index: LogIndex, term: number, length: number): Uint8Array {
  const data = new Uint8Array(length);
  for (let i = 0; i < length; i++) data[i] = (index * 31 + term * 7 + i * 13 + (i >>> 8)) & 0xff;
  return data;
}

function entry(index: LogIndex, term: number, kind: EntryKind = 'command', size = 8): LogEntry {
  return { index, term, kind, data: payload(index, term, size) };
}

/** Entries `[from, to)`, all of `term`. */
function entries(from: LogIndex, to: LogIndex, term: number): LogEntry[] {
  const out: LogEntry[] = [];
  for (let i = from; i < to; i++) out.push(entry(i, term));
  return out;
}

function describeBatch(batch: readonly LogEntry[]): string {
  const first = batch[0];
  const last = batch[batch.length - 1];
  if (first === undefined || last === undefined) return '[]';
  return first === last ? `[entry ${first.index}]` : `[entries ${first.index}..${last.index}]`;
}

const cases: ConformanceCase<LogStoreHarness>[] = [
  logCase('open() on empty storage reports firstIndex 1 and lastIndex 0', async (s) => {
    await s.expectOpen(1, 0);
    assertEqual(await s.read(1, 1), [], 'read(1, 1) of the empty log');
  }),

  logCase('appended entries read back equal: index, term, kind and data', async (s) => {
    await s.expectOpen(1, 0);
    const batch = [entry(1, 1, 'noop', 0), entry(2, 1, 'command', 5), entry(3, 2, 'command', 40)];
    await s.append(batch);
    const read = await s.read(1, 4);
    assertEqual(read, batch, 'read(1, 4)');
    for (const [i, e] of read.entries()) {
      if (!(e.data instanceof Uint8Array)) fail(`read(1, 4)[${i}].data is not a Uint8Array`);
    }
  }),

  logCase('read(from, to) returns exactly the entries in [from, to)', async (s) => {
    await s.expectOpen(1, 0);
    const log = entries(1, 11, 1);
    await s.append(log);
    for (const [from, to] of [
      [1, 11],
      [1, 2],
      [3, 7],
      [5, 6],
      [10, 11],
      [2, 10],
    ] as const) {
      assertEqual(await s.read(from, to), log.slice(from - 1, to - 1), `read(${from}, ${to})`);
    }
  }),

  logCase(
    'read(i, i) returns no entries for every i from firstIndex to lastIndex + 1',
    async (s) => {
      await s.expectOpen(1, 0);
      await s.append(entries(1, 6, 1));
      for (let i = 1; i <= 6; i++) assertEqual(await s.read(i, i), [], `read(${i}, ${i})`);
    },
  ),

  logCase(
    "read() outside the bounds rejects with a RaftError of code 'INVALID_ARGUMENT'",
    async (s) => {
      await s.expectOpen(1, 0);
      await s.expectReadRejected(1, 2, 'on an empty log');
      await s.expectReadRejected(0, 1, 'on an empty log');
      const log = entries(1, 6, 1);
      await s.append(log);
      await s.expectReadRejected(0, 3, '(from before firstIndex 1)');
      await s.expectReadRejected(0, 1, '(from before firstIndex 1)');
      await s.expectReadRejected(1, 7, '(to past lastIndex + 1 = 6)');
      await s.expectReadRejected(6, 7, '(entirely past lastIndex 5)');
      await s.expectReadRejected(9, 12, '(entirely past lastIndex 5)');
      // A rejected read is a caller error, not a storage failure: the store stays usable.
      assertEqual(await s.read(1, 6), log, 'read(1, 6) after the rejected reads');
    },
  ),

  logCase(
    'append() that would leave a gap rejects with StorageError and stores nothing',
    async (s) => {
      await s.expectOpen(1, 0);
      const gapOnEmpty = [entry(2, 1)];
      await expectRejection(
        'append([entry 2]) on an empty log',
        s.timeoutMs,
        () => s.current.append(gapOnEmpty),
        'with a StorageError',
        hasCode('STORAGE'),
      );
      await s.expectRestart(1, 0);
      const log = entries(1, 4, 1);
      await s.append(log);
      const gap = entries(5, 7, 1);
      await expectRejection(
        'append([entries 5..6]) after lastIndex 3',
        s.timeoutMs,
        () => s.current.append(gap),
        'with a StorageError',
        hasCode('STORAGE'),
      );
      // A storage error is fatal to the node, so the store may refuse further calls: check what
      // is durable through a new instance.
      await s.expectRestart(1, 3);
      await s.expectLog(log);
    },
  ),

  logCase('append() at or before lastIndex replaces the suffix with a shorter one', async (s) => {
    await s.expectOpen(1, 0);
    await s.append(entries(1, 6, 1));
    const replacement = entries(3, 5, 2);
    await s.append(replacement);
    await s.expectLog([...entries(1, 3, 1), ...replacement]);
  }),

  logCase('append() at or before lastIndex replaces the suffix with a longer one', async (s) => {
    await s.expectOpen(1, 0);
    await s.append(entries(1, 6, 1));
    // Starting exactly at lastIndex: only the last entry is replaced, then the log grows.
    const replacement = entries(5, 9, 2);
    await s.append(replacement);
    await s.expectLog([...entries(1, 5, 1), ...replacement]);
  }),

  logCase('append() at firstIndex replaces the whole log', async (s) => {
    await s.expectOpen(1, 0);
    await s.append(entries(1, 6, 1));
    const replacement = [entry(1, 3)];
    await s.append(replacement);
    await s.expectLog(replacement);
  }),

  logCase('appended entries survive a reopen', async (s) => {
    await s.expectOpen(1, 0);
    const log = [...entries(1, 4, 1), ...entries(4, 5, 2), ...entries(5, 9, 3)];
    await s.append(log.slice(0, 3));
    await s.append(log.slice(3, 4));
    await s.append(log.slice(4));
    await s.expectRestart(1, 8);
    await s.expectLog(log);
    // And a second restart, after appending to the reopened store.
    const more = entries(9, 11, 3);
    await s.append(more);
    await s.expectRestart(1, 10);
    await s.expectLog([...log, ...more]);
  }),

  logCase('a replaced suffix stays replaced after a reopen', async (s) => {
    await s.expectOpen(1, 0);
    await s.append(entries(1, 8, 1));
    const replacement = entries(4, 6, 2);
    await s.append(replacement);
    await s.expectRestart(1, 5);
    await s.expectLog([...entries(1, 4, 1), ...replacement]);
  }),

  logCase('a 1 MiB payload round-trips, also after a reopen', async (s) => {
    await s.expectOpen(1, 0);
    const log = [entry(1, 1), entry(2, 1, 'command', 1024 * 1024), entry(3, 1)];
    await s.append(log);
    await s.expectLog(log);
    await s.expectRestart(1, 3);
    await s.expectLog(log);
  }),

  logCase('an empty payload round-trips as an empty Uint8Array, also after a reopen', async (s) => {
    await s.expectOpen(1, 0);
    const log = [entry(1, 1, 'command', 0), entry(2, 1, 'noop', 0), entry(3, 1, 'command', 3)];
    await s.append(log);
    await s.expectLog(log);
    await s.expectRestart(1, 3);
    await s.expectLog(log);
  }),

  logCase('every entry kind round-trips: command, noop and membership', async (s) => {
    await s.expectOpen(1, 0);
    const kinds: readonly EntryKind[] = ['membership', 'noop', 'command'];
    const log = kinds.map((kind, i) => entry(i + 1, 1, kind, 12));
    await s.append(log);
    await s.expectLog(log);
    await s.expectRestart(1, 3);
    await s.expectLog(log);
  }),

  logCase('500 single-entry appends read back in one read(), also after a reopen', async (s) => {
    await s.expectOpen(1, 0);
    const log: LogEntry[] = [];
    for (let i = 1; i <= 500; i++) {
      const e = entry(i, 1 + Math.floor(i / 100), 'command', i % 17);
      log.push(e);
      await s.append([e]);
    }
    await s.expectLog(log);
    await s.expectRestart(1, 500);
    await s.expectLog(log);
  }),

  logCase(
    'a payload that views part of a larger buffer stores only the viewed bytes',
    async (s) => {
      await s.expectOpen(1, 0);
      const backing = payload(99, 99, 64);
      const view = backing.subarray(10, 30);
      const log: LogEntry[] = [
        { index: 1, term: 1, kind: 'command', data: view },
        { index: 2, term: 1, kind: 'command', data: backing.subarray(40, 41) },
      ];
      const expected = log.map((e) => ({ ...e, data: e.data.slice() }));
      await s.append(log);
      await s.expectLog(expected);
      await s.expectRestart(1, 2);
      await s.expectLog(expected);
    },
  ),

  logCase('terms up to Number.MAX_SAFE_INTEGER round-trip', async (s) => {
    await s.expectOpen(1, 0);
    const log = [
      entry(1, 1),
      entry(2, 2 ** 31),
      entry(3, 2 ** 32 + 1),
      entry(4, Number.MAX_SAFE_INTEGER),
    ];
    await s.append(log);
    await s.expectLog(log);
    await s.expectRestart(1, 4);
    await s.expectLog(log);
  }),

  logCase('after close(), calls fail only by rejecting with StorageError', async (s) => {
    await s.expectOpen(1, 0);
    const log = entries(1, 3, 1);
    await s.append(log);
    await s.close();
    const store = s.current;
    // The contract does not require a closed store to refuse calls, only that every failure is
    // a StorageError rejection. An append that resolves claims durability, so it must persist.
    const read = await race('read(1, 3) after close()', s.timeoutMs, () => store.read(1, 3));
    expectOnlyStorageFailure('read(1, 3) after close()', read);
    if (read.kind === 'resolved') assertEqual(read.value, log, 'read(1, 3) after close()');
    const extra = entry(3, 1);
    const append = await race('append([entry 3]) after close()', s.timeoutMs, () =>
      store.append([extra]),
    );
    expectOnlyStorageFailure('append([entry 3]) after close()', append);
    const appended = append.kind === 'resolved';
    await s.expectRestart(1, appended ? 3 : 2);
    await s.expectLog(appended ? [...log, extra] : log);
  }),
];

/**
 * Every log store case, in a stable order. Run them with `runConformance` or register them with
 * `describeLogStoreConformance` from `@raft/testing/vitest`. New cases are appended.
 */
export const logStoreConformanceCases: readonly ConformanceCase<LogStoreHarness>[] =
  Object.freeze(cases);
