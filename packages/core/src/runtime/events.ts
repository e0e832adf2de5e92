/**
 * Typed events and a tiny emitter (no node:events in core).
 */

import type { Role } from '../engine/ready.js';
import type { RaftError } from '../errors.js';
import type { LogIndex, Membership, NodeId, SnapshotMeta, Term } from '../types.js';

/** What a RaftNode reports through `subscribe()`. */
export type RaftEvent =
  | { readonly type: 'roleChanged'; readonly role: Role; readonly term: Term }
  | { readonly type: 'leaderChanged'; readonly leaderId: NodeId | null; readonly term: Term }
  | { readonly type: 'termChanged'; readonly term: Term }
  /**
   * The configuration in force on this node changed: a configuration entry was appended here
   * (it takes effect at once, committed or not, thesis §4.1), or one was truncated and the
   * previous one is back. `index` is its entry's index (0: the one from bootstrap or a snapshot).
   */
  | {
      readonly type: 'membershipChanged';
      readonly membership: Membership;
      readonly index: LogIndex;
    }
  /** This node's own snapshot is durable (and the log compacted behind it). */
  | { readonly type: 'snapshotTaken'; readonly meta: SnapshotMeta }
  /** A snapshot from the leader replaced this node's state. */
  | { readonly type: 'snapshotInstalled'; readonly meta: SnapshotMeta }
  /** Taking a snapshot failed; the previous one and the log are intact. */
  | { readonly type: 'snapshotFailed'; readonly error: RaftError }
  | { readonly type: 'fatal'; readonly error: RaftError };

/** A listener; exceptions it throws are caught and logged, never propagated into Raft. */
export type RaftEventListener = (event: RaftEvent) => void;

/** Synchronous fan-out to listeners. */
export class EventEmitter {
  private listeners: RaftEventListener[] = [];

  constructor(private readonly onListenerError: (err: unknown) => void) {}

  subscribe(listener: RaftEventListener): () => void {
    this.listeners = [...this.listeners, listener];
    return () => {
      this.listeners = this.listeners.filter((l) => l !== listener);
    };
  }

  emit(event: RaftEvent): void {
    for (const l of this.listeners) {
      try {
        l(event);
      } catch (err) {
        this.onListenerError(err);
      }
    }
  }
}
