/**
 * The command a client session sends (Raft thesis §6.3): the user's command, stamped with the
 * client's id and a per-client sequence number, so the replicated state machine can recognise a
 * retry and answer it with the first result instead of applying it again.
 */
import { isWellFormedString } from '../utf8.js';
import { utf8ByteLength } from './binary.js';

/** Longest client id, in UTF-8 bytes. */
export const MAX_CLIENT_ID_BYTES = 256;

/**
 * A command of a client session, as {@link withSessions} applies it.
 *
 * - `clientId`: names the session. Non-empty, at most {@link MAX_CLIENT_ID_BYTES} bytes of
 *   UTF-8 (no lone surrogate). Unique for the session's lifetime: two clients that share an id
 *   get each other's results.
 * - `seq`: a positive safe integer, one per command, increasing per client (1, 2, 3, ...). A
 *   retry of a command MUST carry the same `seq` (and the same `command`): that is what makes it
 *   a retry. The first command of a new client id MUST be `seq: 1`.
 * - `ack` (optional, default 0): the client has received the results of every `seq <= ack` and
 *   will never ask for them again, so the session may forget them. Invariant: `0 <= ack < seq`.
 *   A client may have several commands outstanding: `ack` covers only the prefix it is done
 *   with, not the newest seq it has an answer for.
 * - `command`: the user's command, given to the inner state machine when (and only when) this
 *   `seq` has not been applied before.
 */
export interface SessionCommand<Cmd> {
  readonly clientId: string;
  readonly seq: number;
  readonly ack?: number;
  readonly command: Cmd;
}

/**
 * What is wrong with the envelope of a session command (clientId, seq, ack), or null. Shared by
 * the codec (refused at `encode`) and by `apply` (which also sees commands that came through a
 * codec of the user's own).
 */
export function sessionCommandProblem(value: unknown): string | null {
  if (typeof value !== 'object' || value === null) return `expected an object, got ${typeof value}`;
  const { clientId, seq, ack } = value as Partial<Record<'clientId' | 'seq' | 'ack', unknown>>;
  if (typeof clientId !== 'string' || clientId.length === 0)
    return 'clientId must be a non-empty string';
  if (!isWellFormedString(clientId))
    return 'clientId has a lone UTF-16 surrogate, which UTF-8 cannot carry';
  if (utf8ByteLength(clientId, MAX_CLIENT_ID_BYTES) > MAX_CLIENT_ID_BYTES)
    return `clientId is longer than ${MAX_CLIENT_ID_BYTES} bytes of UTF-8`;
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 1)
    return `seq must be a positive safe integer, got ${String(seq)}`;
  if (ack !== undefined && (typeof ack !== 'number' || !Number.isSafeInteger(ack) || ack < 0))
    return `ack must be a non-negative safe integer, got ${String(ack)}`;
  if (ack !== undefined && ack >= seq)
    return `ack (${ack}) must be below seq (${seq}): a client cannot have the result of a command it is still sending`;
  return null;
}
