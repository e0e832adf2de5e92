/**
 * The session table of {@link withSessions} (internal): per client, the results of its recent
 * commands, so a retried command is answered from the table instead of being applied again
 * (Raft thesis §6.3, "Implementing linearizable semantics").
 *
 * Life of one seq of one session:
 *
 * ```text
 *                 apply (first time)              ack >= seq, or dropped past
 *   not applied ───────────────────────► kept ───maxResultsPerSession────► forgotten
 *       │        result or error recorded   │ apply again: the kept         │ apply again:
 *       │                                   │ result (or the same error),   │ SESSION_EXPIRED
 *       │                                   │ inner state machine untouched │
 *       └── session evicted or expired: every seq of the client id is forgotten
 * ```
 *
 * Everything here is a function of the commands applied and their log indexes: no clock, no
 * randomness, no iteration order that depends on anything else. So every replica, and every
 * replica restored from a snapshot of it, holds the same table after the same entry.
 */
import { RaftError, type RaftErrorCode } from '../errors.js';
import type { ApplyContext, MaybePromise, StateMachine } from '../interfaces/state-machine.js';
import type { LogIndex } from '../types.js';
import { type SessionCommand, sessionCommandProblem } from './session-command.js';

/** The resolved limits of a table (see `SessionOptions`). */
export interface SessionLimits {
  readonly maxSessions: number;
  readonly expireAfterEntries: number;
  readonly maxResultsPerSession: number;
}

/**
 * What an error thrown by the inner `apply()` is recorded as: enough to throw an equivalent
 * error again, deterministically, on any replica (including one restored from a snapshot).
 */
export interface RecordedError {
  /** The thrown value was a RaftError (then `code` is its code). */
  readonly raft: boolean;
  readonly name: string;
  readonly message: string;
  /** A string `code` property of the thrown value, if it had one. */
  readonly code: string | undefined;
}

/** The outcome of one applied seq. */
export type KeptResult<Res> =
  | { readonly seq: number; readonly ok: true; readonly value: Res }
  | { readonly seq: number; readonly ok: false; readonly error: RecordedError };

/** One client's session. */
export interface Session<Res> {
  readonly clientId: string;
  /** Log index of the latest command of this client (any command, retries included). */
  lastIndex: LogIndex;
  /**
   * Every seq <= floor is forgotten: acknowledged by the client, or dropped past
   * `maxResultsPerSession`. Invariant: every kept result has seq > floor.
   */
  floor: number;
  /** Kept outcomes, sorted by seq (ascending, no duplicates). */
  readonly results: KeptResult<Res>[];
}

/** A read-only view of one session (see `SessionStateMachine.sessions`). */
export interface SessionInfo {
  readonly clientId: string;
  /** Log index of the client's latest command; expiry and eviction go by it. */
  readonly lastIndex: LogIndex;
  /** Every seq at or below this is forgotten (acknowledged, or dropped). */
  readonly ackedThrough: number;
  /** The seqs whose outcomes are kept, ascending. */
  readonly keptSeqs: readonly number[];
}

/** The error for a command whose session or result is gone. */
function sessionExpired(message: string): RaftError {
  // `unknown`: the command may have been applied before its result was forgotten.
  return new RaftError('SESSION_EXPIRED', message, { outcome: 'unknown' });
}

function isPromiseLike(v: unknown): v is PromiseLike<unknown> {
  return (
    typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function'
  );
}

/** `String(value)`, or a fixed text when even that throws. */
function describe(value: unknown): string {
  try {
    return String(value);
  } catch {
    return 'a value that cannot be turned into a string was thrown';
  }
}

/**
 * Records what `apply()` threw. RaftErrors keep their code; other errors their name, message
 * and a string `code` property; any other thrown value becomes an Error with `String(value)` as
 * its message.
 */
