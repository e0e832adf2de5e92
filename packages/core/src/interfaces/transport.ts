import type { RaftMessage } from '../messages.js';
import type { Member, NodeId } from '../types.js';
import type { messageLane } from '../wire/lanes.js';

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
 * - Messages to one peer SHOULD arrive in the order they were sent while the connection stays
 *   up, per lane ({@link messageLane}): a transport MAY deliver a `control` message (a
 *   heartbeat, a vote, any response) ahead of `bulk` messages (appends, snapshot chunks,
 *   forwarded proposals) sent before it, so that a heartbeat never waits behind a large append;
 *   within a lane, order holds (the conformance suite checks it). Reordering is safe, only
 *   slower.
 * - Messages addressed to a peer the transport has no address for (not in the last
 *   `setPeers()`) are dropped; a transport that can reach such a peer anyway (in-process ones)
 *   MAY deliver them.
 * - A transport MUST be able to answer a node that sent it a message, even one not in
 *   `setPeers()` (it learns the address from the connection or its handshake): a node added to
 *   the cluster starts with an empty log, so it knows no configuration, and must answer the
 *   leader that contacts it before its log tells it who the members are.
 * - `onMessage` is only called between `start()` and `close()`.
 * - A transport MAY deliver the same message object it was given (in-process transports):
 *   receivers treat messages as immutable.
 * - Zero-copy: a decoded message's entries may be views into the receive buffer, and the engine
 *   keeps them in its log. A transport MUST NOT reuse or overwrite a buffer it handed over in a
 *   delivered message.
 */
export interface Transport {
  start(handlers: TransportHandlers): Promise<void>;
  send(messages: readonly RaftMessage[]): void;
  /** The configuration in force changed (it is given at start-up too, and follows every
   *  membership change as soon as it is appended): dial new peers, close removed ones. */
  setPeers(peers: readonly Member[]): void;
  close(): Promise<void>;
}
