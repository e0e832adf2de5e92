/**
 * Raft messages. Messages are one-way (etcd style): a response is just another message, so a
 * transport frames, sends and delivers, and needs no request ids or RPC timeouts.
 *
 * Every message carries the sender's current term; a receiver that sees a higher term steps
 * down first (§5.1). The union is closed and versioned by the codec (codec.ts): adding a
 * message type is a new tag, never a change to an existing one.
 */
import type { LogEntry, LogIndex, NodeId, SnapshotMeta, Term } from './types.js';

/** Fields every message carries. */
export interface Envelope {
  readonly from: NodeId;
  readonly to: NodeId;
  /** The sender's current term (for `propose`: the term in which it knows `to` as leader; for
   *  `proposeResponse`: informational only). */
  readonly term: Term;
}

/** RequestVote (§5.2), or the PreVote probe (thesis §9.6) when `preVote` is true. A pre-vote
 *  carries the term the sender WOULD campaign at, without having incremented its own. */
export interface VoteMessage extends Envelope {
  readonly type: 'vote';
  readonly preVote: boolean;
  readonly lastLogIndex: LogIndex;
  readonly lastLogTerm: Term;
  /**
   * The sender campaigns because the leader handed leadership to it ({@link TimeoutNowMessage}):
   * voters grant it even while they still hear from that leader (leader stickiness, thesis
   * §4.2.3, would otherwise ignore it). Absent means false.
   */
  readonly transfer?: boolean;
}

/** Answer to a {@link VoteMessage}. */
export interface VoteResponseMessage extends Envelope {
  readonly type: 'voteResponse';
  readonly preVote: boolean;
  readonly granted: boolean;
}

/** AppendEntries (§5.3). */
export interface AppendMessage extends Envelope {
  readonly type: 'append';
  /** Index of the entry just before `entries`. */
  readonly prevIndex: LogIndex;
  readonly prevTerm: Term;
  readonly entries: readonly LogEntry[];
  /** The leader's commit index. */
  readonly commit: LogIndex;
}

/** Answer to an {@link AppendMessage}. */
export interface AppendResponseMessage extends Envelope {
  readonly type: 'appendResponse';
  readonly success: boolean;
  /** On success: the last index known to match the leader's log. On failure: the rejected
   *  `prevIndex`, so the leader can tell stale rejections from current ones. */
  readonly matchIndex: LogIndex;
  /**
   * Fast backtracking hint on failure (thesis §5.3, "the leader can decrement nextIndex to
   * bypass all of the conflicting entries in that term"): the follower's last index if its log
   * is shorter than `prevIndex`, otherwise the first index of the conflicting term.
   * `term` is the follower's term at that position (0 when its log is too short).
   */
  readonly conflict?: { readonly index: LogIndex; readonly term: Term };
}

/** Leader liveness and commit propagation, without entries (etcd MsgHeartbeat). */
export interface HeartbeatMessage extends Envelope {
  readonly type: 'heartbeat';
  /** min(follower's match index, leader's commit): never past what the follower holds. */
  readonly commit: LogIndex;
  /**
   * The leader's heartbeat round, increasing within its term (ReadIndex, thesis §6.4): a read
   * registered before round `r` left is safe to serve once a quorum has answered round `r` or a
   * later one, since the leader was still the leader when they answered.
   */
  readonly round: number;
}

/** Answer to a {@link HeartbeatMessage}. */
export interface HeartbeatResponseMessage extends Envelope {
  readonly type: 'heartbeatResponse';
  /** The `round` of the heartbeat this answers. */
  readonly round: number;
}

/**
 * Leadership transfer (thesis §3.10): the leader tells `to`, whose log it has brought up to
 * date, to start an election at once, skipping PreVote; its vote requests carry `transfer`.
 */
export interface TimeoutNowMessage extends Envelope {
  readonly type: 'timeoutNow';
}

/**
 * A follower asks its leader for a read index (thesis §6.4): the leader confirms it still leads
 * with a heartbeat round and answers with its commit index at the time it received the request.
 * The follower then serves the read once it has applied that index. Handled by the runtime.
 * `session` is random per incarnation of the asking node, so an answer meant for an earlier
 * incarnation is never taken for a read of this one.
 */
export interface ReadIndexMessage extends Envelope {
  readonly type: 'readIndex';
  readonly session: number;
  readonly requestId: number;
}

