/**
 * The follower's side of InstallSnapshot: chunks from the leader go to the snapshot store as
 * they arrive; a complete snapshot is handed to the engine, and installed by the Ready loop.
 *
 * ```
 *   chunk (leader of our term) ─► offset 0: open a sink (abandoning an older transfer)
 *     ─► offset = bytes received: write it ─► answer nextOffset   (other offsets: answer
 *        where we are; a transfer we do not know: answer 0, start over)
 *     ─► last chunk: engine.installSnapshot(meta) ─► answer done
 *   Ready.snapshot ─► install(): drop the contradicted log, commit the sink, compact the log,
 *     restore the state machine ─► then the acknowledgement leaves (messagesAfterPersist)
 * ```
 *
 * - Memory: a chunk at a time; the snapshot is never held whole.
 * - Duplicated, resent and reordered chunks are harmless: only the chunk at the offset received
 *   so far is written; every other answer just says where the transfer stands.
 * - The sink is committed only when the Ready loop installs the snapshot, after the log store has
 *   dropped whatever the snapshot contradicts: no crash leaves a snapshot followed by entries
 *   that are not the leader's.
 * - A transfer silent for `giveUpMs` is discarded, as is one a newer one overtakes.
 */
import type { RawNode } from '../engine/raw-node.js';
import type { SnapshotInstall } from '../engine/ready.js';
import { StorageError } from '../errors.js';
import type { Clock, TimerHandle } from '../interfaces/clock.js';
import type { LogStore } from '../interfaces/log-store.js';
import type { SnapshotSink, SnapshotSource, SnapshotStore } from '../interfaces/snapshot-store.js';
import type { Transport } from '../interfaces/transport.js';
import type { Logger } from '../logger.js';
import { validateMembership } from '../membership.js';
import type { InstallSnapshotMessage, InstallSnapshotResponseMessage } from '../messages.js';
import type { NodeId, SnapshotMeta, Term } from '../types.js';
import { storageFailure } from './recovery.js';

/** What the receiver needs from its node. */
export interface SnapshotReceiverHost {
  isRunning(): boolean;
  engine(): RawNode | null;
  schedule(): void;
  /** Restores the state machine from `source`, between two applies. */
  restore(source: SnapshotSource): Promise<void>;
  /** The snapshot `meta` is installed: the state machine holds it. */
  installed(meta: SnapshotMeta): void;
}

class Incoming {
  received = 0;
  closed = false;
  /** Chunks are handled one after the other. */
  chain: Promise<void> = Promise.resolve();
  timer: TimerHandle | null = null;

  constructor(
    readonly leader: NodeId,
    readonly term: Term,
    readonly meta: SnapshotMeta,
    readonly size: number,
    readonly sink: Promise<SnapshotSink>,
  ) {}

  matches(m: InstallSnapshotMessage): boolean {
    return (
      m.from === this.leader &&
      m.term === this.term &&
      m.meta.index === this.meta.index &&
      m.meta.term === this.meta.term &&
      m.size === this.size
    );
  }
}

/** A received snapshot the engine took, waiting for its Ready. */
interface Complete {
  readonly meta: SnapshotMeta;
  readonly sink: SnapshotSink;
}

/** Why a chunk cannot be from a correct leader (in-process transports skip the codec's checks). */
export function malformedChunk(m: InstallSnapshotMessage): string | null {
  const whole = (n: number): boolean => Number.isSafeInteger(n) && n >= 0;
  if (!whole(m.size) || !whole(m.offset)) return `size ${m.size}, offset ${m.offset}`;
  if (!(m.data instanceof Uint8Array)) return 'data is not a Uint8Array';
  if (m.data.byteLength > m.size - m.offset)
    return `${m.data.byteLength} bytes at ${m.offset} pass the size ${m.size}`;
  if (!whole(m.meta.index) || !whole(m.meta.term)) return 'bad meta';
  try {
    validateMembership(m.meta.membership);
  } catch (err) {
    return `bad membership: ${(err as Error).message}`;
  }
  return null;
}

function sameSnapshot(a: SnapshotMeta, b: SnapshotMeta): boolean {
  return a.index === b.index && a.term === b.term;
}

/** See the module comment. */
export class SnapshotReceiver {
  private incoming: Incoming | null = null;
  private complete: Complete | null = null;
  private warnedDisabled = false;

  /**
   * `store` null: this node cannot install snapshots (no snapshotStore, or a state machine
   * without restore()); it drops chunks, with one warning.
   */
  constructor(
    private readonly id: NodeId,
    private readonly store: SnapshotStore | null,
    private readonly transport: Transport,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly giveUpMs: number,
    private readonly host: SnapshotReceiverHost,
  ) {}

