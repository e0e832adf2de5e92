/**
 * A simulated network: one {@link Transport} per node, delivering through the {@link Scheduler}
 * with seeded delays, and fault knobs for loss, duplication, reordering, partitions and nodes
 * that are down.
 *
 * Life of a message (every message passed to `send()` is counted in `stats.sent` and ends up
 * `dropped` or `delivered`; a duplicate adds one to `duplicated` and one more delivery or drop):
 *
 * ```
 * send() ──► sender closed / sender down / unknown peer / receiver down / link blocked ──► dropped
 *   │
 *   ├─ chance(dropRate) ──► dropped ('random')
 *   ▼
 * in flight for range(minDelayMs, maxDelayMs) ms (+ a second copy with chance(duplicateRate))
 *   │
 *   ▼ at delivery time
 * receiver down / link blocked / receiver not started or closed ──► dropped
 *   │
 *   ▼
 * handlers.onMessage(message) ──► delivered
 * ```
 *
 * Links are checked both when a message is sent and when it arrives, so a partition takes effect
 * at once, even for messages already in flight. A message in flight FROM a node that then goes
 * down is still delivered (it already left).
 *
 * Random delays reorder messages naturally; `fifo: true` keeps per-link order (each message is
 * delivered no earlier than the previous one on the same directed link), as a TCP stream would;
 * `minDelayMs === maxDelayMs` gives a fixed delay, which is also FIFO.
 */
import type { Member, NodeId, RaftMessage, Transport, TransportHandlers } from '@raft/core';
import { RaftError } from '@raft/core';
import type { Prng } from './prng.js';
import type { Scheduler } from './scheduler.js';

/** Fault knobs that can change during a run ({@link SimNetwork.configure}). */
export interface NetworkFaults {
  /** Smallest one-way delay in virtual ms. Default 1. */
  readonly minDelayMs: number;
  /** Largest one-way delay in virtual ms (exclusive unless equal to `minDelayMs`). Default 10. */
  readonly maxDelayMs: number;
  /** Probability that a sent message is lost. Default 0. */
  readonly dropRate: number;
  /** Probability that a sent message is delivered twice (independent delays). Default 0. */
  readonly duplicateRate: number;
  /** Keep per-link FIFO order despite random delays. Default false (messages reorder). */
  readonly fifo: boolean;
}

/** Options of a {@link SimNetwork}. */
export interface SimNetworkOptions extends Partial<NetworkFaults> {
  /**
   * Deliver a `structuredClone` of each message instead of the sent object, to catch code that
   * mutates messages after sending or after receiving. Default false (faster; the Transport
   * contract allows sharing).
   */
  readonly cloneMessages?: boolean;
  /**
   * Drop messages whose receiver is neither in the sender's last `setPeers()` list nor a node
   * that has sent this transport a message, as a real transport must (it has no address for
   * others; the Transport contract lets it answer a node that contacted it, whose address it
   * learned from the connection). Default true. With false, a message is only dropped as
   * `unknownPeer` when the network has no transport at all for the receiver.
   */
  readonly strictPeers?: boolean;
  /**
   * When a send is refused because the receiver is down, unknown or the link is blocked, call
   * the sender's `onUnreachable(peer)` `minDelayMs` later (never synchronously inside `send`).
   * Random loss is silent. Default false.
   */
  readonly reportUnreachable?: boolean;
  /**
   * Messages kept (the latest ones that left) for {@link SimNetwork.replay}, which delivers old
   * messages again, as a network that held them back for a long time would. Default 0 (none
   * kept).
   */
  readonly historySize?: number;
}

/** Why a message was dropped. */
export type DropReason =
  /** The sending transport was closed, or replaced by a newer incarnation of its node. */
  | 'senderClosed'
  /** The sender is down ({@link SimNetwork.setDown}). */
  | 'senderDown'
  /** The receiver is not a known peer of the sender (see `strictPeers`). */
  | 'unknownPeer'
  /** The receiver is down, at send or at delivery time. */
  | 'receiverDown'
  /** A partition, cut or isolation blocks the link, at send or at delivery time. */
  | 'blocked'
  /** Lost at random (`dropRate`). */
  | 'random'
  /** The receiver's transport was not started, or was closed, when the message arrived. */
  | 'notListening';

