/**
 * Proposals forwarded from followers to the leader (etcd MsgProp), at most once by construction.
 *
 * ```
 *   follower                                         leader of term T
 *   propose() ── propose{term: T, session, id} ──►  T is my term?  no ──► staleTerm / notLeader
 *                                                   │ yes
 *                                                   seen (session, id)?  yes ──► first position
 *                                                   │ no                 maybe ─► no answer
 *                                                   append once, remember ──► proposeResponse
 *   track (index, term); settle when it applies ◄──
 * ```
 *
 * Why a forward can never be appended twice: the follower stamps it with the term in which it
 * knows the leader, and a leader takes forwards only of its own term. One node leads a term, in
 * one incarnation (a restarted node is a follower and can only lead a later term), so a
 * duplicated or late copy can only reach the leader that took the original, and that leader
 * remembers every `(sender, session, requestId)` it took during its term ({@link ForwardLedger}).
 * Forgetting is safe: a forgotten request id falls at or below a per-session floor, and a forward
 * at or below the floor that is not remembered is never appended.
 *
 * Why every answer is true: a node answers "not appended" (any rejection) only when it knows
 * it did not append that forward: its ledger for the stamped term says so, or it never led that
 * term. A late copy can reach a node that led the term in an earlier incarnation, or whose
 * memory of it is gone; that node cannot tell, so it says nothing, and the sender's deadline
 * reports TIMEOUT with outcome unknown, which is the truth.
 */
import type { RawNode } from '../engine/raw-node.js';
import { NotLeaderError, RaftError } from '../errors.js';
import type { Random } from '../interfaces/clock.js';
import type { ProposeMessage, ProposeRejection, ProposeResponseMessage } from '../messages.js';
import type { LogIndex, NodeId, Term } from '../types.js';
import type { Pending } from './proposals.js';

/** Request ids remembered per sender session before the oldest are forgotten (floor raised). */
const SEEN_PER_SESSION = 1024;
/** Sender sessions (follower incarnations) a leader accepts forwards from in one term. */
const SESSIONS_PER_TERM = 256;

// ------------------------------------------------------------------ follower side

/** Incarnations created in this process: part of each session, so two differ even when
 *  their random sources were seeded alike. */
let incarnations = 0;

/** The follower's forwards waiting for the leader's answer. */
export class ForwardedProposals<T> {
  /**
   * Unique per node incarnation (request ids restart at 1 in each), so the leader never takes a
   * new incarnation's forward for an old one, and a late answer to an earlier incarnation never
   * matches. 32 random bits (the node's `random`), and 16 bits of a per-process counter mixed
   * with the clock: incarnations in one process always differ, and across processes they differ
   * unless both the random seed and the clock reading repeat.
   */
  readonly session: number;
  private nextRequestId = 1;
  private readonly waiting = new Map<number, Pending<T>>();

  constructor(random: Random, now: number) {
    const local = (incarnations++ * 40_503 + Math.floor(now)) & 0xffff;
    this.session = Math.floor(random() * 2 ** 32) * 2 ** 16 + local;
  }

  get size(): number {
    return this.waiting.size;
  }

  /** Builds the forward of `p` to `leaderId`, known as leader in `term`, and registers `p`. */
  forward(p: Pending<T>, from: NodeId, leaderId: NodeId, term: Term, data: Uint8Array) {
    p.requestId = this.nextRequestId++;
    p.forwardedTo = leaderId;
    this.waiting.set(p.requestId, p);
    const message: ProposeMessage = {
      type: 'propose',
      from,
      to: leaderId,
      term,
      session: this.session,
      requestId: p.requestId,
      data,
    };
    return message;
  }

  /** The waiting forward this answer is for, removed; undefined for any other answer. */
  take(m: ProposeResponseMessage): Pending<T> | undefined {
    if (m.session !== this.session) return undefined;
    const p = this.waiting.get(m.requestId);
    if (p === undefined || m.from !== p.forwardedTo) return undefined;
    this.waiting.delete(m.requestId);
    return p;
  }

  delete(p: Pending<T>): void {
    this.waiting.delete(p.requestId);
  }