export function recordError(err: unknown): RecordedError {
  if (RaftError.is(err))
    return { raft: true, name: err.name, message: err.message, code: err.code };
  if (typeof err === 'object' && err !== null) {
    const e = err as { name?: unknown; message?: unknown; code?: unknown };
    if (typeof e.message === 'string') {
      return {
        raft: false,
        name: typeof e.name === 'string' ? e.name : 'Error',
        message: e.message,
        code: typeof e.code === 'string' ? e.code : undefined,
      };
    }
  }
  return { raft: false, name: 'Error', message: describe(err), code: undefined };
}

/**
 * The error a retry of a failed command throws: a RaftError with the recorded code, or an Error,
 * with the recorded name and message (and `code`). Subclass payloads (a NotLeaderError's
 * `leaderId`, say) and stacks are not kept.
 */
export function replayError(recorded: RecordedError): Error {
  let err: Error;
  if (recorded.raft && recorded.code !== undefined) {
    err = new RaftError(recorded.code as RaftErrorCode, recorded.message);
  } else {
    err = new Error(recorded.message);
    if (recorded.code !== undefined) (err as Error & { code?: string }).code = recorded.code;
  }
  err.name = recorded.name;
  return err;
}

/** Index of the kept result for `seq`, or -1 (binary search: results are sorted). */
function findSeq<Res>(results: readonly KeptResult<Res>[], seq: number): number {
  let lo = 0;
  let hi = results.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const at = (results[mid] as KeptResult<Res>).seq;
    if (at === seq) return mid;
    if (at < seq) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}

/** See the module comment. */
export class SessionTable<Res> {
  /**
   * Sessions in order of last use, least recent first. Invariant: ordered by
   * (lastIndex, clientId) ascending: a session used by an apply moves to the end (its index is
   * the highest yet), and a restored table is inserted in that order.
   */
  private sessions = new Map<string, Session<Res>>();

  constructor(private readonly limits: SessionLimits) {}

  get size(): number {
    return this.sessions.size;
  }

  /** The sessions, least recently used first. */
  values(): IterableIterator<Session<Res>> {
    return this.sessions.values();
  }

  /** Replaces the whole table (a restore). `sessions` need not be in order. */
  replace(sessions: readonly Session<Res>[]): void {
    const sorted = [...sessions].sort((a, b) =>
      a.lastIndex !== b.lastIndex
        ? a.lastIndex - b.lastIndex
        : a.clientId < b.clientId
          ? -1
          : a.clientId > b.clientId
            ? 1
            : 0,
    );
    this.sessions = new Map(sorted.map((s) => [s.clientId, s]));
  }

  info(clientId: string): SessionInfo | undefined {
    const s = this.sessions.get(clientId);
    return s === undefined ? undefined : infoOf(s);
  }

  infos(): SessionInfo[] {
    return [...this.sessions.values()].map(infoOf);
  }

  /**
   * Applies one session command: expires idle sessions, then answers from the table or calls
   * `inner.apply` and records its outcome. Throws (so the runtime records it as the command's
   * result) SESSION_EXPIRED when the session or the result is gone, INVALID_ARGUMENT for a
   * malformed envelope, and a replayed error for a retry of a command that threw.
   *
   * Contract: `at.index` increases from one call to the next (the runtime applies in log order).
   */
  apply<Cmd>(
    command: SessionCommand<Cmd>,
    at: ApplyContext,
    inner: StateMachine<Cmd, Res>,
  ): MaybePromise<Res> {
    const problem = sessionCommandProblem(command);
    if (problem !== null)
      throw new RaftError('INVALID_ARGUMENT', `invalid session command: ${problem}`);
    this.expire(at.index);
    const { clientId, seq } = command;
    let session = this.sessions.get(clientId);
    if (session === undefined) {
      // A client id the table does not know: it is new only if this is its first command. Any
      // other seq means the session existed and was forgotten (expired or evicted), or never
      // existed: either way its earlier commands may have applied, so nothing can be answered.
      if (seq !== 1) {
        throw sessionExpired(
          `client ${JSON.stringify(clientId)} has no session (it expired, was evicted, or never existed) and seq ${seq} is not 1: start a new client id`,
        );
      }
      session = { clientId, lastIndex: at.index, floor: 0, results: [] };
      this.sessions.set(clientId, session);
      this.evictOverflow();
    } else {
      this.touch(session, at.index);
      const ack = command.ack ?? 0;
      if (ack > session.floor) forgetThrough(session, ack);
      if (seq <= session.floor) {
        throw sessionExpired(
          `the result of seq ${seq} of client ${JSON.stringify(clientId)} is no longer kept (acknowledged, or dropped past maxResultsPerSession): start a new client id`,
        );
      }
      const kept = findSeq(session.results, seq);
      if (kept >= 0) {
        // A retry: the first outcome, and the inner state machine is not called.
        const result = session.results[kept] as KeptResult<Res>;
        if (result.ok) return result.value;
        throw replayError(result.error);
      }
    }
    const target = session;
    let out: MaybePromise<Res>;
    try {
      out = inner.apply(command.command, at);
    } catch (err) {
      this.recordFailure(target, seq, err);
      throw err;
    }
    if (!isPromiseLike(out)) {
      this.keep(target, { seq, ok: true, value: out });
      return out;
    }
    return Promise.resolve(out).then(
      (value) => {
        this.keep(target, { seq, ok: true, value });
        return value;
      },
      (err: unknown) => {
        this.recordFailure(target, seq, err);
        throw err;
      },
    );
  }

