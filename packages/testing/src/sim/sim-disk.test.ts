import { type HardState, type LogEntry, RaftError } from '@raft/core';
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
