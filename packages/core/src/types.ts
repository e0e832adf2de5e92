/**
 * Plain data types shared by the engine, the runtime and every adapter.
 *
 * All of them are immutable values: the engine never mutates an entry after creating it, so a
 * store or transport may keep a reference instead of copying.
 */

/** Unique for the cluster's lifetime: never reuse an id, even after removal (etcd README). */
export type NodeId = string;

/** A Raft term. Plain numbers: 2^53 terms is never reached in practice. */
export type Term = number;

/** A log position, 1-based; 0 means "before the first entry". 2^53 entries is about 285 years
 *  at one million entries per second. */
export type LogIndex = number;

/**
 * What an entry carries.
 * - `command`: user data for the state machine.
 * - `noop`: appended by every new leader at the start of its term (§5.4.2, thesis §3.6.2) so
 *   that entries of earlier terms become committed.
 * - `membership`: a cluster configuration. Today only the bootstrap membership, at index 1:
 *   membership changes are not supported yet.
 */
export type EntryKind = 'command' | 'noop' | 'membership';

/** One log entry. `data` is opaque to the core; always a Uint8Array, never a Buffer subclass
 *  contract (a Buffer is accepted because it is a Uint8Array). */
export interface LogEntry {
  readonly index: LogIndex;
  readonly term: Term;
  readonly kind: EntryKind;
  readonly data: Uint8Array;
}

/**
 * The state that must be durable before a node answers any message that depends on it.
 * Persisted as ONE atomic record, so a crash never leaves a term without its vote.
 */
export interface HardState {
  readonly term: Term;
  readonly votedFor: NodeId | null;
  /** Optional for safety (commit can always be re-learned); it lets a restart apply at once. */
  readonly commit: LogIndex;
}

/** A member of the cluster. `address` is opaque to the core; transports interpret it. */
export interface Member {
  readonly id: NodeId;
  readonly address: string;
  /** Learners (`voter: false`) receive the log but count in no quorum. Without membership
   *  changes (not supported yet), a learner is one listed so in the bootstrap membership. */
  readonly voter: boolean;
}

/** A cluster configuration. */
export interface Membership {
  readonly members: readonly Member[];
}

/**
 * Describes the state a snapshot captures: the state machine after applying every entry up to
 * and including `index`. The log before `index + 1` may be compacted once such a snapshot is
 * durable.
 */
export interface SnapshotMeta {
  /** Index of the last entry the snapshot covers. */
  readonly index: LogIndex;
  /** Term of that entry. */
  readonly term: Term;
  /** The configuration in force at `index`. */
  readonly membership: Membership;
}
