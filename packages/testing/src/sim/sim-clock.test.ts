import { describe, expect, it } from 'vitest';
import { Scheduler } from './scheduler.js';
import { SimClock } from './sim-clock.js';

describe('SimClock', () => {
  it('reads virtual time and fires timers at now + delay', async () => {
    const scheduler = new Scheduler();
    const clock = new SimClock(scheduler);
    const fired: number[] = [];
    expect(clock.now()).toBe(0);
    clock.setTimer(300, () => fired.push(clock.now()));
    clock.setTimer(50, () => fired.push(clock.now()));
    expect(clock.activeTimers).toBe(2);
    await scheduler.runFor(1000, 100);
    expect(fired).toEqual([50, 300]);
    expect(clock.now()).toBe(1000);
    expect(clock.activeTimers).toBe(0);
  });

  it('cancels one timer, or all timers of this clock only', async () => {
    const scheduler = new Scheduler();
    const n1 = new SimClock(scheduler, { label: 'timer:n1' });
    const n2 = new SimClock(scheduler, { label: 'timer:n2' });
    const fired: string[] = [];
    const handle = n1.setTimer(10, () => fired.push('n1-a'));
    n1.setTimer(20, () => fired.push('n1-b'));
    n1.setTimer(30, () => fired.push('n1-c'));
    n2.setTimer(25, () => fired.push('n2'));
    handle.cancel();
    handle.cancel();
    expect(n1.activeTimers).toBe(2);
    await scheduler.runFor(20, 100);
    n1.cancelAll();
    expect(n1.activeTimers).toBe(0);
    n1.setTimer(1, () => fired.push('n1-after-cancelAll'));
    await scheduler.runFor(100, 100);
    expect(fired).toEqual(['n1-b', 'n1-after-cancelAll', 'n2']);
  });

  it('after dispose(), schedules nothing and returns inert handles', async () => {
    const scheduler = new Scheduler();
    const clock = new SimClock(scheduler);
    const fired: string[] = [];
    clock.setTimer(10, () => fired.push('before'));
    clock.dispose();
    const inert = clock.setTimer(1, () => fired.push('after'));
    inert.cancel();
    expect(scheduler.pending).toBe(0);
    await scheduler.runFor(100, 100);
    expect(fired).toEqual([]);
  });

  it('labels its events for traces', async () => {
    const scheduler = new Scheduler();
    const labels: string[] = [];
    scheduler.onStep = (_time, label) => labels.push(label);
    new SimClock(scheduler, { label: 'timer:n3' }).setTimer(1, () => {});
    new SimClock(scheduler).setTimer(2, () => {});
    await scheduler.runFor(5, 10);
    expect(labels).toEqual(['timer:n3', 'timer']);
  });
});
