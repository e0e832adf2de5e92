import { describe, expect, it } from 'vitest';
import type { Clock, TimerHandle } from '../interfaces/clock.js';
import { DeadlineQueue, Pending, PositionedProposals, settle, watchPending } from './proposals.js';

const at = (index: number): Pending<number> => {
  const p = new Pending<number>(0);
  p.index = index;
  p.promise.catch(() => {});
  return p;
};

describe('PositionedProposals', () => {
  it('keeps consecutive positions in the ring and far or colliding ones in the overflow', () => {
    const tracker = new PositionedProposals<number>();
    const near = Array.from({ length: 100 }, (_, i) => at(1000 + i));
    for (const p of near) tracker.add(p);
    const far = at(1000 + 200_000);
    const twin = at(1050);
    tracker.add(far);
    tracker.add(twin);
    expect(tracker.size).toBe(102);
    expect(tracker.hasOverflow).toBe(true);
    expect(tracker.take(1050)).toBe(near[50]);
    expect(tracker.takeOverflowAt(1050)).toEqual([twin]);
    tracker.delete(near[10] as Pending<number>);
    expect(tracker.take(1010)).toBeUndefined();
    expect(tracker.takeOverflowAt(1000 + 200_000)).toEqual([far]);
    expect(tracker.hasOverflow).toBe(false);
    expect(tracker.drain()).toHaveLength(98);
    expect(tracker.size).toBe(0);
  });

  it('takes in index order across a ring that grows and wraps', () => {
    const tracker = new PositionedProposals<number>();
    const all: Pending<number>[] = [];
    for (let i = 1; i <= 5000; i++) {
      const p = at(i);
      all.push(p);
      tracker.add(p);
      if (i % 3 === 0) expect(tracker.take(i - 2)).toBe(all[i - 3]);
    }
    for (let i = 1; i <= 5000; i++) if (i % 3 !== 1 || i > 4998) tracker.take(i);
    expect(tracker.size).toBe(0);
  });

  it('overflow settles without scanning (100,000 positions beyond the ring span)', () => {
    const tracker = new PositionedProposals<number>();
    tracker.add(at(1));
    const count = 100_000;
    for (let i = 0; i < count; i++) tracker.add(at(200_000 + i));
    let taken = 0;
    for (let i = 0; i < count; i++) taken += tracker.takeOverflowAt(200_000 + i).length;
    expect(taken).toBe(count);
    expect(tracker.take(1)?.index).toBe(1);
    expect(tracker.size).toBe(0);
  });
});

describe('watchPending', () => {
  /** A clock that counts the timers armed and fires them by hand. */
  const countingClock = () => {
    let now = 0;
    const timers: { at: number; callback: () => void; cancelled: boolean }[] = [];
    const clock: Clock = {
      now: () => now,
      setTimer(delayMs, callback): TimerHandle {
        const t = { at: now + delayMs, callback, cancelled: false };
        timers.push(t);
        return { cancel: () => (t.cancelled = true) };
      },
    };
    const advance = (ms: number) => {
      now += ms;
      for (const t of timers.splice(0)) {
        if (t.cancelled) continue;
        if (t.at <= now) t.callback();
        else timers.push(t);
      }
    };
    return { clock, timers, advance };
  };

  it('puts callers that pass the default bound in the shared queue: one timer for all', () => {
    const { clock, timers, advance } = countingClock();
    const expired: number[] = [];
    const queue = new DeadlineQueue<number>(clock, 1000, (p) => {
      expired.push(p.deadline);
      settle(p, false, new Error('timed out'));
    });
    const watch = (timeoutMs: number | undefined) => {
      const p = new Pending<number>(clock.now() + (timeoutMs ?? 1000));
      p.promise.catch(() => {});
      watchPending(
        p,
        queue,
        clock,
        timeoutMs,
        undefined,
        (q, err: Error) => settle(q, false, err),
        (ms) => new Error(`own ${ms}`),
        () => new Error('aborted'),
      );
      return p;
    };
    for (let i = 0; i < 100; i++) {
      watch(i % 2 === 0 ? undefined : 1000);
      advance(1);
    }
    expect(timers.filter((t) => !t.cancelled)).toHaveLength(1);
    const own = watch(250);
    expect(timers.filter((t) => !t.cancelled)).toHaveLength(2);
    advance(300);
    expect(own.settled).toBe(true);
    expect(expired).toHaveLength(0);
    advance(1000);
    expect(expired).toHaveLength(100);
  });
});
