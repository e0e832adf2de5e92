import { type HardState, type LogEntry, RaftError, type SnapshotMeta } from '@raft/core';
import { describe, expect, it } from 'vitest';
import { Prng } from './prng.js';
import { Scheduler } from './scheduler.js';
import { SimDisk, type SimDiskOptions } from './sim-disk.js';

function entries(from: number, to: number, term = 1): LogEntry[] {
  const out: LogEntry[] = [];
  for (let index = from; index <= to; index++) {
    out.push({ index, term, kind: 'command', data: new Uint8Array([index & 0xff]) });
  }
  return out;
}

function shape(log: readonly LogEntry[]): string[] {
  return log.map((e) => `${e.index}/${e.term}`);
}

/** Records whether a promise settled, without ever producing an unhandled rejection. */
function track<T>(promise: Promise<T>): { settled: () => string } {
  let state = 'pending';
  promise.then(
    () => {
      state = 'resolved';
    },
    (err: unknown) => {
      state = `rejected:${RaftError.is(err) ? err.code : String(err)}`;
    },
  );
  return { settled: () => state };
}

function setup(options: SimDiskOptions = {}, seed = 1) {
  const scheduler = new Scheduler();
  const disk = new SimDisk(scheduler, new Prng(seed).fork('disk'), options);
  /** Runs the scheduler until nothing is left. */
  const idle = async (): Promise<void> => {
    const result = await scheduler.runUntil(() => false, 10_000);
    expect(result.reason).toBe('idle');
  };
  /** Runs the scheduler until `promise` settles, then returns it. */
  const run = async <T>(promise: Promise<T>): Promise<T> => {
    let done = false;
    const mark = (): void => {
      done = true;
    };
    promise.then(mark, mark);
    await scheduler.runUntil(() => done, 10_000);
    return promise;
  };
  return { scheduler, disk, idle, run };
}

