/**
 * Taking this node's own snapshots, and compacting the log behind them.
 *
 * ```
 *   applied passes a threshold, or takeSnapshot()
 *     ─► between two applies: meta = (applied, its term, membership), chunks = sm.snapshot()
 *     ─► stream the chunks into snapshotStore.create(meta) while applies go on ─► commit()
 *     ─► engine.snapshotTaken(meta): memory compacted to index - trailingEntries
 *     ─► the Ready loop compacts the log store as far   ─► event snapshotTaken
 * ```
 *
 * - At most one snapshot is in flight; `takeSnapshot()` during one waits for it.
 * - A failed snapshot (the state machine's stream threw, the store refused) is aborted: the
 *   previous snapshot and the log stay as they were. Automatic snapshots back off after a failure
 *   (doubling from one second to one minute); `takeSnapshot()` tries at once.
 */
import { RaftError } from '../errors.js';
import type { SnapshotStore } from '../interfaces/snapshot-store.js';
import type { SnapshotChunks, StateMachine } from '../interfaces/state-machine.js';
import type { Logger } from '../logger.js';
import type { LogIndex, SnapshotMeta } from '../types.js';
import type { Applier } from './applier.js';
import { type Pacer, writeSnapshot } from './snapshot-stream.js';

/** What the snapshotter needs from its node. */
export interface SnapshotterHost {
  isRunning(): boolean;
  now(): number;
  /** A pacer for one stream (see Pacer). */
  pacer(): Pacer;
  /** `meta` is durable: compact the engine and the log store behind it. */
  taken(meta: SnapshotMeta): void;
  failed(error: RaftError): void;
}

/** Thresholds of automatic snapshots (0: off). */
export interface SnapshotThresholds {
  readonly entries: number;
  readonly bytes: number;
}

const FIRST_BACKOFF_MS = 1000;
const MAX_BACKOFF_MS = 60_000;

/** See the module comment. */
export class Snapshotter<Cmd, Res> {
  /** The latest durable snapshot (taken here, installed from the leader, or restored). */
  latest: SnapshotMeta | null = null;
  private inFlight: Promise<SnapshotMeta> | null = null;
  /** `applier.appliedBytes` at the latest snapshot. */
  private bytesAtLatest = 0;
  private retryAt = 0;
  private backoffMs = FIRST_BACKOFF_MS;

  constructor(
    private readonly sm: StateMachine<Cmd, Res>,
    private readonly store: SnapshotStore | null,
    private readonly applier: Applier<Cmd, Res>,
    private readonly thresholds: SnapshotThresholds,
    private readonly logger: Logger,
    private readonly host: SnapshotterHost,
  ) {}

  /** True when this node can take snapshots at all. */
  get enabled(): boolean {
    return this.store !== null && this.sm.snapshot !== undefined;
  }

  /** A snapshot ending at `meta` is in place (restored at start-up or installed). */
  adopt(meta: SnapshotMeta): void {
    if (this.latest === null || meta.index > this.latest.index) this.latest = meta;
    this.bytesAtLatest = this.applier.appliedBytes;
  }

  /** Called as applying progresses: starts an automatic snapshot once a threshold is passed. */
  maybeTake(): void {
    if (this.inFlight !== null || !this.enabled) return;
    const { entries, bytes } = this.thresholds;
    const since = this.applier.applied - (this.latest?.index ?? 0);
    const due =
      (entries > 0 && since >= entries) ||
      (bytes > 0 && since > 0 && this.applier.appliedBytes - this.bytesAtLatest >= bytes);
    if (!due || this.host.now() < this.retryAt) return;
    this.take().catch(() => {
      // Reported through host.failed; automatic snapshots retry after the backoff.
    });
  }

