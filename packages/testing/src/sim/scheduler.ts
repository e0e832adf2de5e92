/**
 * Virtual time for the simulator: a priority queue of callbacks ordered by (time, sequence).
 *
 * Nothing here reads a real clock. Time only moves when an event runs: `now` jumps to the
 * event's time. Events with the same time run in the order they were scheduled (the sequence
 * number breaks ties), so a run is a pure function of the seed that produced the delays.
 *
 * Microtask discipline: after each event callback the scheduler waits until every
 * promise continuation the callback triggered has run, however deep the chain, before the next
 * event. The simulated system has no real I/O, so the order in which those continuations run is
 * fixed by the code and the seed, never by the host.
 *
 * How the wait is done ({@link FlushMode}):
 * - `'tick'` (default): from inside a microtask, queue a `process.nextTick` and wait for it.
 *   Node runs next-tick callbacks only once V8's microtask queue is EMPTY (the queue is drained
 *   to exhaustion, including microtasks queued while draining), so when the tick fires every
 *   continuation triggered by the event has settled. Measured 0.4–0.8 µs per event (Node 20).
 * - `'immediate'`: wait for a `setImmediate` turn (the literal form of the discipline). Also
 *   immune to simulated code that itself calls `process.nextTick` (which the `'tick'` mode is
 *   not: a tick queued by the callback could run before ours and queue microtasks that run after
 *   the next event). Measured 1.6–3.5 µs per event, because each turn goes through the host's
 *   poll phase.
 *
 * `@raft/core` cannot call `process.nextTick` (it has no Node types), so `'tick'` is exact for
 * everything the simulator runs; `'immediate'` stays available as a cross-check.
 */
import type { TimerHandle } from '@raft/core';

/** How the scheduler waits for promise continuations after each event (see the module doc). */
export type FlushMode = 'tick' | 'immediate';

/** Options of a {@link Scheduler}. */
export interface SchedulerOptions {
  /** Default `'tick'`. */
  readonly flush?: FlushMode;
  /**
   * Every this many events, flush with a `setImmediate` turn even in `'tick'` mode, so a long
   * run does not starve the host's event loop (test-runner RPC, timeouts, Ctrl-C). It changes
   * nothing in the simulation: the simulated system has no real I/O. Default 4096.
   */
  readonly yieldEverySteps?: number;
}

/** Why a bounded run stopped. */
export type RunStopReason =
  /** The predicate held (`runUntil`), or virtual time reached the target (`runFor`). */
  | 'done'
  /** No events were left and the predicate was still false (`runUntil` only). */
  | 'idle'
  /** `maxSteps` events ran first. */
  | 'stepLimit';

/** Result of {@link Scheduler.runUntil} and {@link Scheduler.runFor}. */
export interface RunResult {
  readonly reason: RunStopReason;
  /** Events this run executed. */
  readonly steps: number;
}

/** A scheduled event. Cancelling it (any number of times, even after it ran) is harmless. */
export interface EventHandle extends TimerHandle {
  /** Virtual time (ms) at which the event runs. */
  readonly time: number;
  /** Free-form label, shown by trace hooks. Empty when none was given. */
  readonly label: string;
  /** True while the event is queued: not yet run and not cancelled. */
  readonly isPending: boolean;
}

/** Trace hook: called just before an event's callback runs. */
export type StepListener = (time: number, label: string, step: number) => void;

const NOT_QUEUED = -1;

/**
 * A queued callback. Doubles as its own handle (no wrapper object) and carries the links of an
 * optional {@link EventGroup}.
 */
class SchedulerEvent implements EventHandle {
  time: number;
  readonly seq: number;
  readonly label: string;
  callback: (() => void) | null;
  /** Position in the heap array, or NOT_QUEUED. */
  index: number;
  readonly heap: EventHeap;
  group: EventGroupImpl | null;
  groupPrev: SchedulerEvent | null;
  groupNext: SchedulerEvent | null;