/**
 * Message counters.
 * Invariant: `sent + duplicated === delivered + dropped + inFlight`.
 */
export interface NetworkStats {
  readonly sent: number;
  readonly delivered: number;
  readonly dropped: number;
  readonly duplicated: number;
  readonly inFlight: number;
}

/** Trace hook: a message is about to be handed to its receiver. */
export type DeliveryListener = (message: RaftMessage, sentAtMs: number) => void;
/** Trace hook: a message was dropped. */
export type DropListener = (message: RaftMessage, reason: DropReason) => void;
/** Checker hook: node `from` passed `message` to its transport's `send()` (before any fault or
 *  blocking decision: the message has left the node). */
export type SendListener = (from: NodeId, message: RaftMessage) => void;

/** The transport of one node incarnation, as returned by {@link SimNetwork.transport}. */
export interface SimTransport extends Transport {
  /** The node this transport belongs to. */
  readonly id: NodeId;
  /** True between `start()` and `close()` (or until replaced by a newer incarnation). */
  readonly isOpen: boolean;
}

interface MutableStats {
  sent: number;
  delivered: number;
  dropped: number;
  duplicated: number;
  inFlight: number;
}

type SendFunction = (sender: SimTransportImpl, messages: readonly RaftMessage[]) => void;

class SimTransportImpl implements SimTransport {
  readonly id: NodeId;
  private readonly sendVia: SendFunction;
  handlers: TransportHandlers | null = null;
  started = false;
  closed = false;
  peers: ReadonlySet<NodeId> = new Set();
  /** Nodes that sent this transport a message: it can answer them (it learned their address). */
  readonly learned = new Set<NodeId>();

  constructor(id: NodeId, sendVia: SendFunction) {
    this.id = id;
    this.sendVia = sendVia;
  }

  get isOpen(): boolean {
    return this.handlers !== null;
  }

  start(handlers: TransportHandlers): Promise<void> {
    if (this.closed) {
      return Promise.reject(
        new RaftError('SHUTDOWN', `transport of ${this.id} is closed (or was replaced)`),
      );
    }
    if (this.started) {
      return Promise.reject(
        new RaftError('INVALID_ARGUMENT', `transport of ${this.id} was already started`),
      );
    }
    this.started = true;
    this.handlers = handlers;
    return Promise.resolve();
  }

  send(messages: readonly RaftMessage[]): void {
    this.sendVia(this, messages);
  }

  setPeers(peers: readonly Member[]): void {
    const ids = new Set<NodeId>();
    for (const peer of peers) {
      ids.add(peer.id);
    }
    this.peers = ids;
  }

  close(): Promise<void> {
    this.closed = true;
    this.handlers = null;
    return Promise.resolve();
  }
}

const DEFAULT_FAULTS: NetworkFaults = {
  minDelayMs: 1,
  maxDelayMs: 10,
  dropRate: 0,
  duplicateRate: 0,
  fifo: false,
};

function validateFaults(faults: NetworkFaults): void {
  const { minDelayMs, maxDelayMs, dropRate, duplicateRate } = faults;
  if (!(Number.isFinite(minDelayMs) && minDelayMs >= 0)) {
    throw new RangeError(`minDelayMs must be finite and >= 0, got ${minDelayMs}`);
  }
  if (!(Number.isFinite(maxDelayMs) && maxDelayMs >= minDelayMs)) {
    throw new RangeError(`maxDelayMs must be finite and >= minDelayMs, got ${maxDelayMs}`);
  }
  if (!(dropRate >= 0 && dropRate <= 1)) {
    throw new RangeError(`dropRate must be in [0, 1], got ${dropRate}`);
  }
  if (!(duplicateRate >= 0 && duplicateRate <= 1)) {
    throw new RangeError(`duplicateRate must be in [0, 1], got ${duplicateRate}`);
  }
}

