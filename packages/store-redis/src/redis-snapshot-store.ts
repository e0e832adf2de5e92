/**
 * The SnapshotStore of a prefix.
 *
 * - A sink gets an id (registered in `P snap:pending` by the same script, so a crash leaves
 *   nothing unaccounted for), buffers what it is given into chunks of `chunkBytes` and stores
 *   each full chunk as the string `P snap:<id>:<n>`; a whole chunk found inside one `write()` is
 *   sent straight from the caller's buffer, the rest is copied (the caller may reuse it).
 * - `commit()` stores the last chunk, then one script checks that every chunk arrived, writes
 *   the snapshot's hash and adds it to the `P snaps` sorted set (score: index; member: commit
 *   sequence then id, so of two with one index the later commit sorts last): the snapshot
 *   becomes visible to `open()` in that one step. The same script moves the oldest ones beyond
 *   `retain` out of the sorted set into `P snap:doomed`.
 * - Pruning defers deletion while a source reads: a doomed snapshot's keys are deleted once no
 *   source of this process reads it (and no `open()` is between its script and registering its
 *   source). Only the lock holder's process can have sources, so a new holder deletes every
 *   doomed snapshot, and every pending one (uncommitted leftovers), when it opens the prefix.
 *   Deferring costs nothing while nobody reads, where copy-on-prune would copy every pruned
 *   snapshot just in case.
 * - `close()` is a restart of the process, not the end of the storage (as for the memory
 *   store): sinks and sources opened so far refuse calls (except `abort()` and a source's
 *   `close()`), and later `create()` and `open()` calls work while the prefix stays open.
 */
import type {
  Membership,
  SnapshotMeta,
  SnapshotSink,
  SnapshotSource,
  SnapshotStore,
} from '@raft/core';
import { RaftError, StorageError, snapshotReadLength } from '@raft/core';
import { chunkKey, snapshotKey } from './key-layout.js';
import {
  SNAPSHOT_CHUNK,
  SNAPSHOT_COMMIT,
  SNAPSHOT_CREATE,
  SNAPSHOT_DELETE,
  SNAPSHOT_LATEST,
} from './lua-scripts.js';
import type { RedisLink } from './redis-link.js';
import { messageOf } from './redis-link.js';
import type { RedisStoreTuning } from './tuning.js';

/** A committed snapshot as its hash describes it. */
interface StoredSnapshot {
  readonly id: number;
  readonly meta: SnapshotMeta;
  readonly size: number;
  readonly chunkBytes: number;
  readonly chunks: number;
}

/** The snapshot store of one prefix (see the module comment). */
export class RedisSnapshotStore implements SnapshotStore {
  /** Bumped by `close()`: sinks and sources of an earlier epoch are dead. */
  private epoch = 0;
  /** Open sources of the current epoch, per snapshot id. */
  private readonly readers = new Map<number, number>();
  /** Pruned snapshots whose keys are still to delete (mirrors `P snap:doomed`). */
  private readonly doomed = new Set<number>();
  /** `open()` calls between their script and registering their source. */
  private opening = 0;
  private deleting: Promise<void> | null = null;
  private deleteAgain = false;
  private stopped = false;

  constructor(
    private readonly link: RedisLink,
    private readonly retain: number,
    private readonly chunkBytes: number,
    private readonly tuning: RedisStoreTuning,
  ) {}

  /**
   * Deletes what a previous holder of the prefix left: snapshots never committed and pruned
   * ones never deleted. Called once, when the prefix is opened.
   */
  async removeLeftovers(): Promise<void> {
    const { keys } = this.link;
    const what = 'removing snapshot leftovers';
    const [pending, doomed] = await Promise.all([
      this.link.call(what, 'HKEYS', [keys.snapPending]),
      this.link.call(what, 'SMEMBERS', [keys.snapDoomed]),
    ]);
    const ids = [...asStrings(pending), ...asStrings(doomed)].map(Number);
    if (ids.length > 0) {
      this.link.logger.info(
        { prefix: keys.prefix, snapshots: ids.length },
        'deleting snapshots left uncommitted or undeleted by the previous holder of the prefix',
      );
    }
    for (const id of ids) await this.deleteSnapshot(what, id);
  }

  async create(meta: SnapshotMeta): Promise<SnapshotSink> {
    checkMeta(meta);
    const what = `create({ index: ${meta.index} })`;
    const { keys, holder } = this.link;
    const id = await this.link.script(
      what,
      SNAPSHOT_CREATE,
      [keys.lock, keys.snapCounter, keys.snapPending],
      [holder],
    );
    if (!Number.isSafeInteger(id)) {
      throw new StorageError(`${what}: unexpected reply from Redis: ${String(id)}`);
    }
    return new RedisSnapshotSink(this, this.link, id as number, copyMeta(meta), this.epoch);
  }

