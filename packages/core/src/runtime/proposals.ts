/**
 * Proposals waiting for their outcome, and the single timer that bounds them.
 *
 * A proposal is settled exactly once: by the apply loop (result, or LeadershipLostError when
 * another entry took its index), by its deadline (TimeoutError, outcome unknown), by its
 * AbortSignal, or by shutdown. Proposals with the default timeout share one FIFO and one
 * timer (their deadlines are in insertion order), so the hot path sets no timer per call.
 */
import type { Clock, TimerHandle } from '../interfaces/clock.js';
import type { LogIndex, Term } from '../types.js';
import type { AbortSignalLike } from './raft-node.js';

let capturedResolve: (value: never) => void = () => {};
let capturedReject: (err: unknown) => void = () => {};
/** One executor for every proposal's promise: no closure is created per call. */
function capture(resolve: (value: never) => void, reject: (err: unknown) => void): void {
  capturedResolve = resolve;
  capturedReject = reject;
}

/** One waiting caller: its promise and what settles it. */
export class Pending<T> {
  readonly promise: Promise<T>;
  readonly resolve: (value: T) => void;
  readonly reject: (err: unknown) => void;
  settled = false;
  /** Known once the entry is appended (at once on the leader; via proposeResponse when forwarded). */
  index: LogIndex = 0;
  term: Term = 0;
  /** Forwarded proposals: the id echoed by the leader. */
  requestId = 0;
  /** Forwarded proposals: the node the proposal was sent to (only its answer counts). */
  forwardedTo: string | null = null;
  /** A per-call timer or abort listener to clean up on settle. */
  cleanup: (() => void) | null = null;

  constructor(readonly deadline: number) {
    this.promise = new Promise<T>(capture);
    this.resolve = capturedResolve as (value: T) => void;
    this.reject = capturedReject;
  }
}

/** Settles `p` once; later calls are ignored. */
export function settle<T>(p: Pending<T>, ok: boolean, value: unknown): void {
  if (p.settled) return;
  p.settled = true;
  if (p.cleanup) {
    p.cleanup();
    p.cleanup = null;
  }
  if (ok) p.resolve(value as T);
  else p.reject(value);
}

// biome-ignore lint/suspicious/noExplicitAny: the shared empty result of takeOverflowAt().
const NONE: readonly Pending<any>[] = Object.freeze([]);

/** Spans of log indexes wider than this go to the overflow map instead of growing the ring. */
const MAX_RING_SPAN = 1 << 16;

/**
 * Proposals waiting at known log positions, taken in index order as entries apply. A ring
 * indexed by log index (the leader's own proposals take consecutive indexes), so tracking and
 * settling cost no hashing and no allocation. Two proposals at one index (a forwarded one whose
 * first position was overwritten in a later term) and positions far outside the ring's span go
 * to an overflow map by index.
 *
 * Invariant: every occupied slot holds an index in [base, end), and end - base <= capacity.
 */
export class PositionedProposals<T> {
  private slots: (Pending<T> | undefined)[] = new Array<Pending<T> | undefined>(64);
  private mask = 63;
  private base = 0;
  private end = 0;
  private count = 0;
  /** Collisions and far-away positions, by index. */
  private readonly overflow = new Map<LogIndex, Pending<T>[]>();
  private overflowCount = 0;

  /** Proposals waiting. */
  get size(): number {
    return this.count + this.overflowCount;
  }

  /** Tracks `p` at `p.index`. */
  add(p: Pending<T>): void {
    const i = p.index;
    if (this.count === 0) {
      this.base = i;
      this.end = i + 1;
    } else if (i < this.base) {
      if (!this.fits(this.end - i)) {
        this.addOverflow(p);
        return;
      }
      this.base = i;
    } else if (i >= this.end) {
      if (!this.fits(i + 1 - this.base)) {
        this.addOverflow(p);
        return;
      }
      this.end = i + 1;
    }
    const slot = i & this.mask;
    if (this.slots[slot] !== undefined) {
      this.addOverflow(p);
      return;
    }
    this.slots[slot] = p;
    this.count++;
  }

  /** Removes and returns the proposal at `index` in the ring (overflow: see takeOverflowAt). */
  take(index: LogIndex): Pending<T> | undefined {
    if (index < this.base || index >= this.end) return undefined;
    const slot = index & this.mask;
    const p = this.slots[slot];
    if (p === undefined) return undefined;
    this.slots[slot] = undefined;
    if (--this.count === 0) this.base = this.end;
    else if (index === this.base) {
      let b = index + 1;
      while (this.slots[b & this.mask] === undefined) b++;
      this.base = b;
    }
    return p;
  }

  private addOverflow(p: Pending<T>): void {
    const at = this.overflow.get(p.index);
    if (at === undefined) this.overflow.set(p.index, [p]);
    else at.push(p);
    this.overflowCount++;
  }

  /** True while proposals sit in the overflow. */
  get hasOverflow(): boolean {
    return this.overflowCount > 0;
  }

  /** Removes and returns the overflow proposals at `index` (none: an empty array). */
  takeOverflowAt(index: LogIndex): readonly Pending<T>[] {
    const taken = this.overflow.get(index);
    if (taken === undefined) return NONE;
    this.overflow.delete(index);
    this.overflowCount -= taken.length;
    return taken;
  }

  /** Stops tracking `p` (its deadline passed). */
  delete(p: Pending<T>): void {
    if (this.slots[p.index & this.mask] === p) {
      this.take(p.index);
      return;
    }
    const at = this.overflow.get(p.index);
    const i = at === undefined ? -1 : at.indexOf(p);
    if (at === undefined || i < 0) return;
    at.splice(i, 1);
    this.overflowCount--;
    if (at.length === 0) this.overflow.delete(p.index);
  }

