/**
 * The leader's view of one follower (etcd `Progress`).
 *
 * ```
 *            append rejected / unreachable
 *   ┌────────┐ ◄───────────────────────────── ┌───────────┐
 *   │ probe  │                                │ replicate │
 *   └────────┘ ─────────────────────────────► └───────────┘
 *              append acknowledged (match found)
 * ```
 *
 * - probe: the leader does not know where the follower's log matches. It sends one append at a
 *   time and waits for the answer (or the next heartbeat response) before sending another.
 * - replicate: the match is known; the leader streams appends optimistically, advancing
 *   `next` as it sends, bounded by the in-flight window (pipelining).
 * - snapshot: the entries the follower needs are compacted away; the runtime streams it a
 *   snapshot and the leader sends it no appends (heartbeats go on) until the follower
 *   acknowledges the snapshot's index or the transfer is reported failed; then probe.
 *
 * Invariant: match < next.
 */
import type { LogIndex } from '../../types.js';
import { Inflights } from './inflights.js';

/** See the module comment. */
export type ProgressState = 'probe' | 'replicate' | 'snapshot';

/** Replication state of one follower, kept by the leader. */
export class Progress {
  /** Highest index known to match the leader's log. */
  match: LogIndex = 0;
  /** Next index to send. */
  next: LogIndex;
  state: ProgressState = 'probe';
  /** In probe state: an append is outstanding; wait for its answer or a heartbeat answer. */
  probeSent = false;
  /** Heard from since the last CheckQuorum round. */
  recentActive = false;
  /** The leader's tick count when a rejection last moved this follower from replicate back to
   *  probe (-1: never). */
  fellBackAt = -1;
  /** The highest heartbeat round this follower answered in the current term (ReadIndex). */
  round = 0;
  /** In snapshot state: the index of the snapshot being sent. */
  pendingSnapshot: LogIndex = 0;
  readonly inflights: Inflights;

  constructor(next: LogIndex, maxInflight: number) {
    this.next = next;
    this.inflights = new Inflights(maxInflight);
  }

  isPaused(): boolean {
    if (this.state === 'snapshot') return true;
    return this.state === 'probe' ? this.probeSent : this.inflights.isFull();
  }

  becomeProbe(): void {
    // After a snapshot, probe right after it (etcd): the follower holds it, or will say not.
    const after = this.state === 'snapshot' ? this.pendingSnapshot + 1 : 0;
    this.state = 'probe';
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.inflights.reset();
    this.next = Math.max(this.match + 1, after);
  }

  /** The follower needs the snapshot ending at `index`. */
  becomeSnapshot(index: LogIndex): void {
    this.state = 'snapshot';
    this.probeSent = false;
    this.pendingSnapshot = index;
    this.inflights.reset();
  }

  becomeReplicate(): void {
    this.state = 'replicate';
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.inflights.reset();
    this.next = this.match + 1;
  }

  /** An acknowledgement up to `index` arrived. Returns false when it was stale. */
  maybeUpdate(index: LogIndex): boolean {
    let updated = false;
    if (index > this.match) {
      this.match = index;
      updated = true;
      this.probeSent = false;
    }
    if (this.next < index + 1) this.next = index + 1;
    return updated;
  }

  /**
   * The follower rejected an append whose prevIndex was `rejected`, hinting that its log
   * matches no further than `hint`. Returns false for a stale rejection (etcd `MaybeDecrTo`).
   */
  maybeDecrTo(rejected: LogIndex, hint: LogIndex): boolean {
    // Answers to appends sent before the snapshot started say nothing about it.
    if (this.state === 'snapshot') return false;
    if (this.state === 'replicate') {
      // Appends at or below the match are from before we knew the match: stale.
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    // In probe state only the answer to the latest probe counts.
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, hint + 1), this.match + 1);
    this.probeSent = false;
    return true;
  }
}
