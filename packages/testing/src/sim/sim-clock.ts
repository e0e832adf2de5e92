/**
 * A node's {@link Clock} in the simulator: virtual time from a shared {@link Scheduler}.
 *
 * Give every node (and every incarnation of a node after a restart) its own SimClock, so a
 * crash can cancel exactly that node's timers with {@link SimClock.cancelAll} or
 * {@link SimClock.dispose}.
 */
import type { Clock, TimerHandle } from '@raft/core';
import type { EventGroup, Scheduler } from './scheduler.js';

/** Options of a {@link SimClock}. */
export interface SimClockOptions {
  /** Label of the timer events in scheduler traces, e.g. `'timer:n1'`. Default `'timer'`. */
  readonly label?: string;
  /**
   * How fast this clock runs against virtual time (clock drift): 1.05 reads 5% more elapsed
   * time than passed, and fires its timers 5% early. Default 1. It starts at the scheduler's
   * time when created, and never decreases.
   */
  readonly rate?: number;
}

/** The handle a disposed clock returns: it never fires, and cancelling it does nothing. */
const INERT_TIMER: TimerHandle = Object.freeze({ cancel(): void {} });

/**
 * Virtual-time {@link Clock}.
 *
 * Contract (the Clock contract, in virtual time): `now()` is the scheduler's time (scaled by
 * `rate`) and never decreases; `setTimer(delayMs, cb)` runs `cb` once when `now()` has advanced
 * by `max(delayMs, 0)`, after every event already queued for that time, unless cancelled.
 * Timers do not repeat.
 */
export class SimClock implements Clock {
  private readonly scheduler: Scheduler;
  private readonly group: EventGroup;
  private readonly label: string;
  private readonly rate: number;
  private readonly origin: number;
  private disposed = false;

  constructor(scheduler: Scheduler, options: SimClockOptions = {}) {
    this.scheduler = scheduler;
    this.group = scheduler.createGroup();
    this.label = options.label ?? 'timer';
    this.rate = options.rate ?? 1;
    if (!(this.rate > 0) || !Number.isFinite(this.rate))
      throw new RangeError(`rate must be a positive number, got ${this.rate}`);
    this.origin = scheduler.now;
  }

  /** Virtual milliseconds since the simulation started, as this clock sees them (see `rate`). */
  now(): number {
    return this.rate === 1
      ? this.scheduler.now
      : this.origin + (this.scheduler.now - this.origin) * this.rate;
  }

  /**
   * Schedules `callback` after `delayMs` virtual milliseconds. After {@link dispose} it
   * schedules nothing and returns an inert handle. Throws a RangeError for a NaN or infinite
   * delay (a caller bug).
   */
  setTimer(delayMs: number, callback: () => void): TimerHandle {
    if (this.disposed) {
      return INERT_TIMER;
    }
    const delay = this.rate === 1 ? delayMs : delayMs / this.rate;
    return this.scheduler.schedule(delay, callback, this.label, this.group);
  }

  /** Number of timers set through this clock that have neither fired nor been cancelled. */
  get activeTimers(): number {
    return this.group.size;
  }

  /** Cancels every pending timer of this clock. The clock stays usable. */
  cancelAll(): void {
    this.group.cancelAll();
  }

  /**
   * Cancels every pending timer and makes later `setTimer` calls inert: for a crashed node, so
   * nothing it left behind can run again.
   */
  dispose(): void {
    this.disposed = true;
    this.group.cancelAll();
  }
}