describe('SimDisk durability', () => {
  it('makes appends and saves durable only at completion, after a delay in range', async () => {
    const { scheduler, disk, idle, run } = setup({ minDelayMs: 1, maxDelayMs: 2 });
    const log = disk.logStore;
    expect(await run(log.open())).toEqual({ firstIndex: 1, lastIndex: 0 });
    const start = scheduler.now;
    const append = track(log.append(entries(1, 3)));
    const state: HardState = { term: 2, votedFor: 'n1', commit: 0 };
    const save = track(disk.stableStore.save(state));
    expect(disk.durableEntries()).toEqual([]);
    expect(disk.durableHardState()).toBeNull();
    expect(disk.pendingOperations).toBe(2);
    await scheduler.step();
    expect(scheduler.now - start).toBeGreaterThanOrEqual(1);
    expect(scheduler.now - start).toBeLessThan(2);
    expect(shape(disk.durableEntries())).toEqual(['1/1', '2/1', '3/1']);
    expect(append.settled()).toBe('resolved');
    expect(save.settled()).toBe('pending');
    await idle();
    expect(disk.durableHardState()).toBe(state);
    expect(save.settled()).toBe('resolved');
    expect(await run(disk.stableStore.load())).toBe(state);
    expect(await run(log.read(2, 4))).toEqual(entries(2, 3));
  });

  it('completes operations in issue order even when later ones draw shorter delays', async () => {
    const { disk, idle, run } = setup({ minDelayMs: 0, maxDelayMs: 10 }, 4);
    const log = disk.logStore;
    await run(log.open());
    const order: string[] = [];
    const ops: Promise<void>[] = [];
    for (let i = 1; i <= 30; i++) {
      ops.push(log.append(entries(i, i)).then(() => void order.push(`a${i}`)));
      ops.push(
        disk.stableStore
          .save({ term: i, votedFor: null, commit: 0 })
          .then(() => void order.push(`s${i}`)),
      );
    }
    await idle();
    await run(Promise.all(ops));
    const expected = Array.from({ length: 30 }, (_, k) => [`a${k + 1}`, `s${k + 1}`]).flat();
    expect(order).toEqual(expected);
  });

  it('replaces a suffix atomically at completion', async () => {
    const { scheduler, disk, idle, run } = setup();
    const log = disk.logStore;
    await run(log.open());
    await run(log.append(entries(1, 5, 1)));
    await idle();
    const durableAppends: string[] = [];
    disk.onDurableAppend = (es, truncatedFrom) =>
      durableAppends.push(`${es[0]?.index}..${es.at(-1)?.index} truncatedFrom=${truncatedFrom}`);
    const issued: boolean[] = [];
    disk.onAppendIssued = (_es, replacesSuffix) => issued.push(replacesSuffix);
    const replace = track(log.append(entries(3, 4, 2)));
    // Until completion the durable log is entirely the old one.
    expect(shape(disk.durableEntries())).toEqual(['1/1', '2/1', '3/1', '4/1', '5/1']);
    await scheduler.step();
    // After it, entirely the new one: 5/1 is gone in the same step.
    expect(shape(disk.durableEntries())).toEqual(['1/1', '2/1', '3/2', '4/2']);
    expect(replace.settled()).toBe('resolved');
    const extend = log.append(entries(5, 5, 2));
    await idle();
    await run(extend);
    expect(durableAppends).toEqual(['3..4 truncatedFrom=3', '5..5 truncatedFrom=null']);
    expect(issued).toEqual([true, false]);
    expect(await run(log.open())).toEqual({ firstIndex: 1, lastIndex: 5 });
  });

  it('crash() loses pending operations, never settles them, and kills the stores', async () => {
    const { scheduler, disk, idle, run } = setup();
    const log = disk.logStore;
    const stable = disk.stableStore;
    await run(log.open());
    await run(log.append(entries(1, 2)));
    await run(stable.save({ term: 1, votedFor: null, commit: 0 }));
    await idle();
    const lostAppend = track(log.append(entries(3, 4)));
    const lostSave = track(stable.save({ term: 5, votedFor: 'n2', commit: 2 }));
    disk.crash();
    expect(disk.pendingOperations).toBe(0);
    expect(scheduler.pending).toBe(0);
    await idle();
    expect(lostAppend.settled()).toBe('pending');
    expect(lostSave.settled()).toBe('pending');
    expect(shape(disk.durableEntries())).toEqual(['1/1', '2/1']);
    expect(disk.durableHardState()).toEqual({ term: 1, votedFor: null, commit: 0 });
    // The old stores are dead.
    await expect(log.append(entries(3, 3))).rejects.toMatchObject({ code: 'STORAGE' });
    await expect(stable.load()).rejects.toMatchObject({ code: 'STORAGE' });
    // A restart sees exactly the durable layer.
    const { logStore, stableStore } = disk.reopen();
    expect(disk.logStore).toBe(logStore);
    expect(await run(logStore.open())).toEqual({ firstIndex: 1, lastIndex: 2 });
    expect(await run(stableStore.load())).toEqual({ term: 1, votedFor: null, commit: 0 });
    expect(await run(logStore.read(1, 3))).toEqual(entries(1, 2));
  });

  it('reopen() kills the previous stores and discards what they left pending', async () => {
    const { disk, idle, run } = setup();
    const old = disk.logStore;
    await run(old.open());
    const pending = track(old.append(entries(1, 1)));
    const fresh = disk.reopen();
    await idle();
    expect(pending.settled()).toBe('pending');
    await expect(old.open()).rejects.toMatchObject({ code: 'STORAGE' });
    expect(await run(fresh.logStore.open())).toEqual({ firstIndex: 1, lastIndex: 0 });
  });

  it('close() completes after earlier operations; later calls reject', async () => {
    const { disk, idle, run } = setup();
    const log = disk.logStore;
    await run(log.open());
    const append = track(log.append(entries(1, 1)));
    const closed = track(log.close());
    await idle();
    expect(append.settled()).toBe('resolved');
    expect(closed.settled()).toBe('resolved');
    await expect(log.read(1, 2)).rejects.toMatchObject({ code: 'STORAGE' });
    await expect(log.close()).rejects.toMatchObject({ code: 'STORAGE' });
  });
});

