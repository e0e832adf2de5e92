/**
 * Conformance cases for {@link SnapshotStore} implementations, checked against the contract in
 * the interface's doc comment: streamed writes that become visible to `open()` only on commit,
 * byte-exact ranged reads, `open()` choosing the highest index, retention that never loses the
 * newest snapshot nor a snapshot still being read, independent sinks, durability across a
 * restart, and how errors are reported. The last case is a property: random sequences of
 * interleaved sinks, opens, reads and reopens against a reference model (snapshot-store-model.ts).
 */
import type { SnapshotMeta, SnapshotSink, SnapshotSource, SnapshotStore } from '@raft/core';
import type { ConformanceCase } from './conformance-case.js';
import {
  MAX_HELD_SOURCES,
  MAX_OPEN_SINKS,
  type ModelSnapshot,
  type ReadSpec,
  resolveRead,
  SnapshotModel,
  type SnapshotOperation,
  snapshotOperations,
} from './snapshot-store-model.js';
import { type PropertySteps, payloadBytes, propertyCase } from './store-property.js';
import type { StoreHarness, StoreHarnessInstance } from './store-session.js';
import { StoreSession, storeCase } from './store-session.js';
import {
  assertEqual,
  concat,
  expectOnlyStorageFailure,
  expectRejection,
  fail,
  formatValue,
  hasCode,
  race,
  settle,
} from './support.js';

/** One fresh, empty durable storage for a snapshot store (see {@link StoreHarnessInstance}). */
export type SnapshotStoreHarnessInstance = StoreHarnessInstance<SnapshotStore>;

/**
 * What an adapter author supplies to run the snapshot store cases: a factory of fresh, empty
 * storages.
 *
 * @example
 * ```ts
 * const harness: SnapshotStoreHarness = {
 *   name: 'file snapshot store',
 *   create: async () => {
 *     const dir = await mkdtemp(join(tmpdir(), 'snap-'));
 *     return {
 *       store: openFileSnapshotStore({ dir }),
 *       reopen: () => openFileSnapshotStore({ dir }),
 *       cleanup: () => rm(dir, { recursive: true }),
 *     };
 *   },
 * };
 * ```
 */
export type SnapshotStoreHarness = StoreHarness<SnapshotStore>;

/** Default size of the pieces a whole-snapshot check reads: not a divisor of any chunk size. */
const READ_PIECE = 97;

/**
 * The snapshot store under test. Sinks and sources the case opens through it are released when
 * the store is closed (sources closed, open sinks aborted), except those the case abandons on
 * purpose (a crash in the middle of a write, calls after the store closed).
 */
class SnapshotStoreSession extends StoreSession<SnapshotStore> {
  private readonly sinks = new Set<SnapshotSink>();
  private readonly sources = new Set<SnapshotSource>();

  async create(meta: SnapshotMeta): Promise<SnapshotSink> {
    const store = this.store;
    const sink = await settle(`create(${describeMeta(meta)})`, this.timeoutMs, () =>
      store.create(meta),
    );
    if (typeof sink !== 'object' || sink === null) {
      fail(`create(${describeMeta(meta)}): expected a sink, got ${formatValue(sink)}`);
    }
    this.sinks.add(sink);
    return sink;
  }

  write(sink: SnapshotSink, chunk: Uint8Array, what = 'write()'): Promise<void> {
    return settle(`${what} of ${chunk.length} bytes`, this.timeoutMs, () => sink.write(chunk));
  }

  async commit(sink: SnapshotSink, what = 'commit()'): Promise<void> {
    await settle(what, this.timeoutMs, () => sink.commit());
    this.sinks.delete(sink);
  }

  async abort(sink: SnapshotSink, what = 'abort()'): Promise<void> {
    await settle(what, this.timeoutMs, () => sink.abort());
    this.sinks.delete(sink);
  }

