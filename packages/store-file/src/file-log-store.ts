/**
 * The log store of `@raft/store-file`: an append-only, segmented log (see record.ts for the
 * framing and log-recovery.ts for what open() does with what a crash left).
 *
 * ```
 *   append(entries) ─► one buffer for the batch ─► one durable write at the end of the newest
 *                      segment ─► update the in-memory index ─► resolve
 *   truncate(from)  ─► a truncate marker, written durably
 *   compact(upTo)   ─► a compact marker, written durably ─► delete the segments that hold nothing
 *                      live any more, fsync the directory
 *   newest segment ≥ segmentBytes ─► the next write goes to a new segment
 * ```
 *
 * - A durable write is one `write` on a descriptor opened with `O_DSYNC` (the same guarantee
 *   as `write` then `fdatasync`, in one system call and one trip to libuv's thread pool: that
 *   trip is most of what an append costs beyond the disk's own latency), or `write` then
 *   `fdatasync` where the platform has no `O_DSYNC`.
 * - Group commit: the runtime hands every proposal of an event-loop turn to one `append`, so
 *   they share one write and one sync.
 * - Suffix replacement rewrites nothing: the new entries follow the old ones in the file and
 *   replace them in the index (recovery does the same, record by record).
 * - A failed write or fdatasync leaves the store failed: every later call rejects. Retrying an
 *   fsync after an error can report success for data the kernel already dropped (the
 *   PostgreSQL "fsyncgate"), so the node must stop and recover from what is on disk.
 */
import { promises as fsp } from 'node:fs';
import {
  checkLogIndex,
  checkLogRead,
  type LogBounds,
  type LogEntry,
  type Logger,
  type LogIndex,
  type LogStore,
  StorageError,
} from '@raft/core';
import { EntryIndex, segmentTag } from './entry-index.js';
import { asStorageError, CorruptLogError } from './errors.js';
import { fdatasync, fsyncDir, mkdirDurable, readAt, writeAll } from './fs-io.js';
import { recoverLog } from './log-recovery.js';
import {
  encodeEntries,
  encodeMarker,
  parseRecord,
  RECORD_HEADER_BYTES,
  RecordHeader,
  RecordType,
  type RecordTypeCode,
  viewOf,
} from './record.js';
import { closeSegment, createSegment, type Segment } from './segment.js';

/** Counters of what the store did, for benchmarks and dashboards. */
export interface FileLogStoreStats {
  /** Appends that wrote at least one entry. */
  readonly appends: number;
  readonly entriesAppended: number;
  readonly bytesWritten: number;
  /** fdatasync and fsync calls made by the log (records and directory). */
  readonly syncs: number;
  /** Segment files now. */
  readonly segments: number;
}

/** See the module comment. */
export class FileLogStore implements LogStore {
  private index = new EntryIndex();
  private segments: Segment[] = [];
  /** Segment bytes recovery verified, for the read that follows open (dropped after it). */
  private verified = new Map<number, Buffer>();
  private state: 'new' | 'open' | 'closed' = 'new';
  /** The call in flight, if any (calls are never concurrent): close() waits for it. */
  private inFlight: Promise<unknown> | null = null;
  private closing: Promise<void> | null = null;
  private failure: unknown = null;
  private appends = 0;
  private entriesAppended = 0;
  private bytesWritten = 0;
  private syncs = 0;

  /** `onClosed` runs once, when the first close() has settled (the bundle counts its stores). */
  constructor(
    private readonly dir: string,
    private readonly segmentBytes: number,
    private readonly logger: Logger,
    private readonly onClosed: () => void = () => {},
  ) {}

  open(): Promise<LogBounds> {
    return this.track(this.doOpen());
  }

  private async doOpen(): Promise<LogBounds> {
    if (this.state === 'open') return this.bounds();
    if (this.state === 'closed') throw new StorageError('the log store is closed');
    try {
      // The log directory's own entry must survive a power cut: appends are acknowledged in it.
      await mkdirDurable(this.dir, true);
      const recovered = await recoverLog(this.dir, this.logger);
      if (this.closing !== null) {
        // close() came during recovery: what recovery opened is not handed over.
        for (const seg of recovered.segments) await closeSegment(seg).catch(() => {});
        throw new StorageError('the log store was closed while it opened');
      }
      this.index = recovered.index;
      this.segments = recovered.segments;
      this.verified = recovered.verified;
    } catch (err) {
      throw asStorageError(err, `open the log in ${this.dir}`);
    }
    this.state = 'open';
    return this.bounds();
  }

  read(from: LogIndex, to: LogIndex): Promise<LogEntry[]> {
    return this.track(this.doRead(from, to));
  }