  constructor(
    time: number,
    seq: number,
    label: string,
    callback: () => void,
    heap: EventHeap,
    group: EventGroupImpl | null,
  ) {
    this.time = time;
    this.seq = seq;
    this.label = label;
    this.callback = callback;
    this.index = NOT_QUEUED;
    this.heap = heap;
    this.group = group;
    this.groupPrev = null;
    this.groupNext = null;
  }

  get isPending(): boolean {
    return this.index !== NOT_QUEUED;
  }

  cancel(): void {
    if (this.index !== NOT_QUEUED) {
      this.heap.remove(this);
      this.callback = null;
      detachFromGroup(this);
    }
  }
}

/** Strict (time, seq) order. Sequence numbers are unique, so two events never compare equal. */
function before(a: SchedulerEvent, b: SchedulerEvent): boolean {
  return a.time < b.time || (a.time === b.time && a.seq < b.seq);
}

/**
 * Array-based binary min-heap of events. Each event records its own position, so cancellation
 * removes it in O(log n) instead of leaving a tombstone (election timers are reset on every
 * heartbeat: tombstones would pile up).
 */
class EventHeap {
  readonly items: SchedulerEvent[] = [];

  push(event: SchedulerEvent): void {
    const items = this.items;
    event.index = items.length;
    items.push(event);
    this.siftUp(event.index);
  }

  peek(): SchedulerEvent | undefined {
    return this.items[0];
  }

  pop(): SchedulerEvent | undefined {
    const items = this.items;
    const top = items[0];
    if (top === undefined) {
      return undefined;
    }
    const last = items.pop() as SchedulerEvent;
    if (last !== top) {
      items[0] = last;
      last.index = 0;
      this.siftDown(0);
    }
    top.index = NOT_QUEUED;
    return top;
  }

  remove(event: SchedulerEvent): void {
    const items = this.items;
    const i = event.index;
    const last = items.pop() as SchedulerEvent;
    event.index = NOT_QUEUED;
    if (last !== event) {
      items[i] = last;
      last.index = i;
      if (i > 0 && before(last, items[(i - 1) >> 1] as SchedulerEvent)) {
        this.siftUp(i);
      } else {
        this.siftDown(i);
      }
    }
  }

  private siftUp(start: number): void {
    const items = this.items;
    const event = items[start] as SchedulerEvent;
    let i = start;
    while (i > 0) {
      const parentIndex = (i - 1) >> 1;
      const parent = items[parentIndex] as SchedulerEvent;
      if (!before(event, parent)) {
        break;
      }
      items[i] = parent;
      parent.index = i;
      i = parentIndex;
    }
    items[i] = event;
    event.index = i;
  }

  private siftDown(start: number): void {
    const items = this.items;
    const n = items.length;
    const event = items[start] as SchedulerEvent;
    let i = start;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= n) {
        break;
      }
      const right = left + 1;
      let child = left;
      let childEvent = items[left] as SchedulerEvent;
      if (right < n) {
        const rightEvent = items[right] as SchedulerEvent;
        if (before(rightEvent, childEvent)) {
          child = right;
          childEvent = rightEvent;
        }
      }
      if (!before(childEvent, event)) {
        break;
      }
      items[i] = childEvent;
      childEvent.index = i;
      i = child;
    }
    items[i] = event;
    event.index = i;
  }
}

function detachFromGroup(event: SchedulerEvent): void {
  const group = event.group;
  if (group === null) {
    return;
  }
  const prev = event.groupPrev;
  const next = event.groupNext;
  if (prev === null) {
    group.head = next;
  } else {
    prev.groupNext = next;
  }
  if (next !== null) {
    next.groupPrev = prev;
  }
  event.group = null;
  event.groupPrev = null;
  event.groupNext = null;
  group.count--;
}

/**
 * A set of pending events that can be cancelled together, e.g. every timer of a node that
 * crashes. Create one with {@link Scheduler.createGroup}. Membership is an intrusive list inside
 * the events: joining, leaving (when an event runs or is cancelled) and `cancelAll()` allocate
 * nothing.
 */
export interface EventGroup {
  /** Number of pending events in the group. */
  readonly size: number;
  /** Cancels every pending event of the group. */
  cancelAll(): void;
}

