/**
 * The engine's output batch (etcd `Ready`, raft-rs `Ready`).
 *
 * The runtime handles a Ready in this order:
 *
 * ```
 *   ready() ─► send messages ─► persist entries ─► persist hardState ─► send messagesAfterPersist
 *                                                                           │
 *   advance(rd) ◄──── apply committedEntries in order ◄──────────────────────┘
 * ```
 *
 * `messages` may leave before the entries are durable (thesis §10.2.1: the leader appends to
 * its own disk in parallel with replicating). `messagesAfterPersist` (vote grants, append
 * acknowledgements, vote requests) depend on durable state and MUST wait for it.
 */
import type { RaftMessage } from '../messages.js';
import type { HardState, LogEntry, NodeId, SnapshotMeta } from '../types.js';

/** The role a node plays in its current term. */
export type Role = 'follower' | 'preCandidate' | 'candidate' | 'leader';

/** Volatile state worth reporting, never persisted. */
export interface SoftState {
  readonly role: Role;
  readonly leaderId: NodeId | null;
}

/**
 * A snapshot received from the leader, to install before anything else in the Ready: make it
 * durable (the runtime holds its chunks in an uncommitted sink), fix the log store, restore
 * the state machine from it.
 */
export interface SnapshotInstall {
  readonly meta: SnapshotMeta;
  /**
   * True: the log store durably holds this node's entries up to `meta.index`, so what it holds
   * after it follows the snapshot; only the prefix up to it goes. False: the store may hold,
   * after `meta.index`, entries that follow another entry there: they MUST be removed before the
   * snapshot is committed (so that no crash leaves them after it), then the prefix; the Ready's
   * `entries` write back whatever of the suffix the node keeps.
   */
  readonly keepLog: boolean;
}

/** One batch of work for the runtime. Empty arrays rather than absent fields. */
export interface Ready {
  /** Present when role or leader changed since the previous Ready. */
  readonly softState?: SoftState;
  /** Present when the term or the vote changed (it carries the current commit index too):
   *  persist (after `entries`) before `messagesAfterPersist`. A change of the commit index
   *  alone is not reported: it need not be durable (the leader re-sends it). */
  readonly hardState?: HardState;
  /** Present when a snapshot from the leader is to be installed: handle it first. */
  readonly snapshot?: SnapshotInstall;
  /** Entries to append. May replace a stored suffix (entries[0].index <= stored last). */
  readonly entries: readonly LogEntry[];
  /** Committed entries to apply, in order. All of them are durable on this node. */
  readonly committedEntries: readonly LogEntry[];
  /** Messages that may be sent at once. */
  readonly messages: readonly RaftMessage[];
  /** Messages to send only after `entries` and `hardState` are durable. */
  readonly messagesAfterPersist: readonly RaftMessage[];
  /** True when `entries` or `hardState` must be made durable (fsync) before continuing. */
  readonly mustSync: boolean;
}

/** True when a Ready carries nothing to do. */
export function isEmptyReady(rd: Ready): boolean {
  return (
    rd.softState === undefined &&
    rd.hardState === undefined &&
    rd.snapshot === undefined &&
    rd.entries.length === 0 &&
    rd.committedEntries.length === 0 &&
    rd.messages.length === 0 &&
    rd.messagesAfterPersist.length === 0
  );
}
