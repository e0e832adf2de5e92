/**
 * ReadIndex (thesis §6.4): linearizable reads without writing to the log.
 *
 * A read registered at the leader records the commit index at that moment and the heartbeat
 * round that will confirm it: the next round to leave. Once a quorum of voters has answered that
 * round (or a later one), nobody else can have led a later term when the read was registered, so
 * every write completed before the read is at or below the recorded index: the read is served
 * once the state machine has applied it. Reads registered between two rounds share the next one,
 * so concurrent reads cost one heartbeat round in all.
 *
 * A new leader does not know the commit index of the previous term until it commits an entry of
 * its own (thesis §6.4 step 1): reads wait for that first.
 */
import type { LogIndex } from '../types.js';

/** A read the leader has confirmed: serve it once the state machine has applied `index`. */
export interface ReadState {
  readonly id: number;
  readonly index: LogIndex;
}

interface PendingRead {
  readonly id: number;
  readonly index: LogIndex;
  readonly round: number;
}

/** The leader's reads waiting for a heartbeat round, oldest first. See the module comment. */
export class ReadIndexQueue {
  /** Rounds never decrease along the queue (each read waits for the next round to leave). */
  private pending: PendingRead[] = [];
  private head = 0;
  /** Reads taken before the leader committed an entry of its term. */
  private waiting: number[] = [];

  get size(): number {
    return this.pending.length - this.head + this.waiting.length;
  }

  get hasWaiting(): boolean {
    return this.waiting.length > 0;
  }

  /** A read that must wait until the leader commits an entry of its own term. */
  wait(id: number): void {
    this.waiting.push(id);
  }

  /** A read at `index`, confirmed by round `round`. */
  add(id: number, index: LogIndex, round: number): void {
    this.pending.push({ id, index, round });
  }

  /** The leader committed an entry of its term at `index`: the waiting reads may proceed. */
  releaseWaiting(index: LogIndex, round: number): void {
    for (const id of this.waiting) this.pending.push({ id, index, round });
    this.waiting = [];
  }

  /** Moves the reads a quorum confirmed (their round is at most `round`) to `out`. */
  confirm(round: number, out: ReadState[]): void {
    const pending = this.pending;
    let head = this.head;
    while (head < pending.length && (pending[head] as PendingRead).round <= round) {
      const r = pending[head] as PendingRead;
      out.push({ id: r.id, index: r.index });
      head++;
    }
    if (head === pending.length) {
      this.pending = [];
      this.head = 0;
    } else {
      this.head = head;
    }
  }

  /** Removes every read (leadership ended) and returns their ids. */
  drain(): number[] {
    const ids = this.pending.slice(this.head).map((r) => r.id);
    for (const id of this.waiting) ids.push(id);
    this.pending = [];
    this.head = 0;
    this.waiting = [];
    return ids;
  }
}
