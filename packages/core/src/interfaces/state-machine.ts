import type { LogIndex, Term } from '../types.js';

/** A value or a promise of it: synchronous state machines pay no promise per entry. */
export type MaybePromise<T> = T | Promise<T>;

/** Where an applied entry sits in the log. */
export interface ApplyContext {
  readonly index: LogIndex;
  readonly term: Term;
}

/**
 * The user's replicated state machine (hashicorp FSM, made generic).
 *
 * Contract:
 * - `apply` MUST be deterministic: the same commands in the same order give the same state and
 *   the same results on every node.
 * - The runtime calls `apply` once per committed command entry, in log order, never
 *   concurrently with itself (it awaits a returned promise before the next call).
 * - A thrown error or rejected promise is fatal for the node (the state machines of the
 *   replicas could diverge otherwise): return errors as values in `Res` instead.
 * - After a restart without snapshots, the state machine starts empty and the runtime replays
 *   the log from the first entry. Snapshot support (`snapshot()`/`restore()`) is added by
 *   issue #3 as new methods, not a change to this one.
 */
export interface StateMachine<Cmd, Res> {
  apply(command: Cmd, at: ApplyContext): MaybePromise<Res>;
}

/**
 * Turns commands into log bytes and back.
 *
 * Contract: `decode(encode(c))` MUST be equivalent to `c`; `decode` MUST be deterministic.
 * `encode` may throw for invalid commands: `propose()` then rejects with that error and
 * nothing is appended.
 */
export interface CommandCodec<Cmd> {
  encode(command: Cmd): Uint8Array;
  decode(bytes: Uint8Array): Cmd;
}
