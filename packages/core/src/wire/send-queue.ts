/**
 * The bounded queue of one lane to one peer: what a transport holds while the connection is
 * being set up, is down, or cannot take more bytes. A peer that is down therefore costs at
 * most `maxBytes` and `maxMessages` per lane, whatever the sender does:
 *
 * - a heartbeat (or heartbeat response) replaces the one already queued, keeping its place:
 *   only the newest matters (its round and commit supersede the older ones), so a peer that is
 *   down for an hour costs one queued heartbeat, not 72,000;
 * - a message that does not fit is refused (the caller counts it as dropped); Raft retries
 *   what matters, and the caller tells the core the peer is unreachable so it backs off.
 */
import type { RaftMessage } from '../messages.js';
import type { SizedMessage } from './batch.js';

/** Bounds of a {@link SendQueue}. */
export interface SendQueueLimits {
  readonly maxBytes: number;
  readonly maxMessages: number;
}

/** FIFO of sized messages with heartbeat coalescing and hard bounds. */
export class SendQueue {
  private items: (SizedMessage | null)[] = [];
  private head = 0;
  private count = 0;
  private byteCount = 0;
  /** Position in `items` of the queued heartbeat and heartbeat response, or -1. */
  private heartbeatAt = -1;
  private heartbeatResponseAt = -1;

  constructor(private readonly limits: SendQueueLimits) {}

  get length(): number {
    return this.count;
  }

  get bytes(): number {
    return this.byteCount;
  }

  /**
   * Queues `item`; false when it does not fit (nothing changed). With `coalesce` (the link is
   * not taking bytes: down, connecting, or its socket is full), a heartbeat or heartbeat
   * response replaces a queued one of the same type ('coalesced'). Without it, every message
   * is kept: a flush is due on the next turn.
   */
  push(item: SizedMessage, coalesce: boolean): boolean | 'coalesced' {
    const slot = coalesce ? this.slotOf(item.message) : -1;
    if (slot >= 0) {
      const old = this.items[slot] as SizedMessage;
      if (this.byteCount - old.size + item.size > this.limits.maxBytes) return false;
      this.byteCount += item.size - old.size;
      this.items[slot] = item;
      return 'coalesced';
    }
    if (
      this.count >= this.limits.maxMessages ||
      this.byteCount + item.size > this.limits.maxBytes
    ) {
      return false;
    }
    const at = this.items.length;
    this.items.push(item);
    this.count++;
    this.byteCount += item.size;
    if (item.message.type === 'heartbeat') this.heartbeatAt = at;
    else if (item.message.type === 'heartbeatResponse') this.heartbeatResponseAt = at;
    return true;
  }

  /**
   * Removes and returns queued messages from the front, in order, while their running total of
   * `cost(size)` stays within `budget` (always at least one message when any is queued).
   */
  take(budget: number, cost: (size: number) => number): SizedMessage[] {
    const out: SizedMessage[] = [];
    let spent = 0;
    while (this.count > 0) {
      const item = this.items[this.head] as SizedMessage;
      const c = cost(item.size);
      if (out.length > 0 && spent + c > budget) break;
      spent += c;
      out.push(item);
      this.items[this.head] = null;
      if (this.head === this.heartbeatAt) this.heartbeatAt = -1;
      if (this.head === this.heartbeatResponseAt) this.heartbeatResponseAt = -1;
      this.head++;
      this.count--;
      this.byteCount -= item.size;
    }
    if (this.count === 0) this.reset();
    else if (this.head > 1024 && this.head * 2 > this.items.length) this.compactFront();
    return out;
  }

  /** Drops everything; returns how many messages were dropped. */
  clear(): number {
    const dropped = this.count;
    this.reset();
    return dropped;
  }

  private slotOf(message: RaftMessage): number {
    if (message.type === 'heartbeat') return this.heartbeatAt;
    if (message.type === 'heartbeatResponse') return this.heartbeatResponseAt;
    return -1;
  }

  private reset(): void {
    this.items = [];
    this.head = 0;
    this.count = 0;
    this.byteCount = 0;
    this.heartbeatAt = -1;
    this.heartbeatResponseAt = -1;
  }

  private compactFront(): void {
    const shift = this.head;
    this.items = this.items.slice(shift);
    this.head = 0;
    if (this.heartbeatAt >= 0) this.heartbeatAt -= shift;
    if (this.heartbeatResponseAt >= 0) this.heartbeatResponseAt -= shift;
  }
}
