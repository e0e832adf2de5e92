import type { Clock, TimerHandle } from '../interfaces/clock.js';
import { hostClearTimeout, hostNow, hostSetTimeout } from '../platform.js';

/** The default Clock: the host's monotonic time and timers. */
export const systemClock: Clock = {
  now: hostNow,
  setTimer(delayMs: number, callback: () => void): TimerHandle {
    const handle = hostSetTimeout(callback, delayMs);
    return { cancel: () => hostClearTimeout(handle) };
  },
};
