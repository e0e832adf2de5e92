/**
 * `node.transferLeadership(to?)` (thesis §3.10): the leader hands over to a voter and the call
 * resolves once another node leads, with its id and term.
 *
 * ```
 *   leader? no ──► NotLeaderError
 *     │ yes                       (engine: refuse proposals, catch `to` up, TimeoutNow)
 *     ▼
 *   another node leads ──► resolve { leaderId, term }   (usually `to`; another voter may win)
 *   still leader, transfer abandoned (an election timeout passed) ──► reject TIMEOUT
 *   the call's own timeout ──► reject TIMEOUT
 * ```
 *
 * Without `to`, the voter whose log matches the leader's furthest is chosen.
 */
import type { RawNode } from '../engine/raw-node.js';
import { NotLeaderError, RaftError, TimeoutError } from '../errors.js';
import type { Clock, TimerHandle } from '../interfaces/clock.js';
import type { NodeId, Term } from '../types.js';
import type { AbortSignalLike } from './raft-node.js';

/** What `transferLeadership()` resolves with: the node that leads now. */
export interface TransferResult {
  readonly leaderId: NodeId;
  readonly term: Term;
}

/** Options of `transferLeadership()`. */
export interface TransferOptions {
  readonly signal?: AbortSignalLike;
  /** Overrides `requestTimeoutMs` for this call. */
  readonly timeoutMs?: number;
}

interface Waiter {
  readonly resolve: (r: TransferResult) => void;
  readonly reject: (err: unknown) => void;
  cleanup: () => void;
}

/** See the module comment. */
export class LeadershipTransfers {
  private waiters: Waiter[] = [];

  constructor(
    private readonly id: NodeId,
    private readonly clock: Clock,
    private readonly requestTimeoutMs: number,
    private readonly engine: () => RawNode | null,
    private readonly schedule: () => void,
  ) {}

  /** Starts (or joins) a transfer; lifecycle and options are checked by the caller. */
  start(to: NodeId | undefined, options: TransferOptions | undefined): Promise<TransferResult> {
    const engine = this.engine();
    if (engine === null) return Promise.reject(new RaftError('UNAVAILABLE', 'not running'));
    if (!engine.isLeader())
      return Promise.reject(new NotLeaderError(engine.basicStatus().leaderId));
    let target = to;
    if (target === undefined) {
      target = this.bestVoter(engine) ?? undefined;
      if (target === undefined) {
        return Promise.reject(
          new RaftError('INVALID_ARGUMENT', 'there is no other voter to hand leadership to', {
            outcome: 'notApplied',
          }),
        );
      }
    }
    try {
      engine.transferLeadership(target);
    } catch (err) {
      return Promise.reject(err);
    }
    this.schedule();
    const timeoutMs = options?.timeoutMs ?? this.requestTimeoutMs;
    const signal = options?.signal;
    return new Promise<TransferResult>((resolve, reject) => {
      const waiter: Waiter = { resolve, reject, cleanup: () => {} };
      const remove = (): void => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        waiter.cleanup();
      };
      const timer: TimerHandle = this.clock.setTimer(timeoutMs, () => {
        remove();
        reject(new TimeoutError(`no other node took over within ${timeoutMs} ms`));
      });
      const onAbort = (): void => {
        remove();
        reject(new RaftError('ABORTED', 'the caller stopped waiting', { cause: signal?.reason }));
      };
      signal?.addEventListener('abort', onAbort);
      waiter.cleanup = () => {
        timer.cancel();
        signal?.removeEventListener('abort', onAbort);
      };
      this.waiters.push(waiter);
    });
  }

  /** The leader known to this node changed. */
  leaderChanged(leaderId: NodeId | null, term: Term): void {
    if (leaderId === null || leaderId === this.id || this.waiters.length === 0) return;
    this.settleAll((w) => w.resolve({ leaderId, term }));
  }

  /** Called every tick while running: a transfer the engine abandoned fails its callers. */
  tick(): void {
    if (this.waiters.length === 0) return;
    const engine = this.engine();
    if (engine === null || !engine.isLeader() || engine.leadTransferee() !== null) return;
    this.settleAll((w) =>
      w.reject(
        new TimeoutError(
          'the transfer was abandoned: the target did not take over within an election timeout',
        ),
      ),
    );
  }

  rejectAll(error: RaftError): void {
    this.settleAll((w) => w.reject(error));
  }

  private settleAll(fn: (w: Waiter) => void): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) {
      w.cleanup();
      fn(w);
    }
  }

  private bestVoter(engine: RawNode): NodeId | null {
    const status = engine.status();
    let best: NodeId | null = null;
    let bestMatch = -1;
    for (const m of status.members) {
      if (!m.voter || m.id === this.id) continue;
      const match = status.progress?.[m.id]?.match ?? 0;
      if (match > bestMatch) {
        best = m.id;
        bestMatch = match;
      }
    }
    return best;
  }
}
