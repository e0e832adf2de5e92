/**
 * The leader's side of InstallSnapshot: streaming its latest snapshot to followers whose log
 * position it has compacted away, one chunk in flight per follower.
 *
 * ```
 *   engine asks (SnapshotRequest) ─► open the latest snapshot ─► chunk at offset 0 ─► …
 *     follower answers nextOffset ─► read and send the chunk there ─► … ─► done
 *     ─► engine.reportSnapshot(peer, true): probe after the snapshot
 *   no answer within an election timeout ─► resend the chunk (duplicates are harmless)
 *   no progress within snapshotTransferTimeoutMs ─► give up: reportSnapshot(peer, false)
 *   the snapshot store fails (open, read) ─► give up, reported one election timeout later
 * ```
 *
 * - Memory: one chunk per follower being read or in flight, never the snapshot.
 * - A transfer belongs to the term it started in: when this node stops leading, every transfer
 *   is dropped (the engine forgets its followers' progress anyway).
 * - The source stays open for the transfer, so a newer snapshot (and the pruning of this one)
 *   does not disturb it; the follower catches up from the log after it, or gets another one.
 */
import type { RawNode } from '../engine/raw-node.js';
import { StorageError } from '../errors.js';
import type { Clock, TimerHandle } from '../interfaces/clock.js';
import type { SnapshotSource, SnapshotStore } from '../interfaces/snapshot-store.js';
import type { Transport } from '../interfaces/transport.js';
import type { Logger } from '../logger.js';
import type { InstallSnapshotMessage, InstallSnapshotResponseMessage } from '../messages.js';
import type { NodeId, Term } from '../types.js';

/** Settings of the sender. */
export interface SnapshotSenderOptions {
  readonly chunkBytes: number;
  /** Resend an unanswered chunk after this long. */
  readonly resendMs: number;
  /** Give up on a transfer that made no progress for this long. */
  readonly giveUpMs: number;
}

/** What the sender needs from its node. */
export interface SnapshotSenderHost {
  isRunning(): boolean;
  /** The engine, or null once the node is not running. */
  engine(): RawNode | null;
  /** Called after reportSnapshot, so the Ready loop picks up the engine's next step. */
  schedule(): void;
}

class Transfer {
  source: SnapshotSource | null = null;
  /** Offset of the chunk in flight (or being read). */
  offset = 0;
  /** Bytes of the chunk in flight (resent as is). */
  chunk: InstallSnapshotMessage | null = null;
  timer: TimerHandle | null = null;
  /** Fires when the store does not answer (an open or a read that never settles). */
  watchdog: TimerHandle | null = null;
  closed = false;

  constructor(
    readonly to: NodeId,
    readonly term: Term,
  ) {}
}

/** See the module comment. */
export class SnapshotSender {
  private readonly transfers = new Map<NodeId, Transfer>();
  /** Failures waiting to be reported (see `failed`). */
  private readonly retries = new Set<TimerHandle>();

  constructor(
    private readonly id: NodeId,
    private readonly store: SnapshotStore | null,
    private readonly transport: Transport,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly options: SnapshotSenderOptions,
    private readonly host: SnapshotSenderHost,
  ) {}

  /** Transfers in progress (status, tests). */
  get active(): number {
    return this.transfers.size;
  }

  /** The engine asked for a snapshot to `to`, as leader of `term`. */
  start(to: NodeId, term: Term): void {
    const existing = this.transfers.get(to);
    if (existing !== undefined) {
      if (existing.term === term) return;
      this.finish(existing, null);
    }
    const t = new Transfer(to, term);
    this.transfers.set(to, t);
    this.watch(t);
    void this.open(t);
  }

  /** (Re)arms the transfer's watchdog: no progress for `giveUpMs`, and it is given up. */
  private watch(t: Transfer): void {
    t.watchdog?.cancel();
    t.watchdog = this.clock.setTimer(this.options.giveUpMs, () => {
      t.watchdog = null;
      // The follower stopped answering, or the store never did (a read that hangs).
      this.logger.warn(
        { to: t.to, offset: t.offset },
        `giving up the snapshot transfer to ${t.to}: no progress for ${this.options.giveUpMs} ms`,
      );
      this.finish(t, false);
    });
  }

  private async open(t: Transfer): Promise<void> {
    try {
      if (this.store === null) throw new StorageError('no snapshotStore is configured');
      const source = await this.store.open();
      if (source === null) throw new StorageError('the snapshot store holds no snapshot');
      if (t.closed) {
        await source.close();
        return;
      }
      t.source = source;
      this.logger.info(
        { to: t.to, index: source.meta.index, bytes: source.size },
        `streaming the snapshot at ${source.meta.index} (${source.size} bytes) to ${t.to}`,
      );
      await this.sendAt(t, 0);
    } catch (err) {
      this.failed(t, err);
    }
  }

