/**
 * The only file of @raft/core that touches host globals. The package compiles with
 * `"types": []`, so nothing Node-specific can leak in; this declares the few globals every
 * JavaScript host (Node, Deno, Bun, browsers) provides.
 */

declare function setTimeout(callback: () => void, ms: number): unknown;
declare const TextEncoder: (new () => { encode(input: string): Uint8Array }) | undefined;
declare const TextDecoder:
  | (new (
      label?: string,
      options?: { fatal?: boolean; ignoreBOM?: boolean },
    ) => { decode(input: Uint8Array): string })
  | undefined;
declare function clearTimeout(handle: unknown): void;
declare const performance: { now(): number } | undefined;
declare function queueMicrotask(callback: () => void): void;
declare const setImmediate: ((callback: () => void) => unknown) | undefined;
declare const crypto: { getRandomValues(array: Uint8Array): Uint8Array } | undefined;
declare const MessageChannel:
  | (new () => {
      port1: { onmessage: (() => void) | null };
      port2: { postMessage(v: unknown): void };
    })
  | undefined;

/** Schedules `callback` after `ms` milliseconds on the host's timer queue. */
export function hostSetTimeout(callback: () => void, ms: number): unknown {
  return setTimeout(callback, ms);
}

/** Cancels a handle returned by {@link hostSetTimeout}. */
export function hostClearTimeout(handle: unknown): void {
  clearTimeout(handle);
}

/** Monotonic milliseconds when the host has `performance.now()`, wall-clock otherwise. */
export function hostNow(): number {
  return typeof performance !== 'undefined' ? performance.now() : Date.now();
}

/** Runs `callback` once the current task's synchronous code is done (a microtask). */
const hostQueueMicrotask: (callback: () => void) => void =
  typeof queueMicrotask === 'function'
    ? queueMicrotask
    : (callback) => {
        Promise.resolve().then(callback);
      };

export { hostQueueMicrotask as queueMicrotask };

/** The host's random source; the engine never calls it directly (it gets a `Random`). */
export function hostRandom(): number {
  return Math.random();
}

/**
 * `length` bytes from the host's cryptographic random source (`crypto.getRandomValues`), or
 * null when the host has none. For identifiers that must not collide (client ids), never for
 * anything the algorithm decides.
 */
export function hostRandomBytes(length: number): Uint8Array | null {
  if (typeof crypto === 'undefined' || typeof crypto?.getRandomValues !== 'function') return null;
  return crypto.getRandomValues(new Uint8Array(length));
}

type Channel = {
  port1: { onmessage: (() => void) | null };
  port2: { postMessage(v: unknown): void };
};
let channel: Channel | null = null;
const channelQueue: (() => void)[] = [];

/**
 * Runs `callback` on a later turn of the event loop (a macrotask, not a microtask), without
 * the 1 ms clamp of `setTimeout(0)`: `setImmediate` where the host has it, a MessageChannel
 * otherwise. In-process transports use it so that message delivery never starves timers.
 */
export function hostNextTurn(callback: () => void): void {
  if (typeof setImmediate === 'function') {
    setImmediate(callback);
  } else if (typeof MessageChannel === 'function') {
    if (channel === null) {
      channel = new MessageChannel();
      channel.port1.onmessage = () => channelQueue.shift()?.();
    }
    channelQueue.push(callback);
    channel.port2.postMessage(0);
  } else {
    setTimeout(callback, 0);
  }
}

/** The host's UTF-8 encoder, when it has one (every modern host does). */
export const hostTextEncoder: { encode(input: string): Uint8Array } | null =
  typeof TextEncoder === 'function' ? new TextEncoder() : null;

/** The host's strict UTF-8 decoder (throws on ill-formed input), when it has one. */
export const hostTextDecoder: { decode(input: Uint8Array): string } | null =
  typeof TextDecoder === 'function'
    ? new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })
    : null;