  async open(): Promise<SnapshotSource | null> {
    const { keys } = this.link;
    this.opening++;
    try {
      const reply = await this.link.script(
        'open()',
        SNAPSHOT_LATEST,
        [keys.snaps],
        [keys.snapBase],
      );
      if (reply === null) return null;
      const snapshot = parseStored(reply);
      this.readers.set(snapshot.id, (this.readers.get(snapshot.id) ?? 0) + 1);
      return new RedisSnapshotSource(this, this.link, snapshot, this.epoch);
    } finally {
      this.opening--;
      this.scheduleDeletion();
    }
  }

  async close(): Promise<void> {
    this.epoch++;
    // Sources of the old epoch can no longer read: nothing they held needs keeping.
    this.readers.clear();
    this.scheduleDeletion();
    this.link.storeClosed('snapshot');
  }

  /**
   * Stops deleting (the prefix is being closed) and waits for the step in progress: what is
   * left stays doomed and is deleted by the next holder when it opens.
   */
  async shutdown(): Promise<void> {
    this.stopped = true;
    this.epoch++;
    await this.deleting;
  }

  // ------------------------------------------------------------ for sinks and sources

  /** Whether handles created in `epoch` may still be used. */
  isCurrent(epoch: number): boolean {
    return epoch === this.epoch && !this.stopped;
  }

  get snapshotChunkBytes(): number {
    return this.chunkBytes;
  }

  get retention(): number {
    return this.retain;
  }

  /** A commit pruned these snapshots out of the sorted set. */
  pruned(ids: readonly number[]): void {
    for (const id of ids) this.doomed.add(id);
    this.scheduleDeletion();
  }

  /** A source of `epoch` closed. */
  released(id: number, epoch: number): void {
    if (epoch !== this.epoch) return;
    const left = (this.readers.get(id) ?? 1) - 1;
    if (left > 0) this.readers.set(id, left);
    else this.readers.delete(id);
    this.scheduleDeletion();
  }

  /** Deletes every key of a pending or doomed snapshot, in bounded steps. */
  async deleteSnapshot(what: string, id: number): Promise<void> {
    const { keys, holder } = this.link;
    for (;;) {
      const left = await this.link.script(
        what,
        SNAPSHOT_DELETE,
        [keys.lock, keys.snapPending, keys.snapDoomed],
        [holder, id, keys.snapBase, this.tuning.deleteChunkBudget],
      );
      if (left === 0) return;
      if (!(typeof left === 'number' && left > 0)) {
        throw new StorageError(`${what}: unexpected reply from Redis: ${String(left)}`);
      }
    }
  }

  /** Starts deleting the doomed snapshots nobody reads, unless a run is under way. */
  private scheduleDeletion(): void {
    if (this.doomed.size === 0) return;
    if (this.deleting !== null) {
      this.deleteAgain = true;
      return;
    }
    this.deleting = this.deleteUnread().finally(() => {
      this.deleting = null;
      if (this.deleteAgain) {
        this.deleteAgain = false;
        this.scheduleDeletion();
      }
    });
  }

  private async deleteUnread(): Promise<void> {
    for (;;) {
      // An open() in flight may be about to return any snapshot it saw: wait for it (it
      // schedules this again when it is done).
      if (this.stopped || this.opening > 0 || !this.link.usable) return;
      let next: number | undefined;
      for (const id of this.doomed) {
        if (!this.readers.has(id)) {
          next = id;
          break;
        }
      }
      if (next === undefined) return;
      try {
        await this.deleteSnapshot(`deleting pruned snapshot ${next}`, next);
        this.doomed.delete(next);
      } catch (err) {
        // It stays doomed; the next commit, source close or open of the prefix retries.
        this.link.logger.warn(
          { prefix: this.link.keys.prefix, snapshot: next, err: messageOf(err) },
          'deleting a pruned snapshot failed',
        );
        return;
      }
    }
  }
}

type SinkState = 'open' | 'committed' | 'aborted' | 'failed';

class RedisSnapshotSink implements SnapshotSink {
  private state: SinkState = 'open';
  /** The chunk being filled, allocated when needed and handed over whole when full. */
  private buffer: Buffer | null = null;
  private fill = 0;
  /** Chunks sent so far (the next one's number). */
  private chunks = 0;
  private size = 0;
  private readonly chunkBytes: number;

  constructor(
    private readonly store: RedisSnapshotStore,
    private readonly link: RedisLink,
    private readonly id: number,
    private readonly meta: SnapshotMeta,
    private readonly epoch: number,
  ) {
    this.chunkBytes = store.snapshotChunkBytes;
  }

