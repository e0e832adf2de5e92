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
import type { NodeId } from './types.js';

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
  | 'COMPACTED'
  | 'UNAVAILABLE';

const BRAND = Symbol.for('@raft/error');

/** Options accepted by every error constructor. */
export interface RaftErrorOptions {
  readonly cause?: unknown;
}

/** Base class of every error this project throws or rejects with. */
export class RaftError extends Error {
  readonly code: RaftErrorCode;
  /** True when the same call may succeed if retried (possibly on another node). */
  readonly retryable: boolean;

  constructor(
    code: RaftErrorCode,
    message: string,
    options?: RaftErrorOptions & { readonly retryable?: boolean },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryable = options?.retryable ?? false;
    Object.defineProperty(this, BRAND, { value: true, enumerable: false });
  }

  /** True if `err` is a RaftError (from any copy of this package), optionally with `code`. */
  static is(err: unknown, code?: RaftErrorCode): err is RaftError {
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

/** This node is not the leader. `leaderId` is a hint (null when no leader is known). */
export class NotLeaderError extends RaftError {
  readonly leaderId: NodeId | null;
  readonly leaderAddress: string | null;
  constructor(
    leaderId: NodeId | null,
    leaderAddress: string | null = null,
    options?: RaftErrorOptions,
  ) {
    super(
      leaderId === null ? 'NO_LEADER' : 'NOT_LEADER',
      leaderId === null ? 'no leader is known' : `not the leader; the leader is ${leaderId}`,
      { ...options, retryable: true },
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
  readonly outcome = 'unknown' as const;
  constructor(message: string, options?: RaftErrorOptions) {
    super('TIMEOUT', message, { ...options, retryable: false });
  }
}

/** The proposal's log position was taken by another leader's entry: it was NOT applied. */
export class LeadershipLostError extends RaftError {
  constructor(
    message = 'leadership was lost before the proposal committed',
    options?: RaftErrorOptions,
  ) {
    super('LEADERSHIP_LOST', message, { ...options, retryable: true });
  }
}

/** A storage operation failed. Fatal: the node stops rather than risk acknowledging what is
 *  not stored. */
export class StorageError extends RaftError {
  constructor(message: string, options?: RaftErrorOptions) {
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

/** A membership change is already in flight (issue #4). */
export class MembershipChangeInProgressError extends RaftError {
  constructor(message = 'a membership change is already in progress', options?: RaftErrorOptions) {
    super('MEMBERSHIP_CHANGE_PENDING', message, { ...options, retryable: true });
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
