/**
 * Conformance cases for {@link LogStore} implementations, checked against the contract in the
 * interface's doc comment: bounds reported by `open()`, `[from, to)` reads, atomic suffix
 * replacement, prefix compaction and suffix truncation, durability across a restart, and how
 * errors are reported.
 *
 * The example cases each pin one contract point; the last case is a property: random sequences
 * of every call, reopens included, checked after each step against a reference model
 * (log-store-model.ts), which finds the bugs that only a combination of steps shows.
 */
import type { EntryKind, LogBounds, LogEntry, LogIndex, LogStore } from '@raft/core';
import type { ConformanceCase } from './conformance-case.js';
import { describeAppend, LogModel, type LogOperation, logOperations } from './log-store-model.js';
import { type PropertySteps, propertyCase } from './store-property.js';
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

  compact(upTo: LogIndex): Promise<void> {
    const store = this.store;
    return settle(`compact(${upTo})`, this.timeoutMs, () => store.compact(upTo));
  }

  truncate(from: LogIndex): Promise<void> {
    const store = this.store;
    return settle(`truncate(${from})`, this.timeoutMs, () => store.truncate(from));
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
   * of the whole range returns them, and a read one past the end is rejected (and, when
   * `firstIndex` is past 1, a read starting one before it).
   */
  async expectLog(expected: readonly LogEntry[], firstIndex: LogIndex = 1): Promise<void> {
    const to = firstIndex + expected.length;
    assertEqual(await this.read(firstIndex, to), expected, `read(${firstIndex}, ${to})`);
    await this.expectReadRejected(firstIndex, to + 1, `(one past lastIndex ${to - 1})`);
    if (firstIndex > 1) {
      await this.expectReadRejected(
        firstIndex - 1,
        to,
        `(one before firstIndex ${firstIndex}, after compaction)`,
      );
    }
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

/**
 * Runs one generated sequence against the store and the model: after every step the store's
 * bounds must be the model's (read through the edges: the first and last entries read back, one
 * before and one past reject), and at the end its whole content, before and after a reopen.
 */
async function runLogOperations(
  s: LogStoreSession,
  operations: readonly LogOperation[],
  steps: PropertySteps,
): Promise<void> {
  const model = new LogModel();
  steps.begin('open()');
  await s.expectOpen(1, 0);
  for (const op of operations) {
    switch (op.op) {
      case 'append': {
        const batch = model.batch(op);
        steps.begin(describeAppend(batch, model));
        await s.append(batch);
        model.append(batch);
        break;
      }
      case 'compact': {
        const upTo = model.compactTarget(op);
        steps.begin(`compact(${upTo}) of ${model.describe()}`);
        await s.compact(upTo);
        model.compact(upTo);
        break;
      }
      case 'truncate': {
        const from = model.truncateTarget(op);
        steps.begin(`truncate(${from}) of ${model.describe()}`);
        await s.truncate(from);
        model.truncate(from);
        break;
      }
      case 'read': {
        const [from, to] = model.readRange(op);
        steps.begin(`read(${from}, ${to}) of ${model.describe()}`);
        assertEqual(await s.read(from, to), model.slice(from, to), `read(${from}, ${to})`);
        break;
      }
      case 'readOutside': {
        const [from, to] = model.outsideRange(op);
        steps.begin(`read(${from}, ${to}) of ${model.describe()}, out of range`);
        await s.expectReadRejected(from, to, `(outside the log ${model.describe()})`);
        break;
      }
      case 'reopen': {
        steps.begin(`close(), reopen, open() of ${model.describe()}`);
        await s.expectRestart(model.firstIndex, model.lastIndex);
        break;
      }
    }
    await expectBounds(s, model);
  }
  steps.begin(`read of the whole log ${model.describe()}`);
  await s.expectLog(model.entries, model.firstIndex);
  steps.begin(`close(), reopen, open() and read of the whole log ${model.describe()}`);
  await s.expectRestart(model.firstIndex, model.lastIndex);
  await s.expectLog(model.entries, model.firstIndex);
}

/**
 * Requires the store's bounds to be the model's, with a few reads at the edges (the log has no
 * call that reports bounds but open(), and reading it whole after every step would cost a
 * durable store too much): the first and last entries read back equal, and the reads one
 * before firstIndex and one past lastIndex reject.
 */
async function expectBounds(s: LogStoreSession, model: LogModel): Promise<void> {
  const first = model.firstIndex;
  const last = model.lastIndex;
  const log = model.describe();
  if (last < first) {
    assertEqual(
      await s.read(first, first),
      [],
      `read(${first}, ${first}) (bounds check: the empty log ${log})`,
    );
  } else {
    assertEqual(
      await s.read(first, first + 1),
      model.slice(first, first + 1),
      `read(${first}, ${first + 1}) (bounds check: the first entry of ${log})`,
    );
    if (last > first) {
      assertEqual(
        await s.read(last, last + 1),
        model.slice(last, last + 1),
        `read(${last}, ${last + 1}) (bounds check: the last entry of ${log})`,
      );
    }
  }
  await s.expectReadRejected(first - 1, first, `(bounds check: one before the log ${log})`);
  await s.expectReadRejected(last + 1, last + 2, `(bounds check: one past the log ${log})`);
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
  logCase('compact(upTo) drops the entries up to upTo: firstIndex becomes upTo + 1', async (s) => {
    await s.expectOpen(1, 0);
    const log = entries(1, 11, 1);
    await s.append(log);
    await s.compact(4);
    await s.expectLog(log.slice(4), 5);
    for (const [from, to] of [
      [5, 6],
      [7, 9],
      [10, 11],
    ] as const) {
      assertEqual(await s.read(from, to), log.slice(from - 1, to - 1), `read(${from}, ${to})`);
    }
    await s.expectRestart(5, 10);
    await s.expectLog(log.slice(4), 5);
    // A second compaction moves firstIndex on again, and survives another reopen.
    await s.compact(8);
    await s.expectLog(log.slice(8), 9);
    await s.expectRestart(9, 10);
    await s.expectLog(log.slice(8), 9);
  }),

  logCase(
    "read() below firstIndex after compact() rejects with a RaftError of code 'INVALID_ARGUMENT'",
    async (s) => {
      await s.expectOpen(1, 0);
      const log = entries(1, 11, 1);
      await s.append(log);
      await s.compact(5);
      await s.expectReadRejected(1, 11, '(from 1, compacted up to 5)');
      await s.expectReadRejected(5, 7, '(from 5, compacted up to 5)');
      await s.expectReadRejected(5, 5, '(the empty range at 5, before firstIndex 6)');
      await s.expectReadRejected(3, 4, '(entirely compacted)');
      assertEqual(await s.read(6, 6), [], 'read(6, 6) at firstIndex');
      // A rejected read is a caller error, not a storage failure: the store stays usable.
      assertEqual(await s.read(6, 11), log.slice(5), 'read(6, 11) after the rejected reads');
      await s.expectRestart(6, 10);
      await s.expectReadRejected(1, 2, '(from 1, compacted up to 5, after a reopen)');
      await s.expectReadRejected(5, 6, '(from 5, compacted up to 5, after a reopen)');
    },
  ),

  logCase(
    'compact(lastIndex) empties the log, and the next append starts at lastIndex + 1',
    async (s) => {
      await s.expectOpen(1, 0);
      await s.append(entries(1, 6, 1));
      await s.compact(5);
      assertEqual(await s.read(6, 6), [], 'read(6, 6) of the compacted, empty log');
      await s.expectReadRejected(6, 7, '(the log is empty after compact(5))');
      await s.expectRestart(6, 5);
      const more = entries(6, 9, 2);
      await s.append(more);
      await s.expectLog(more, 6);
      await s.expectRestart(6, 8);
      await s.expectLog(more, 6);
    },
  ),

  logCase(
    'compact() past lastIndex leaves an empty log at upTo + 1, and the next append starts there',
    async (s) => {
      await s.expectOpen(1, 0);
      await s.append(entries(1, 6, 1));
      // A follower that installed a snapshot at 20 beyond its log ending at 5.
      await s.compact(20);
      assertEqual(await s.read(21, 21), [], 'read(21, 21) of the empty log after compact(20)');
      await s.expectReadRejected(5, 6, '(compacted up to 20)');
      await s.expectReadRejected(21, 22, '(the log is empty after compact(20))');
      await s.expectRestart(21, 20);
      const more = entries(21, 24, 3);
      await s.append(more);
      await s.expectLog(more, 21);
      await s.expectRestart(21, 23);
      await s.expectLog(more, 21);
    },
  ),

  logCase('compact() on an empty log moves firstIndex past upTo', async (s) => {
    await s.expectOpen(1, 0);
    await s.compact(7);
    await s.expectRestart(8, 7);
    const log = entries(8, 10, 1);
    await s.append(log);
    await s.expectLog(log, 8);
    await s.expectRestart(8, 9);
  }),

  logCase('compact() below firstIndex is a no-op', async (s) => {
    await s.expectOpen(1, 0);
    const log = entries(1, 11, 1);
    await s.append(log);
    await s.compact(0);
    await s.expectLog(log);
    await s.compact(4);
    await s.compact(2);
    // upTo = firstIndex - 1: everything up to it is already gone.
    await s.compact(4);
    await s.compact(0);
    await s.expectLog(log.slice(4), 5);
    await s.expectRestart(5, 10);
    await s.compact(3);
    await s.expectLog(log.slice(4), 5);
    await s.expectRestart(5, 10);
  }),

  logCase('append() replaces a suffix after compact(), also after a reopen', async (s) => {
    await s.expectOpen(1, 0);
    await s.append(entries(1, 11, 1));
    await s.compact(3);
    const replacement = entries(6, 9, 2);
    await s.append(replacement);
    const expected = [...entries(4, 6, 1), ...replacement];
    await s.expectLog(expected, 4);
    await s.expectRestart(4, 8);
    await s.expectLog(expected, 4);
    // Replacing from firstIndex itself keeps firstIndex.
    const whole = entries(4, 6, 3);
    await s.append(whole);
    await s.expectLog(whole, 4);
    await s.expectRestart(4, 5);
    await s.expectLog(whole, 4);
  }),

  logCase(
    'append() that would leave a gap after compact() rejects with StorageError',
    async (s) => {
      await s.expectOpen(1, 0);
      const log = entries(1, 6, 1);
      await s.append(log);
      await s.compact(10);
      const gap = [entry(12, 2)];
      await expectRejection(
        'append([entry 12]) after compact(10)',
        s.timeoutMs,
        () => s.current.append(gap),
        'with a StorageError',
        hasCode('STORAGE'),
      );
      await s.expectRestart(11, 10);
    },
  ),

  logCase('truncate(from) drops the entries from `from` on, also after a reopen', async (s) => {
    await s.expectOpen(1, 0);
    const log = entries(1, 11, 1);
    await s.append(log);
    await s.truncate(7);
    await s.expectLog(log.slice(0, 6));
    await s.expectRestart(1, 6);
    await s.expectLog(log.slice(0, 6));
    // truncate(lastIndex) drops exactly the last entry.
    await s.truncate(6);
    await s.expectLog(log.slice(0, 5));
    await s.expectRestart(1, 5);
  }),

  logCase('truncate() past lastIndex is a no-op', async (s) => {
    await s.expectOpen(1, 0);
    const log = entries(1, 11, 1);
    await s.append(log);
    await s.truncate(11);
    await s.truncate(50);
    await s.expectLog(log);
    await s.expectRestart(1, 10);
    await s.truncate(11);
    await s.expectLog(log);
    await s.expectRestart(1, 10);
  }),

  logCase('appends after truncate() continue at `from`, also after a reopen', async (s) => {
    await s.expectOpen(1, 0);
    await s.append(entries(1, 11, 1));
    await s.truncate(5);
    await s.expectLog(entries(1, 5, 1));
    const more = entries(5, 8, 2);
    await s.append(more);
    const expected = [...entries(1, 5, 1), ...more];
    await s.expectLog(expected);
    await s.expectRestart(1, 7);
    await s.expectLog(expected);
  }),

  logCase('truncate() at or before firstIndex empties the log and keeps firstIndex', async (s) => {
    await s.expectOpen(1, 0);
    await s.append(entries(1, 11, 1));
    await s.compact(4);
    await s.truncate(5);
    assertEqual(await s.read(5, 5), [], 'read(5, 5) after truncate(firstIndex)');
    await s.expectReadRejected(5, 6, '(the log is empty after truncate(5))');
    await s.expectRestart(5, 4);
    await s.truncate(2);
    await s.expectRestart(5, 4);
    const more = entries(5, 7, 2);
    await s.append(more);
    await s.expectLog(more, 5);
    await s.expectRestart(5, 6);
    await s.expectLog(more, 5);
  }),

  logCase(
    'truncate(firstIndex) then compact(S) gives the empty log at S + 1 (snapshot install)',
    async (s) => {
      await s.expectOpen(1, 0);
      await s.append(entries(1, 11, 1));
      await s.compact(3);
      // A snapshot at 15 from the leader contradicts the log: discard it, then compact past it.
      await s.truncate(4);
      await s.expectRestart(4, 3);
      await s.compact(15);
      await s.expectReadRejected(4, 5, '(discarded, then compacted up to 15)');
      assertEqual(await s.read(16, 16), [], 'read(16, 16) of the empty log');
      await s.expectRestart(16, 15);
      const more = entries(16, 18, 4);
      await s.append(more);
      await s.expectLog(more, 16);
      await s.expectRestart(16, 17);
      await s.expectLog(more, 16);
    },
  ),

  logCase(
    'after close(), compact() and truncate() fail only by rejecting with StorageError',
    async (s) => {
      await s.expectOpen(1, 0);
      const log = entries(1, 11, 1);
      await s.append(log);
      await s.close();
      const store = s.current;
      // As for append: a call that resolves claims durability, so its effect must persist.
      const compact = await race('compact(3) after close()', s.timeoutMs, () => store.compact(3));
      expectOnlyStorageFailure('compact(3) after close()', compact);
      const truncate = await race('truncate(9) after close()', s.timeoutMs, () =>
        store.truncate(9),
      );
      expectOnlyStorageFailure('truncate(9) after close()', truncate);
      const first = compact.kind === 'resolved' ? 4 : 1;
      const last = truncate.kind === 'resolved' ? 8 : 10;
      await s.expectRestart(first, last);
      await s.expectLog(log.slice(first - 1, last), first);
    },
  ),

  propertyCase(
    'random sequences of append, compact, truncate, read and reopen agree with a reference model',
    (instance, timeoutMs) => new LogStoreSession(instance, timeoutMs, false),
    logOperations,
    runLogOperations,
  ),
];

/**
 * Every log store case, in a stable order. Run them with `runConformance` or register them with
 * `describeLogStoreConformance` from `@raft/testing/vitest`. New cases are appended.
 */
export const logStoreConformanceCases: readonly ConformanceCase<LogStoreHarness>[] =
  Object.freeze(cases);
