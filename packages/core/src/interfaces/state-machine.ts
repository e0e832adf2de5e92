import type { LogIndex, SnapshotMeta, Term } from '../types.js';

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
 * - Snapshots (optional: implement both `snapshot` and `restore`, or neither). With them the
 *   runtime takes snapshots as the log grows and compacts the log behind them; without them the
 *   log is never compacted (the node logs a warning once) and a restart replays it from the
 *   first entry.
 * - `snapshot()` is called between two applies and captures the state at that point (after the
 *   last applied entry). It returns the image as a stream of byte chunks, which the runtime
 *   consumes while applies go on: the state machine keeps the image consistent however it likes
 *   (copy-on-write, an immutable structure, a copy). A returned promise holds applies back until
 *   it settles, so resolve it as soon as the point in time is fixed. Chunks may have any size.
 * - `restore(chunks, meta)` discards the whole current state and loads the snapshot, read chunk
 *   by chunk (never given whole). It is called with no apply in progress, on start-up (the latest
 *   stored snapshot) and when the leader sends one; applies resume from `meta.index + 1`.
 * - An error thrown by `snapshot()` or by its stream fails that snapshot only (the previous one
 *   and the log stay); an error thrown by `restore()` is fatal to the node.
 */
export interface StateMachine<Cmd, Res> {
  apply(command: Cmd, at: ApplyContext): MaybePromise<Res>;
  snapshot?(): MaybePromise<SnapshotChunks>;
  restore?(chunks: AsyncIterable<Uint8Array>, meta: SnapshotMeta): MaybePromise<void>;
}

/** A snapshot image as the state machine produces it: chunks of bytes, in order. */
export type SnapshotChunks = AsyncIterable<Uint8Array> | Iterable<Uint8Array>;

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
