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
 *   the same results (or the same exceptions) on every node.
 * - The runtime calls `apply` once per committed command entry, in log order, never
 *   concurrently with itself (it awaits a returned promise before the next call).
 * - An error thrown by `apply` (or a promise it returns that rejects) is that command's
 *   deterministic result, not a fault of the node: every replica throws at the same entry and
 *   records the same outcome, the proposer's `propose()` rejects with an {@link ApplyError}
 *   (code `APPLY_FAILED`, the thrown value as `cause`), and the node goes on with the next
 *   entry. A command the codec cannot decode is recorded the same way.
 * - A fault of the state machine's own (its disk failed) MUST be thrown as a
 *   {@link StorageError}. That one is fatal: the node fails (a `fatal` event), pending
 *   proposals reject with code `STORAGE`, and the entry is not counted as applied on this node.
 * - After a restart, the state machine starts empty and the runtime replays the log from the
 *   first entry (there are no snapshots yet).
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
