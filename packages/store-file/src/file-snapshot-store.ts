/**
 * The snapshot store of `@raft/store-file`: one directory per snapshot under `snapshots/`.
 *
 * ```
 *   create(meta) ─► snapshots/.tmp-<n>/data, written as chunks arrive (CRC-32 kept running)
 *   commit()     ─► fdatasync data ─► meta.json (meta, size, crc) fdatasynced ─► fsync the
 *                   temp directory ─► rename to snap-<index>-<seq> ─► fsync snapshots/
 *                   ─► delete committed snapshots beyond the newest `retain`
 *   abort()      ─► delete the temp directory
 *   open()       ─► the committed snapshot with the highest (index, seq); its data is
 *                   checksummed as it is read front to back, and a mismatch fails the read
 *                   that reaches the end
 * ```
 *
 * `seq` is given at commit, so of two snapshots with the same index the one committed last
 * wins. A source keeps its file descriptor: a snapshot pruned while a transfer reads it stays
 * readable (POSIX keeps an unlinked file alive while it is open) until the source is closed.
 * Temporary directories a crash left behind are deleted when the store opens.
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import {
  type Membership,
  type SnapshotMeta,
  type SnapshotSink,
  type SnapshotSource,
  type SnapshotStore,
  StorageError,
  snapshotReadLength,
} from '@raft/core';
import { crc32 } from './crc32.js';
import { asStorageError, CorruptLogError } from './errors.js';
import {
  closeFd,
  fdatasync,
  fileSize,
  fsyncDir,
  isErrno,
  mkdirDurable,
  openFd,
  readAt,
  writeAll,
} from './fs-io.js';

const COMMITTED = /^snap-(\d{20})-(\d{10})$/;
const META_FILE = 'meta.json';
const DATA_FILE = 'data';

interface MetaFile {
  readonly index: number;
  readonly term: number;
  readonly membership: Membership;
  readonly size: number;
  readonly crc32: number;
}

/** See the module comment. */
export class FileSnapshotStore implements SnapshotStore {
  private closed = false;
  private ready: Promise<void> | null = null;
  private nextTmp = 0;
  private nextSeq = 1;
  /** Sinks' writes and commits not settled yet (close() waits for them). */
  private readonly inFlight = new Set<Promise<unknown>>();
  private closing: Promise<void> | null = null;

  /** `onClosed` runs once, when the first close() has settled (the bundle counts its stores). */
  constructor(
    private readonly dir: string,
    private readonly retain: number,
    private readonly onClosed: () => void = () => {},
  ) {}

  async create(meta: SnapshotMeta): Promise<SnapshotSink> {
    await this.prepare();
    const tmp = join(this.dir, `.tmp-${process.pid}-${this.nextTmp++}`);
    try {
      await fsp.mkdir(tmp);
      const fd = await openFd(join(tmp, DATA_FILE), 'w');
      return new FileSnapshotSink(this, tmp, fd, meta);
    } catch (err) {
      await fsp.rm(tmp, { recursive: true, force: true }).catch(() => {});
      throw asStorageError(err, `create a snapshot in ${this.dir}`);
    }
  }

  async open(): Promise<SnapshotSource | null> {
    await this.prepare();
    try {
      // A commit may prune the snapshot picked here before it is opened (a transfer to a
      // follower opening the latest one as the node commits its next): then a newer one exists,
      // so look again. The bound is only against a store that commits without pause.
      for (let attempt = 0; ; attempt++) {
        const latest = (await this.committed())[0];
        if (latest === undefined) return null;
        const source = await this.openCommitted(latest.name);
        if (source !== null) return source;
        if (attempt >= 100) {
          throw new StorageError('every snapshot opened was pruned before it could be read');
        }
      }
    } catch (err) {
      throw asStorageError(err, `open the latest snapshot in ${this.dir}`);
    }
  }

  /**
   * Refuses new calls at once, and resolves once the sinks' writes and commits in flight have
   * settled: the bundle releases the directory's lock after this, and a commit still renaming
   * and pruning then would write into a directory another process may hold (the runtime stops
   * after a bounded wait, so a stalled disk can leave one running).
   */
  close(): Promise<void> {
    this.closed = true;
    this.closing ??= Promise.allSettled([...this.inFlight]).then(() => this.onClosed());
    return this.closing;
  }

  /** Called by a sink: remembers its write or commit until it settles, for close(). */
  doTrack<T>(call: Promise<T>): Promise<T> {
    this.inFlight.add(call);
    const forget = (): void => {
      this.inFlight.delete(call);
    };
    call.then(forget, forget);
    return call;
  }