  /** Removes and returns every proposal at an index <= `index` (a snapshot covered them). */
  takeUpTo(index: LogIndex): Pending<T>[] {
    const taken: Pending<T>[] = [];
    const last = Math.min(index, this.end - 1);
    for (let i = this.base; i <= last && this.count > 0; i++) {
      const p = this.take(i);
      if (p !== undefined) taken.push(p);
    }
    for (const at of [...this.overflow.keys()]) {
      if (at <= index) taken.push(...this.takeOverflowAt(at));
    }
    return taken;
  }

  /** Every tracked proposal; the tracker is empty afterwards. */
  drain(): Pending<T>[] {
    const all: Pending<T>[] = [];
    for (let i = this.base; i < this.end; i++) {
      const p = this.slots[i & this.mask];
      if (p !== undefined) all.push(p);
    }
    for (const at of this.overflow.values()) all.push(...at);
    this.slots = new Array<Pending<T> | undefined>(64);
    this.mask = 63;
    this.base = this.end = this.count = 0;
    this.overflow.clear();
    this.overflowCount = 0;
    return all;
  }

  /** Grows the ring to hold `span` consecutive indexes; false when that is too wide. */
  private fits(span: number): boolean {
    if (span <= this.slots.length) return true;
    if (span > MAX_RING_SPAN) return false;
    let capacity = this.slots.length;
    while (capacity < span) capacity *= 2;
    const slots = new Array<Pending<T> | undefined>(capacity);
    const mask = capacity - 1;
    for (let i = this.base; i < this.end; i++) {
      const p = this.slots[i & this.mask];
      if (p !== undefined) slots[i & mask] = p;
    }
    this.slots = slots;
    this.mask = mask;
    return true;
  }
}

/**
 * FIFO of pendings whose deadlines are non-decreasing, with one timer armed for the head: the
 * callers that wait `timeoutMs` (the node's default bound), which is most of them.
 */
export class DeadlineQueue<T> {
  private items: Pending<T>[] = [];
  private head = 0;
  private timer: TimerHandle | null = null;
  private timerAt = 0;

  constructor(
    private readonly clock: Clock,
    /** The one bound every pending of this queue waits (their deadlines are then in order). */
    readonly timeoutMs: number,
    private readonly onExpired: (p: Pending<T>) => void,
  ) {}

  push(p: Pending<T>): void {
    this.items.push(p);
    if (this.timer === null) this.arm();
  }

  private arm(): void {
    this.prune();
    if (this.head >= this.items.length) return;
    const at = (this.items[this.head] as Pending<T>).deadline;
    this.timerAt = at;
    this.timer = this.clock.setTimer(Math.max(0, at - this.clock.now()), () => this.fire());
  }

  private fire(): void {
    this.timer = null;
    const now = this.clock.now();
    while (this.head < this.items.length) {
      const p = this.items[this.head] as Pending<T>;
      if (!p.settled && p.deadline > now) break;
      this.head++;
      if (!p.settled) this.onExpired(p);
    }
    this.arm();
  }

  /** Drops settled items from the front so memory follows the number of waiting callers. */
  private prune(): void {
    while (this.head < this.items.length && (this.items[this.head] as Pending<T>).settled)
      this.head++;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }

  /** Called after a batch of settles: lets memory shrink even while the timer is far away. */
  compact(): void {
    this.prune();
    if (this.head >= this.items.length && this.head > 0) {
      // The timer stays armed: a later deadline is never earlier (FIFO), so when it fires it
      // re-arms for the head, or stops if there is none. Cancelling and re-arming a host timer
      // for every proposal of an idle-then-busy node costs more than one spare wake-up.
      this.items = [];
      this.head = 0;
    }
  }

  /** Every pending not yet settled, in order; empties the queue and cancels the timer. */
  drain(): Pending<T>[] {
    this.timer?.cancel();
    this.timer = null;
    const rest = this.items.slice(this.head).filter((p) => !p.settled);
    this.items = [];
    this.head = 0;
    return rest;
  }

  /** Deadline the timer is armed for (tests). */
  get armedAt(): number | null {
    return this.timer === null ? null : this.timerAt;
  }
}

/**
 * Bounds `p`: with the default timeout (`timeoutMs` undefined, or equal to the default, as a
 * server passing its configured bound on every call does) it joins the shared `deadlines` (no
 * timer of its own); otherwise it gets a timer. An aborted `signal` settles it too. The
 * timer and the listener go with `p.cleanup` when it settles. `expire` settles it with the
 * error it is given; `timedOut` and `aborted` build those errors.
 */
export function watchPending<T, E>(
  p: Pending<T>,
  deadlines: DeadlineQueue<T>,
  clock: Clock,
  timeoutMs: number | undefined,
  signal: AbortSignalLike | undefined,
  expire: (p: Pending<T>, err: E) => void,
  timedOut: (timeoutMs: number) => E,
  aborted: (reason: unknown) => E,
): void {
  let timer: TimerHandle | null = null;
  let onAbort: (() => void) | null = null;
  if (timeoutMs === undefined || timeoutMs === deadlines.timeoutMs) deadlines.push(p);
  else timer = clock.setTimer(timeoutMs, () => expire(p, timedOut(timeoutMs)));
  if (signal) {
    onAbort = () => expire(p, aborted(signal.reason));
    signal.addEventListener('abort', onAbort);
  }
  if (timer !== null || onAbort !== null) {
    p.cleanup = () => {
      timer?.cancel();
      if (onAbort) signal?.removeEventListener('abort', onAbort);
    };
  }
}
