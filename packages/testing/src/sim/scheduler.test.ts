import { describe, expect, it } from 'vitest';
import { Prng } from './prng.js';
import { type FlushMode, Scheduler } from './scheduler.js';

const MODES: FlushMode[] = ['tick', 'immediate'];

async function drain(scheduler: Scheduler, maxSteps = 100_000): Promise<void> {
  const result = await scheduler.runUntil(() => false, maxSteps);
  expect(result.reason).toBe('idle');
}

describe('Scheduler ordering', () => {
  it('runs events by time, ties in scheduling order', async () => {
    const scheduler = new Scheduler();
    const log: string[] = [];
    scheduler.schedule(5, () => log.push('b@5'));
    scheduler.schedule(1, () => log.push('a@1'));
    scheduler.schedule(5, () => log.push('c@5'));
    scheduler.schedule(0, () => log.push('z@0'));
    scheduler.schedule(5, () => log.push('d@5'));
    await drain(scheduler);
    expect(log).toEqual(['z@0', 'a@1', 'b@5', 'c@5', 'd@5']);
    expect(scheduler.now).toBe(5);
    expect(scheduler.steps).toBe(5);
  });

  it('matches a sorted reference on random schedules with cancellations', async () => {
    const prng = new Prng(2024);
    const scheduler = new Scheduler();
    const expected: { time: number; seq: number }[] = [];
    const ran: number[] = [];
    const handles = [];
    for (let seq = 0; seq < 2000; seq++) {
      const time = prng.int(50); // many ties
      const handle = scheduler.schedule(time, () => ran.push(seq));
      handles.push({ handle, time, seq });
    }
    for (const h of handles) {
      if (prng.chance(0.3)) {
        h.handle.cancel();
        h.handle.cancel(); // twice is harmless
        expect(h.handle.isPending).toBe(false);
      } else {
        expected.push({ time: h.time, seq: h.seq });
      }
    }
    expect(scheduler.pending).toBe(expected.length);
    expected.sort((a, b) => a.time - b.time || a.seq - b.seq);
    await drain(scheduler);
    expect(ran).toEqual(expected.map((e) => e.seq));
  });

  it('lets callbacks schedule more events, including at the current time', async () => {
    const scheduler = new Scheduler();
    const log: string[] = [];
    scheduler.schedule(1, () => {
      log.push('first');
      scheduler.schedule(0, () => log.push('same-time'));
      scheduler.schedule(-3, () => log.push('negative-delay-is-zero'));
    });
    scheduler.schedule(1, () => log.push('queued-earlier'));
    await drain(scheduler);
    expect(log).toEqual(['first', 'queued-earlier', 'same-time', 'negative-delay-is-zero']);
    expect(scheduler.now).toBe(1);
  });

  it('rejects NaN and infinite delays, and scheduleAt in the past', async () => {
    const scheduler = new Scheduler();
    expect(() => scheduler.schedule(Number.NaN, () => {})).toThrow(RangeError);
    expect(() => scheduler.schedule(Number.POSITIVE_INFINITY, () => {})).toThrow(RangeError);
    scheduler.schedule(10, () => {});
    await scheduler.step();
    expect(() => scheduler.scheduleAt(9, () => {})).toThrow(RangeError);
    const at = scheduler.scheduleAt(10, () => {});
    expect(at.time).toBe(10);
  });

  it('cancelling an event that already ran does nothing', async () => {
    const scheduler = new Scheduler();
    let runs = 0;
    const handle = scheduler.schedule(1, () => runs++);
    const other = scheduler.schedule(2, () => runs++);
    await scheduler.step();
    handle.cancel();
    expect(other.isPending).toBe(true);
    await drain(scheduler);
    expect(runs).toBe(2);
  });

  it('cancels a group of events together, leaving others alone', async () => {
    const scheduler = new Scheduler();
    const group = scheduler.createGroup();
    const log: string[] = [];
    scheduler.schedule(1, () => log.push('g1'), 'g', group);
    const g2 = scheduler.schedule(2, () => log.push('g2'), 'g', group);
    scheduler.schedule(3, () => log.push('g3'), 'g', group);
    scheduler.schedule(2, () => log.push('free'));
    expect(group.size).toBe(3);
    await scheduler.step(); // runs g1: it leaves the group
    expect(group.size).toBe(2);
    g2.cancel();
    expect(group.size).toBe(1);
    group.cancelAll();
    expect(group.size).toBe(0);
    await drain(scheduler);
    expect(log).toEqual(['g1', 'free']);
  });

  it('step() resolves false on an empty queue and counts only executed events', async () => {
    const scheduler = new Scheduler();
    expect(await scheduler.step()).toBe(false);
    scheduler.schedule(1, () => {}).cancel();
    expect(await scheduler.step()).toBe(false);
    expect(scheduler.steps).toBe(0);
    expect(scheduler.peekTime()).toBeUndefined();
  });

  it('reports the trace of every event through onStep', async () => {
    const scheduler = new Scheduler();
    const trace: string[] = [];
    scheduler.onStep = (time, label, step) => trace.push(`${step}:${time}:${label}`);
    scheduler.schedule(2, () => {}, 'b');
    scheduler.schedule(1, () => {}, 'a');
    await drain(scheduler);
    expect(trace).toEqual(['1:1:a', '2:2:b']);
  });

  it('propagates an exception thrown by a callback and stays usable', async () => {
    const scheduler = new Scheduler();
    scheduler.schedule(1, () => {
      throw new Error('boom');
    });
    scheduler.schedule(2, () => {});
    await expect(scheduler.step()).rejects.toThrow('boom');
    expect(await scheduler.step()).toBe(true);
  });

  it('refuses a concurrent run', async () => {
    const scheduler = new Scheduler();
    scheduler.schedule(1, () => {});
    const first = scheduler.step();
    await expect(scheduler.step()).rejects.toThrow(/already running/);
    await first;
  });
});

