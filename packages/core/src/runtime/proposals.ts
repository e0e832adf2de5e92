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

/** One waiting caller. */
export interface Pending<T> {
  resolve(value: T): void;
  reject(err: unknown): void;
  settled: boolean;
  deadline: number;
  /** Known once the entry is appended (at once on the leader; via proposeResponse when forwarded). */
  index: LogIndex;
  term: Term;
  /** Forwarded proposals: the id echoed by the leader. */
  requestId: number;
  /** Forwarded proposals: the node the proposal was sent to (only its answer counts). */
  forwardedTo: string | null;
  /** A per-call timer or abort listener to clean up on settle. */
  cleanup: (() => void) | null;
}

/** Creates an unsettled pending record for a promise's resolve/reject pair. */
export function createPending<T>(
  resolve: (v: T) => void,
  reject: (e: unknown) => void,
  deadline: number,
): Pending<T> {
  return {
    resolve,
    reject,
    settled: false,
    deadline,
    index: 0,
    term: 0,
    requestId: 0,
    forwardedTo: null,
    cleanup: null,
  };
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

/**
 * FIFO of pendings whose deadlines are non-decreasing, with one timer armed for the head.
 */
export class DeadlineQueue<T> {
  private items: Pending<T>[] = [];
  private head = 0;
  private timer: TimerHandle | null = null;
  private timerAt = 0;

  constructor(
    private readonly clock: Clock,
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
    if (this.head >= this.items.length && this.timer !== null) {
      this.timer.cancel();
      this.timer = null;
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