  private async doRead(from: LogIndex, to: LogIndex): Promise<LogEntry[]> {
    this.check();
    checkLogRead(from, to, this.index.firstIndex, this.index.lastIndex);
    const out: LogEntry[] = new Array(to - from);
    let i = from;
    try {
      while (i < to) {
        // One read per run of entries that sit back to back in one segment.
        const tag = this.index.segmentOf(i);
        const start = this.index.offsetOf(i);
        let bytes = this.index.lengthOf(i);
        let j = i + 1;
        while (
          j < to &&
          this.index.segmentOf(j) === tag &&
          this.index.offsetOf(j) === start + bytes
        ) {
          bytes += this.index.lengthOf(j);
          j++;
        }
        const segment = this.segment(tag);
        const cached = this.verified.get(segment.seq);
        if (cached !== undefined && start + bytes <= cached.length) {
          decodeRun(
            cached.subarray(start, start + bytes),
            segment.path,
            start,
            i,
            j,
            out,
            from,
            false,
          );
        } else {
          const buf = await readAt(segment.fd, start, bytes);
          decodeRun(buf, segment.path, start, i, j, out, from, true);
        }
        i = j;
      }
    } catch (err) {
      throw asStorageError(err, `read [${from}, ${to})`);
    }
    // The node reads its log once, right after open; later reads are rare and small.
    this.verified.clear();
    return out;
  }

  append(entries: readonly LogEntry[]): Promise<void> {
    return this.track(this.doAppend(entries));
  }

  private async doAppend(entries: readonly LogEntry[]): Promise<void> {
    this.check();
    const head = entries[0];
    if (head === undefined) return;
    const first = this.index.firstIndex;
    const last = this.index.lastIndex;
    if (head.index > last + 1) {
      throw new StorageError(`append at ${head.index} would leave a gap after ${last}`);
    }
    if (!(head.index >= first)) {
      throw new StorageError(`append at ${head.index} is before the first index ${first}`);
    }
    // Recovery reads back only integer indexes and terms: anything else, once acknowledged,
    // would be dropped as a torn tail at the next open, or make the log refuse to open.
    if (!Number.isSafeInteger(head.index)) {
      throw new StorageError(`append at ${head.index}: an index must be an integer`);
    }
    for (let k = 0; k < entries.length; k++) {
      const e = entries[k] as LogEntry;
      if (e.index !== head.index + k) {
        throw new StorageError(
          `append of non-contiguous entries: ${e.index} after ${head.index + k - 1}`,
        );
      }
      if (!Number.isSafeInteger(e.term)) {
        throw new StorageError(`append of entry ${e.index}: its term ${e.term} is not an integer`);
      }
    }
    const segment = await this.target('append');
    const tag = segmentTag(segment.seq);
    let buf: Buffer;
    try {
      buf = encodeEntries(entries, segment.size);
    } catch (err) {
      throw new StorageError(`append at ${head.index}: ${String(err)}`, { cause: err });
    }
    await this.writeDurably(segment, buf, 'append');
    let at = segment.size - buf.length;
    for (const e of entries) {
      const length = RECORD_HEADER_BYTES + e.data.length;
      this.index.put(e.index, tag, at, length);
      at += length;
    }
    this.appends++;
    this.entriesAppended += entries.length;
  }

  compact(upTo: LogIndex): Promise<void> {
    return this.track(this.doCompact(upTo));
  }

  private async doCompact(upTo: LogIndex): Promise<void> {
    this.check();
    checkLogIndex('compact', upTo);
    if (upTo < this.index.firstIndex) return;
    await this.writeMarker(RecordType.compact, upTo);
    this.index.compactTo(upTo);
    // Segments older than the one holding the new first entry hold nothing live (entry-index.ts).
    const keepFrom =
      this.index.lastIndex >= this.index.firstIndex
        ? this.segment(this.index.segmentOf(this.index.firstIndex)).seq
        : this.newest().seq;
    const doomed = this.segments.filter((s) => s.seq < keepFrom);
    if (doomed.length === 0) return;
    try {
      for (const s of doomed) {
        await closeSegment(s);
        await fsp.rm(s.path, { force: true });
      }
      this.segments = this.segments.filter((s) => s.seq >= keepFrom);
      for (const s of doomed) this.verified.delete(s.seq);
      await fsyncDir(this.dir);
      this.syncs++;
    } catch (err) {
      this.failure = err;
      throw asStorageError(err, 'delete compacted segments');
    }
  }

  truncate(from: LogIndex): Promise<void> {
    return this.track(this.doTruncate(from));
  }

  private async doTruncate(from: LogIndex): Promise<void> {
    this.check();
    checkLogIndex('truncate', from);
    if (from > this.index.lastIndex) return;
    await this.writeMarker(RecordType.truncate, from);
    this.index.truncateFrom(from);
  }