/**
 * The simulated network. Deterministic given the scheduler's history and the Prng's seed.
 *
 * Fault state (all cleared by {@link heal} except `down`, which {@link setDown} controls):
 * - partition groups: symmetric, a node not named in any group reaches nobody;
 * - cuts: one-way blocked links;
 * - isolated nodes: reach nobody, and nobody reaches them.
 */
export class SimNetwork {
  private readonly scheduler: Scheduler;
  private readonly prng: Prng;
  private faults: NetworkFaults;
  private readonly cloneMessages: boolean;
  private readonly strictPeers: boolean;
  private readonly reportUnreachable: boolean;
  private readonly transports = new Map<NodeId, SimTransportImpl>();
  private readonly down = new Set<NodeId>();
  private readonly isolated = new Set<NodeId>();
  private readonly cuts = new Map<NodeId, Set<NodeId>>();
  private groups: Map<NodeId, number> | null = null;
  /** Per directed link, the latest scheduled delivery time (only maintained with `fifo`). */
  private readonly lastDelivery = new Map<NodeId, Map<NodeId, number>>();
  private readonly sendFunction: SendFunction = (sender, messages) => {
    for (const message of messages) {
      this.sendOne(sender, message);
    }
  };
  private readonly counters: MutableStats = {
    sent: 0,
    delivered: 0,
    dropped: 0,
    duplicated: 0,
    inFlight: 0,
  };

  /** Trace hook, called just before each delivery. */
  onDeliver: DeliveryListener | undefined = undefined;
  /** Trace hook, called for each dropped message. */
  onDrop: DropListener | undefined = undefined;
  /** Checker hook, called for every message a node sends (see {@link SendListener}). */
  onSend: SendListener | undefined = undefined;
  private readonly historySize: number;
  /** The latest messages that left, as (from, message), a ring of `historySize`. */
  private readonly history: { from: NodeId; message: RaftMessage }[] = [];
  private historyNext = 0;

  /**
   * @param prng a stream for this network alone (e.g. `root.fork('network')`): every send past
   *   the blocking checks draws exactly three numbers (loss, delay, duplication) plus one for a
   *   duplicate's delay.
   */
  constructor(scheduler: Scheduler, prng: Prng, options: SimNetworkOptions = {}) {
    this.scheduler = scheduler;
    this.prng = prng;
    const faults: NetworkFaults = {
      minDelayMs: options.minDelayMs ?? DEFAULT_FAULTS.minDelayMs,
      maxDelayMs:
        options.maxDelayMs ?? Math.max(DEFAULT_FAULTS.maxDelayMs, options.minDelayMs ?? 0),
      dropRate: options.dropRate ?? DEFAULT_FAULTS.dropRate,
      duplicateRate: options.duplicateRate ?? DEFAULT_FAULTS.duplicateRate,
      fifo: options.fifo ?? DEFAULT_FAULTS.fifo,
    };
    validateFaults(faults);
    this.faults = faults;
    this.cloneMessages = options.cloneMessages ?? false;
    this.strictPeers = options.strictPeers ?? true;
    this.reportUnreachable = options.reportUnreachable ?? false;
    const historySize = options.historySize ?? 0;
    if (!(Number.isInteger(historySize) && historySize >= 0)) {
      throw new RangeError(`historySize must be a non-negative integer, got ${historySize}`);
    }
    this.historySize = historySize;
  }

