/**
 * Lanes: which of a peer's two streams a message travels on. A network transport keeps the
 * small, latency-critical messages (votes, heartbeats, every response) apart from the large
 * ones (appends carrying entries, snapshot chunks, forwarded proposals), so a heartbeat never
 * waits behind a megabyte of log on the same stream and an election timeout never fires
 * because a snapshot was being sent (etcd keeps a message stream apart from its append stream
 * and snapshot pipeline for the same reason).
 *
 * Order is kept within a lane, not across lanes. That is safe: a heartbeat's `commit` never
 * exceeds what the follower is known to hold, and every other control message is either a
 * response or independent of the appends before it.
 */
import type { RaftMessage } from '../messages.js';

/** `control`: small and latency-critical; `bulk`: may be large (entries, snapshot data). */
export type MessageLane = 'control' | 'bulk';

/**
 * The lane `message` travels on: `bulk` for appends (all of them, so appends stay in order
 * among themselves), snapshot chunks and forwarded proposals; `control` for everything else.
 */
export function messageLane(message: RaftMessage): MessageLane {
  switch (message.type) {
    case 'append':
    case 'installSnapshot':
    case 'propose':
      return 'bulk';
    default:
      return 'control';
  }
}