class EventGroupImpl implements EventGroup {
  /** First event of the intrusive list. */
  head: SchedulerEvent | null = null;
  count = 0;

  get size(): number {
    return this.count;
  }

  cancelAll(): void {
    while (this.head !== null) {
      this.head.cancel();
    }
  }
}

const waitForTick = (resolve: () => void): void => {
  process.nextTick(resolve);
};
const waitForImmediate = (resolve: () => void): void => {
  setImmediate(resolve);
};

/**
 * The simulator's event queue and virtual clock.
 *
 * Invariants: `now` never decreases; events run in strictly increasing (time, seq) order; at
 * most one `step`/`run*` call is active at a time (a second concurrent one throws).
 *
 * Runs are bounded by a number of steps, never by wall time (CONVENTIONS.md §5).
 */
export class Scheduler {
  private readonly heap = new EventHeap();
  private currentTime = 0;
  private nextSeq = 0;
  private executed = 0;
  private busy = false;
  private readonly flushMode: FlushMode;
  private readonly yieldEverySteps: number;
  private sinceYield = 0;

  /** Trace hook called before each event's callback. Keep it cheap: it runs on every event. */
  onStep: StepListener | undefined = undefined;

  constructor(options: SchedulerOptions = {}) {
    this.flushMode = options.flush ?? 'tick';
    const yieldEvery = options.yieldEverySteps ?? 4096;
    if (!(Number.isInteger(yieldEvery) && yieldEvery >= 1)) {
      throw new RangeError(`yieldEverySteps must be a positive integer, got ${yieldEvery}`);
    }
    this.yieldEverySteps = yieldEvery;
  }

  /** Current virtual time in milliseconds. Starts at 0. */
  get now(): number {
    return this.currentTime;
  }

  /** Events executed so far (cancelled events are not counted). */
  get steps(): number {
    return this.executed;
  }

  /** Events queued and not cancelled. */
  get pending(): number {
    return this.heap.items.length;
  }

  /** Virtual time of the next event, or undefined when the queue is empty. */
  peekTime(): number | undefined {
    return this.heap.peek()?.time;
  }

  /**
   * Runs `callback` at `now + delayMs`. A negative delay counts as 0 (the event still runs after
   * everything already queued for `now`); NaN and infinite delays throw a RangeError.
   * `group` makes the event cancellable together with the rest of the group.
   */
  schedule(delayMs: number, callback: () => void, label = '', group?: EventGroup): EventHandle {
    if (!Number.isFinite(delayMs)) {
      throw new RangeError(`delayMs must be finite, got ${delayMs}`);
    }
    return this.insert(
      delayMs > 0 ? this.currentTime + delayMs : this.currentTime,
      callback,
      label,
      group,
    );
  }

  /**
   * Runs `callback` at the absolute virtual time `timeMs`, which must be finite and not earlier
   * than `now`.
   */
  scheduleAt(timeMs: number, callback: () => void, label = '', group?: EventGroup): EventHandle {
    if (!(Number.isFinite(timeMs) && timeMs >= this.currentTime)) {
      throw new RangeError(`timeMs must be finite and >= now (${this.currentTime}), got ${timeMs}`);
    }
    return this.insert(timeMs, callback, label, group);
  }

  private insert(
    time: number,
    callback: () => void,
    label: string,
    group: EventGroup | undefined,
  ): SchedulerEvent {
    let owner: EventGroupImpl | null = null;
    if (group !== undefined) {
      if (!(group instanceof EventGroupImpl)) {
        throw new TypeError('group must come from Scheduler.createGroup()');
      }
      owner = group;
    }
    const event = new SchedulerEvent(time, this.nextSeq++, label, callback, this.heap, owner);
    this.heap.push(event);
    if (owner !== null) {
      const head = owner.head;
      event.groupNext = head;
      if (head !== null) {
        head.groupPrev = event;
      }
      owner.head = event;
      owner.count++;
    }
    return event;
  }

  /** A new, empty {@link EventGroup} for events of this scheduler. */
  createGroup(): EventGroup {
    return new EventGroupImpl();
  }