  /** Every waiting forward; none is left. */
  drain(): Pending<T>[] {
    const all = [...this.waiting.values()];
    this.waiting.clear();
    return all;
  }
}

/** The error a refused forward becomes (`m.rejected` is set). Nothing was appended. */
export function rejectionError(m: ProposeResponseMessage): RaftError {
  const leaderId = m.rejected?.leaderId ?? null;
  switch (m.rejected?.reason) {
    case 'entryTooLarge':
      return new RaftError(
        'ENTRY_TOO_LARGE',
        `the leader ${m.from} refused the command: larger than its maxCommandBytes`,
        { outcome: 'notApplied' },
      );
    case 'dropped':
      return new RaftError(
        'PROPOSAL_DROPPED',
        `the leader ${m.from} could not take the proposal now`,
        { retryable: true, outcome: 'notApplied' },
      );
    case 'staleTerm':
      return new NotLeaderError(leaderId, null, {
        message: `the proposal was forwarded in an earlier term; ${m.from} leads term ${m.term} now`,
      });
    default:
      return new NotLeaderError(leaderId);
  }
}

// ------------------------------------------------------------------ leader side

interface SessionLedger {
  /** Every request id above the floor that was appended (or refused) is in `seen`. */
  floor: number;
  readonly seen: Map<number, { readonly index: LogIndex; readonly term: Term }>;
}

/** In `seen`: the leader refused this forward, so no later copy may be appended. */
const REFUSED = Object.freeze({ index: 0, term: 0 });

/** What the leader does with one forward. */
export type ForwardVerdict =
  | { readonly kind: 'append' }
  | { readonly kind: 'answer'; readonly message: ProposeResponseMessage }
  /** Possibly appended before, and not known any more: neither append nor answer. */
  | { readonly kind: 'ignore' };

/** Terms whose ledgers a node keeps after it stops leading them. */
const LED_TERMS_KEPT = 8;

/**
 * A node's memory of the forwards it took, per term it led in this incarnation (see the module
 * comment). Every answer it gives is true: a refusal ("not appended") only when it knows it did
 * not append the forward, the first position when it did, and silence when it cannot tell (a
 * forward stamped with a term it may have led before a restart, or whose memory it dropped).
 */
export class ForwardLedger {
  /** Ledgers of the terms led in this incarnation, at most LED_TERMS_KEPT of them. */
  private readonly terms = new Map<Term, Map<string, SessionLedger>>();
  /** This node may have led any term up to here without a ledger to tell (restart, eviction). */
  private unknownUpTo = Number.POSITIVE_INFINITY;

  constructor(
    private readonly id: NodeId,
    private readonly maxCommandBytes: number,
  ) {}

  /** The incarnation starts at `term`: it may have led that term, or any earlier, before. */
  begin(term: Term): void {
    this.unknownUpTo = term;
  }

  /**
   * Decides what to do with a forward, given the engine's state. On `append`, the caller
   * proposes `m.data` and then calls {@link recordAppended}.
   */
  check(m: ProposeMessage, engine: RawNode, unapplied: number, maxPending: number): ForwardVerdict {
    const { role, term, termDurable, leaderId } = engine.basicStatus();
    const sessions = this.terms.get(m.term);
    const ledger = sessions?.get(sessionKey(m));
    const seen = ledger?.seen.get(m.requestId);
    if (seen === REFUSED) return this.refuse(m, term, 'dropped', this.id);
    if (seen !== undefined) return { kind: 'answer', message: this.accept(m, term, seen) };
    // Not appended for sure: this term's ledger would hold it, or this node never led the term.
    const known =
      sessions !== undefined ? m.requestId > (ledger?.floor ?? 0) : m.term > this.unknownUpTo;
    if (!known) return { kind: 'ignore' };
    if (role !== 'leader') return this.refuse(m, term, 'notLeader', leaderId);
    // The stamp: only the leader of the term the sender stamped may take it.
    if (m.term < term) return this.refuse(m, term, 'staleTerm', this.id);
    if (m.term > term) return this.refuse(m, term, 'notLeader', null);
    if (m.data.byteLength > this.maxCommandBytes)
      return this.refuse(m, term, 'entryTooLarge', this.id);
    // Bounded memory: past the limit, refuse new sessions (nothing appended) for this term. The
    // limit stays reached for the rest of the term, so later copies are refused too.
    if (ledger === undefined && (sessions?.size ?? 0) >= SESSIONS_PER_TERM)
      return this.refuse(m, term, 'dropped', this.id);
    // A leader whose term is not durable yet could lose it in a crash and lead the same term
    // again: it takes no forward until then (a lone voter, for the time of one write).
    if (!termDurable) return { kind: 'answer', message: this.refuseForGood(m, term) };
    // Back-pressure applies to forwards as to the leader's own proposals.
    if (unapplied >= maxPending) return { kind: 'answer', message: this.refuseForGood(m, term) };
    return { kind: 'append' };
  }

