/**
 * The client side of a session (Raft thesis §6.3): numbers a client's commands, tells the
 * cluster which results it is done with, and retries a command whose fate is unknown under the
 * same number, so it applies at most once (with {@link withSessions} on every replica).
 *
 * ```text
 *   propose(cmd) ──► seq = next ──► node.propose({clientId, seq, ack, command})
 *                                     │ result / ApplyError ──► done(seq), ack advances
 *                                     │ retryable or outcome unknown ──► wait for a leader, same seq
 *                                     └ attempts used up ──► reject; done(seq)
 * ```
 *
 * No I/O of its own: it calls the `propose` (and, between attempts, `waitForLeader`) of what it
 * is given, a RaftNode or anything shaped like one (an RPC stub to a remote node).
 */
import { ConfigError, RaftError } from '../errors.js';
import type { Random } from '../interfaces/clock.js';
import { hostRandom, hostRandomBytes } from '../platform.js';
import type { CallOptions, ProposeResult } from '../runtime/raft-node.js';
import { type SessionCommand, sessionCommandProblem } from './session-command.js';

/** What a session client proposes through: a RaftNode of session commands fits. */
export interface SessionProposer<Cmd, Res> {
  propose(command: SessionCommand<Cmd>, options?: CallOptions): Promise<ProposeResult<Res>>;
  /** Awaited (errors ignored) before each retry, when present. */
  waitForLeader?(options?: CallOptions): Promise<unknown>;
}

/** Options of {@link createSessionClient}. */
export interface SessionClientOptions {
  /**
   * The session's id. Default: 128 random bits as 32 hex digits, from `random` when given, else
   * the host's `crypto.getRandomValues`, else `Math.random`. A given id MUST NOT have been used
   * before (by this or any client): the cluster would take its commands for retries.
   */
  readonly clientId?: string;
  /** Uniform in [0, 1); only used to draw the default `clientId` (seed it in tests). */
  readonly random?: Random;
  /**
   * Attempts per command, the first included. Default 3; an integer >= 1. A command is retried
   * (same seq) after a rejection whose `outcome` is `unknown` or that is `retryable`, except
   * APPLY_FAILED (that is its result) and ABORTED (the caller's signal).
   */
  readonly maxAttempts?: number;
}

/** A client session: see {@link createSessionClient}. */
export interface SessionClient<Cmd, Res> {
  readonly clientId: string;
  /**
   * Proposes `command` as the session's next seq; resolves with the result of its one apply
   * (the kept result, if a retry was answered from the table). Rejects with the node's error
   * once attempts are used up or the error is final; when some attempt ended with outcome
   * `unknown`, the rejection is that attempt's error (so `outcome` never claims `notApplied`
   * for a command that may have applied). An ApplyError is the command's result: its `cause`
   * is what the inner state machine threw, or a SESSION_EXPIRED RaftError, after which this
   * client is spent (create a new one, with a new id).
   */
  propose(command: Cmd, options?: CallOptions): Promise<ProposeResult<Res>>;
  /** Every seq at or below this is settled here: sent as `ack` with each command. */
  readonly ack: number;
  /** The seq the next command gets. */
  readonly nextSeq: number;
}

/** A random client id: 16 bytes as 32 lower-case hex digits. */
function randomClientId(random: Random | undefined): string {
  let bytes: Uint8Array | null = null;
  if (random === undefined) bytes = hostRandomBytes(16);
  if (bytes === null) {
    const draw = random ?? hostRandom;
    bytes = new Uint8Array(16);
    for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(draw() * 256) & 0xff;
  }
  let id = '';
  for (const b of bytes) id += b.toString(16).padStart(2, '0');
  return id;
}

/** Whether a failed attempt may be retried under the same seq (see maxAttempts). */
function retriable(err: unknown): boolean {
  if (!RaftError.is(err)) return false;
  if (err.code === 'APPLY_FAILED' || err.code === 'ABORTED') return false;
  return err.outcome === 'unknown' || err.retryable;
}

