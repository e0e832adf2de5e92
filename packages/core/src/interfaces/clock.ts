/** A scheduled callback that can be cancelled. Cancelling twice is harmless. */
export interface TimerHandle {
  cancel(): void;
}

/**
 * Time source of the runtime. The engine never reads a clock: it counts ticks.
 *
 * Contract: `now()` is monotonic milliseconds; `setTimer` calls `callback` once, no earlier
 * than `delayMs` after the call, unless cancelled.
 */
export interface Clock {
  now(): number;
  setTimer(delayMs: number, callback: () => void): TimerHandle;
}

/** Uniform in [0, 1). Seeded in tests; Math.random by default. */
export type Random = () => number;