  /**
   * The snapshot store failed: give the transfer up, but tell the engine only after an election
   * timeout, so a store that keeps failing is retried at that pace instead of in a loop.
   */
  private failed(t: Transfer, err: unknown): void {
    if (t.closed) return;
    this.logger.error(
      { err, to: t.to },
      `cannot send a snapshot to ${t.to}: the snapshot store failed; retrying in ${this.options.resendMs} ms`,
    );
    this.finish(t, null);
    const retry = this.clock.setTimer(this.options.resendMs, () => {
      this.retries.delete(retry);
      // A newer transfer to the peer reports for itself.
      if (!this.transfers.has(t.to)) this.report(t, false);
    });
    this.retries.add(retry);
  }

  /** Reads the chunk at `offset` and sends it. */
  private async sendAt(t: Transfer, offset: number): Promise<void> {
    const source = t.source as SnapshotSource;
    const length = Math.min(this.options.chunkBytes, source.size - offset);
    const data = length > 0 ? await source.read(offset, length) : new Uint8Array(0);
    if (t.closed) return;
    if (data.byteLength !== length) {
      throw new StorageError(
        `the snapshot store returned ${data.byteLength} bytes at ${offset}, not ${length}`,
      );
    }
    t.offset = offset;
    t.chunk = {
      type: 'installSnapshot',
      from: this.id,
      to: t.to,
      term: t.term,
      meta: source.meta,
      size: source.size,
      offset,
      data,
    };
    this.transmit(t);
  }

  private transmit(t: Transfer): void {
    if (t.closed || t.chunk === null) return;
    this.transport.send([t.chunk]);
    t.timer?.cancel();
    t.timer = this.clock.setTimer(this.options.resendMs, () => {
      t.timer = null;
      this.transmit(t);
    });
  }

  /** A follower answered a chunk. */
  onResponse(m: InstallSnapshotResponseMessage): void {
    const t = this.transfers.get(m.from);
    const source = t?.source;
    if (t === undefined || source == null || t.chunk === null) return;
    if (m.index !== source.meta.index || m.snapshotTerm !== source.meta.term) return;
    if (m.done) {
      this.logger.info(
        { to: t.to, index: source.meta.index },
        `${t.to} has the snapshot at ${source.meta.index}`,
      );
      this.finish(t, true);
      return;
    }
    const next = m.nextOffset;
    // An answer past the chunk in flight moves the transfer on; 0 means the follower lost the
    // transfer (it restarted, or discarded it) and wants it again from the start. Anything else
    // is a late duplicate: the chunk in flight, or its resend, gets the answer that counts.
    if (!Number.isSafeInteger(next) || next >= source.size) return;
    if (next <= t.offset && next !== 0) return;
    if (next > t.offset) this.watch(t);
    t.timer?.cancel();
    t.timer = null;
    t.chunk = null;
    this.sendAt(t, next).catch((err: unknown) => this.failed(t, err));
  }

  /** Drops the transfers to nodes not in `members` (they left the configuration). */
  keepOnly(members: readonly { readonly id: NodeId }[]): void {
    for (const t of [...this.transfers.values()])
      if (!members.some((m) => m.id === t.to)) this.finish(t, null);
  }

  /** This node no longer leads `term` (or stops): drop every transfer. */
  abandonAll(): void {
    for (const t of [...this.transfers.values()]) this.finish(t, null);
    for (const retry of this.retries) retry.cancel();
    this.retries.clear();
  }

  /** Ends a transfer; `ok` non-null: tell the engine. */
  private finish(t: Transfer, ok: boolean | null): void {
    if (t.closed) return;
    t.closed = true;
    t.timer?.cancel();
    t.timer = null;
    t.watchdog?.cancel();
    t.watchdog = null;
    t.chunk = null;
    if (this.transfers.get(t.to) === t) this.transfers.delete(t.to);
    const source = t.source;
    t.source = null;
    if (source !== null) {
      source.close().catch((err: unknown) => {
        this.logger.warn({ err }, 'closing a snapshot source failed');
      });
    }
    if (ok !== null) this.report(t, ok);
  }

  /** Tells the engine how the transfer `t` ended, if it still leads the transfer's term. */
  private report(t: Transfer, ok: boolean): void {
    if (!this.host.isRunning()) return;
    const engine = this.host.engine();
    if (engine === null) return;
    const status = engine.basicStatus();
    if (status.role !== 'leader' || status.term !== t.term) return;
    engine.reportSnapshot(t.to, ok);
    this.host.schedule();
  }
}