  /** Records a thrown error as the outcome, unless it is a StorageError (fatal: not a result). */
  private recordFailure(session: Session<Res>, seq: number, err: unknown): void {
    if (RaftError.is(err, 'STORAGE')) return;
    this.keep(session, { seq, ok: false, error: recordError(err) });
  }

  /** Moves `session` to the most recently used end. */
  private touch(session: Session<Res>, index: LogIndex): void {
    session.lastIndex = index;
    this.sessions.delete(session.clientId);
    this.sessions.set(session.clientId, session);
  }

  /**
   * Drops the sessions idle for more than `expireAfterEntries` log indexes: one last used at
   * index u still answers a command at u + expireAfterEntries, and is gone for any later one.
   * The table is ordered by last use, so this stops at the first session still alive.
   */
  private expire(index: LogIndex): void {
    const horizon = this.limits.expireAfterEntries;
    if (horizon === Number.POSITIVE_INFINITY) return;
    for (const s of this.sessions.values()) {
      if (index - s.lastIndex <= horizon) return;
      this.sessions.delete(s.clientId);
    }
  }

  /** Evicts least recently used sessions (lowest last index, ties by client id) past the cap. */
  private evictOverflow(): void {
    while (this.sessions.size > this.limits.maxSessions) {
      const oldest = this.sessions.keys().next();
      if (oldest.done === true) return;
      this.sessions.delete(oldest.value);
    }
  }

  /** Keeps an outcome; past `maxResultsPerSession` the lowest seq is dropped and the floor rises. */
  private keep(session: Session<Res>, result: KeptResult<Res>): void {
    const results = session.results;
    const last = results[results.length - 1];
    if (last === undefined || last.seq < result.seq) {
      results.push(result);
    } else {
      // Out of order (a client with several commands in flight): insert in place.
      let i = results.length;
      while (i > 0 && (results[i - 1] as KeptResult<Res>).seq > result.seq) i--;
      results.splice(i, 0, result);
    }
    while (results.length > this.limits.maxResultsPerSession) {
      const dropped = results.shift() as KeptResult<Res>;
      session.floor = dropped.seq;
    }
  }
}

/** Forgets every result with seq <= `ack` and raises the floor to it. */
function forgetThrough<Res>(session: Session<Res>, ack: number): void {
  session.floor = ack;
  let n = 0;
  while (n < session.results.length && (session.results[n] as KeptResult<Res>).seq <= ack) n++;
  if (n > 0) session.results.splice(0, n);
}

function infoOf<Res>(s: Session<Res>): SessionInfo {
  return {
    clientId: s.clientId,
    lastIndex: s.lastIndex,
    ackedThrough: s.floor,
    keptSeqs: s.results.map((r) => r.seq),
  };
}