  /**
   * Stops tracking a sink (left open, uncommitted, as a crash mid-write leaves it) or a source:
   * the store's close and the harness's cleanup deal with it.
   */
  abandon(handle: SnapshotSink | SnapshotSource): void {
    this.sinks.delete(handle as SnapshotSink);
    this.sources.delete(handle as SnapshotSource);
  }

  /** create(meta), one write per chunk, commit(). */
  async writeSnapshot(meta: SnapshotMeta, chunks: readonly Uint8Array[]): Promise<void> {
    const sink = await this.create(meta);
    for (const [i, chunk] of chunks.entries()) {
      await this.write(sink, chunk, `write() of chunk ${i} of snapshot ${meta.index}`);
    }
    await this.commit(sink, `commit() of snapshot ${meta.index}`);
  }

  async open(what = 'open()'): Promise<SnapshotSource | null> {
    const store = this.store;
    const source = await settle(what, this.timeoutMs, () => store.open());
    if (source === null) return null;
    if (typeof source !== 'object' || typeof source.read !== 'function') {
      fail(`${what}: expected a snapshot source or null, got ${formatValue(source)}`);
    }
    this.sources.add(source);
    return source;
  }

  /** Opens and requires a source, checking its meta and size. */
  async openExpecting(meta: SnapshotMeta, size: number, what = 'open()'): Promise<SnapshotSource> {
    const source = await this.open(what);
    if (source === null) fail(`${what}: expected snapshot ${describeMeta(meta)}, got null`);
    assertEqual(source.meta, meta, `${what}: meta`);
    assertEqual(source.size, size, `${what}: size`);
    return source;
  }

  async expectNone(what = 'open()'): Promise<void> {
    const source = await this.open(what);
    if (source !== null) {
      fail(`${what}: expected null (no committed snapshot), got ${describeMeta(source.meta)}`);
    }
  }

  read(source: SnapshotSource, offset: number, length: number): Promise<Uint8Array> {
    return settle(`read(${offset}, ${length})`, this.timeoutMs, () => source.read(offset, length));
  }

  /** Requires read(offset, length) to return exactly `expected`. */
  async expectRead(
    source: SnapshotSource,
    offset: number,
    length: number,
    expected: Uint8Array,
  ): Promise<void> {
    const bytes = await this.read(source, offset, length);
    if (!(bytes instanceof Uint8Array)) {
      fail(`read(${offset}, ${length}): expected a Uint8Array, got ${formatValue(bytes)}`);
    }
    assertEqual(bytes, expected, `read(${offset}, ${length}) of snapshot ${source.meta.index}`);
  }

  /** Requires read(offset, length) to reject with INVALID_ARGUMENT. */
  expectReadRejected(
    source: SnapshotSource,
    offset: number,
    length: number,
    why: string,
  ): Promise<void> {
    return expectRejection(
      `read(${offset}, ${length}) ${why}`,
      this.timeoutMs,
      () => source.read(offset, length),
      "with a RaftError of code 'INVALID_ARGUMENT'",
      hasCode('INVALID_ARGUMENT'),
    );
  }

  /**
   * Requires the source to hold exactly `expected`: read piece by piece from 0 to its size
   * (each piece exactly as long as asked, the last one shorter), then an empty read at the end.
   */
  async expectContent(
    source: SnapshotSource,
    expected: Uint8Array,
    piece = READ_PIECE,
  ): Promise<void> {
    assertEqual(source.size, expected.length, `size of snapshot ${source.meta.index}`);
    for (let offset = 0; offset < expected.length; offset += piece) {
      const end = Math.min(offset + piece, expected.length);
      await this.expectRead(source, offset, piece, expected.subarray(offset, end));
    }
    await this.expectRead(source, expected.length, piece, new Uint8Array(0));
  }

  /** Opens, requires `meta` and `content`, and closes the source. */
  async expectSnapshot(meta: SnapshotMeta, content: Uint8Array, what = 'open()'): Promise<void> {
    const source = await this.openExpecting(meta, content.length, what);
    await this.expectContent(source, content);
    await this.closeSource(source);
  }

