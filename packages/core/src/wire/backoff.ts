/**
 * Reconnect delays: exponential with jitter ("equal jitter": half fixed, half random), so the
 * nodes of a cluster that lost a peer at the same moment do not redial it in lockstep, and a
 * peer that is down costs a dial every `maxMs` at most.
 */
import type { Random } from '../interfaces/clock.js';

/** Bounds of a {@link Backoff}. */
export interface BackoffOptions {
  /** First delay, in milliseconds. */
  readonly initialMs: number;
  /** Largest delay, in milliseconds. */
  readonly maxMs: number;
}

/** Delays for successive failed attempts; `reset()` after a success. */
export class Backoff {
  private attempt = 0;

  constructor(
    private readonly options: BackoffOptions,
    private readonly random: Random,
  ) {}

  /** The delay before the next attempt, in [base / 2, base) for base = initial · 2^failures. */
  next(): number {
    const base = Math.min(this.options.maxMs, this.options.initialMs * 2 ** this.attempt);
    if (base < this.options.maxMs) this.attempt++;
    return base / 2 + (base / 2) * this.random();
  }

  reset(): void {
    this.attempt = 0;
  }

  /** Failed attempts since the last reset (saturating once the delay reaches `maxMs`). */
  get failures(): number {
    return this.attempt;
  }
}
