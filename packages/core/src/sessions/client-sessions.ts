/**
 * Client sessions: exactly-once commands on top of any state machine (Raft thesis §6.3).
 *
 * Raft alone gives at-least-once: a client whose proposal times out (outcome `unknown`) cannot
 * tell whether it applied, and a retry may apply it a second time. {@link withSessions} wraps
 * the user's state machine in a session table that is part of the replicated state (it lives in
 * the state machine and in its snapshots, never only in a node's memory, DESIGN.md §8): each
 * command carries its client's id and a sequence number, the first apply of a (client, seq)
 * records the result, and every later apply of the same pair answers with that result without
 * calling the inner state machine. Every replica holds the same table, so a retry sent to a
 * new leader after a failover, or to a node restarted from a snapshot, is answered the same way.
 *
 * ```text
 *  client ──{clientId, seq, ack, command}──► propose ──► log ──► withSessions.apply
 *                                                                 │ seq kept?  ──► the kept result
 *                                                                 │ seq forgotten? ► SESSION_EXPIRED
 *                                                                 └ new seq ──► inner.apply, keep it
 * ```
 */
import { ConfigError, RaftError } from '../errors.js';
import type {
  ApplyContext,
  MaybePromise,
  SnapshotChunks,
  StateMachine,
} from '../interfaces/state-machine.js';
import type { SnapshotMeta } from '../types.js';
import { utf8Decode, utf8Encode } from '../utf8.js';
import type { SessionCommand } from './session-command.js';
import {
  decodeHeader,
  decodeSessionTable,
  encodeSessionImage,
  HEADER_BYTES,
  RemainingChunks,
  readExactly,
} from './session-snapshot.js';
import { type SessionInfo, type SessionLimits, SessionTable } from './session-table.js';

/**
 * Turns the inner state machine's results into bytes and back, for the session table in
 * snapshots. Contract: `decode(encode(r))` MUST be equivalent to `r` (a node restored from a
 * snapshot answers a retry with the decoded copy), and both MUST be deterministic.
 */
export interface ResultCodec<Res> {
  encode(result: Res): Uint8Array;
  decode(bytes: Uint8Array): Res;
}

/**
 * Results as JSON text in UTF-8, the default {@link SessionOptions.resultCodec}. `undefined` (a
 * state machine whose `apply` returns nothing) is the empty byte string; anything else must be a
 * JSON value, and arrives as what JSON makes of it (a `Date` as its ISO string). Encoding runs
 * when a snapshot is taken, so a result JSON cannot encode (a BigInt, a function) fails that
 * snapshot, not the command: give results of other types a codec of their own.
 */
export function jsonResultCodec<Res>(): ResultCodec<Res> {
  return {
    encode(result: Res): Uint8Array {
      if (result === undefined) return new Uint8Array(0);
      const text = JSON.stringify(result);
      if (text === undefined)
        throw new RaftError(
          'INVALID_ARGUMENT',
          `a ${typeof result} result cannot be encoded as JSON: give withSessions a resultCodec`,
        );
      return utf8Encode(text);
    },
    decode(bytes: Uint8Array): Res {
      if (bytes.byteLength === 0) return undefined as Res;
      const text = utf8Decode(bytes);
      if (text === null) throw new RaftError('CODEC', 'a kept result is not well-formed UTF-8');
      return JSON.parse(text) as Res;
    },
  };
}

/**
 * Options of {@link withSessions}. They are part of the replicated state machine's definition:
 * every replica MUST use the same values (a node with a smaller `maxSessions` would forget a
 * session the others still answer from). Change them as you would change `apply` itself.
 */
export interface SessionOptions<Res> {
  /** Encodes kept results into snapshots. Default {@link jsonResultCodec}. */
  readonly resultCodec?: ResultCodec<Res>;
  /**
   * Most sessions kept. Opening one more evicts the least recently used one: the session whose
   * latest command has the lowest log index (ties, possible only in a hand-built table, go by
   * client id in UTF-16 code unit order). Default 10_000; an integer >= 1.
   */
  readonly maxSessions?: number;
  /**
   * A session whose latest command is more than this many log indexes behind the command being
   * applied is dropped: one last used at index u still answers at u + expireAfterEntries. Judged
   * from `at.index` when commands apply, never from a clock, so every replica drops it at the
   * same entry. Default 1_000_000; an integer >= 1, or `Infinity` (sessions go only by
   * eviction).
   */
  readonly expireAfterEntries?: number;
  /**
   * Most outcomes kept per session. Past it the lowest seq is forgotten and every seq at or
   * below it answers SESSION_EXPIRED, applied or not, so a client keeps fewer commands than this
   * unacknowledged (outstanding, or answered but not yet covered by `ack`). Default 64; an
   * integer >= 1.
   */
  readonly maxResultsPerSession?: number;
}

