import type { RaftMessage } from '../messages.js';
import type { Member, NodeId } from '../types.js';

/** Callbacks a transport delivers to. */
export interface TransportHandlers {
  /** Called once per decoded inbound message, in arrival order per peer. Never throws. */
  onMessage(message: RaftMessage): void;
  /** Optional signal that a peer could not be reached (etcd ReportUnreachable). */
  onUnreachable?(peer: NodeId): void;
}

/**
 * Moves messages between nodes.
 *
 * Contract:
 * - `send()` MUST NOT throw and MUST NOT wait on the network: queue per peer (bounded) and drop
 *   on overflow. Raft tolerates loss, reordering and duplication; it never tolerates a blocked
 *   event loop.
 * - Messages addressed to unknown peers are dropped.
 * - `onMessage` is only called between `start()` and `close()`.
 * - A transport MAY deliver the same message object it was given (in-process transports):
 *   receivers treat messages as immutable.
 */
export interface Transport {
  start(handlers: TransportHandlers): Promise<void>;
  send(messages: readonly RaftMessage[]): void;
  /** The membership changed: dial new peers, close removed ones. */
  setPeers(peers: readonly Member[]): void;
  close(): Promise<void>;
}