  async closeSource(source: SnapshotSource): Promise<void> {
    await settle('SnapshotSource.close()', this.timeoutMs, () => source.close());
    this.sources.delete(source);
  }

  /** Releases what the case left open, then closes the store. */
  override async close(): Promise<void> {
    const sources = [...this.sources];
    const sinks = [...this.sinks];
    this.sources.clear();
    this.sinks.clear();
    for (const source of sources) {
      await settle('SnapshotSource.close() before the store closes', this.timeoutMs, () =>
        source.close(),
      );
    }
    for (const sink of sinks) {
      await settle('abort() of an open sink before the store closes', this.timeoutMs, () =>
        sink.abort(),
      );
    }
    await super.close();
  }

  /** Closes the store (releasing what is open) and reopens the storage through the harness. */
  async restart(): Promise<void> {
    await this.reopen();
    this.needsClose = true;
  }
}

function snapshotCase(
  name: string,
  body: (session: SnapshotStoreSession) => Promise<void>,
): ConformanceCase<SnapshotStoreHarness> {
  return storeCase(
    name,
    (instance, timeoutMs) => new SnapshotStoreSession(instance, timeoutMs, true),
    body,
  );
}

function describeMeta(meta: SnapshotMeta): string {
  return `{ index: ${meta.index}, term: ${meta.term}, ${meta.membership.members.length} members }`;
}

/**
 * Runs one generated sequence against the store and the model: every open() returns the
 * snapshot the model says is the latest, byte-exact at any offset; held sources keep reading
 * their snapshot whatever was committed since; and a final reopen shows the latest again.
 */
async function runSnapshotOperations(
  s: SnapshotStoreSession,
  operations: readonly SnapshotOperation[],
  steps: PropertySteps,
): Promise<void> {
  const model = new SnapshotModel<SnapshotSink, SnapshotSource>();
  for (const op of operations) {
    switch (op.op) {
      case 'create': {
        if (model.sinks.length >= MAX_OPEN_SINKS) {
          steps.begin(`create() skipped: ${MAX_OPEN_SINKS} sinks are open`);
          break;
        }
        const meta = model.meta(op);
        steps.begin(`create(${describeMeta(meta)}) as sink #${model.nextLabel()}`);
        model.created(meta, await s.create(meta));
        break;
      }
      case 'write': {
        const sink = model.sink(op.sink);
        if (sink === undefined) {
          steps.begin('write() skipped: no sink is open');
          break;
        }
        const chunk = payloadBytes(op.chunk);
        const what = `write() to sink #${sink.label}`;
        steps.begin(`${what} of ${chunk.length} bytes${op.chunk.view ? ' (a view)' : ''}`);
        await s.write(sink.handle, chunk, what);
        model.wrote(sink, chunk);
        // The caller may reuse its buffer once write() resolved: a sink that kept it shows.
        chunk.fill(0xee);
        break;
      }
      case 'commit': {
        const sink = model.sink(op.sink);
        if (sink === undefined) {
          steps.begin('commit() skipped: no sink is open');
          break;
        }
        steps.begin(`commit() of sink #${sink.label}, ${describeMeta(sink.meta)}`);
        await s.commit(sink.handle, `commit() of sink #${sink.label}`);
        model.committedSink(sink);
        // commit() makes the snapshot visible to open() at once, unless a higher one hides it.
        await expectLatest(s, model, steps, [], false);
        break;
      }
      case 'abort': {
        const sink = model.sink(op.sink);
        if (sink === undefined) {
          steps.begin('abort() skipped: no sink is open');
          break;
        }
        steps.begin(`abort() of sink #${sink.label}`);
        await s.abort(sink.handle, `abort() of sink #${sink.label}`);
        model.forget(sink);
        break;
      }
      case 'open':
        await expectLatest(s, model, steps, op.reads, op.hold);
        break;
      case 'readHeld': {
        const source = model.source(op.source);
        if (source === undefined) {
          steps.begin('read() of a held source skipped: none is held');
          break;
        }
        const { offset, length } = resolveRead(op.read, source.snapshot.content.length);
        steps.begin(
          `read(${offset}, ${length}) of the source held on sink #${source.snapshot.label}'s snapshot`,
        );
        await expectRead(s, source.handle, source.snapshot, op.read);
        break;
      }
      case 'closeHeld': {
        const source = model.source(op.source);
        if (source === undefined) {
          steps.begin('SnapshotSource.close() skipped: none is held');
          break;
        }
        steps.begin(`close() of the source held on sink #${source.snapshot.label}'s snapshot`);
        await s.closeSource(source.handle);
        model.released(source);
        break;
      }
      case 'reopen': {
        const open = model.sinks.map((sink) => `#${sink.label}`).join(', ') || 'none';
        if (op.crash) {
          steps.begin(`close() with the open sinks left open (a crash: ${open}), reopen`);
          for (const sink of model.sinks) s.abandon(sink.handle);
        } else {
          steps.begin(`close() after aborting the open sinks (${open}), reopen`);
        }
        // The session closes the held sources and aborts the sinks it still tracks.
        await s.restart();
        model.reopened();
        // What a restarted node does first: restore the latest snapshot.
        await expectLatest(s, model, steps, [], false);
        break;
      }
    }
  }
  steps.begin('close(), reopen at the end');
  await s.restart();
  model.reopened();
  await expectLatest(s, model, steps, [], false);
}

