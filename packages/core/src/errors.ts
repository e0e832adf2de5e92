/**
 * Typed errors. One base class, branded so `RaftError.is()` works across package copies
 * (never rely on `instanceof` across bundles); subclasses only where there is a payload.
 *
 * Where errors surface:
 * - the engine throws only for caller bugs and for "not leader" / "dropped";
 * - the runtime turns everything into promise rejections;
 * - transport callbacks never throw;
 * - adapters wrap driver errors: `new StorageError('append failed', { cause })`.
 */
import type { LogIndex, NodeId, Term } from './types.js';

/** The closed set of error codes. Apps map them to HTTP statuses in one table. */
export type RaftErrorCode =
  | 'NOT_LEADER'
  | 'NO_LEADER'
  | 'PROPOSAL_DROPPED'
  | 'LEADERSHIP_LOST'
  | 'TIMEOUT'
  | 'ABORTED'
  | 'SHUTDOWN'
  | 'STORAGE'
  | 'CODEC'
  | 'INVALID_CONFIG'
  | 'INVALID_ARGUMENT'
  | 'ENTRY_TOO_LARGE'
  | 'MEMBERSHIP_CHANGE_PENDING'
  | 'LEARNER_LAGGING'
  | 'TRANSFER_IN_PROGRESS'
  | 'COMPACTED'
  | 'UNAVAILABLE'
  | 'APPLY_FAILED'
  /**
   * Thrown by a `withSessions` state machine's `apply` (so it reaches the proposer as an
   * ApplyError's `cause`): the client's session expired, was evicted or never existed, or the
   * result of that seq is no longer kept. The session expired or never existed: start a new
   * client id. `outcome: 'unknown'`: the command may have applied before it was forgotten.
   */
  | 'SESSION_EXPIRED';

/**
 * What a failed proposal did, when the error says:
 * - `unknown`: it may or may not be applied (it may have left before the failure, and commit
 *   later). Retry only commands that are safe to apply twice, or that carry an idempotency key.
 * - `notApplied`: it was not applied and never will be; retrying cannot apply it twice.
 *
 * `propose()` rejects with an error that always carries one, except {@link ApplyError} (the
 * command WAS applied, and the state machine threw: that is its result).
 */
export type ProposalOutcome = 'unknown' | 'notApplied';

const BRAND = Symbol.for('@raft/error');

/** Options accepted by every error constructor. */
export interface RaftErrorOptions {
  readonly cause?: unknown;
}

/** Options of the {@link RaftError} constructor. */
export interface RaftErrorInit extends RaftErrorOptions {
  /** Default false. */
  readonly retryable?: boolean;
  /** For errors of a proposal: see {@link ProposalOutcome}. */
  readonly outcome?: ProposalOutcome;
}

/**
 * The subclass each code comes with, for {@link RaftError.is} to narrow to. Codes not listed
 * are plain {@link RaftError}s.
 */
export interface RaftErrorClasses {
  NOT_LEADER: NotLeaderError;
  NO_LEADER: NotLeaderError;
  TIMEOUT: TimeoutError;
  LEADERSHIP_LOST: LeadershipLostError;
  STORAGE: StorageError;
  INVALID_CONFIG: ConfigError;
  MEMBERSHIP_CHANGE_PENDING: MembershipChangeInProgressError;
  CODEC: CodecError;
  APPLY_FAILED: ApplyError;
}

/** The error type that carries `code`: its subclass, or RaftError. */
export type RaftErrorOf<C extends RaftErrorCode> = C extends keyof RaftErrorClasses
  ? RaftErrorClasses[C]
  : RaftError & { readonly code: C };

/** Base class of every error this project throws or rejects with. */
export class RaftError extends Error {
  readonly code: RaftErrorCode;
  /** True when the same call may succeed if retried (possibly on another node). */
  readonly retryable: boolean;
  /** Set on the errors `propose()` rejects with: see {@link ProposalOutcome}. */
  readonly outcome: ProposalOutcome | undefined;

