/**
 * `addMember`, `removeMember`, `promote` and `demote`: single-server membership changes on the
 * leader (the engine's rules are in engine/configuration.ts), each resolving with the new
 * membership once its entry is committed and applied on this node.
 *
 * ```
 *   call ─► leader? no ──► NotLeaderError (leaderId hint: make the change there)
 *             │ yes
 *             ▼
 *   first entry of the term committed? no ──► wait for it (bounded by the call's timeout)
 *             │ yes
 *             ▼
 *   engine.proposeMembership ──► MEMBERSHIP_CHANGE_PENDING / LEARNER_LAGGING /
 *             │                  TRANSFER_IN_PROGRESS / INVALID_ARGUMENT (nothing appended)
 *             ▼
 *   entry applies here ──► same term: resolve(membership); another term: LeadershipLostError
 * ```
 */
import type { MembershipChange } from '../engine/configuration.js';
import type { RawNode } from '../engine/raw-node.js';
import { LeadershipLostError, NotLeaderError, RaftError, TimeoutError } from '../errors.js';
import type { Clock, TimerHandle } from '../interfaces/clock.js';
import { decodeMembership } from '../membership.js';
import type { LogEntry, LogIndex, Membership, Term } from '../types.js';
import type { AbortSignalLike } from './raft-node.js';

/** Options of the membership calls. */
export interface MembershipCallOptions {
  readonly signal?: AbortSignalLike;
  /** Overrides `requestTimeoutMs` for this call. */
  readonly timeoutMs?: number;
}

/** Options of `promote()`. */
export interface PromoteOptions extends MembershipCallOptions {
  /** Promote even a learner that lags the leader by more than `maxPromotionLag` entries. */
  readonly force?: boolean;
}

interface Waiter {
  index: LogIndex;
  term: Term;
  /** The change, until it is appended (while waiting for the term's first commit). */
  change: MembershipChange | null;
  maxLag: number | undefined;
  readonly resolve: (m: Membership) => void;
  readonly reject: (err: unknown) => void;
  cleanup: () => void;
  settled: boolean;
}

/** What the changes need from their node. */
export interface MembershipChangesHost {
  engine(): RawNode | null;
  /** The membership in force changed on this node (also right after a local proposal). */
  changed(): void;
  schedule(): void;
}

/** See the module comment. */
export class MembershipChanges {
  /** Appended changes, by index. */
  private readonly appended = new Map<LogIndex, Waiter>();
  /** Changes waiting for the leader's first commit of its term. */
  private waitingForTerm: Waiter[] = [];

  constructor(
    private readonly clock: Clock,
    private readonly requestTimeoutMs: number,
    private readonly host: MembershipChangesHost,
  ) {}

  /** Starts a change; lifecycle and options are checked by the caller. */
  propose(
    change: MembershipChange,
    maxLag: number | undefined,
    options: MembershipCallOptions | undefined,
  ): Promise<Membership> {
    const engine = this.host.engine();
    if (engine === null) return Promise.reject(new RaftError('UNAVAILABLE', 'not running'));
    if (!engine.isLeader())
      return Promise.reject(new NotLeaderError(engine.basicStatus().leaderId));
    const timeoutMs = options?.timeoutMs ?? this.requestTimeoutMs;
    const signal = options?.signal;
    return new Promise<Membership>((resolve, reject) => {
      const waiter: Waiter = {
        index: 0,
        term: 0,
        change,
        maxLag,
        resolve,
        reject,
        cleanup: () => {},
        settled: false,
      };
      let timer: TimerHandle | null = this.clock.setTimer(timeoutMs, () => {
        timer = null;
        this.fail(
          waiter,
          waiter.change === null
            ? new TimeoutError(
                `the membership change was not committed within ${timeoutMs} ms; it may still be`,
              )
            : new TimeoutError(
                `the leader did not commit an entry of its term within ${timeoutMs} ms; nothing was appended`,
              ),
        );
      });
      const onAbort = (): void =>
        this.fail(
          waiter,
          new RaftError('ABORTED', 'the caller stopped waiting for the membership change', {
            cause: signal?.reason,
            outcome: waiter.change === null ? 'unknown' : 'notApplied',
          }),
        );
      signal?.addEventListener('abort', onAbort);
      waiter.cleanup = () => {
        timer?.cancel();
        signal?.removeEventListener('abort', onAbort);
      };
      if (engine.committedInTerm()) this.append(engine, waiter);
      else this.waitingForTerm.push(waiter);
    });
  }

  /** Committed entries were applied (or the engine's commit moved): retry changes waiting for
   *  the term's first commit. */
  progress(): void {
    if (this.waitingForTerm.length === 0) return;
    const engine = this.host.engine();
    if (engine === null) return;
    if (!engine.isLeader()) {
      const waiting = this.waitingForTerm;
      this.waitingForTerm = [];
      for (const w of waiting) this.fail(w, new NotLeaderError(engine.basicStatus().leaderId));
      return;
    }
    if (!engine.committedInTerm()) return;
    const waiting = this.waitingForTerm;
    this.waitingForTerm = [];
    for (const w of waiting) if (!w.settled) this.append(engine, w);
  }

  /** True while a change waits for its entry to apply (then call `applied` for every entry). */
  get waiting(): boolean {
    return this.appended.size > 0;
  }

  /** An entry applied on this node. */
  applied(entry: LogEntry): void {
    const w = this.appended.get(entry.index);
    if (w === undefined) return;
    this.appended.delete(entry.index);
    // Another leader's entry took the index (a no-op, a command, or its own change): ours was
    // overwritten and will never apply, as for a proposal.
    if (w.term !== entry.term || entry.kind !== 'membership')
      this.fail(w, new LeadershipLostError('another leader overwrote the membership change'));
    else this.finish(w, decodeMembership(entry.data));
  }

  /** A snapshot from the leader covered `index`: which entries it holds is not known here. */
  coveredBy(index: LogIndex): void {
    for (const [at, w] of this.appended) {
      if (at > index) continue;
      this.fail(
        w,
        new TimeoutError(
          'a snapshot from the leader covered the membership change before it applied here; whether it committed is unknown',
        ),
      );
    }
  }

  /** Rejects every change (shutdown, failure). `appended` changes may still commit. */
  rejectAll(error: (maybeApplied: boolean) => RaftError): void {
    for (const w of this.appended.values()) this.fail(w, error(true));
    for (const w of this.waitingForTerm) this.fail(w, error(false));
    this.appended.clear();
    this.waitingForTerm = [];
  }

  private append(engine: RawNode, w: Waiter): void {
    const change = w.change as MembershipChange;
    let at: { index: LogIndex; term: Term };
    try {
      at = engine.proposeMembership(change, w.maxLag);
    } catch (err) {
      this.fail(w, err);
      return;
    }
    w.change = null;
    w.index = at.index;
    w.term = at.term;
    this.appended.set(at.index, w);
    this.host.changed();
    this.host.schedule();
  }

  private finish(w: Waiter, membership: Membership): void {
    if (w.settled) return;
    w.settled = true;
    w.cleanup();
    w.resolve(membership);
  }

  private fail(w: Waiter, err: unknown): void {
    if (w.settled) return;
    w.settled = true;
    w.cleanup();
    if (w.index !== 0) this.appended.delete(w.index);
    w.reject(err);
  }
}