  /** Called by a sink: makes `tmp` the newest committed snapshot, then prunes. */
  async doCommit(tmp: string): Promise<void> {
    this.check();
    await fsyncDir(tmp);
    const seq = this.nextSeq++;
    const meta = await readMeta(join(tmp, META_FILE));
    if (meta === null)
      throw new CorruptLogError(join(tmp, META_FILE), 0, 'the snapshot has no metadata');
    const name = `snap-${String(meta.index).padStart(20, '0')}-${String(seq).padStart(10, '0')}`;
    await fsp.rename(tmp, join(this.dir, name));
    await fsyncDir(this.dir);
    const all = await this.committed();
    for (const old of all.slice(this.retain)) {
      await fsp.rm(join(this.dir, old.name), { recursive: true, force: true });
    }
    if (all.length > this.retain) await fsyncDir(this.dir);
  }

  /**
   * Opens the committed snapshot `name`, or null when it was pruned meanwhile. A file missing
   * from a snapshot that is still listed is damage (CorruptLogError), never a reason to skip it.
   */
  private async openCommitted(name: string): Promise<FileSnapshotSource | null> {
    const path = join(this.dir, name);
    const dataPath = join(path, DATA_FILE);
    const pruned = async (): Promise<boolean> =>
      !(await this.committed()).some((s) => s.name === name);
    let fd: number;
    try {
      // The data first: once its descriptor is open, pruning cannot take the bytes away.
      fd = await openFd(dataPath, 'r');
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) throw err;
      if (await pruned()) return null;
      throw new CorruptLogError(dataPath, 0, 'the snapshot has no data file');
    }
    let source: FileSnapshotSource | null = null;
    try {
      const meta = await readMeta(join(path, META_FILE));
      if (meta === null) {
        if (await pruned()) return null;
        throw new CorruptLogError(join(path, META_FILE), 0, 'the snapshot has no metadata');
      }
      const size = await fileSize(fd);
      if (size !== meta.size) {
        throw new CorruptLogError(
          dataPath,
          Math.min(size, meta.size),
          `the snapshot has ${size} bytes, its metadata says ${meta.size}`,
        );
      }
      source = new FileSnapshotSource(dataPath, fd, meta);
      return source;
    } finally {
      // Every way out but a source closes the descriptor (fstat or a read failing included).
      if (source === null) await closeFd(fd).catch(() => {});
    }
  }

  /** Committed snapshots, newest first (highest index, then highest seq). */
  private async committed(): Promise<{ name: string; index: number; seq: number }[]> {
    const found: { name: string; index: number; seq: number }[] = [];
    for (const name of await fsp.readdir(this.dir)) {
      const m = COMMITTED.exec(name);
      if (m !== null) found.push({ name, index: Number(m[1]), seq: Number(m[2]) });
    }
    return found.sort((a, b) => b.index - a.index || b.seq - a.seq);
  }

  /** Once: creates the directory, deletes what crashed sinks left, finds the next seq. */
  private prepare(): Promise<void> {
    this.check();
    this.ready ??= (async () => {
      try {
        // Committed snapshots are fsynced into this directory: its own entry must be durable too.
        await mkdirDurable(this.dir, true);
        for (const name of await fsp.readdir(this.dir)) {
          if (name.startsWith('.tmp-')) {
            await fsp.rm(join(this.dir, name), { recursive: true, force: true });
          }
        }
        const all = await this.committed();
        this.nextSeq = Math.max(0, ...all.map((s) => s.seq)) + 1;
      } catch (err) {
        this.ready = null;
        throw asStorageError(err, `open the snapshot directory ${this.dir}`);
      }
    })();
    return this.ready;
  }

  check(): void {
    if (this.closed) throw new StorageError('the snapshot store is closed');
  }
}

class FileSnapshotSink implements SnapshotSink {
  private size = 0;
  private crc = 0;
  private state: 'writing' | 'committed' | 'aborted' = 'writing';
  /** abort() was called: no new call starts; the one in flight finishes first. */
  private aborting = false;
  /** The write or commit in flight (never two at once): abort() waits for it. */
  private pending: Promise<unknown> | null = null;

  constructor(
    private readonly store: FileSnapshotStore,
    private readonly tmp: string,
    private fd: number,
    private readonly meta: SnapshotMeta,
  ) {}

  write(chunk: Uint8Array): Promise<void> {
    return this.track(this.doWrite(chunk));
  }

  commit(): Promise<void> {
    return this.track(this.doCommit());
  }

