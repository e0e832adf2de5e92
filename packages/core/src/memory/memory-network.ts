import type { Transport, TransportHandlers } from '../interfaces/transport.js';
import type { RaftMessage } from '../messages.js';
import { hostNextTurn } from '../platform.js';
import type { Member, NodeId } from '../types.js';

/**
 * An in-process network: loss-free and in order while connected. Messages are delivered on a
 * later event-loop turn (never re-entrantly inside `send`), all messages queued during one turn
 * in one batch. `disconnect(id)` cuts a node off in both directions (messages to or from it
 * are dropped) until `connect(id)`; `cut(from, to)` drops one direction of one link.
 *
 * Message objects are shared, not copied: receivers treat them as immutable.
 */
export class MemoryNetwork {
  private readonly handlers = new Map<NodeId, TransportHandlers>();
  private readonly disconnected = new Set<NodeId>();
  private readonly cuts = new Set<string>();
  private queue: RaftMessage[] = [];
  private flushScheduled = false;
  private listeners: ((message: RaftMessage) => void)[] = [];

  /**
   * The transport for node `id`. One at a time per node: a restarted node takes a new one,
   * which replaces the closed one's registration (messages sent meanwhile were dropped).
   */
  transport(id: NodeId): Transport {
    let mine: TransportHandlers | null = null;
    return {
      start: async (handlers) => {
        mine = handlers;
        this.handlers.set(id, handlers);
      },
      send: (messages) => this.enqueue(id, messages),
      setPeers: (_peers: readonly Member[]) => {},
      close: async () => {
        // Only unregister ourselves: a restarted node may have registered since.
        if (mine !== null && this.handlers.get(id) === mine) this.handlers.delete(id);
        mine = null;
      },
    };
  }

  /** Drops messages from `from` to `to` (one way) until `uncut(from, to)`. */
  cut(from: NodeId, to: NodeId): void {
    this.cuts.add(`${from}\u0000${to}`);
  }

  /** Restores the link from `from` to `to`. */
  uncut(from: NodeId, to: NodeId): void {
    this.cuts.delete(`${from}\u0000${to}`);
  }

  /** Cuts `id` off from every other node. */
  disconnect(id: NodeId): void {
    this.disconnected.add(id);
  }

  /** Reconnects `id`. */
  connect(id: NodeId): void {
    this.disconnected.delete(id);
  }

  /**
   * Calls `listener` with every message a node hands to its transport (before any cut or
   * disconnection drops it), for tests and tracing. Returns the function that removes it.
   */
  onSend(listener: (message: RaftMessage) => void): () => void {
    this.listeners = [...this.listeners, listener];
    return () => {
      this.listeners = this.listeners.filter((l) => l !== listener);
    };
  }

  private enqueue(from: NodeId, messages: readonly RaftMessage[]): void {
    if (this.listeners.length > 0) for (const m of messages) for (const l of this.listeners) l(m);
    if (this.disconnected.has(from)) return;
    for (const m of messages) this.queue.push(m);
    if (!this.flushScheduled && this.queue.length > 0) {
      this.flushScheduled = true;
      hostNextTurn(() => this.flush());
    }
  }

  private flush(): void {
    this.flushScheduled = false;
    const batch = this.queue;
    this.queue = [];
    for (const m of batch) {
      if (this.disconnected.has(m.to) || this.disconnected.has(m.from)) continue;
      if (this.cuts.size > 0 && this.cuts.has(`${m.from}\u0000${m.to}`)) continue;
      this.handlers.get(m.to)?.onMessage(m);
    }
  }
}
