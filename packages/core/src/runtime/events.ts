/**
 * Typed events and a tiny emitter (no node:events in core).
 */

import type { Role } from '../engine/ready.js';
import type { RaftError } from '../errors.js';
import type { NodeId, Term } from '../types.js';

/** What a RaftNode reports through `subscribe()`. */
export type RaftEvent =
  | { readonly type: 'roleChanged'; readonly role: Role; readonly term: Term }
  | { readonly type: 'leaderChanged'; readonly leaderId: NodeId | null; readonly term: Term }
  | { readonly type: 'termChanged'; readonly term: Term }
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