  /** A chunk arrived (the engine has already seen its term). */
  onChunk(m: InstallSnapshotMessage): void {
    const engine = this.host.engine();
    if (engine === null) return;
    if (this.store === null) {
      if (!this.warnedDisabled) {
        this.warnedDisabled = true;
        this.logger.warn(
          { from: m.from, index: m.meta.index },
          `${m.from} sends a snapshot, but this node cannot install one (it needs a snapshotStore and a state machine with snapshot() and restore()): it cannot catch up`,
        );
      }
      return;
    }

    const status = engine.basicStatus();
    if (status.role !== 'follower' || status.term !== m.term || status.leaderId !== m.from) return;
    if (m.meta.index <= status.commitIndex) {
      // The log already covers it: nothing to store. The engine acknowledges our commit index.
      engine.installSnapshot(m.meta, m.from);
      this.host.schedule();
      this.answer(m, m.size, true);
      return;
    }
    const cur = this.incoming;
    if (cur?.matches(m)) {
      const t = cur;
      this.touch(t);
      t.chain = t.chain.then(() => this.handle(t, m));
      return;
    }
    if (m.offset !== 0) {
      // A chunk of a transfer we do not hold (lost to a restart or a timeout), or a late one of
      // a transfer a newer one replaced.
      if (cur === null || m.meta.index >= cur.meta.index) this.answer(m, 0, false);
      return;
    }
    if (cur !== null) {
      if (m.meta.index < cur.meta.index && m.term <= cur.term) return;
      this.logger.info(
        { index: cur.meta.index, newer: m.meta.index },
        `abandoning the snapshot transfer at ${cur.meta.index}: a newer one started`,
      );
      this.discard(cur);
    }
    const store = this.store;
    const next = new Incoming(
      m.from,
      m.term,
      m.meta,
      m.size,
      store.create(m.meta).catch((err: unknown) => {
        throw storageFailure('create snapshot', err);
      }),
    );
    this.incoming = next;
    this.touch(next);
    next.chain = this.handle(next, m);
  }

  private async handle(t: Incoming, m: InstallSnapshotMessage): Promise<void> {
    if (t.closed) return;
    try {
      if (m.offset !== t.received) {
        this.answer(m, t.received, false);
        return;
      }
      const sink = await t.sink;
      if (m.data.byteLength > 0) await sink.write(m.data);
      if (t.closed) return;
      t.received += m.data.byteLength;
      if (t.received < t.size) {
        this.answer(m, t.received, false);
        return;
      }
      this.finishReceiving(t, sink, m);
    } catch (err) {
      this.logger.warn(
        { err, index: t.meta.index },
        'storing a snapshot chunk failed; the transfer starts over',
      );
      this.discard(t);
      this.answer(m, 0, false);
    }
  }

  /** Every byte is stored: hand the snapshot to the engine. */
  private finishReceiving(t: Incoming, sink: SnapshotSink, m: InstallSnapshotMessage): void {
    this.incoming = null;
    t.closed = true;
    t.timer?.cancel();
    const engine = this.host.engine();
    const status = engine?.basicStatus();
    // Still a follower of the sender in the transfer's term (the writes took time).
    if (
      engine == null ||
      status === undefined ||
      !this.host.isRunning() ||
      status.role !== 'follower' ||
      status.term !== t.term ||
      status.leaderId !== t.leader
    ) {
      void sink.abort();
      return;
    }
    if (engine.installSnapshot(t.meta, t.leader)) {
      // An older complete one the engine has not handed out yet is superseded by this one.
      if (this.complete !== null) void this.complete.sink.abort();
      this.complete = { meta: t.meta, sink };
    } else {
      void sink.abort();
    }
    this.host.schedule();
    this.answer(m, t.size, true);
  }

  /**
   * Installs the snapshot a Ready carries: the log store first drops what the snapshot
   * contradicts, then the snapshot is committed, the log compacted behind it, and the state
   * machine restored from it. Errors are storage failures (fatal).
   */
  async install(install: SnapshotInstall, logStore: LogStore): Promise<void> {
    const complete = this.complete;
    const meta = install.meta;
    if (complete === null || !sameSnapshot(complete.meta, meta)) {
      throw new StorageError(`the snapshot at ${meta.index} to install was not received`);
    }
    this.complete = null;
    const store = this.store as SnapshotStore;
    try {
      if (!install.keepLog) await logStore.truncate(meta.index + 1);
      await complete.sink.commit();
      await logStore.compact(meta.index);
    } catch (err) {
      await complete.sink.abort().catch(() => {});
      throw storageFailure('install snapshot', err);
    }
    let source: SnapshotSource | null;
    try {
      source = await store.open();
    } catch (err) {
      throw storageFailure('open snapshot', err);
    }
    if (source === null || !sameSnapshot(source.meta, meta)) {
      await source?.close();
      throw new StorageError(
        `the snapshot store returned ${source === null ? 'nothing' : `the snapshot at ${source.meta.index}`} after committing the one at ${meta.index}`,
      );
    }
    try {
      await this.host.restore(source);
    } finally {
      await source.close().catch(() => {});
    }
    this.logger.info(
      { index: meta.index, term: meta.term },
      `installed the snapshot at ${meta.index}`,
    );
    this.host.installed(meta);
  }

  /** Discards every transfer (the node stops). */
  abandonAll(): void {
    if (this.incoming !== null) this.discard(this.incoming);
    if (this.complete !== null) void this.complete.sink.abort().catch(() => {});
    this.complete = null;
  }

  private discard(t: Incoming): void {
    if (this.incoming === t) this.incoming = null;
    if (t.closed) return;
    t.closed = true;
    t.timer?.cancel();
    // The chain may be writing: abort once it is done.
    void t.chain
      .catch(() => {})
      .then(() => t.sink)
      .then(
        (sink) => sink.abort(),
        () => {},
      );
  }

  private touch(t: Incoming): void {
    t.timer?.cancel();
    t.timer = this.clock.setTimer(this.giveUpMs, () => {
      if (t.closed) return;
      this.logger.warn(
        { index: t.meta.index, received: t.received },
        `discarding the snapshot transfer at ${t.meta.index}: the leader went silent`,
      );
      this.discard(t);
    });
  }

  private answer(m: InstallSnapshotMessage, nextOffset: number, done: boolean): void {
    const reply: InstallSnapshotResponseMessage = {
      type: 'installSnapshotResponse',
      from: this.id,
      to: m.from,
      term: m.term,
      index: m.meta.index,
      snapshotTerm: m.meta.term,
      nextOffset,
      done,
    };
    this.transport.send([reply]);
  }
}
