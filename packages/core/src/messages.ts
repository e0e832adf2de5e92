/**
 * Raft messages. Messages are one-way (etcd style): a response is just another message, so a
 * transport frames, sends and delivers, and needs no request ids or RPC timeouts.
 *
 * Every message carries the sender's current term; a receiver that sees a higher term steps
 * down first (§5.1). The union is closed and versioned by the codec (codec.ts): adding a
 * message type is a new tag, never a change to an existing one.
 */
import type { LogEntry, LogIndex, NodeId, Term } from './types.js';

/** Fields every message carries. */
export interface Envelope {
  readonly from: NodeId;
  readonly to: NodeId;
  /** The sender's current term (for `propose` and `proposeResponse`: informational only). */
  readonly term: Term;
}

/** RequestVote (§5.2), or the PreVote probe (thesis §9.6) when `preVote` is true. A pre-vote
 *  carries the term the sender WOULD campaign at, without having incremented its own. */
export interface VoteMessage extends Envelope {
  readonly type: 'vote';
  readonly preVote: boolean;
  readonly lastLogIndex: LogIndex;
  readonly lastLogTerm: Term;
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
}

/** Answer to a {@link HeartbeatMessage}. */
export interface HeartbeatResponseMessage extends Envelope {
  readonly type: 'heartbeatResponse';
}

/**
 * A proposal a follower forwards to its leader (etcd MsgProp). Handled by the runtime, not the
 * engine: the leader appends the command and answers with a {@link ProposeResponseMessage}.
 */
export interface ProposeMessage extends Envelope {
  readonly type: 'propose';
  /** Chosen by the forwarding node (a non-negative safe integer); echoed in the response. */
  readonly requestId: number;
  readonly data: Uint8Array;
}

/** The leader's answer to a forwarded proposal: where the entry went, or why it did not. */
export interface ProposeResponseMessage extends Envelope {
  readonly type: 'proposeResponse';
  readonly requestId: number;
  /** 0 when rejected. */
  readonly index: LogIndex;
  /** Term of the appended entry; 0 when rejected. */
  readonly entryTerm: Term;
  /** Set when rejected (nothing was appended): why, and the rejecting node's leader hint. */
  readonly rejected?: { readonly leaderId: NodeId | null; readonly reason: ProposeRejection };
}

/**
 * Why a leader refused a forwarded proposal: `notLeader` (it is not the leader; try the hint),
 * `entryTooLarge` (larger than its `maxCommandBytes`), `dropped` (it cannot take proposals now).
 */
export type ProposeRejection = 'notLeader' | 'entryTooLarge' | 'dropped';

/** Every message a Raft node sends or receives. */
export type RaftMessage =
  | VoteMessage
  | VoteResponseMessage
  | AppendMessage
  | AppendResponseMessage
  | HeartbeatMessage
  | HeartbeatResponseMessage
  | ProposeMessage
  | ProposeResponseMessage;

/** The `type` tag of a {@link RaftMessage}. */
export type RaftMessageType = RaftMessage['type'];