  /**
   * Closes the segments once the call in flight (if any) has settled, and returns the same
   * promise when called again. The runtime stops a node after a bounded wait for its storage
   * (a stalled disk), so close() can come while an append is queued in the thread pool: closing
   * the descriptor under it would fail the write, or let it land in whatever file is opened
   * next under the same descriptor number. Until then the bundle keeps the directory locked.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.state = 'closed';
      await this.inFlight?.then(
        () => {},
        () => {},
      );
      const segments = this.segments;
      this.segments = [];
      this.verified.clear();
      let first: unknown = null;
      for (const s of segments) {
        try {
          await closeSegment(s);
        } catch (err) {
          first ??= err;
        }
      }
      if (first !== null) throw asStorageError(first, 'close the log');
    })().finally(() => this.onClosed());
    return this.closing;
  }

  /** Remembers `call` as the one in flight, for close(), until it settles. */
  private track<T>(call: Promise<T>): Promise<T> {
    this.inFlight = call;
    // Forgotten once settled: it would keep the result (a read's entries) reachable.
    const forget = (): void => {
      if (this.inFlight === call) this.inFlight = null;
    };
    call.then(forget, forget);
    return call;
  }

  /** The current bounds (valid once open). */
  bounds(): LogBounds {
    return { firstIndex: this.index.firstIndex, lastIndex: this.index.lastIndex };
  }

  /** What the store has done since it was opened. */
  stats(): FileLogStoreStats {
    return {
      appends: this.appends,
      entriesAppended: this.entriesAppended,
      bytesWritten: this.bytesWritten,
      syncs: this.syncs,
      segments: this.segments.length,
    };
  }

  private async writeMarker(type: RecordTypeCode, index: LogIndex): Promise<void> {
    const what = type === RecordType.compact ? 'compact' : 'truncate';
    const segment = await this.target(what);
    await this.writeDurably(segment, encodeMarker(type, index, segment.size), what);
  }

  /**
   * The segment the next write goes to: the newest, or a new one when it is full. A write is
   * framed only once this is known, because every record carries the offset its write starts
   * at (record.ts).
   */
  private async target(what: string): Promise<Segment> {
    const segment = this.newest();
    if (segment.size < this.segmentBytes) return segment;
    try {
      return await this.roll();
    } catch (err) {
      this.failure = err;
      throw asStorageError(err, what);
    }
  }

  /** Appends `buf` durably at the end of `segment` (the newest, from {@link target}). */
  private async writeDurably(segment: Segment, buf: Buffer, what: string): Promise<void> {
    try {
      await writeAll(segment.fd, buf, segment.size);
      segment.size += buf.length;
      this.bytesWritten += buf.length;
      if (!segment.dsync) await fdatasync(segment.fd);
      this.syncs++;
    } catch (err) {
      this.failure = err;
      throw asStorageError(err, what);
    }
  }

  /** Starts a new segment from the current bounds; the old newest one stays open for reads. */
  private async roll(): Promise<Segment> {
    const seq = this.newest().seq + 1;
    const segment = await createSegment(this.dir, seq, this.index.firstIndex, this.index.lastIndex);
    this.syncs += 2;
    this.segments.push(segment);
    return segment;
  }

  private newest(): Segment {
    return this.segments[this.segments.length - 1] as Segment;
  }

  /** The open segment the index tags `tag` ({@link segmentTag}). */
  private segment(tag: number): Segment {
    // Few segments are live at once (compaction deletes the old ones): a scan from the end.
    for (let k = this.segments.length - 1; k >= 0; k--) {
      const s = this.segments[k] as Segment;
      if (segmentTag(s.seq) === tag) return s;
    }
    throw new StorageError(`no open segment has the tag ${tag}`);
  }

  private check(): void {
    if (this.state !== 'open') {
      throw new StorageError(
        this.state === 'closed' ? 'the log store is closed' : 'the log store is not open',
      );
    }
    if (this.failure !== null) {
      throw new StorageError('the log store failed earlier and must be reopened', {
        cause: this.failure,
      });
    }
  }
}

/** Decodes the records of entries `[from, to)` that `buf` holds (read at `offset` of `path`). */
function decodeRun(
  buf: Buffer,
  path: string,
  offset: number,
  from: number,
  to: number,
  out: LogEntry[],
  base: number,
  verify: boolean,
): void {
  let at = 0;
  const r = new RecordHeader();
  const view = viewOf(buf);
  for (let i = from; i < to; i++) {
    const bad = parseRecord(buf, view, at, buf.length, r, verify);
    if (bad !== null || r.type !== RecordType.entry || r.index !== i) {
      throw new CorruptLogError(
        path,
        offset + at,
        bad ?? `expected entry ${i}, found a record for ${r.index}`,
      );
    }
    const start = at + RECORD_HEADER_BYTES;
    out[i - base] = {
      index: r.index,
      term: r.term,
      kind: r.kind,
      data: new Uint8Array(buf.buffer, buf.byteOffset + start, r.dataLength),
    };
    at = start + r.dataLength;
  }
}
