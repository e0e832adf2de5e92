/**
 * What the pieces of a wire transport (outbound links, accepted connections) share with the
 * transport that owns them: its options, driver, clock, logger, counters and delivery.
 */
import type { Clock, Random } from '../interfaces/clock.js';
import type { Logger } from '../logger.js';
import type { RaftMessage } from '../messages.js';
import type { NodeId } from '../types.js';
import type { WireDriver } from './driver.js';
import type { WireCrypto } from './handshake.js';
import type { DropReason, PeerCounters, TransportEvent } from './stats.js';
import type { ResolvedWireOptions } from './wire-options.js';

export interface WireContext {
  readonly options: ResolvedWireOptions;
  readonly driver: WireDriver;
  readonly crypto: WireCrypto;
  readonly clock: Clock;
  readonly random: Random;
  readonly logger: Logger;
  /** The address this node listens on (announced in HELLO); '' before start. */
  listenAddress(): string;
  /** True between start() and close(). */
  running(): boolean;
  counters(peer: NodeId): PeerCounters;
  countDrop(peer: NodeId | null, reason: DropReason, count?: number): void;
  countRefused(reason: import('./handshake.js').RefuseReason): void;
  countRejectedFrame(kind: import('./driver.js').FrameRejection): void;
  emit(event: TransportEvent): void;
  /** The core's onUnreachable. */
  unreachable(peer: NodeId): void;
  /** Hands messages an authenticated peer sent to the core. */
  deliver(messages: readonly RaftMessage[]): void;
  /** Asks for a flush of dirty links on a later turn. */
  scheduleFlush(link: { flush(): void }): void;
}
