import type { Transport, TransportHandlers } from '../interfaces/transport.js';
import type { RaftMessage } from '../messages.js';
import { hostNextTurn } from '../platform.js';
import type { Member, NodeId } from '../types.js';

/**
 * An in-process network: loss-free and in order while connected. Messages are delivered on a
 * later event-loop turn (never re-entrantly inside `send`), all messages queued during one turn
 * in one batch. `disconnect(id)` cuts a node off in both directions (messages to or from it
 * are dropped) until `connect(id)`.
 *
 * Message objects are shared, not copied: receivers treat them as immutable.
 */
export class MemoryNetwork {
  private readonly handlers = new Map<NodeId, TransportHandlers>();
  private readonly disconnected = new Set<NodeId>();
  private queue: RaftMessage[] = [];
  private flushScheduled = false;

  /** The transport for node `id`. One per node. */
  transport(id: NodeId): Transport {
    return {
      start: async (handlers) => {
        this.handlers.set(id, handlers);
      },
      send: (messages) => this.enqueue(id, messages),
      setPeers: (_peers: readonly Member[]) => {},
      close: async () => {
        this.handlers.delete(id);
      },
    };
  }

  /** Cuts `id` off from every other node. */
  disconnect(id: NodeId): void {
    this.disconnected.add(id);
  }

  /** Reconnects `id`. */
  connect(id: NodeId): void {
    this.disconnected.delete(id);
  }

  private enqueue(from: NodeId, messages: readonly RaftMessage[]): void {
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
      this.handlers.get(m.to)?.onMessage(m);
    }
  }
}