  async write(chunk: Uint8Array): Promise<void> {
    this.check('write()');
    if (!(chunk instanceof Uint8Array)) throw new StorageError('write() needs a Uint8Array chunk');
    if (chunk.length === 0) return;
    const size = this.chunkBytes;
    const sends: Promise<unknown>[] = [];
    let at = 0;
    while (at < chunk.length) {
      if (this.fill === 0 && chunk.length - at >= size) {
        // A whole chunk: sent from the caller's bytes, which stay untouched until write()
        // resolves, that is until Redis has them.
        sends.push(this.send(asBuffer(chunk.subarray(at, at + size))));
        at += size;
        continue;
      }
      this.buffer ??= Buffer.allocUnsafe(size);
      const take = Math.min(size - this.fill, chunk.length - at);
      this.buffer.set(chunk.subarray(at, at + take), this.fill);
      this.fill += take;
      at += take;
      if (this.fill === size) {
        // Handed over, never reused: the command may still reference it.
        sends.push(this.send(this.buffer));
        this.buffer = null;
        this.fill = 0;
      }
    }
    this.size += chunk.length;
    await this.settle(sends);
  }

  async commit(): Promise<void> {
    this.check('commit()');
    const sends: Promise<unknown>[] = [];
    if (this.buffer !== null && this.fill > 0) {
      sends.push(this.send(this.buffer.subarray(0, this.fill)));
    }
    this.buffer = null;
    this.fill = 0;
    await this.settle(sends);
    const { keys, holder } = this.link;
    const what = `commit() of snapshot ${this.meta.index}`;
    let pruned: unknown;
    try {
      pruned = await this.link.script(
        what,
        SNAPSHOT_COMMIT,
        [
          keys.lock,
          keys.snapPending,
          keys.snapCounter,
          keys.snaps,
          keys.snapDoomed,
          snapshotKey(keys, this.id),
        ],
        [
          holder,
          this.id,
          String(this.meta.index),
          JSON.stringify(this.meta),
          this.size,
          this.chunkBytes,
          this.chunks,
          this.store.retention,
        ],
      );
    } catch (err) {
      this.state = 'failed';
      throw err;
    }
    this.state = 'committed';
    this.store.pruned(Array.isArray(pruned) ? pruned.filter(Number.isSafeInteger) : []);
  }

  async abort(): Promise<void> {
    if (this.state === 'committed' || this.state === 'aborted') return;
    this.state = 'aborted';
    this.buffer = null;
    // Without a connection, the next holder's open deletes it (it is still pending).
    if (!this.link.usable) return;
    // After a failed commit() the snapshot may be committed all the same (the reply was lost or
    // late): the delete script then leaves it alone, as a crash right after the commit would.
    try {
      await this.store.deleteSnapshot(`abort() of snapshot ${this.meta.index}`, this.id);
    } catch (err) {
      this.link.logger.warn(
        { prefix: this.link.keys.prefix, snapshot: this.id, err: messageOf(err) },
        'abort(): deleting the snapshot failed; the next open of the prefix deletes it',
      );
    }
  }

  private send(bytes: Buffer): Promise<unknown> {
    const n = this.chunks++;
    const { keys, holder } = this.link;
    return this.link.script(
      `write() of snapshot ${this.meta.index}`,
      SNAPSHOT_CHUNK,
      [keys.lock, keys.snapPending, chunkKey(keys, this.id, n)],
      [holder, this.id, n, bytes],
    );
  }

  private async settle(sends: readonly Promise<unknown>[]): Promise<void> {
    try {
      await Promise.all(sends);
    } catch (err) {
      this.state = 'failed';
      this.buffer = null;
      throw err;
    }
  }

  private check(what: string): void {
    if (this.state !== 'open') {
      throw new StorageError(`${what} on a snapshot sink that ${describeSinkState(this.state)}`);
    }
    if (!this.store.isCurrent(this.epoch)) {
      throw new StorageError(`${what} on a snapshot sink of a closed store`);
    }
    this.link.check(what);
  }
}

function describeSinkState(state: SinkState): string {
  switch (state) {
    case 'committed':
      return 'was already committed';
    case 'aborted':
      return 'was aborted';
    default:
      return 'failed earlier';
  }
}

class RedisSnapshotSource implements SnapshotSource {
  readonly meta: SnapshotMeta;
  readonly size: number;
  private closed = false;