describe('SimDisk contract checks and faults', () => {
  it('read() is half-open and rejects ranges outside the log with INVALID_ARGUMENT', async () => {
    const { disk, run } = setup({ minDelayMs: 0, maxDelayMs: 0 });
    const log = disk.logStore;
    await run(log.open());
    await run(log.append(entries(1, 4)));
    expect(await run(log.read(2, 2))).toEqual([]);
    expect(await run(log.read(1, 5))).toEqual(entries(1, 4));
    for (const [from, to] of [
      [0, 2],
      [3, 2],
      [1, 6],
      [6, 6],
    ] as const) {
      await expect(run(log.read(from, to))).rejects.toSatisfy((err: unknown) =>
        RaftError.is(err, 'INVALID_ARGUMENT'),
      );
    }
  });

  it('rejects appends that leave a gap or are not contiguous with a StorageError', async () => {
    const { disk, run } = setup({ minDelayMs: 0, maxDelayMs: 0 });
    const log = disk.logStore;
    await expect(log.append(entries(1, 1))).rejects.toMatchObject({ code: 'STORAGE' }); // before open()
    await run(log.open());
    await run(log.append(entries(1, 2)));
    await expect(log.append(entries(4, 5))).rejects.toMatchObject({ code: 'STORAGE' });
    await expect(log.append([...entries(3, 3), ...entries(5, 5)])).rejects.toMatchObject({
      code: 'STORAGE',
    });
    await expect(log.append(entries(0, 1))).rejects.toMatchObject({ code: 'STORAGE' });
    // The pending view counts: an append may follow one that is not durable yet.
    const first = log.append(entries(3, 3));
    const second = log.append(entries(4, 4));
    await run(Promise.all([first, second]));
    expect(disk.durableEntries()).toHaveLength(4);
    await run(log.append([])); // an empty append is a no-op
  });

  it('failNext() makes the next matching operation reject without touching the durable layer', async () => {
    const { disk, idle, run } = setup();
    const log = disk.logStore;
    await run(log.open());
    disk.failNext('save');
    const append = track(log.append(entries(1, 1)));
    const save = track(disk.stableStore.save({ term: 1, votedFor: null, commit: 0 }));
    const save2 = track(disk.stableStore.save({ term: 2, votedFor: null, commit: 0 }));
    await idle();
    expect(append.settled()).toBe('resolved');
    expect(save.settled()).toBe('rejected:STORAGE');
    expect(save2.settled()).toBe('resolved');
    expect(disk.durableHardState()?.term).toBe(2);
    disk.failNext();
    const failed = track(log.append(entries(2, 2)));
    await idle();
    expect(failed.settled()).toBe('rejected:STORAGE');
    expect(disk.durableEntries()).toHaveLength(1);
  });

  it('reports durable saves to onDurableSave, and hook errors escape the scheduler step', async () => {
    const saved: number[] = [];
    const { scheduler, disk } = setup({ onDurableSave: (s) => saved.push(s.term) });
    void disk.stableStore.save({ term: 3, votedFor: null, commit: 0 });
    await scheduler.runUntil(() => false, 10);
    expect(saved).toEqual([3]);
    disk.onDurableSave = () => {
      throw new Error('checker: term went backwards');
    };
    void disk.stableStore.save({ term: 1, votedFor: null, commit: 0 });
    await expect(scheduler.step()).rejects.toThrow('term went backwards');
  });

  it('is deterministic: the same seed gives the same completion times', async () => {
    const completionTimes = async (seed: number): Promise<number[]> => {
      const { scheduler, disk, idle, run } = setup({}, seed);
      const times: number[] = [];
      await run(disk.logStore.open());
      for (let i = 1; i <= 20; i++) {
        void disk.logStore.append(entries(i, i)).then(() => void times.push(scheduler.now));
      }
      await idle();
      return times;
    };
    const a = await completionTimes(3);
    expect(a).toHaveLength(20);
    expect(await completionTimes(3)).toEqual(a);
    expect(await completionTimes(4)).not.toEqual(a);
  });
});