/** The defaults of {@link SessionOptions}. */
export const DEFAULT_SESSION_OPTIONS = {
  maxSessions: 10_000,
  expireAfterEntries: 1_000_000,
  maxResultsPerSession: 64,
} as const satisfies SessionLimits;

/**
 * The state machine {@link withSessions} returns: a StateMachine of {@link SessionCommand}s,
 * plus a read-only view of its table (for status pages and tests; it is the state at the last
 * applied entry on this node).
 */
export interface SessionStateMachine<Cmd, Res> extends StateMachine<SessionCommand<Cmd>, Res> {
  /** Every session, least recently used first (the order eviction goes in). */
  sessions(): SessionInfo[];
  /** One session, or undefined when the table holds none for `clientId`. */
  session(clientId: string): SessionInfo | undefined;
}

const OPTION_KEYS = new Set([
  'resultCodec',
  'maxSessions',
  'expireAfterEntries',
  'maxResultsPerSession',
]);

function resolveOptions<Res>(
  options: SessionOptions<Res>,
): SessionLimits & { readonly resultCodec: ResultCodec<Res> } {
  for (const key of Object.keys(options)) {
    if (!OPTION_KEYS.has(key))
      throw new ConfigError(key, `unknown option; expected one of ${[...OPTION_KEYS].join(', ')}`);
  }
  const integer = (field: keyof SessionLimits, allowInfinity: boolean): number => {
    const v = options[field] ?? DEFAULT_SESSION_OPTIONS[field];
    if (allowInfinity && v === Number.POSITIVE_INFINITY) return v;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1)
      throw new ConfigError(
        field,
        `must be an integer >= 1${allowInfinity ? ' or Infinity' : ''}, got ${String(v)}`,
      );
    return v;
  };
  const resultCodec = options.resultCodec ?? jsonResultCodec<Res>();
  if (typeof resultCodec?.encode !== 'function' || typeof resultCodec?.decode !== 'function')
    throw new ConfigError('resultCodec', 'must have encode() and decode() methods');
  return {
    resultCodec,
    maxSessions: integer('maxSessions', false),
    expireAfterEntries: integer('expireAfterEntries', true),
    maxResultsPerSession: integer('maxResultsPerSession', false),
  };
}

function isPromiseLike(v: unknown): v is PromiseLike<unknown> {
  return (
    typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function'
  );
}