  /**
   * Delivers `count` messages drawn (with the network's Prng) from the kept history again, each
   * after a fresh delay, subject to the usual checks when they arrive: stale messages from earlier
   * terms, late forwards, old acknowledgements. Counted as duplicates. Returns how many were sent.
   */
  replay(count: number): number {
    const kept = this.history.length;
    if (kept === 0) return 0;
    const faults = this.faults;
    let sent = 0;
    for (let i = 0; i < count; i++) {
      const old = this.history[this.prng.int(kept)] as { from: NodeId; message: RaftMessage };
      this.counters.duplicated++;
      this.enqueue(old.from, old.message, this.prng.range(faults.minDelayMs, faults.maxDelayMs));
      sent++;
    }
    return sent;
  }

  /** Live message counters. */
  get stats(): NetworkStats {
    return this.counters;
  }

  /** The current fault knobs. */
  get currentFaults(): NetworkFaults {
    return this.faults;
  }

  /**
   * Creates the transport of a new incarnation of node `id` (call it again after a restart).
   * A previous transport of the same id is closed: it receives nothing more and its sends are
   * dropped as `senderClosed`. Messages already in flight to `id` reach the new incarnation if
   * it has started by the time they arrive.
   */
  transport(id: NodeId): SimTransport {
    const previous = this.transports.get(id);
    if (previous !== undefined) {
      previous.closed = true;
      previous.handlers = null;
    }
    const created = new SimTransportImpl(id, this.sendFunction);
    this.transports.set(id, created);
    return created;
  }

  /** Changes fault knobs from now on (messages in flight keep their delivery times). */
  configure(faults: Partial<NetworkFaults>): void {
    const next: NetworkFaults = { ...this.faults, ...faults };
    validateFaults(next);
    if (!next.fifo) {
      this.lastDelivery.clear();
    }
    this.faults = next;
  }

  /**
   * Splits the network: nodes in different groups cannot reach each other (both directions);
   * a node not named in any group reaches nobody. Replaces the previous partition; cuts and
   * isolations stay.
   */
  partition(groups: readonly (readonly NodeId[])[]): void {
    const map = new Map<NodeId, number>();
    groups.forEach((group, index) => {
      for (const id of group) {
        if (map.has(id)) {
          throw new RangeError(`node ${id} appears in two partition groups`);
        }
        map.set(id, index);
      }
    });
    this.groups = map;
  }

  /** Blocks the one-way link `from → to` (`to → from` is unaffected). */
  cut(from: NodeId, to: NodeId): void {
    let targets = this.cuts.get(from);
    if (targets === undefined) {
      targets = new Set();
      this.cuts.set(from, targets);
    }
    targets.add(to);
  }

  /** Unblocks the one-way link `from → to` if {@link cut} blocked it. */
  uncut(from: NodeId, to: NodeId): void {
    const targets = this.cuts.get(from);
    if (targets !== undefined) {
      targets.delete(to);
      if (targets.size === 0) {
        this.cuts.delete(from);
      }
    }
  }

  /** Blocks every link to and from `id`. */
  isolate(id: NodeId): void {
    this.isolated.add(id);
  }

  /** Removes every partition, cut and isolation. Down nodes stay down. */
  heal(): void {
    this.groups = null;
    this.cuts.clear();
    this.isolated.clear();
  }

  /**
   * Marks a node down (crashed or stopped) or up again. A down node neither sends nor receives;
   * messages in flight to it are dropped when they arrive.
   */
  setDown(id: NodeId, down: boolean): void {
    if (down) {
      this.down.add(id);
    } else {
      this.down.delete(id);
    }
  }

  /** True if `id` is down. */
  isDown(id: NodeId): boolean {
    return this.down.has(id);
  }

  /** True if a partition, cut or isolation blocks the one-way link `from → to` right now. */
  isBlocked(from: NodeId, to: NodeId): boolean {
    if (this.isolated.size > 0 && (this.isolated.has(from) || this.isolated.has(to))) {
      return true;
    }
    const groups = this.groups;
    if (groups !== null) {
      const group = groups.get(from);
      if (group === undefined || group !== groups.get(to)) {
        return true;
      }
    }
    if (this.cuts.size > 0) {
      const targets = this.cuts.get(from);
      if (targets?.has(to)) {
        return true;
      }
    }
    return false;
  }