/** The leader's answer to a {@link ReadIndexMessage}: the read index, or why it has none. */
export interface ReadIndexResponseMessage extends Envelope {
  readonly type: 'readIndexResponse';
  readonly session: number;
  readonly requestId: number;
  /** 0 when rejected. */
  readonly index: LogIndex;
  /** Set when rejected (the node is not the leader): its leader hint. */
  readonly rejected?: { readonly leaderId: NodeId | null };
}

/**
 * A proposal a follower forwards to its leader (etcd MsgProp). Handled by the runtime, not the
 * engine: the leader appends the command and answers with a {@link ProposeResponseMessage}.
 *
 * At most once: `term` is the term in which the sender knows `to` as leader, and a leader takes
 * a forward only in that very term. One node leads a term, in one incarnation (a restarted node
 * comes back as a follower and can lead only a later term), so a duplicated or late forward can
 * only reach the leader that already saw it, which remembers `(from, session, requestId)` for its
 * whole term.
 */
export interface ProposeMessage extends Envelope {
  readonly type: 'propose';
  /** Random per incarnation of the forwarding node (a non-negative safe integer). */
  readonly session: number;
  /** Increasing within a session, from 1; echoed in the response. */
  readonly requestId: number;
  readonly data: Uint8Array;
}

/** The leader's answer to a forwarded proposal: where the entry went, or why it did not. */
export interface ProposeResponseMessage extends Envelope {
  readonly type: 'proposeResponse';
  /** The `session` of the forward this answers. */
  readonly session: number;
  readonly requestId: number;
  /** 0 when rejected. */
  readonly index: LogIndex;
  /** Term of the appended entry; 0 when rejected. */
  readonly entryTerm: Term;
  /** Set when rejected (nothing was appended): why, and the rejecting node's leader hint. */
  readonly rejected?: { readonly leaderId: NodeId | null; readonly reason: ProposeRejection };
}

/**
 * Why a leader refused a forwarded proposal; in every case nothing was appended:
 * `notLeader` (it is not the leader; try the hint), `entryTooLarge` (larger than its
 * `maxCommandBytes`), `dropped` (it cannot take proposals now), `staleTerm` (it leads a later
 * term than the one the forward was stamped with).
 */
export type ProposeRejection = 'notLeader' | 'entryTooLarge' | 'dropped' | 'staleTerm';

/**
 * One chunk of a snapshot the leader streams to a follower whose log it can no longer serve
 * (§7, thesis §5.3): the chunk's bytes at `offset` of a snapshot of `size` bytes. Chunks go one
 * at a time; the follower writes each to its SnapshotStore as it arrives and answers with an
 * {@link InstallSnapshotResponseMessage}. The last chunk is the one that reaches `size`.
 * Handled by the runtime; the engine only reads its term and sender (a chunk from the leader
 * is leader contact, like an append).
 */
export interface InstallSnapshotMessage extends Envelope {
  readonly type: 'installSnapshot';
  /** The snapshot this chunk belongs to. */
  readonly meta: SnapshotMeta;
  /** Total size of the snapshot in bytes. */
  readonly size: number;
  /** Position of `data` in the snapshot. */
  readonly offset: number;
  readonly data: Uint8Array;
}

/**
 * The follower's answer to a snapshot chunk: how much of the snapshot `(index, snapshotTerm)` it
 * holds in order. `nextOffset` is the offset it wants next (0: start over, the transfer is
 * unknown to it). `done` once the whole snapshot is stored (or the follower already has
 * everything it covers): the sender stops. The follower acknowledges the log position (an
 * append response) separately, after restoring its state machine.
 */
export interface InstallSnapshotResponseMessage extends Envelope {
  readonly type: 'installSnapshotResponse';
  readonly index: LogIndex;
  readonly snapshotTerm: Term;
  readonly nextOffset: number;
  readonly done: boolean;
}

/** Every message a Raft node sends or receives. */
export type RaftMessage =
  | VoteMessage
  | VoteResponseMessage
  | AppendMessage
  | AppendResponseMessage
  | HeartbeatMessage
  | HeartbeatResponseMessage
  | ProposeMessage
  | ProposeResponseMessage
  | InstallSnapshotMessage
  | InstallSnapshotResponseMessage
  | TimeoutNowMessage
  | ReadIndexMessage
  | ReadIndexResponseMessage;

/** The `type` tag of a {@link RaftMessage}. */
export type RaftMessageType = RaftMessage['type'];