describe('SimDisk compaction and truncation', () => {
  it('compact() takes effect at completion, moves the first index and reports it', async () => {
    const { scheduler, disk, idle, run } = setup();
    const log = disk.logStore;
    await run(log.open());
    await run(log.append(entries(1, 10)));
    await idle();
    const compacted: number[] = [];
    disk.onDurableCompact = (firstIndex) => compacted.push(firstIndex);
    const compact = track(log.compact(4));
    expect(disk.durableFirstIndex()).toBe(1);
    expect(disk.durableEntries()).toHaveLength(10);
    await scheduler.step();
    expect(compact.settled()).toBe('resolved');
    expect(disk.durableFirstIndex()).toBe(5);
    expect(disk.durableLastIndex()).toBe(10);
    expect(shape(disk.durableEntries())).toEqual(['5/1', '6/1', '7/1', '8/1', '9/1', '10/1']);
    expect(compacted).toEqual([5]);
    expect(await run(log.read(5, 8))).toEqual(entries(5, 7));
    await expect(run(log.read(4, 6))).rejects.toSatisfy((err: unknown) =>
      RaftError.is(err, 'INVALID_ARGUMENT'),
    );
    // Below the first index: a no-op, reported to no one.
    await run(log.compact(3));
    expect(compacted).toEqual([5]);
    expect(await run(disk.reopen().logStore.open())).toEqual({ firstIndex: 5, lastIndex: 10 });
  });

  it('compact() past the last index leaves an empty log that the next append continues', async () => {
    const { disk, idle, run } = setup();
    const log = disk.logStore;
    await run(log.open());
    await run(log.append(entries(1, 5)));
    // Issued back to back: the append is checked against the log as the compaction leaves it.
    const compact = track(log.compact(20));
    const append = track(log.append(entries(21, 22, 2)));
    await idle();
    expect(compact.settled()).toBe('resolved');
    expect(append.settled()).toBe('resolved');
    expect(disk.durableFirstIndex()).toBe(21);
    expect(shape(disk.durableEntries())).toEqual(['21/2', '22/2']);
    await expect(log.append(entries(24, 24))).rejects.toMatchObject({ code: 'STORAGE' });
    // Rewriting compacted entries is refused too, at issue.
    await expect(log.append(entries(20, 23))).rejects.toMatchObject({ code: 'STORAGE' });
    expect(await run(log.open())).toEqual({ firstIndex: 21, lastIndex: 22 });
  });

  it('truncate() drops the suffix at completion, reports it, and appends continue at from', async () => {
    const { scheduler, disk, idle, run } = setup();
    const log = disk.logStore;
    await run(log.open());
    await run(log.append(entries(1, 6)));
    await run(log.compact(2));
    await idle();
    const truncated: number[] = [];
    disk.onDurableTruncate = (from) => truncated.push(from);
    const truncate = track(log.truncate(5));
    const append = track(log.append(entries(5, 7, 2)));
    expect(shape(disk.durableEntries())).toEqual(['3/1', '4/1', '5/1', '6/1']);
    await scheduler.step();
    expect(truncate.settled()).toBe('resolved');
    expect(shape(disk.durableEntries())).toEqual(['3/1', '4/1']);
    await idle();
    expect(append.settled()).toBe('resolved');
    expect(shape(disk.durableEntries())).toEqual(['3/1', '4/1', '5/2', '6/2', '7/2']);
    // From before the first index: everything goes, the first index stays.
    await run(log.truncate(1));
    expect(disk.durableEntries()).toEqual([]);
    expect(disk.durableFirstIndex()).toBe(3);
    expect(disk.durableLastIndex()).toBe(2);
    // Past the last index: a no-op, reported to no one.
    await run(log.truncate(9));
    expect(truncated).toEqual([5, 3]);
    expect(await run(log.open())).toEqual({ firstIndex: 3, lastIndex: 2 });
  });

  it('a crash loses a pending compact() and truncate(), and the pending view with them', async () => {
    const { disk, idle, run } = setup();
    const log = disk.logStore;
    await run(log.open());
    await run(log.append(entries(1, 8)));
    await idle();
    const compact = track(log.compact(10));
    const truncate = track(log.truncate(3));
    disk.crash();
    await idle();
    expect(compact.settled()).toBe('pending');
    expect(truncate.settled()).toBe('pending');
    expect(disk.durableFirstIndex()).toBe(1);
    expect(disk.durableEntries()).toHaveLength(8);
    const fresh = disk.reopen().logStore;
    expect(await run(fresh.open())).toEqual({ firstIndex: 1, lastIndex: 8 });
    // The view appends are checked against is the durable one again (not 11 after compact(10)).
    await run(fresh.append(entries(9, 9)));
    await expect(fresh.append(entries(12, 12))).rejects.toMatchObject({ code: 'STORAGE' });
  });

  it('compact() and truncate() honour failNext() and stall()', async () => {
    const { scheduler, disk, idle, run } = setup({ minDelayMs: 1, maxDelayMs: 1 });
    const log = disk.logStore;
    await run(log.open());
    await run(log.append(entries(1, 4)));
    disk.failNext('compact');
    disk.failNext('truncate');
    const compact = track(log.compact(2));
    const truncate = track(log.truncate(3));
    await idle();
    expect(compact.settled()).toBe('rejected:STORAGE');
    expect(truncate.settled()).toBe('rejected:STORAGE');
    expect(shape(disk.durableEntries())).toEqual(['1/1', '2/1', '3/1', '4/1']);
    disk.stall(50);
    const start = scheduler.now;
    await run(log.compact(1));
    expect(scheduler.now - start).toBeGreaterThanOrEqual(50);
    expect(disk.durableFirstIndex()).toBe(2);
  });
});