  private sendOne(sender: SimTransportImpl, message: RaftMessage): void {
    const counters = this.counters;
    counters.sent++;
    const from = sender.id;
    const to = message.to;
    if (sender.closed) {
      this.drop(message, 'senderClosed');
      return;
    }
    if (this.down.has(from)) {
      this.drop(message, 'senderDown');
      return;
    }
    if (this.onSend !== undefined) this.onSend(from, message);
    if (
      this.strictPeers ? !sender.peers.has(to) && !sender.learned.has(to) : !this.transports.has(to)
    ) {
      this.refuse(sender, message, 'unknownPeer');
      return;
    }
    if (this.down.has(to)) {
      this.refuse(sender, message, 'receiverDown');
      return;
    }
    if (this.isBlocked(from, to)) {
      this.refuse(sender, message, 'blocked');
      return;
    }
    const prng = this.prng;
    const faults = this.faults;
    // Always three draws, whatever the rates, so tuning one knob does not reshuffle the rest.
    const lost = prng.chance(faults.dropRate);
    const delayMs = prng.range(faults.minDelayMs, faults.maxDelayMs);
    const duplicate = prng.chance(faults.duplicateRate);
    if (this.historySize > 0) {
      const entry = { from, message };
      if (this.history.length < this.historySize) this.history.push(entry);
      else this.history[this.historyNext] = entry;
      this.historyNext = (this.historyNext + 1) % this.historySize;
    }
    if (lost) {
      this.drop(message, 'random');
      return;
    }
    this.enqueue(from, message, delayMs);
    if (duplicate) {
      counters.duplicated++;
      this.enqueue(from, message, prng.range(faults.minDelayMs, faults.maxDelayMs));
    }
  }

  private enqueue(from: NodeId, message: RaftMessage, delayMs: number): void {
    const scheduler = this.scheduler;
    const sentAt = scheduler.now;
    let at = sentAt + delayMs;
    if (this.faults.fifo) {
      let links = this.lastDelivery.get(from);
      if (links === undefined) {
        links = new Map();
        this.lastDelivery.set(from, links);
      }
      const last = links.get(message.to);
      if (last !== undefined && last > at) {
        at = last;
      }
      links.set(message.to, at);
    }
    const payload = this.cloneMessages ? structuredClone(message) : message;
    this.counters.inFlight++;
    scheduler.scheduleAt(at, () => this.deliver(from, payload, sentAt), 'net');
  }

  private deliver(from: NodeId, message: RaftMessage, sentAt: number): void {
    this.counters.inFlight--;
    const to = message.to;
    if (this.down.has(to)) {
      this.drop(message, 'receiverDown');
      return;
    }
    if (this.isBlocked(from, to)) {
      this.drop(message, 'blocked');
      return;
    }
    const receiver = this.transports.get(to);
    const handlers = receiver === undefined ? null : receiver.handlers;
    if (handlers === null) {
      this.drop(message, 'notListening');
      return;
    }
    this.counters.delivered++;
    (receiver as SimTransportImpl).learned.add(from);
    if (this.onDeliver !== undefined) {
      this.onDeliver(message, sentAt);
    }
    handlers.onMessage(message);
  }

  private drop(message: RaftMessage, reason: DropReason): void {
    this.counters.dropped++;
    if (this.onDrop !== undefined) {
      this.onDrop(message, reason);
    }
  }

  /** A drop the sender could notice (connection refused): optionally reported as unreachable. */
  private refuse(sender: SimTransportImpl, message: RaftMessage, reason: DropReason): void {
    this.drop(message, reason);
    if (this.reportUnreachable) {
      const peer = message.to;
      this.scheduler.schedule(
        this.faults.minDelayMs,
        () => {
          const handlers = sender.handlers;
          if (handlers?.onUnreachable !== undefined) {
            handlers.onUnreachable(peer);
          }
        },
        'net:unreachable',
      );
    }
  }
}