  /**
   * Runs ONE event: settles whatever the caller started, advances `now` to the event's time,
   * runs its callback, then waits until every promise continuation it triggered has run.
   * Resolves false (running nothing) when the queue is empty. An exception thrown by the
   * callback rejects the returned promise.
   *
   * Costs two flushes; loops should use {@link runUntil} or {@link runFor}, which cost one.
   */
  async step(): Promise<boolean> {
    this.enter();
    try {
      await this.settle();
      if (!this.runNext()) {
        return false;
      }
      await this.flush();
      return true;
    } finally {
      this.busy = false;
    }
  }

  /**
   * Runs events until `predicate()` holds (checked before the first event and after each one,
   * once its continuations have settled), the queue is empty, or `maxSteps` events have run.
   * `predicate` must not start asynchronous work; it is the place for per-event checkers.
   */
  async runUntil(predicate: () => boolean, maxSteps: number): Promise<RunResult> {
    checkMaxSteps(maxSteps);
    this.enter();
    try {
      await this.settle();
      let steps = 0;
      for (;;) {
        if (predicate()) {
          return { reason: 'done', steps };
        }
        if (steps >= maxSteps) {
          return { reason: 'stepLimit', steps };
        }
        if (!this.runNext()) {
          return { reason: 'idle', steps };
        }
        steps++;
        await this.flush();
      }
    } finally {
      this.busy = false;
    }
  }

  /**
   * Runs every event due within the next `virtualMs` milliseconds (events at exactly
   * `now + virtualMs` included), then sets `now` to that target, so idle time passes too.
   * Stops early, leaving `now` at the last event run, if `maxSteps` events run first.
   */
  async runFor(virtualMs: number, maxSteps: number): Promise<RunResult> {
    if (!(Number.isFinite(virtualMs) && virtualMs >= 0)) {
      throw new RangeError(`virtualMs must be finite and >= 0, got ${virtualMs}`);
    }
    checkMaxSteps(maxSteps);
    this.enter();
    try {
      await this.settle();
      const target = this.currentTime + virtualMs;
      let steps = 0;
      for (;;) {
        const next = this.heap.peek();
        if (next === undefined || next.time > target) {
          this.currentTime = target;
          return { reason: 'done', steps };
        }
        if (steps >= maxSteps) {
          return { reason: 'stepLimit', steps };
        }
        this.runNext();
        steps++;
        await this.flush();
      }
    } finally {
      this.busy = false;
    }
  }

  private enter(): void {
    if (this.busy) {
      throw new Error('Scheduler is already running: await the previous step()/run*() call first');
    }
    this.busy = true;
  }

  /** Pops and runs the next event. False when the queue is empty. */
  private runNext(): boolean {
    const event = this.heap.pop();
    if (event === undefined) {
      return false;
    }
    detachFromGroup(event);
    const callback = event.callback as () => void;
    event.callback = null;
    this.currentTime = event.time;
    const step = ++this.executed;
    if (this.onStep !== undefined) {
      this.onStep(event.time, event.label, step);
    }
    callback();
    return true;
  }

  /**
   * Settles what the caller may have started before a run: entering a microtask first makes the
   * `'tick'` flush exact even when the caller is not itself inside one.
   */
  private async settle(): Promise<void> {
    if (this.flushMode === 'tick') {
      await null;
    }
    await this.flush();
  }

  /**
   * Resolves once every pending promise continuation has run. MUST be called from inside a
   * microtask in `'tick'` mode (see the module doc for why that makes it exact).
   */
  private flush(): Promise<void> {
    if (this.flushMode === 'immediate' || ++this.sinceYield >= this.yieldEverySteps) {
      this.sinceYield = 0;
      return new Promise(waitForImmediate);
    }
    return new Promise(waitForTick);
  }
}

function checkMaxSteps(maxSteps: number): void {
  if (!(Number.isInteger(maxSteps) && maxSteps >= 0)) {
    throw new RangeError(`maxSteps must be a non-negative integer, got ${maxSteps}`);
  }
}