  constructor(code: RaftErrorCode, message: string, options?: RaftErrorInit) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryable = options?.retryable ?? false;
    this.outcome = options?.outcome;
    Object.defineProperty(this, BRAND, { value: true, enumerable: false });
  }

  /**
   * True if `err` is a RaftError (from any copy of this package), optionally with `code`; with a
   * code it narrows to that code's subclass, so `RaftError.is(e, 'NOT_LEADER') && e.leaderId`
   * type-checks.
   */
  static is<C extends RaftErrorCode>(err: unknown, code: C): err is RaftErrorOf<C>;
  static is(err: unknown): err is RaftError;
  static is(err: unknown, code?: RaftErrorCode): boolean {
    if (
      typeof err !== 'object' ||
      err === null ||
      (err as Record<symbol, unknown>)[BRAND] !== true
    ) {
      return false;
    }
    return code === undefined || (err as RaftError).code === code;
  }
}

/** This node is not the leader. `leaderId` is a hint (null when no leader is known). Nothing
 *  was appended: `outcome` is `notApplied`. */
export class NotLeaderError extends RaftError {
  readonly leaderId: NodeId | null;
  readonly leaderAddress: string | null;
  constructor(
    leaderId: NodeId | null,
    leaderAddress: string | null = null,
    options?: RaftErrorOptions & { readonly message?: string },
  ) {
    super(
      leaderId === null ? 'NO_LEADER' : 'NOT_LEADER',
      options?.message ??
        (leaderId === null ? 'no leader is known' : `not the leader; the leader is ${leaderId}`),
      { ...options, retryable: true, outcome: 'notApplied' },
    );
    this.leaderId = leaderId;
    this.leaderAddress = leaderAddress;
  }
}

/**
 * A wait ran out. `outcome: 'unknown'`: a proposal may or may not have been applied, so it is
 * not `retryable`: retry only commands that are safe to apply twice (or carry an idempotency key).
 */
export class TimeoutError extends RaftError {
  declare readonly outcome: 'unknown';
  constructor(message: string, options?: RaftErrorOptions) {
    super('TIMEOUT', message, { ...options, retryable: false, outcome: 'unknown' });
  }
}

/** The proposal's log position was taken by another leader's entry: it was NOT applied. */
export class LeadershipLostError extends RaftError {
  constructor(
    message = 'leadership was lost before the proposal committed',
    options?: RaftErrorOptions,
  ) {
    super('LEADERSHIP_LOST', message, { ...options, retryable: true, outcome: 'notApplied' });
  }
}

/**
 * A storage operation failed. Fatal: the node stops rather than risk acknowledging what is not
 * stored. Proposals pending when it happened carry `outcome: 'unknown'` (their entries may have
 * reached the followers before the local write failed).
 */
export class StorageError extends RaftError {
  constructor(
    message: string,
    options?: RaftErrorOptions & { readonly outcome?: ProposalOutcome },
  ) {
    super('STORAGE', message, options);
  }
}

/** An option is invalid. `field` names it. */
export class ConfigError extends RaftError {
  readonly field: string;
  constructor(field: string, message: string, options?: RaftErrorOptions) {
    super('INVALID_CONFIG', `${field}: ${message}`, options);
    this.field = field;
  }
}

/** A membership change is already in flight. */
export class MembershipChangeInProgressError extends RaftError {
  constructor(message = 'a membership change is already in progress', options?: RaftErrorOptions) {
    super('MEMBERSHIP_CHANGE_PENDING', message, {
      ...options,
      retryable: true,
      outcome: 'notApplied',
    });
  }
}

/** Malformed bytes reached a decoder. Carries the byte offset where decoding failed. */
export class CodecError extends RaftError {
  readonly offset: number;
  constructor(message: string, offset: number, options?: RaftErrorOptions) {
    super('CODEC', `${message} (at byte ${offset})`, options);
    this.offset = offset;
  }
}

/**
 * The state machine's `apply()` threw for this command (or the codec could not decode it). The
 * command WAS applied: applying is deterministic, so every replica threw at the same entry and
 * recorded the same outcome, and the cluster went on. `cause` is what `apply()` threw on the node
 * that answers; `index` and `term` locate the entry. Not retryable: the same command fails the
 * same way.
 */
export class ApplyError extends RaftError {
  readonly index: LogIndex;
  readonly term: Term;
  constructor(index: LogIndex, term: Term, options?: RaftErrorOptions) {
    super('APPLY_FAILED', `the state machine threw applying entry ${index}`, {
      ...options,
      retryable: false,
    });
    this.index = index;
    this.term = term;
  }
}
