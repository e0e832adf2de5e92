/**
 * What a network transport counts: per peer and in total. Read with `stats()` (a snapshot;
 * counters only grow), for metrics (the apps export them to Prometheus) and dashboards.
 */
import type { NodeId } from '../types.js';
import type { FrameRejection } from './driver.js';
import type { RefuseReason } from './handshake.js';
import type { MessageLane } from './lanes.js';

/**
 * Why an outgoing or incoming message was dropped:
 * - `queueFull`: the lane's queue to that peer was at its bound (the peer is slow or down);
 * - `linkDown`: bulk messages (appends, snapshot chunks) queued or sent for a peer whose
 *   connection failed, while it backs off: stale by the time it is back, and the leader resends
 *   from its log once the peer answers again;
 * - `oversize`: its encoding does not fit in `maxFrameBytes`;
 * - `encode`: it cannot be encoded (the codec refused it: a bug in the sender);
 * - `noAddress`: no address is known for the peer (not in `setPeers()`, never contacted us);
 * - `notRunning`: sent before `start()` or after `close()`;
 * - `removed`: queued for a peer that `setPeers()` removed;
 * - `misaddressed`: received with a `from` other than the authenticated peer, or a `to` other
 *   than this node.
 */
export type DropReason =
  | 'queueFull'
  | 'linkDown'
  | 'oversize'
  | 'encode'
  | 'noAddress'
  | 'notRunning'
  | 'removed'
  | 'misaddressed';

/** One lane's outbound connection to a peer. */
export interface LaneStats {
  readonly state: 'idle' | 'connecting' | 'open' | 'backoff';
  readonly queuedMessages: number;
  readonly queuedBytes: number;
}

/** Counters for one peer (one node id), both directions. */
export interface PeerStats {
  readonly id: NodeId;
  /** Where this node dials the peer: its member address, or the one it announced. */
  readonly address: string | null;
  readonly lanes: Readonly<Record<MessageLane, LaneStats>>;
  readonly messagesSent: number;
  /** Frame bytes handed to the socket (handshakes excluded). */
  readonly bytesSent: number;
  readonly messagesReceived: number;
  readonly bytesReceived: number;
  /** Handshakes completed on connections this node dialed (each lane counts). */
  readonly connects: number;
  /** Connects of a lane that had been connected before (its connection dropped and came back). */
  readonly reconnects: number;
  /** Dials or handshakes that failed. */
  readonly connectFailures: number;
  /** Messages to this peer dropped, any reason. */
  readonly dropped: number;
}

/** Everything a transport counted since it was created. */
export interface TransportStats {
  /** The address it listens on, once started. */
  readonly address: string | null;
  readonly peers: readonly PeerStats[];
  readonly dropped: Readonly<Record<DropReason, number>>;
  /** Handshakes refused, by reason, both directions (refused by us or by the peer). */
  readonly refused: Readonly<Record<RefuseReason, number>>;
  /** Incoming frames rejected (the connection was closed). */
  readonly rejectedFrames: Readonly<Record<FrameRejection, number>>;
  /** Accepted connections currently open (handshaking or authenticated). */
  readonly inboundConnections: number;
}

/** What a transport reports through `subscribe()`. */
export type TransportEvent =
  | {
      readonly type: 'connected' | 'disconnected';
      readonly peer: NodeId;
      readonly lane: MessageLane;
      readonly direction: 'outbound' | 'inbound';
      readonly remoteAddress: string;
    }
  | {
      /** A handshake failed: `by` says which side refused. */
      readonly type: 'refused';
      readonly peer: NodeId | null;
      readonly by: 'us' | 'peer';
      readonly reason: RefuseReason;
      readonly remoteAddress: string;
      readonly message: string;
    }
  | {
      readonly type: 'frameRejected';
      readonly kind: FrameRejection;
      readonly peer: NodeId | null;
      readonly remoteAddress: string;
      readonly message: string;
    }
  | { readonly type: 'unreachable'; readonly peer: NodeId };

/** The mutable counters of one peer. */
export class PeerCounters {
  messagesSent = 0;
  bytesSent = 0;
  messagesReceived = 0;
  bytesReceived = 0;
  connects = 0;
  reconnects = 0;
  connectFailures = 0;
  dropped = 0;
}

/** A record with every key of `keys` at 0. */
export function zeroCounts<K extends string>(keys: readonly K[]): Record<K, number> {
  const out = {} as Record<K, number>;
  for (const k of keys) out[k] = 0;
  return out;
}

export const DROP_REASONS: readonly DropReason[] = [
  'queueFull',
  'linkDown',
  'oversize',
  'encode',
  'noAddress',
  'notRunning',
  'removed',
  'misaddressed',
];