  constructor(
    private readonly store: RedisSnapshotStore,
    private readonly link: RedisLink,
    private readonly snapshot: StoredSnapshot,
    private readonly epoch: number,
  ) {
    this.meta = copyMeta(snapshot.meta);
    this.size = snapshot.size;
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    if (this.closed) throw new StorageError('read() on a closed snapshot source');
    if (!this.store.isCurrent(this.epoch)) {
      throw new StorageError('read() on a snapshot source of a closed store');
    }
    const { size, chunkBytes, id } = this.snapshot;
    const end = offset + snapshotReadLength(offset, length, size);
    if (end === offset) return new Uint8Array(0);
    const what = `read(${offset}, ${length}) of snapshot ${this.meta.index}`;
    const keys = this.link.keys;
    const pieces: Promise<unknown>[] = [];
    const expected: number[] = [];
    for (let n = Math.floor(offset / chunkBytes); n * chunkBytes < end; n++) {
      const start = Math.max(offset, n * chunkBytes) - n * chunkBytes;
      const stop = Math.min(end, (n + 1) * chunkBytes) - n * chunkBytes;
      expected.push(stop - start);
      pieces.push(this.link.callBuffer(what, 'GETRANGE', [chunkKey(keys, id, n), start, stop - 1]));
    }
    const got = await Promise.all(pieces);
    for (const [i, piece] of got.entries()) {
      if (!Buffer.isBuffer(piece) || piece.length !== expected[i]) {
        throw new StorageError(
          `${what}: chunk ${Math.floor(offset / chunkBytes) + i} of snapshot ${id} is missing or short in Redis`,
        );
      }
    }
    if (got.length === 1) {
      const piece = got[0] as Buffer;
      // A plain Uint8Array view of the reply, as a Buffer would not compare equal to one.
      return new Uint8Array(piece.buffer, piece.byteOffset, piece.length);
    }
    const out = new Uint8Array(end - offset);
    let at = 0;
    for (const piece of got as Buffer[]) {
      out.set(piece, at);
      at += piece.length;
    }
    return out;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.store.released(this.snapshot.id, this.epoch);
  }
}

/** A view of `bytes` as a Buffer (ioredis sends only Buffers as binary), without a copy. */
function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes)
    ? bytes
    : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function asStrings(reply: unknown): string[] {
  return Array.isArray(reply) ? reply.map(String) : [];
}

function checkMeta(meta: SnapshotMeta): void {
  if (
    typeof meta !== 'object' ||
    meta === null ||
    !(Number.isSafeInteger(meta.index) && meta.index >= 0) ||
    !(Number.isSafeInteger(meta.term) && meta.term >= 0)
  ) {
    throw new RaftError(
      'INVALID_ARGUMENT',
      `snapshot meta needs a non-negative integer index and term, got index ${meta?.index}, term ${meta?.term}`,
    );
  }
  if (!isMembership(meta.membership)) {
    throw new RaftError(
      'INVALID_ARGUMENT',
      'snapshot meta needs a membership of members { id, address, voter }',
    );
  }
}

function isMembership(value: unknown): value is Membership {
  const members = (value as { members?: unknown } | null)?.members;
  return (
    Array.isArray(members) &&
    members.every(
      (m: { id?: unknown; address?: unknown; voter?: unknown } | null) =>
        typeof m?.id === 'string' && typeof m.address === 'string' && typeof m.voter === 'boolean',
    )
  );
}

function copyMeta(meta: SnapshotMeta): SnapshotMeta {
  return {
    index: meta.index,
    term: meta.term,
    membership: {
      members: meta.membership.members.map((m) => ({
        id: m.id,
        address: m.address,
        voter: m.voter,
      })),
    },
  };
}

/** The `{ id, meta, size, chunkBytes, chunks }` reply of the latest-snapshot script. */
function parseStored(reply: unknown): StoredSnapshot {
  const [id, metaJson, size, chunkBytes, chunks] = Array.isArray(reply) ? (reply as unknown[]) : [];
  const numbers = [id, size, chunkBytes, chunks].map(Number);
  let meta: unknown;
  try {
    meta = typeof metaJson === 'string' ? JSON.parse(metaJson) : undefined;
  } catch {
    meta = undefined;
  }
  const m = meta as SnapshotMeta | undefined;
  if (
    !numbers.every((n) => Number.isSafeInteger(n) && n >= 0) ||
    m === undefined ||
    !(Number.isSafeInteger(m.index) && Number.isSafeInteger(m.term)) ||
    !isMembership(m.membership) ||
    (numbers[2] as number) < 1 ||
    numbers[3] !== Math.ceil((numbers[1] as number) / (numbers[2] as number))
  ) {
    throw new StorageError(
      `open(): the latest snapshot's record in Redis is corrupt (id ${String(id)}, size ${String(size)})`,
    );
  }
  const [sid, ssize, schunkBytes, schunks] = numbers as [number, number, number, number];
  return { id: sid, meta: copyMeta(m), size: ssize, chunkBytes: schunkBytes, chunks: schunks };
}