describe('Scheduler bounded runs', () => {
  it('runUntil stops when the predicate holds, when idle, or at the step limit', async () => {
    const scheduler = new Scheduler();
    let count = 0;
    const tick = (): void => {
      count++;
      scheduler.schedule(10, tick);
    };
    scheduler.schedule(10, tick);
    expect(await scheduler.runUntil(() => count === 0, 5)).toEqual({ reason: 'done', steps: 0 });
    expect(await scheduler.runUntil(() => count >= 3, 100)).toEqual({ reason: 'done', steps: 3 });
    expect(scheduler.now).toBe(30);
    expect(await scheduler.runUntil(() => false, 4)).toEqual({ reason: 'stepLimit', steps: 4 });
    expect(count).toBe(7);

    const empty = new Scheduler();
    empty.schedule(1, () => {});
    expect(await empty.runUntil(() => false, 10)).toEqual({ reason: 'idle', steps: 1 });
  });

  it('runFor runs due events (inclusive), then lets idle time pass', async () => {
    const scheduler = new Scheduler();
    const log: number[] = [];
    for (const t of [5, 10, 15]) {
      scheduler.schedule(t, () => log.push(t));
    }
    expect(await scheduler.runFor(10, 100)).toEqual({ reason: 'done', steps: 2 });
    expect(log).toEqual([5, 10]);
    expect(scheduler.now).toBe(10);
    expect(await scheduler.runFor(100, 100)).toEqual({ reason: 'done', steps: 1 });
    expect(scheduler.now).toBe(110);
    scheduler.schedule(1, () => {});
    scheduler.schedule(2, () => {});
    expect(await scheduler.runFor(50, 1)).toEqual({ reason: 'stepLimit', steps: 1 });
    expect(scheduler.now).toBe(111);
    await expect(scheduler.runFor(-1, 1)).rejects.toThrow(RangeError);
  });
});

/** An async workload with deep promise chains, like a Ready loop awaiting a disk. */
function asyncWorkload(scheduler: Scheduler, seed: number): string[] {
  const prng = new Prng(seed);
  const trace: string[] = [];
  const sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => scheduler.schedule(ms, resolve, 'sleep'));
  const worker = async (name: string): Promise<void> => {
    for (let i = 0; i < 20; i++) {
      await sleep(prng.int(5));
      const woke = scheduler.now;
      // A chain of awaits after each wake-up, deeper than any fixed number of microtask turns.
      for (let j = 0; j < 50; j++) {
        await Promise.resolve();
      }
      trace.push(`${woke}:${name}:${i}:+${scheduler.now - woke}`);
    }
  };
  for (const name of ['a', 'b', 'c']) {
    scheduler.schedule(0, () => void worker(name));
  }
  return trace;
}

describe('Scheduler microtask discipline', () => {
  for (const mode of MODES) {
    it(`[${mode}] settles every continuation of an event before the next event`, async () => {
      const scheduler = new Scheduler({ flush: mode });
      const log: string[] = [];
      scheduler.schedule(1, () => {
        void (async () => {
          for (let i = 0; i < 1000; i++) {
            await null;
          }
          log.push('deep chain done');
        })();
      });
      scheduler.schedule(1, () => log.push('next event'));
      await drain(scheduler);
      expect(log).toEqual(['deep chain done', 'next event']);
    });

    it(`[${mode}] settles what the caller started before running the first event`, async () => {
      const scheduler = new Scheduler({ flush: mode });
      const log: string[] = [];
      scheduler.schedule(0, () => log.push('event'));
      void (async () => {
        for (let i = 0; i < 100; i++) {
          await null;
        }
        log.push('caller work');
      })();
      await scheduler.step();
      expect(log).toEqual(['caller work', 'event']);
    });

    it(`[${mode}] gives identical traces for the same seed`, async () => {
      const run = async (seed: number): Promise<string[]> => {
        const scheduler = new Scheduler({ flush: mode, yieldEverySteps: 7 });
        const trace = asyncWorkload(scheduler, seed);
        await drain(scheduler);
        return trace;
      };
      const a = await run(1);
      expect(a).toHaveLength(60);
      expect(await run(1)).toEqual(a);
      expect(await run(2)).not.toEqual(a);
      // Every chain finished within the virtual instant it woke up in.
      expect(a.every((line) => line.endsWith(':+0'))).toBe(true);
    });
  }

  it('tick and immediate flushing produce the same trace', async () => {
    const traces: string[][] = [];
    for (const mode of MODES) {
      const scheduler = new Scheduler({ flush: mode });
      const trace = asyncWorkload(scheduler, 77);
      await drain(scheduler);
      traces.push(trace);
    }
    expect(traces[0]).toEqual(traces[1]);
  });
});