/**
 * Wraps `inner` so that each (clientId, seq) applies at most once (Raft thesis §6.3). Use it
 * with {@link sessionCodec} as the node's codec, and propose {@link SessionCommand}s (by hand or
 * through {@link createSessionClient}).
 *
 * `apply({ clientId, seq, ack, command }, at)`, in this order:
 * 1. An envelope that is not valid (see {@link SessionCommand}) throws INVALID_ARGUMENT.
 * 2. Sessions idle for more than `expireAfterEntries` indexes before `at.index` are dropped.
 * 3. An unknown `clientId` opens a session only with `seq: 1`; any other seq throws
 *    SESSION_EXPIRED (the session expired, was evicted, or never existed: its earlier commands
 *    may have applied, so the command cannot be answered safely). A `seq <= ack + 1` rule is
 *    deliberately not accepted instead: an `ack` above 0 from an unknown client proves it had a
 *    session that was forgotten, and this very seq may have applied in it. Opening one past
 *    `maxSessions` evicts the least recently used session.
 * 4. A known session is marked used at `at.index` (a retry or a refused command counts), and
 *    forgets the outcomes of every seq <= `ack`.
 * 5. A seq at or below what the session has forgotten throws SESSION_EXPIRED: its result is
 *    gone (and the command may have applied).
 * 6. A seq whose outcome is kept returns that result, or throws an error equivalent to the one
 *    the first apply threw (same RaftError code, or same name, message and `code`), without
 *    calling `inner.apply`.
 * 7. Otherwise `inner.apply(command, at)` runs and its outcome is kept: its result, or what it
 *    threw (which the proposer also gets, as an ApplyError's cause). A {@link StorageError} is
 *    not an outcome: it is rethrown unrecorded (it stops the node).
 *
 * Thrown errors are the command's deterministic result (the proposer's `propose()` rejects with
 * an ApplyError whose `cause` is the error): check `RaftError.is(err.cause, 'SESSION_EXPIRED')`.
 * A SESSION_EXPIRED client must not retry under the same id; it starts again with a new id.
 *
 * Snapshots: if `inner` implements `snapshot()` and `restore()`, so does the wrapper, with an
 * image that frames the table ahead of the inner image (see `session-snapshot.ts`); the inner
 * image is streamed through untouched. If `inner` implements neither, neither does the wrapper
 * (the log is then never compacted, and replaying it on restart rebuilds the table). One without
 * the other is refused with a ConfigError, as `createRaftNode` would.
 *
 * Kept results are the values `inner.apply` returned, not copies: they MUST NOT change
 * afterwards (return immutable values, or fresh objects), or a retry would see the change on
 * this node and not on one restored from a snapshot.
 *
 * A known limit of client-chosen ids (thesis §6.3 registers clients through the log instead): a
 * session that is evicted or expires while its client still retries seq 1 opens again, and that
 * command applies a second time. Keep `maxSessions` and `expireAfterEntries` well above what a
 * client's retries can span.
 *
 * @throws ConfigError for a bad option (`err.field` names it) or an `inner` with only one of
 *   `snapshot()` and `restore()`.
 */
export function withSessions<Cmd, Res>(
  inner: StateMachine<Cmd, Res>,
  options: SessionOptions<Res> = {},
): SessionStateMachine<Cmd, Res> {
  const resolved = resolveOptions(options);
  const { resultCodec } = resolved;
  let table = new SessionTable<Res>(resolved);
  const base: SessionStateMachine<Cmd, Res> = {
    apply: (command: SessionCommand<Cmd>, at: ApplyContext): MaybePromise<Res> =>
      table.apply(command, at, inner),
    sessions: () => table.infos(),
    session: (clientId: string) => table.info(clientId),
  };
  const innerSnapshot = inner.snapshot;
  const innerRestore = inner.restore;
  if ((innerSnapshot === undefined) !== (innerRestore === undefined))
    throw new ConfigError(
      'inner',
      `implements ${innerSnapshot === undefined ? 'restore()' : 'snapshot()'} without ${innerSnapshot === undefined ? 'snapshot()' : 'restore()'}: implement both, or neither`,
    );
  if (innerSnapshot === undefined || innerRestore === undefined) return base;

  return {
    ...base,

    snapshot(): MaybePromise<SnapshotChunks> {
      // The table is encoded now, between two applies: that is its point in time. The inner
      // snapshot is taken at the same point (applies are held back while its promise is pending).
      const image = encodeSessionImage(table.values(), table.size, resultCodec);
      const chunks = innerSnapshot.call(inner);
      if (isPromiseLike(chunks)) return Promise.resolve(chunks).then((c) => framed(image, c));
      return framed(image, chunks);
    },

    async restore(chunks: AsyncIterable<Uint8Array>, meta: SnapshotMeta): Promise<void> {
      const source = chunks[Symbol.asyncIterator]();
      let rest: RemainingChunks | null = null;
      try {
        const header = await readExactly(source, HEADER_BYTES, null, 'session header', 0);
        const tableBytes = decodeHeader(header.bytes);
        const tableImage = await readExactly(
          source,
          tableBytes,
          header.leftover,
          'session table',
          HEADER_BYTES,
        );
        const sessions = decodeSessionTable(tableImage.bytes, resultCodec);
        rest = new RemainingChunks(tableImage.leftover, source);
        await innerRestore.call(inner, rest, meta);
        const restored = new SessionTable<Res>(resolved);
        restored.replace(sessions);
        table = restored;
      } finally {
        // The inner restore may stop early, or we may have failed before handing it the rest.
        if (rest !== null) await rest.close();
        else await source.return?.();
      }
    },
  };
}

/** The snapshot stream: the header and table first, then the inner chunks as they come. */
async function* framed(image: Uint8Array, chunks: SnapshotChunks): AsyncGenerator<Uint8Array> {
  yield image;
  yield* chunks;
}
