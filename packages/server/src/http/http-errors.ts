/**
 * The one table from errors to HTTP answers (CONVENTIONS.md §2). Every error body is JSON
 * `{"error": code, "message": text}`; codes are stable, messages are for people.
 */
import { RaftError } from '@raft/core';

/** An HTTP answer for an error. */
export interface HttpError {
  readonly status: number;
  readonly body: { readonly error: string; readonly message: string };
}

/** A request the API refuses before it reaches the node (bad input). */
export class BadRequestError extends Error {
  override readonly name = 'BadRequestError';
  constructor(
    message: string,
    readonly status = 400,
    readonly code = 'bad_request',
  ) {
    super(message);
  }
}

const BY_CODE: Readonly<Record<string, readonly [number, string]>> = {
  // Writes are forwarded to the leader by the node itself; with no leader known, try later.
  NOT_LEADER: [503, 'unavailable'],
  NO_LEADER: [503, 'unavailable'],
  UNAVAILABLE: [503, 'unavailable'],
  SHUTDOWN: [503, 'unavailable'],
  PROPOSAL_DROPPED: [503, 'unavailable'],
  // Overwritten before it committed: not applied, safe to retry.
  LEADERSHIP_LOST: [503, 'unavailable'],
  TRANSFER_IN_PROGRESS: [503, 'unavailable'],
  TIMEOUT: [504, 'timeout'],
  ABORTED: [504, 'timeout'],
  ENTRY_TOO_LARGE: [413, 'too_large'],
  INVALID_ARGUMENT: [400, 'bad_request'],
  INVALID_CONFIG: [400, 'bad_request'],
  // The node failed (a store failed): nothing more is served until it is restarted.
  STORAGE: [503, 'unavailable'],
  MEMBERSHIP_CHANGE_PENDING: [409, 'conflict'],
  LEARNER_LAGGING: [409, 'conflict'],
};

/** The HTTP answer for `err`. Anything unexpected is a 500 that says so. */
export function httpErrorOf(err: unknown): HttpError {
  if (err instanceof BadRequestError) {
    return { status: err.status, body: { error: err.code, message: err.message } };
  }
  if (RaftError.is(err)) {
    // A command that may have applied is a timeout whatever the code (retry it with its
    // idempotency key); 503 promises it did not.
    if (err.outcome === 'unknown') {
      return { status: 504, body: { error: 'timeout', message: err.message } };
    }
    const [status, error] = BY_CODE[err.code] ?? [500, 'internal'];
    return { status, body: { error, message: err.message } };
  }
  // fastify's own refusals of a request (a bad Content-Length, a malformed URL) keep their 4xx.
  const statusCode = (err as { statusCode?: unknown } | null)?.statusCode;
  if (typeof statusCode === 'number' && statusCode >= 400 && statusCode < 500) {
    const message = err instanceof Error ? err.message : String(err);
    return { status: statusCode, body: { error: 'bad_request', message } };
  }
  const message = err instanceof Error ? err.message : String(err);
  return { status: 500, body: { error: 'internal', message } };
}