  /**
   * Takes a snapshot now (or joins the one in flight). Resolves with its meta once it is durable
   * and the log is compacted behind it in memory; resolves with the latest one at once when
   * nothing was applied since.
   */
  take(): Promise<SnapshotMeta> {
    if (this.inFlight !== null) return this.inFlight;
    if (!this.enabled) {
      return Promise.reject(
        new RaftError(
          'UNAVAILABLE',
          this.store === null
            ? 'snapshots need a snapshotStore option'
            : 'the state machine does not implement snapshot() and restore()',
          { outcome: 'notApplied' },
        ),
      );
    }
    if (this.applier.applied === 0) {
      return Promise.reject(
        new RaftError('UNAVAILABLE', 'nothing has been applied yet: there is nothing to snapshot', {
          outcome: 'notApplied',
          retryable: true,
        }),
      );
    }
    if (this.latest !== null && this.latest.index >= this.applier.applied)
      return Promise.resolve(this.latest);
    const run = this.run();
    this.inFlight = run;
    const clear = (): void => {
      this.inFlight = null;
    };
    run.then(clear, clear);
    return run;
  }

  /** Resolves once no snapshot is in flight. */
  async idle(): Promise<void> {
    await this.inFlight?.catch(() => {});
  }

  private async run(): Promise<SnapshotMeta> {
    const store = this.store as SnapshotStore;
    const applier = this.applier;
    let meta: SnapshotMeta | undefined;
    let bytesAtCapture = 0;
    const started = this.host.now();
    try {
      // The point in time: between two applies, with the state machine's promise (if any)
      // holding applies back until it has fixed the image.
      const chunks = await applier.betweenApplies((): SnapshotChunks | Promise<SnapshotChunks> => {
        meta = {
          index: applier.applied,
          term: applier.appliedTerm,
          membership: applier.appliedMembership,
        };
        bytesAtCapture = applier.appliedBytes;
        return (this.sm.snapshot as () => SnapshotChunks | Promise<SnapshotChunks>).call(this.sm);
      });
      const taken = meta as SnapshotMeta;
      const size = await this.write(store, taken, chunks);
      // A snapshot installed from the leader meanwhile is newer: keep it as the latest.
      if (this.latest === null || taken.index > this.latest.index) {
        this.latest = taken;
        this.bytesAtLatest = bytesAtCapture;
      }
      this.backoffMs = FIRST_BACKOFF_MS;
      this.retryAt = 0;
      this.logger.info(
        { index: taken.index, term: taken.term, bytes: size, ms: this.host.now() - started },
        `took a snapshot at ${taken.index} (${size} bytes)`,
      );
      if (this.host.isRunning()) this.host.taken(taken);
      return taken;
    } catch (cause) {
      const error = RaftError.is(cause)
        ? cause
        : new RaftError('UNAVAILABLE', 'taking a snapshot failed', { cause });
      if (!this.host.isRunning()) {
        // The node stopped under it: not a failure of the snapshot.
        this.logger.info(
          { index: meta?.index },
          'a snapshot in progress was abandoned: the node stopped',
        );
        throw error;
      }
      this.retryAt = this.host.now() + this.backoffMs;
      this.backoffMs = Math.min(this.backoffMs * 2, MAX_BACKOFF_MS);
      this.logger.error(
        { err: cause, index: (meta as SnapshotMeta | undefined)?.index },
        'taking a snapshot failed; the previous snapshot and the log are intact',
      );
      this.host.failed(error);
      throw error;
    }
  }

  /** Streams `chunks` into a new snapshot and commits it (paced); aborts it on any failure. */
  private write(store: SnapshotStore, meta: SnapshotMeta, chunks: SnapshotChunks): Promise<number> {
    const pacer = this.host.pacer();
    return writeSnapshot(store, meta, chunks, {
      beforeChunk: async () => {
        const pause = pacer.pause();
        if (pause) await pause;
        if (!this.host.isRunning()) throw new RaftError('SHUTDOWN', 'the node stopped');
      },
    });
  }
}

/** How far the log may be compacted behind a snapshot at `index`. */
export function compactionPoint(index: LogIndex, trailingEntries: number): LogIndex {
  return Math.max(0, index - trailingEntries);
}