/** `value`, checked to be there (a source open() returned, say). */
function present<T>(value: T | null | undefined): T {
  expect(value).toBeDefined();
  expect(value).not.toBeNull();
  return value as T;
}

function meta(index: number, term = 1): SnapshotMeta {
  return {
    index,
    term,
    membership: {
      members: [
        { id: 'n1', address: 'n1', voter: true },
        { id: 'n2', address: 'n2', voter: false },
      ],
    },
  };
}

function bytes(seed: number, length: number): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (seed * 31 + i * 7) & 0xff);
}

describe('SimDisk snapshot store', () => {
  it('writes, commits atomically at completion, opens and reads ranges across chunks', async () => {
    const { scheduler, disk, run } = setup({ minDelayMs: 1, maxDelayMs: 2 });
    const store = disk.snapshotStore;
    expect(await run(store.open())).toBeNull();
    const committed: number[] = [];
    disk.onDurableSnapshot = (s) => committed.push(s.meta.index);
    const start = scheduler.now;
    const sink = await run(store.create(meta(7)));
    expect(scheduler.now - start).toBeGreaterThanOrEqual(1);
    // The caller reuses one buffer: the sink keeps copies.
    const buffer = new Uint8Array(10);
    const written: Uint8Array[] = [];
    for (let i = 0; i < 3; i++) {
      buffer.set(bytes(i, 10));
      written.push(buffer.slice());
      await run(sink.write(buffer));
    }
    await run(sink.write(new Uint8Array(0)));
    buffer.fill(0);
    const commit = track(sink.commit());
    expect(disk.pendingOperations).toBe(1);
    expect(disk.durableSnapshots()).toEqual([]); // not before its completion
    expect(commit.settled()).toBe('pending');
    await scheduler.step();
    expect(commit.settled()).toBe('resolved');
    expect(committed).toEqual([7]);
    const [durable] = disk.durableSnapshots();
    expect(durable?.meta).toEqual(meta(7));
    expect(durable?.size).toBe(30);
    expect(durable?.chunks).toEqual(written); // a chunk list, never concatenated
    const source = await run(store.open());
    expect(source?.meta).toEqual(meta(7));
    expect(source?.size).toBe(30);
    const all = new Uint8Array(30);
    for (const [i, c] of written.entries()) all.set(c, i * 10);
    expect(await run(present(source).read(0, 30))).toEqual(all);
    expect(await run(present(source).read(8, 15))).toEqual(all.subarray(8, 23));
    expect(await run(present(source).read(25, 100))).toEqual(all.subarray(25));
    expect(await run(present(source).read(30, 5))).toEqual(new Uint8Array(0));
    for (const [offset, length] of [
      [31, 1],
      [-1, 1],
      [0, 0],
      [0, 1.5],
    ] as const) {
      await expect(run(present(source).read(offset, length))).rejects.toSatisfy((err: unknown) =>
        RaftError.is(err, 'INVALID_ARGUMENT'),
      );
    }
  });

  it('a crash before commit completes loses the whole snapshot; after it, none is lost', async () => {
    const { scheduler, disk, idle, run } = setup();
    const store = disk.snapshotStore;
    const first = await run(store.create(meta(5)));
    await run(first.write(bytes(1, 40)));
    await run(first.commit());
    const sink = await run(store.create(meta(9)));
    await run(sink.write(bytes(2, 64)));
    await run(sink.write(bytes(3, 64)));
    const commit = track(sink.commit());
    expect(disk.pendingOperations).toBe(1);
    disk.crash(); // during the commit
    await idle();
    expect(commit.settled()).toBe('pending');
    expect(disk.durableSnapshots().map((s) => s.meta.index)).toEqual([5]);
    await expect(sink.write(bytes(4, 1))).rejects.toMatchObject({ code: 'STORAGE' });
    await expect(sink.abort()).resolves.toBeUndefined();
    const restarted = disk.reopen().snapshotStore;
    const source = await run(restarted.open());
    expect(source?.meta.index).toBe(5);
    expect(await run(present(source).read(0, 100))).toEqual(bytes(1, 40));
    // A crash right after a commit completed keeps it.
    const next = await run(restarted.create(meta(12)));
    await run(next.write(bytes(5, 8)));
    const done = track(next.commit());
    await scheduler.step();
    expect(done.settled()).toBe('resolved');
    disk.crash();
    const again = await run(disk.reopen().snapshotStore.open());
    expect(again?.meta.index).toBe(12);
    expect(await run(present(again).read(0, 8))).toEqual(bytes(5, 8));
  });

  it('a crash in the middle of the writes loses the snapshot and kills its sources', async () => {
    const { disk, idle, run } = setup();
    const store = disk.snapshotStore;
    const first = await run(store.create(meta(3)));
    await run(first.write(bytes(1, 10)));
    await run(first.commit());
    const source = await run(store.open());
    const sink = await run(store.create(meta(4)));
    const write = track(sink.write(bytes(2, 10)));
    disk.crash();
    await idle();
    expect(write.settled()).toBe('pending');
    await expect(present(source).read(0, 1)).rejects.toMatchObject({ code: 'STORAGE' });
    await expect(sink.commit()).rejects.toMatchObject({ code: 'STORAGE' });
    expect(disk.durableSnapshots().map((s) => s.meta.index)).toEqual([3]);
    expect((await run(disk.reopen().snapshotStore.open()))?.meta.index).toBe(3);
  });

  it('open() picks the highest index; commits prune to snapshotRetain; sources outlive pruning', async () => {
    const { disk, run } = setup({ snapshotRetain: 2 });
    const store = disk.snapshotStore;
    const commit = async (index: number, term = 1): Promise<void> => {
      const sink = await run(store.create(meta(index, term)));
      await run(sink.write(bytes(index, 16)));
      await run(sink.commit());
    };
    await commit(4);
    const old = await run(store.open());
    await commit(10);
    await commit(6); // lower than the newest: kept or pruned, never opened ahead of it
    expect((await run(store.open()))?.meta.index).toBe(10);
    expect(disk.durableSnapshots().map((s) => s.meta.index)).toEqual([6, 10]);
    await commit(10, 2); // same index: the one committed last wins
    expect(disk.durableSnapshots().map((s) => `${s.meta.index}/${s.meta.term}`)).toEqual([
      '10/1',
      '10/2',
    ]);
    expect((await run(store.open()))?.meta.term).toBe(2);
    // Snapshot 4 is long pruned; its source still reads it.
    expect(old?.meta.index).toBe(4);
    expect(await run(present(old).read(0, 16))).toEqual(bytes(4, 16));
    await present(old).close();
    await present(old).close();
    await expect(present(old).read(0, 1)).rejects.toMatchObject({ code: 'STORAGE' });
  });

  it('sinks are independent; abort() discards at once and never rejects', async () => {
    const { disk, idle, run } = setup();
    const store = disk.snapshotStore;
    const a = await run(store.create(meta(2)));
    const b = await run(store.create(meta(3)));
    await run(a.write(bytes(1, 5)));
    await run(b.write(bytes(2, 7)));
    await run(a.write(bytes(3, 5)));
    const pendingWrite = track(b.write(bytes(4, 7)));
    await b.abort(); // while its write is pending: that write's bytes go nowhere
    await b.abort();
    await idle();
    expect(pendingWrite.settled()).toBe('resolved');
    await expect(b.write(bytes(5, 1))).rejects.toMatchObject({ code: 'STORAGE' });
    await expect(b.commit()).rejects.toMatchObject({ code: 'STORAGE' });
    await run(a.commit());
    await a.abort(); // after commit: harmless
    await expect(a.commit()).rejects.toMatchObject({ code: 'STORAGE' });
    expect(disk.durableSnapshots().map((s) => [s.meta.index, s.size])).toEqual([[2, 10]]);
  });

  it('snapshot operations honour failNext() and stall(), in issue order with the other stores', async () => {
    const { scheduler, disk, idle, run } = setup({ minDelayMs: 0, maxDelayMs: 5 }, 7);
    const store = disk.snapshotStore;
    disk.failNext('snapshotWrite');
    const sink = await run(store.create(meta(1)));
    await expect(run(sink.write(bytes(1, 4)))).rejects.toMatchObject({ code: 'STORAGE' });
    // A failed write leaves the sink good only for abort().
    await expect(sink.commit()).rejects.toMatchObject({ code: 'STORAGE' });
    await sink.abort();
    disk.failNext('snapshotCommit');
    const sink2 = await run(store.create(meta(2)));
    await run(sink2.write(bytes(2, 4)));
    await expect(run(sink2.commit())).rejects.toMatchObject({ code: 'STORAGE' });
    expect(disk.durableSnapshots()).toEqual([]);
    disk.failNext('snapshotCreate');
    await expect(run(store.create(meta(3)))).rejects.toMatchObject({ code: 'STORAGE' });
    const sink3 = await run(store.create(meta(3)));
    await run(sink3.write(bytes(3, 4)));
    await run(sink3.commit());
    disk.failNext('snapshotOpen');
    await expect(run(store.open())).rejects.toMatchObject({ code: 'STORAGE' });
    const source = await run(store.open());
    disk.failNext('snapshotRead');
    await expect(run(present(source).read(0, 4))).rejects.toMatchObject({ code: 'STORAGE' });
    // Stalled, and ordered with a save issued in between.
    disk.stall(100);
    const start = scheduler.now;
    const order: string[] = [];
    const read = present(source)
      .read(0, 4)
      .then((b) => void order.push(`read:${b.length}`));
    const save = disk.stableStore
      .save({ term: 1, votedFor: null, commit: 0 })
      .then(() => void order.push('save'));
    const read2 = present(source)
      .read(2, 4)
      .then((b) => void order.push(`read:${b.length}`));
    await idle();
    await run(Promise.all([read, save, read2]));
    expect(order).toEqual(['read:4', 'save', 'read:2']);
    expect(scheduler.now - start).toBeGreaterThanOrEqual(100);
  });

  it('close() of the snapshot store kills its sinks and sources; reopen() sees the durable ones', async () => {
    const { disk, run } = setup();
    const store = disk.snapshotStore;
    const sink = await run(store.create(meta(8)));
    await run(sink.write(bytes(8, 3)));
    await run(sink.commit());
    const source = await run(store.open());
    const open = await run(store.create(meta(9)));
    await run(store.close());
    await expect(present(source).read(0, 1)).rejects.toMatchObject({ code: 'STORAGE' });
    await expect(open.write(bytes(9, 1))).rejects.toMatchObject({ code: 'STORAGE' });
    await expect(open.abort()).resolves.toBeUndefined();
    await expect(store.open()).rejects.toMatchObject({ code: 'STORAGE' });
    const restarted = disk.reopen();
    expect(restarted.snapshotStore).toBe(disk.snapshotStore);
    expect((await run(restarted.snapshotStore.open()))?.meta).toEqual(meta(8));
  });
});
