/**
 * The Ready loop: takes the engine's Ready batches and carries them out in order, one at a time.
 *
 * ```
 *   input (tick, message, proposal) ─► engine.*() ─► schedule() ─► microtask ─► drain()
 *
 *   drain(): while engine.hasReady():
 *     rd = ready() ─► send rd.messages (and start the snapshot transfers the engine asks for)
 *     ─► install rd.snapshot ─► persist entries, then hard state ─► compact the log store if a
 *     snapshot allows ─► send rd.messagesAfterPersist ─► hand rd.committedEntries to the
 *     applier ─► advance(rd)
 *
 *   while a write is in flight, every schedule() sends engine.takeMessages() at once
 * ```
 *
 * - Every input of one event-loop turn lands in the same Ready (the drain starts on a
 *   microtask): all proposals of a turn become one append, one fsync and one message per
 *   follower.
 * - Persistence holds back only what depends on it: while the log store or stable store works,
 *   heartbeats, appends to followers and heartbeat responses still leave (etcd's asynchronous
 *   storage writes); vote grants, vote requests and append acknowledgements wait for the write.
 * - Applying runs beside the loop (see applier.ts), never inside it.
 * - A storage error is fatal: the loop stops and the node fails.
 */

import type { SnapshotRequest } from '../engine/raft.js';
import type { RawNode } from '../engine/raw-node.js';
import type { Ready, SnapshotInstall } from '../engine/ready.js';
import type { LogStore } from '../interfaces/log-store.js';
import type { StableStore } from '../interfaces/stable-store.js';
import type { Transport } from '../interfaces/transport.js';
import { queueMicrotask } from '../platform.js';
import type { LogEntry, LogIndex } from '../types.js';
import { storageFailure } from './recovery.js';

/** What the loop needs from its node. */
export interface ReadyLoopHost {
  isRunning(): boolean;
  /** Sees each Ready before anything is done with it (role, leader and term changes). */
  observe(rd: Ready): void;
  /** Called just before the engine's messages go to the transport. */
  sending(): void;
  /** Takes the Ready's committed entries (in order). */
  apply(entries: readonly LogEntry[]): void;
  /** Called after each `advance()`. */
  advanced(): void;
  /** The leader needs snapshots streamed to these followers. */
  sendSnapshots(requests: readonly SnapshotRequest[]): void;
  /** Installs a snapshot from the leader (log store, snapshot store, state machine). */
  installSnapshot(install: SnapshotInstall): Promise<void>;
  fail(err: unknown): void;
}

/** See the module comment. */
export class ReadyLoop {
  private draining = false;
  private scheduled = false;
  private drainPromise: Promise<void> = Promise.resolve();
  /** The log store may drop entries up to this index (a durable snapshot covers them). */
  private compactTo: LogIndex = 0;
  private compacted: LogIndex = 0;

  constructor(
    private readonly engine: RawNode,
    private readonly logStore: LogStore,
    private readonly stableStore: StableStore,
    private readonly transport: Transport,
    private readonly host: ReadyLoopHost,
  ) {}

  /** Resolves once the drain in progress (if any) has finished. */
  idle(): Promise<void> {
    return this.drainPromise;
  }

  /** Lets the log store drop entries up to `index`, between two writes. */
  compactLog(index: LogIndex): void {
    if (index <= this.compactTo) return;
    this.compactTo = index;
    this.schedule();
  }

  /** Makes the loop pick up new readiness at the end of the current turn. */
  schedule(): void {
    if (this.scheduled || !this.host.isRunning()) return;
    this.scheduled = true;
    queueMicrotask(this.onMicrotask);
  }

  private readonly onMicrotask = (): void => {
    this.scheduled = false;
    if (!this.host.isRunning()) return;
    if (this.draining) {
      // The drain is awaiting storage (its only await): send what need not wait for it.
      const messages = this.engine.takeMessages();
      if (messages.length > 0) {
        this.host.sending();
        this.transport.send(messages);
      }
      this.takeSnapshotRequests();
      return;
    }
    this.draining = true;
    this.drainPromise = this.drain();
  };

  private async drain(): Promise<void> {
    const engine = this.engine;
    const host = this.host;
    try {
      while (host.isRunning()) {
        if (!engine.hasReady()) {
          if (this.compactTo <= this.compacted) break;
          await this.compact();
          continue;
        }
        const rd = engine.ready();
        host.observe(rd);
        host.sending();
        if (rd.messages.length > 0) this.transport.send(rd.messages);
        this.takeSnapshotRequests();
        if (rd.snapshot !== undefined) {
          await host.installSnapshot(rd.snapshot);
          if (rd.snapshot.meta.index > this.compacted) this.compacted = rd.snapshot.meta.index;
        }
        if (rd.entries.length > 0) {
          try {
            await this.logStore.append(rd.entries);
          } catch (err) {
            throw storageFailure('append', err);
          }
        }
        if (rd.hardState !== undefined) {
          try {
            await this.stableStore.save(rd.hardState);
          } catch (err) {
            throw storageFailure('save hard state', err);
          }
        }
        if (this.compactTo > this.compacted) await this.compact();
        if (!host.isRunning()) return;
        if (rd.messagesAfterPersist.length > 0) this.transport.send(rd.messagesAfterPersist);
        if (rd.committedEntries.length > 0) host.apply(rd.committedEntries);
        engine.advance(rd);
        host.advanced();
      }
    } catch (err) {
      host.fail(err);
    } finally {
      this.draining = false;
    }
  }

  private async compact(): Promise<void> {
    const upTo = this.compactTo;
    try {
      await this.logStore.compact(upTo);
    } catch (err) {
      throw storageFailure('compact log', err);
    }
    if (upTo > this.compacted) this.compacted = upTo;
  }

  private takeSnapshotRequests(): void {
    const requests = this.engine.takeSnapshotRequests();
    if (requests.length > 0) this.host.sendSnapshots(requests);
  }
}