/** open() returns the model's latest snapshot (or null), checked whole and by `reads`. */
async function expectLatest(
  s: SnapshotStoreSession,
  model: SnapshotModel<SnapshotSink, SnapshotSource>,
  steps: PropertySteps,
  reads: readonly ReadSpec[],
  hold: boolean,
): Promise<void> {
  const latest = model.latest();
  if (latest === undefined) {
    steps.begin('open(), expecting null: nothing committed');
    await s.expectNone();
    return;
  }
  const size = latest.content.length;
  steps.begin(
    `open(), expecting sink #${latest.label}'s snapshot ${describeMeta(latest.meta)} of ${size} bytes`,
  );
  const source = await s.openExpecting(latest.meta, size);
  await s.expectRead(source, 0, size + 1, latest.content);
  for (const read of reads) await expectRead(s, source, latest, read);
  if (hold && model.sources.length < MAX_HELD_SOURCES) model.held(source, latest);
  else await s.closeSource(source);
}

async function expectRead(
  s: SnapshotStoreSession,
  source: SnapshotSource,
  snapshot: ModelSnapshot,
  read: ReadSpec,
): Promise<void> {
  const size = snapshot.content.length;
  const { offset, length } = resolveRead(read, size);
  if (read.past) {
    await s.expectReadRejected(source, offset, length, `(offset past size ${size})`);
  } else {
    await s.expectRead(source, offset, length, snapshot.content.subarray(offset, offset + length));
  }
}

const MEMBERSHIP = {
  members: [
    { id: 'n1', address: 'n1:7000', voter: true },
    { id: 'n2', address: 'n2:7000', voter: true },
    { id: 'n3', address: 'n3:7000', voter: true },
  ],
};

function meta(index: number, term = 1): SnapshotMeta {
  return { index, term, membership: MEMBERSHIP };
}

/** Bytes that differ for every (seed, position), so a misplaced or stale byte shows. */
function bytes(seed: number, length: number): Uint8Array {
  const data = new Uint8Array(length);
  for (let i = 0; i < length; i++) data[i] = (seed * 53 + i * 29 + (i >>> 8) * 7 + 1) & 0xff;
  return data;
}

/** One chunk per size, each with its own pattern. */
function chunksOf(seed: number, sizes: readonly number[]): Uint8Array[] {
  return sizes.map((size, i) => bytes(seed * 101 + i, size));
}