  /**
   * Discards the snapshot once the call in flight has settled: closing the descriptor under a
   * write still queued in the thread pool would fail it, or let it land in whatever file is
   * opened next under the same descriptor number. After a commit that succeeded meanwhile,
   * nothing is discarded (abort after commit is harmless).
   */
  async abort(): Promise<void> {
    if (this.state !== 'writing' || this.aborting) return;
    this.aborting = true;
    await this.pending?.then(
      () => {},
      () => {},
    );
    if (this.state !== 'writing') return;
    this.state = 'aborted';
    await this.discard();
  }

  private track<T>(call: Promise<T>): Promise<T> {
    this.pending = call;
    return this.store.doTrack(call);
  }

  private async doWrite(chunk: Uint8Array): Promise<void> {
    this.writable('write');
    try {
      await writeAll(this.fd, chunk, this.size);
    } catch (err) {
      throw asStorageError(err, `write to the snapshot in ${this.tmp}`);
    }
    this.size += chunk.length;
    this.crc = crc32(chunk, this.crc);
  }

  private async doCommit(): Promise<void> {
    this.writable('commit');
    try {
      await fdatasync(this.fd);
      await closeFd(this.fd);
      this.fd = -1;
      const meta: MetaFile = {
        index: this.meta.index,
        term: this.meta.term,
        membership: this.meta.membership,
        size: this.size,
        crc32: this.crc,
      };
      const metaFd = await openFd(join(this.tmp, META_FILE), 'w');
      try {
        await writeAll(metaFd, Buffer.from(JSON.stringify(meta), 'utf8'), 0);
        await fdatasync(metaFd);
      } finally {
        await closeFd(metaFd);
      }
      await this.store.doCommit(this.tmp);
      this.state = 'committed';
    } catch (err) {
      this.state = 'aborted';
      await this.discard();
      throw asStorageError(err, `commit the snapshot at index ${this.meta.index}`);
    }
  }

  /** Closes the data file and deletes the temporary directory; never rejects. */
  private async discard(): Promise<void> {
    if (this.fd >= 0) await closeFd(this.fd).catch(() => {});
    this.fd = -1;
    await fsp.rm(this.tmp, { recursive: true, force: true }).catch(() => {});
  }

  private writable(what: string): void {
    if (this.state !== 'writing') {
      throw new StorageError(`${what}() on a snapshot sink that is already ${this.state}`);
    }
    if (this.aborting) throw new StorageError(`${what}() on a snapshot sink being aborted`);
    this.store.check();
  }
}

class FileSnapshotSource implements SnapshotSource {
  readonly meta: SnapshotMeta;
  readonly size: number;
  private fd: number;
  /** Bytes checksummed so far, reading front to back. */
  private verified = 0;
  private crc = 0;

  constructor(
    private readonly path: string,
    fd: number,
    private readonly file: MetaFile,
  ) {
    this.fd = fd;
    this.size = file.size;
    this.meta = { index: file.index, term: file.term, membership: file.membership };
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    if (this.fd < 0) throw new StorageError('the snapshot source is closed');
    const n = snapshotReadLength(offset, length, this.size);
    if (n === 0) return new Uint8Array(0);
    let buf: Buffer;
    try {
      buf = await readAt(this.fd, offset, n);
    } catch (err) {
      throw asStorageError(err, `read the snapshot ${this.path}`);
    }
    if (buf.length !== n) {
      throw new CorruptLogError(this.path, offset + buf.length, 'the snapshot file is cut short');
    }
    if (offset === this.verified) {
      this.crc = crc32(buf, this.crc);
      this.verified += n;
      if (this.verified === this.size && this.crc !== this.file.crc32) {
        throw new CorruptLogError(this.path, 0, 'the snapshot fails its checksum');
      }
    }
    return new Uint8Array(buf.buffer, buf.byteOffset, buf.length);
  }

  async close(): Promise<void> {
    if (this.fd < 0) return;
    const fd = this.fd;
    this.fd = -1;
    await closeFd(fd).catch(() => {});
  }
}

/** The snapshot's metadata, or null when the file is missing (the caller knows what that means). */
async function readMeta(path: string): Promise<MetaFile | null> {
  let text: string;
  try {
    text = await fsp.readFile(path, 'utf8');
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return null;
    throw err;
  }
  let v: Partial<MetaFile>;
  try {
    v = JSON.parse(text) as Partial<MetaFile>;
  } catch {
    throw new CorruptLogError(path, 0, 'the snapshot metadata is not JSON');
  }
  if (
    !Number.isSafeInteger(v.index) ||
    !Number.isSafeInteger(v.term) ||
    !Number.isSafeInteger(v.size) ||
    !Number.isInteger(v.crc32) ||
    typeof v.membership !== 'object' ||
    v.membership === null ||
    !Array.isArray(v.membership.members)
  ) {
    throw new CorruptLogError(path, 0, 'the snapshot metadata has invalid fields');
  }
  return v as MetaFile;
}