/**
 * A session client over `node` (thesis §6.3), for a cluster whose state machine is wrapped in
 * {@link withSessions} and whose codec is {@link sessionCodec}.
 *
 * - Commands are numbered 1, 2, 3, ... in the order `propose` is called, and may be in flight
 *   together (keep fewer than the table's `maxResultsPerSession` unsettled). The first one goes
 *   alone: the others wait until it has settled, because the table opens a session only with
 *   seq 1. If seq 1 is certainly not applied (every attempt was refused with outcome
 *   `notApplied`), the next command is numbered 1 again.
 * - `ack` is the highest seq such that every seq up to it has settled here (answered, or given
 *   up on); each command carries it, so the table forgets those results.
 * - Not safe to share between processes: one client id, one numbering.
 *
 * @throws ConfigError for a bad `clientId` or `maxAttempts`.
 */
export function createSessionClient<Cmd, Res>(
  node: SessionProposer<Cmd, Res>,
  options: SessionClientOptions = {},
): SessionClient<Cmd, Res> {
  const clientId = options.clientId ?? randomClientId(options.random);
  const problem = sessionCommandProblem({ clientId, seq: 1 });
  if (problem !== null) throw new ConfigError('clientId', problem);
  const maxAttempts = options.maxAttempts ?? 3;
  if (!Number.isSafeInteger(maxAttempts) || maxAttempts < 1)
    throw new ConfigError('maxAttempts', `must be an integer >= 1, got ${String(maxAttempts)}`);

  let nextSeq = 1;
  let ack = 0;
  /** Settled seqs above `ack` (waiting for the ones below them). */
  const settled = new Set<number>();
  /** True once seq 1 may have applied: from then on the session may exist. */
  let opened = false;
  /** While seq 1 is in flight: settles when it does. */
  let opening: Promise<void> | null = null;

  const settle = (seq: number): void => {
    settled.add(seq);
    while (settled.delete(ack + 1)) ack++;
  };

  /** Sends `seq` until it settles; returns its result or throws the error to report. */
  const send = async (
    seq: number,
    command: Cmd,
    callOptions: CallOptions | undefined,
  ): Promise<ProposeResult<Res>> => {
    let unknownError: unknown;
    for (let attempt = 1; ; attempt++) {
      try {
        // `ack` is read afresh for each attempt: it only grows, and never reaches `seq`.
        return await node.propose({ clientId, seq, ack, command }, callOptions);
      } catch (err) {
        if (RaftError.is(err) && err.outcome === 'unknown') unknownError = err;
        if (!retriable(err) || attempt >= maxAttempts || callOptions?.signal?.aborted === true) {
          const refused = RaftError.is(err) && err.outcome === 'notApplied';
          throw refused && unknownError !== undefined ? unknownError : err;
        }
      }
      try {
        await node.waitForLeader?.(callOptions);
      } catch {
        // The next attempt reports what is wrong.
      }
    }
  };

  const client: SessionClient<Cmd, Res> = {
    clientId,
    get ack() {
      return ack;
    },
    get nextSeq() {
      return nextSeq;
    },
    async propose(command: Cmd, callOptions?: CallOptions): Promise<ProposeResult<Res>> {
      while (!opened && opening !== null) await opening;
      const seq = nextSeq++;
      if (opened) {
        try {
          return await send(seq, command, callOptions);
        } finally {
          settle(seq);
        }
      }
      // seq is 1: the session opens with it, and no other command goes until it settles.
      let done = (): void => {};
      opening = new Promise<void>((resolve) => {
        done = resolve;
      });
      try {
        const result = await send(seq, command, callOptions);
        opened = true;
        settle(seq);
        return result;
      } catch (err) {
        if (RaftError.is(err) && err.outcome === 'notApplied') {
          nextSeq = 1; // certainly not applied: the session does not exist; reuse seq 1
        } else {
          opened = true;
          settle(seq);
        }
        throw err;
      } finally {
        opening = null;
        done();
      }
    },
  };
  return client;
}