const cases: ConformanceCase<SnapshotStoreHarness>[] = [
  snapshotCase('open() on an empty store returns null, also after a reopen', async (s) => {
    await s.expectNone();
    await s.restart();
    await s.expectNone('open() after a reopen');
  }),

  snapshotCase('a committed snapshot reads back equal: meta, size and every byte', async (s) => {
    const chunks = chunksOf(1, [100, 1, 37, 0, 256]);
    await s.writeSnapshot(meta(7, 2), chunks);
    await s.expectSnapshot(meta(7, 2), concat(chunks));
    // A second source over the same snapshot reads the same bytes, in one read.
    const source = await s.openExpecting(meta(7, 2), 394, 'a second open()');
    await s.expectRead(source, 0, 394, concat(chunks));
  }),

  snapshotCase(
    'read(offset, length) returns exactly the requested range, across chunk boundaries',
    async (s) => {
      const chunks = chunksOf(2, [10, 10, 1, 30]);
      const all = concat(chunks);
      await s.writeSnapshot(meta(3), chunks);
      const source = await s.openExpecting(meta(3), 51);
      for (const [offset, length] of [
        [0, 1],
        [0, 10],
        [0, 11],
        [9, 2],
        [10, 10],
        [15, 6],
        [19, 3],
        [20, 1],
        [20, 2],
        [5, 40],
        [21, 30],
        [50, 1],
        [0, 51],
      ] as const) {
        await s.expectRead(source, offset, length, all.subarray(offset, offset + length));
      }
    },
  ),

  snapshotCase(
    'read() stops at the end: a shorter result near it, an empty one at offset size',
    async (s) => {
      const chunks = chunksOf(3, [64, 64]);
      const all = concat(chunks);
      await s.writeSnapshot(meta(4), chunks);
      const source = await s.openExpecting(meta(4), 128);
      await s.expectRead(source, 100, 1000, all.subarray(100));
      await s.expectRead(source, 127, 2, all.subarray(127));
      await s.expectRead(source, 0, 129, all);
      await s.expectRead(source, 128, 1, new Uint8Array(0));
      await s.expectRead(source, 128, 4096, new Uint8Array(0));
    },
  ),

  snapshotCase(
    "read() outside [0, size] or with a length that is not a positive integer rejects with a RaftError of code 'INVALID_ARGUMENT'",
    async (s) => {
      const chunks = chunksOf(4, [20, 20]);
      await s.writeSnapshot(meta(5), chunks);
      const source = await s.openExpecting(meta(5), 40);
      await s.expectReadRejected(source, -1, 10, '(offset before 0)');
      await s.expectReadRejected(source, 41, 1, '(offset past size 40)');
      await s.expectReadRejected(source, 1000, 1, '(offset far past size 40)');
      await s.expectReadRejected(source, 0, 0, '(length 0)');
      await s.expectReadRejected(source, 0, -5, '(negative length)');
      await s.expectReadRejected(source, 0, 2.5, '(fractional length)');
      await s.expectReadRejected(source, 1.5, 2, '(fractional offset)');
      await s.expectReadRejected(source, Number.NaN, 2, '(offset NaN)');
      // A rejected read is a caller error, not a storage failure: the source stays usable.
      await s.expectContent(source, concat(chunks));
    },
  ),

  snapshotCase('a snapshot with no bytes round-trips with size 0', async (s) => {
    const sink = await s.create(meta(2));
    await s.commit(sink);
    const source = await s.openExpecting(meta(2), 0);
    await s.expectRead(source, 0, 1, new Uint8Array(0));
    await s.expectReadRejected(source, 1, 1, '(offset past size 0)');
    await s.closeSource(source);
    await s.restart();
    await s.expectSnapshot(meta(2), new Uint8Array(0), 'open() after a reopen');
  }),

  snapshotCase('a committed snapshot survives a reopen', async (s) => {
    const first = chunksOf(5, [300, 200]);
    await s.writeSnapshot(meta(10, 3), first);
    await s.restart();
    await s.expectSnapshot(meta(10, 3), concat(first), 'open() after a reopen');
    // And one committed by the reopened store survives a second reopen.
    const second = chunksOf(6, [50, 50, 50]);
    await s.writeSnapshot(meta(20, 4), second);
    await s.restart();
    await s.expectSnapshot(meta(20, 4), concat(second), 'open() after a second reopen');
  }),

  snapshotCase(
    'an uncommitted snapshot is invisible to open(), also after a reopen (a crash mid-write)',
    async (s) => {
      const sink = await s.create(meta(9));
      await s.write(sink, bytes(7, 100));
      await s.expectNone('open() while the only snapshot is being written');
      s.abandon(sink);
      await s.restart();
      await s.expectNone('open() after a reopen with the snapshot never committed');
      // With a committed snapshot underneath, an abandoned newer one does not hide it either.
      const committed = chunksOf(8, [40]);
      await s.writeSnapshot(meta(5), committed);
      const newer = await s.create(meta(12));
      await s.write(newer, bytes(9, 80));
      await s.expectSnapshot(meta(5), concat(committed), 'open() while a newer one is written');
      s.abandon(newer);
      await s.restart();
      await s.expectSnapshot(meta(5), concat(committed), 'open() after a reopen');
    },
  ),

  snapshotCase('an aborted snapshot is invisible to open(), also after a reopen', async (s) => {
    const committed = chunksOf(10, [64, 3]);
    await s.writeSnapshot(meta(5), committed);
    const sink = await s.create(meta(9));
    await s.write(sink, bytes(11, 100));
    await s.write(sink, bytes(12, 100));
    await s.abort(sink);
    await s.abort(sink, 'a second abort()');
    await s.expectSnapshot(meta(5), concat(committed));
    await s.restart();
    await s.expectSnapshot(meta(5), concat(committed), 'open() after a reopen');
    // On an empty store too: an aborted first snapshot leaves nothing.
    const lone = await s.create(meta(20));
    await s.abort(lone, 'abort() before any write');
    await s.expectSnapshot(meta(5), concat(committed), 'open() after aborting an empty sink');
  }),

  snapshotCase('abort() after commit() is harmless: the snapshot stays committed', async (s) => {
    const chunks = chunksOf(13, [128]);
    const sink = await s.create(meta(6));
    await s.write(sink, chunks[0] as Uint8Array);
    await s.commit(sink);
    await s.abort(sink, 'abort() after commit()');
    await s.abort(sink, 'a second abort() after commit()');
    await s.expectSnapshot(meta(6), concat(chunks));
    await s.restart();
    await s.expectSnapshot(meta(6), concat(chunks), 'open() after a reopen');
  }),

  snapshotCase(
    'open() returns the highest index, even when a lower one was committed later',
    async (s) => {
      const high = chunksOf(14, [30]);
      await s.writeSnapshot(meta(10, 2), high);
      await s.writeSnapshot(meta(7, 2), chunksOf(15, [31]));
      await s.expectSnapshot(meta(10, 2), concat(high));
      await s.restart();
      await s.expectSnapshot(meta(10, 2), concat(high), 'open() after a reopen');
    },
  ),

  snapshotCase(
    'of two snapshots at the same index, open() returns the one committed last',
    async (s) => {
      await s.writeSnapshot(meta(8, 2), chunksOf(16, [50]));
      const last = chunksOf(17, [60]);
      await s.writeSnapshot(meta(8, 3), last);
      await s.expectSnapshot(meta(8, 3), concat(last));
      await s.restart();
      await s.expectSnapshot(meta(8, 3), concat(last), 'open() after a reopen');
    },
  ),

  snapshotCase(
    'retention keeps the newest snapshot by index through many commits, also after a reopen',
    async (s) => {
      for (let index = 1; index <= 6; index++) {
        await s.writeSnapshot(meta(index), chunksOf(20 + index, [25]));
        await s.expectSnapshot(meta(index), concat(chunksOf(20 + index, [25])));
      }
      // Lower indexes committed after the newest must not push it out.
      const newest = chunksOf(40, [33]);
      await s.writeSnapshot(meta(50), newest);
      for (let index = 10; index < 16; index++) {
        await s.writeSnapshot(meta(index), chunksOf(index, [10]));
      }
      await s.expectSnapshot(meta(50), concat(newest));
      await s.restart();
      await s.expectSnapshot(meta(50), concat(newest), 'open() after a reopen');
    },
  ),

  snapshotCase(
    'a source opened before newer commits stays readable after its snapshot is pruned',
    async (s) => {
      const oldChunks = chunksOf(30, [200, 77]);
      await s.writeSnapshot(meta(3), oldChunks);
      const source = await s.openExpecting(meta(3), 277);
      // Enough newer snapshots to push it out of any sensible retention.
      for (let index = 4; index <= 12; index++) {
        await s.writeSnapshot(meta(index), chunksOf(30 + index, [64]));
      }
      await s.expectSnapshot(meta(12), concat(chunksOf(42, [64])), 'open() of the newest');
      assertEqual(source.meta, meta(3), 'meta of the source opened before the new commits');
      await s.expectContent(source, concat(oldChunks));
      await s.closeSource(source);
      await settle('a second SnapshotSource.close()', s.timeoutMs, () => source.close());
    },
  ),

  snapshotCase('two sinks open at once are independent', async (s) => {
    const a = chunksOf(50, [40, 41, 42]);
    const b = chunksOf(51, [13, 14]);
    const c = chunksOf(52, [99]);
    const sinkA = await s.create(meta(4));
    const sinkB = await s.create(meta(6));
    const sinkC = await s.create(meta(9));
    // Interleaved writes, as a follower receiving one snapshot while taking its own.
    await s.write(sinkA, a[0] as Uint8Array, 'write() to sink A');
    await s.write(sinkB, b[0] as Uint8Array, 'write() to sink B');
    await s.write(sinkC, c[0] as Uint8Array, 'write() to sink C');
    await s.write(sinkA, a[1] as Uint8Array, 'write() to sink A');
    await s.write(sinkB, b[1] as Uint8Array, 'write() to sink B');
    await s.write(sinkA, a[2] as Uint8Array, 'write() to sink A');
    await s.abort(sinkC, 'abort() of sink C');
    await s.commit(sinkA, 'commit() of sink A');
    await s.expectSnapshot(meta(4), concat(a), 'open() after committing sink A');
    await s.commit(sinkB, 'commit() of sink B');
    await s.expectSnapshot(meta(6), concat(b), 'open() after committing sink B');
    await s.restart();
    await s.expectSnapshot(meta(6), concat(b), 'open() after a reopen');
  }),

  snapshotCase(
    'a chunk buffer the caller reuses after write() resolves does not change the snapshot',
    async (s) => {
      const buffer = new Uint8Array(64);
      const expected: Uint8Array[] = [];
      const sink = await s.create(meta(11));
      for (let i = 0; i < 5; i++) {
        buffer.set(bytes(60 + i, 64));
        expected.push(buffer.slice());
        await s.write(sink, buffer, `write() of the reused buffer (pass ${i})`);
      }
      buffer.fill(0xee);
      await s.commit(sink);
      buffer.fill(0x11);
      await s.expectSnapshot(meta(11), concat(expected));
      await s.restart();
      await s.expectSnapshot(meta(11), concat(expected), 'open() after a reopen');
    },
  ),

  snapshotCase(
    'a chunk that views part of a larger buffer stores only the viewed bytes',
    async (s) => {
      const backing = bytes(70, 256);
      const views = [backing.subarray(10, 30), backing.subarray(100, 101), backing.subarray(200)];
      const expected = concat(views.map((v) => v.slice()));
      await s.writeSnapshot(meta(13), views);
      await s.expectSnapshot(meta(13), expected);
      await s.restart();
      await s.expectSnapshot(meta(13), expected, 'open() after a reopen');
    },
  ),

  snapshotCase(
    'meta round-trips: index, term and a membership with voters and learners, also after a reopen',
    async (s) => {
      const rich: SnapshotMeta = {
        index: 2 ** 40 + 3,
        term: Number.MAX_SAFE_INTEGER,
        membership: {
          members: [
            { id: 'n1', address: '10.0.0.1:7000', voter: true },
            { id: 'nœud-東京-🚀', address: 'tcp://[::1]:7001', voter: true },
            { id: 'n3', address: '', voter: true },
            { id: 'learner-1', address: '10.0.0.9:7000', voter: false },
            { id: 'learner-2', address: '10.0.0.10:7000', voter: false },
          ],
        },
      };
      const chunks = chunksOf(80, [17]);
      await s.writeSnapshot(rich, chunks);
      await s.expectSnapshot(rich, concat(chunks));
      await s.restart();
      await s.expectSnapshot(rich, concat(chunks), 'open() after a reopen');
    },
  ),

  snapshotCase('a 2 MiB snapshot in 64 KiB chunks round-trips, also after a reopen', async (s) => {
    const chunks = chunksOf(90, new Array<number>(32).fill(64 * 1024));
    const all = concat(chunks);
    await s.writeSnapshot(meta(1000), chunks);
    const source = await s.openExpecting(meta(1000), all.length);
    await s.expectContent(source, all, 100_000);
    await s.closeSource(source);
    await s.restart();
    const reopened = await s.openExpecting(meta(1000), all.length, 'open() after a reopen');
    await s.expectContent(reopened, all, 300_001);
  }),

  snapshotCase(
    'after close(), sinks and sources fail only by rejecting with StorageError, and abort() never rejects',
    async (s) => {
      const committed = chunksOf(100, [50]);
      await s.writeSnapshot(meta(5), committed);
      const source = await s.openExpecting(meta(5), 50);
      const sink = await s.create(meta(9));
      const written = bytes(101, 30);
      await s.write(sink, written);
      s.abandon(sink);
      s.abandon(source);
      await s.close();
      // The contract does not require a closed store's sinks and sources to refuse calls, only
      // that every failure is a StorageError rejection. A commit that resolves claims
      // durability, so the snapshot must be there after a reopen.
      const read = await race('read(0, 50) after close()', s.timeoutMs, () => source.read(0, 50));
      expectOnlyStorageFailure('read(0, 50) after close()', read);
      if (read.kind === 'resolved') {
        assertEqual(read.value, concat(committed), 'read(0, 50) after close()');
      }
      const extra = bytes(102, 20);
      const write = await race('write() after close()', s.timeoutMs, () => sink.write(extra));
      expectOnlyStorageFailure('write() after close()', write);
      const commit = await race('commit() after close()', s.timeoutMs, () => sink.commit());
      expectOnlyStorageFailure('commit() after close()', commit);
      const abort = await race('abort() after close()', s.timeoutMs, () => sink.abort());
      if (abort.kind !== 'resolved') {
        fail(
          `abort() after close(): expected it to resolve (abort never rejects), got ${abort.kind === 'rejected' ? 'a rejection' : 'a synchronous throw'}: ${formatValue(abort.error)}`,
        );
      }
      const closeSource = await race('SnapshotSource.close() after close()', s.timeoutMs, () =>
        source.close(),
      );
      expectOnlyStorageFailure('SnapshotSource.close() after close()', closeSource);
      await s.restart();
      if (commit.kind === 'resolved') {
        const content = write.kind === 'resolved' ? concat([written, extra]) : written;
        await s.expectSnapshot(meta(9), content, 'open() after a reopen');
      } else {
        await s.expectSnapshot(meta(5), concat(committed), 'open() after a reopen');
      }
    },
  ),

  propertyCase(
    'random sequences of create, write, commit, abort, open, read and reopen agree with a reference model',
    (instance, timeoutMs) => new SnapshotStoreSession(instance, timeoutMs, true),
    snapshotOperations,
    runSnapshotOperations,
  ),
];

/**
 * Every snapshot store case, in a stable order. Run them with `runConformance` or register them
 * with `describeSnapshotStoreConformance` from `@raft/testing/vitest`. New cases are appended.
 */
export const snapshotStoreConformanceCases: readonly ConformanceCase<SnapshotStoreHarness>[] =
  Object.freeze(cases);