  /**
   * Refuses `m` as the leader of its term, and remembers it: "not appended" must stay true, so
   * a duplicate or late copy that arrives once the leader could take it is refused as well.
   */
  private refuseForGood(m: ProposeMessage, term: Term): ProposeResponseMessage {
    this.remember(m, m.term, REFUSED);
    return this.response(m, term, 0, 0, { leaderId: this.id, reason: 'dropped' });
  }

  /** Remembers that `m` was appended at (index, entryTerm); returns the answer to send. */
  recordAppended(m: ProposeMessage, index: LogIndex, entryTerm: Term): ProposeResponseMessage {
    const position = { index, term: entryTerm };
    this.remember(m, entryTerm, position);
    return this.accept(m, entryTerm, position);
  }

  private remember(
    m: ProposeMessage,
    entryTerm: Term,
    position: { readonly index: LogIndex; readonly term: Term },
  ): void {
    let sessions = this.terms.get(entryTerm);
    if (sessions === undefined) {
      sessions = new Map();
      this.terms.set(entryTerm, sessions);
      if (this.terms.size > LED_TERMS_KEPT) {
        const oldest = Math.min(...this.terms.keys());
        this.terms.delete(oldest);
        if (!(this.unknownUpTo >= oldest)) this.unknownUpTo = oldest;
      }
    }
    const key = sessionKey(m);
    let ledger = sessions.get(key);
    if (ledger === undefined) {
      ledger = { floor: 0, seen: new Map() };
      sessions.set(key, ledger);
    }
    ledger.seen.set(m.requestId, position);
    if (ledger.seen.size > SEEN_PER_SESSION) {
      // Forget the oldest; the floor keeps every forgotten id from being appended again.
      const [oldest] = ledger.seen.keys();
      ledger.seen.delete(oldest as number);
      if ((oldest as number) > ledger.floor) ledger.floor = oldest as number;
    }
  }

  /** The answer to a forward the engine refused (it is not the leader, or cannot take it). */
  refused(m: ProposeMessage, engine: RawNode, err: unknown): ProposeResponseMessage {
    const term = engine.basicStatus().term;
    return err instanceof NotLeaderError
      ? this.response(m, term, 0, 0, { leaderId: err.leaderId, reason: 'notLeader' })
      : // Still the leader of m.term (a transfer in progress): a later copy must not slip in.
        this.refuseForGood(m, term);
  }

  private accept(
    m: ProposeMessage,
    term: Term,
    position: { readonly index: LogIndex; readonly term: Term },
  ): ProposeResponseMessage {
    return this.response(m, term, position.index, position.term, undefined);
  }

  private refuse(
    m: ProposeMessage,
    term: Term,
    reason: ProposeRejection,
    leaderId: NodeId | null,
  ): ForwardVerdict {
    return { kind: 'answer', message: this.response(m, term, 0, 0, { leaderId, reason }) };
  }

  private response(
    m: ProposeMessage,
    term: Term,
    index: LogIndex,
    entryTerm: Term,
    rejected: ProposeResponseMessage['rejected'],
  ): ProposeResponseMessage {
    const base = {
      type: 'proposeResponse',
      from: this.id,
      to: m.from,
      term,
      session: m.session,
      requestId: m.requestId,
      index,
      entryTerm,
    } as const;
    return rejected === undefined ? base : { ...base, rejected };
  }
}

function sessionKey(m: ProposeMessage): string {
  return `${m.from}\u0000${m.session}`;
}
