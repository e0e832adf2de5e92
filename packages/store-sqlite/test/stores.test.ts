import { type LogEntry, RaftError } from '@raft/core';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { openSqliteStores } from '../src/index.js';
import {
  chunkCount,
  entries,
  MEMBERSHIP,
  meta,
  payload,
  perTest,
  RecordingLogger,
  readNewest,
  snapshotRows,
  writeSnapshot,
} from './helpers.js';

const t = perTest();

const COMMITTED = 1;
const RETIRED = 2;

async function storageFailure(promise: Promise<unknown>): Promise<RaftError> {
  const err = await promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e,
  );
  expect(RaftError.is(err, 'STORAGE')).toBe(true);
  return err as RaftError;
}

describe('sqlite stores: reopen keeps everything', () => {
  it('the log, the hard state and the snapshots come back after close() and a new open', async () => {
    const path = t.dbPath();
    const log: LogEntry[] = [
      { index: 1, term: 1, kind: 'membership', data: payload(1, 1, 30) },
      { index: 2, term: 1, kind: 'noop', data: new Uint8Array(0) },
      ...entries(3, 40, 2, 100),
    ];
    const image = payload(5, 5, 10_000);
    {
      const stores = await t.open({ path, snapshotChunkBytes: 4096 });
      await stores.logStore.open();
      await stores.logStore.append(log.slice(0, 2));
      await stores.logStore.append(log.slice(2));
      await stores.logStore.compact(10);
      await stores.logStore.truncate(35);
      await stores.stableStore.save({ term: 2, votedFor: 'n2', commit: 30 });
      await writeSnapshot(stores, meta(10, 2), image, 3000);
      await stores.close();
    }
    // A different chunk size now: the stored snapshot keeps the size it was written with.
    const stores = await t.open({ path, snapshotChunkBytes: 1000 });
    expect(await stores.logStore.open()).toEqual({ firstIndex: 11, lastIndex: 34 });
    expect(await stores.logStore.read(11, 35)).toEqual(log.slice(10, 34));
    expect(await stores.stableStore.load()).toEqual({ term: 2, votedFor: 'n2', commit: 30 });
    const snapshot = await readNewest(stores);
    expect(snapshot?.meta).toEqual(meta(10, 2));
    expect(snapshot?.bytes).toEqual(image);
  });

  it('entries read back as plain Uint8Arrays, not Buffers', async () => {
    const stores = await t.open({ path: t.dbPath() });
    await stores.logStore.open();
    await stores.logStore.append(entries(1, 3, 1));
    const read = await stores.logStore.read(1, 3);
    for (const e of read) expect(Object.getPrototypeOf(e.data)).toBe(Uint8Array.prototype);
    const source = await (async () => {
      await writeSnapshot(stores, meta(2), payload(1, 1, 50));
      return stores.snapshotStore.open();
    })();
    const bytes = await source?.read(0, 50);
    expect(Object.getPrototypeOf(bytes)).toBe(Uint8Array.prototype);
    await source?.close();
  });

  it('compact() past the last index keeps lastIndex = upTo in the meta row, across a reopen', async () => {
    const path = t.dbPath();
    const stores = await t.open({ path });
    await stores.logStore.open();
    await stores.logStore.append(entries(1, 6, 1));
    await stores.logStore.compact(100);
    await stores.close();
    const db = t.inspect(path, { readonly: true });
    expect(db.prepare('SELECT first_index FROM log_meta').pluck().get()).toBe(101);
    expect(db.prepare('SELECT count(*) FROM log_entry').pluck().get()).toBe(0);
    const again = await t.open({ path });
    expect(await again.logStore.open()).toEqual({ firstIndex: 101, lastIndex: 100 });
    await again.logStore.append(entries(101, 103, 2));
    expect(await again.logStore.read(101, 103)).toEqual(entries(101, 103, 2));
  });

  it('kind is stored as a small integer', async () => {
    const path = t.dbPath();
    const stores = await t.open({ path });
    await stores.logStore.open();
    await stores.logStore.append([
      { index: 1, term: 1, kind: 'command', data: payload(1, 1, 1) },
      { index: 2, term: 1, kind: 'noop', data: payload(2, 1, 1) },
      { index: 3, term: 1, kind: 'membership', data: payload(3, 1, 1) },
    ]);
    const db = t.inspect(path, { readonly: true });
    expect(db.prepare('SELECT kind FROM log_entry ORDER BY idx').pluck().all()).toEqual([0, 1, 2]);
  });
});

describe('sqlite stores: after close', () => {
  it('every call of every store rejects with a StorageError; close() is idempotent', async () => {
    const stores = await t.open({ path: t.dbPath() });
    await stores.logStore.open();
    await stores.logStore.append(entries(1, 3, 1));
    await writeSnapshot(stores, meta(2), payload(1, 2, 30));
    const source = await stores.snapshotStore.open();
    const sink = await stores.snapshotStore.create(meta(3));
    await stores.close();
    await stores.close();
    await stores.logStore.close();
    const calls: Promise<unknown>[] = [
      stores.logStore.open(),
      stores.logStore.read(1, 2),
      stores.logStore.append(entries(3, 4, 1)),
      stores.logStore.compact(1),
      stores.logStore.truncate(2),
      stores.stableStore.load(),
      stores.stableStore.save({ term: 1, votedFor: null, commit: 0 }),
      stores.snapshotStore.create(meta(4)),
      stores.snapshotStore.open(),
      sink.write(new Uint8Array(3)),
      sink.commit(),
      source?.read(0, 1) ?? Promise.reject(new Error('no source')),
    ];
    for (const call of calls) {
      const err = await storageFailure(call);
      expect(err.message).toMatch(/closed/);
    }
    // abort() and SnapshotSource.close() never reject.
    await expect(sink.abort()).resolves.toBeUndefined();
    await expect(source?.close()).resolves.toBeUndefined();
  });
});

describe('sqlite snapshot store', () => {
  it('a sink writes rows of snapshotChunkBytes as data arrives, and commit adds the rest', async () => {
    const path = t.dbPath();
    const stores = await t.open({ path, snapshotChunkBytes: 100 });
    const db = t.inspect(path, { readonly: true });
    const sink = await stores.snapshotStore.create(meta(5));
    expect(snapshotRows(db)).toEqual([{ id: 1, idx: 5, state: 0 }]);
    await sink.write(payload(1, 1, 60));
    expect(chunkCount(db)).toBe(0); // buffered
    await sink.write(payload(2, 1, 60));
    expect(chunkCount(db)).toBe(1);
    await sink.write(payload(3, 1, 250)); // 20 to finish a row, then 2 whole rows, 30 buffered
    expect(chunkCount(db)).toBe(3);
    await sink.commit();
    expect(chunkCount(db)).toBe(4);
    expect(snapshotRows(db)).toEqual([{ id: 1, idx: 5, state: COMMITTED }]);
    const lengths = db
      .prepare('SELECT length(data) FROM snapshot_chunk ORDER BY seq')
      .pluck()
      .all();
    expect(lengths).toEqual([100, 100, 100, 70]);
    const snapshot = await readNewest(stores);
    const expected = new Uint8Array(370);
    expected.set(payload(1, 1, 60), 0);
    expected.set(payload(2, 1, 60), 60);
    expected.set(payload(3, 1, 250), 120);
    expect(snapshot?.bytes).toEqual(expected);
  });

  it('abort() deletes what the sink wrote', async () => {
    const path = t.dbPath();
    const stores = await t.open({ path, snapshotChunkBytes: 10 });
    const sink = await stores.snapshotStore.create(meta(5));
    await sink.write(payload(1, 1, 95));
    const db = t.inspect(path, { readonly: true });
    expect(chunkCount(db)).toBe(9);
    await sink.abort();
    await sink.abort();
    expect(chunkCount(db)).toBe(0);
    expect(snapshotRows(db)).toEqual([]);
    await storageFailure(sink.write(new Uint8Array(1)));
  });

  it('what an unfinished sink left (a crash, or a close mid-write) is deleted at the next open', async () => {
    const path = t.dbPath();
    {
      const stores = await t.open({ path, snapshotChunkBytes: 16 });
      await writeSnapshot(stores, meta(3), payload(3, 1, 40));
      const sink = await stores.snapshotStore.create(meta(9));
      await sink.write(payload(9, 1, 100));
      await stores.close();
    }
    const db = t.inspect(path, { readonly: true });
    expect(snapshotRows(db).map((r) => r.state)).toEqual([COMMITTED, 0]);
    const logger = new RecordingLogger();
    const stores = await t.open({ path, logger });
    expect(snapshotRows(db)).toEqual([{ id: 1, idx: 3, state: COMMITTED }]);
    expect(chunkCount(db)).toBe(3);
    expect(logger.lines.some((l) => l.fields.leftovers === 1)).toBe(true);
    expect((await readNewest(stores))?.bytes).toEqual(payload(3, 1, 40));
  });

  it('retention keeps the newest retainSnapshots by index; a lower retention prunes at open', async () => {
    const path = t.dbPath();
    {
      const stores = await t.open({ path, retainSnapshots: 3 });
      for (const index of [10, 20, 5, 30, 15]) {
        await writeSnapshot(stores, meta(index), payload(index, 1, 20));
      }
      const db = t.inspect(path, { readonly: true });
      expect(snapshotRows(db).map((r) => r.idx)).toEqual([20, 30, 15]);
      await stores.close();
    }
    const stores = await t.open({ path, retainSnapshots: 1 });
    const db = t.inspect(path, { readonly: true });
    expect(snapshotRows(db).map((r) => r.idx)).toEqual([30]);
    expect(chunkCount(db)).toBe(1);
    expect((await readNewest(stores))?.meta).toEqual(meta(30));
  });

  it('a pruned snapshot that a source reads is kept (retired) until its last source closes', async () => {
    const path = t.dbPath();
    const stores = await t.open({ path, retainSnapshots: 1, snapshotChunkBytes: 8 });
    const old = payload(1, 1, 50);
    await writeSnapshot(stores, meta(1), old);
    const a = await stores.snapshotStore.open();
    const b = await stores.snapshotStore.open();
    await writeSnapshot(stores, meta(2), payload(2, 1, 50));
    const db = t.inspect(path, { readonly: true });
    expect(snapshotRows(db).map((r) => [r.idx, r.state])).toEqual([
      [1, RETIRED],
      [2, COMMITTED],
    ]);
    expect((await readNewest(stores))?.meta).toEqual(meta(2));
    expect(await a?.read(0, 50)).toEqual(old);
    await a?.close();
    await a?.close(); // idempotent: does not count as b's close
    expect(snapshotRows(db).map((r) => r.idx)).toEqual([1, 2]);
    expect(await b?.read(7, 10)).toEqual(old.subarray(7, 17));
    await b?.close();
    expect(snapshotRows(db).map((r) => r.idx)).toEqual([2]);
    expect(chunkCount(db)).toBe(7);
  });

  it('a retired snapshot whose source was never closed is deleted at the next open', async () => {
    const path = t.dbPath();
    {
      const stores = await t.open({ path, retainSnapshots: 1 });
      await writeSnapshot(stores, meta(1), payload(1, 1, 10));
      await stores.snapshotStore.open(); // never closed
      await writeSnapshot(stores, meta(2), payload(2, 1, 10));
      await stores.close();
    }
    const db = t.inspect(path, { readonly: true });
    expect(snapshotRows(db).map((r) => r.state)).toEqual([RETIRED, COMMITTED]);
    await t.open({ path, retainSnapshots: 1 });
    expect(snapshotRows(db).map((r) => r.idx)).toEqual([2]);
  });

  it('sequential reads smaller than a row read each row once from the database', async () => {
    const path = t.dbPath();
    const stores = await t.open({ path, snapshotChunkBytes: 1000 });
    const image = payload(7, 7, 5000);
    await writeSnapshot(stores, meta(7), image, 777);
    const source = await stores.snapshotStore.open();
    if (source === null) throw new Error('no snapshot');
    expect(await source.read(0, 100)).toEqual(image.subarray(0, 100));
    // Row 0 is held by the source now: take it out of the database behind its back.
    const other = t.inspect(path);
    const row0 = other.prepare('SELECT data FROM snapshot_chunk WHERE seq = 0').pluck().get();
    other.prepare('DELETE FROM snapshot_chunk WHERE seq = 0').run();
    expect(await source.read(100, 900)).toEqual(image.subarray(100, 1000));
    expect((await storageFailure(source.read(500, 1000))).message).toContain('damaged');
    other.prepare('INSERT INTO snapshot_chunk (snapshot_id, seq, data) VALUES (1, 0, ?)').run(row0);
    const out = new Uint8Array(5000);
    for (let at = 0; at < 5000; at += 100) out.set(await source.read(at, 100), at);
    expect(out).toEqual(image);
    // Reads across rows and past the end.
    expect(await source.read(950, 1100)).toEqual(image.subarray(950, 2050));
    expect(await source.read(4990, 100)).toEqual(image.subarray(4990));
    expect(await source.read(5000, 1)).toEqual(new Uint8Array(0));
    await source.close();
  });

  it('create() refuses a bad meta with INVALID_ARGUMENT; meta round-trips detached from the caller', async () => {
    const stores = await t.open({ path: t.dbPath() });
    for (const bad of [
      { index: -1, term: 1, membership: MEMBERSHIP },
      { index: 1.5, term: 1, membership: MEMBERSHIP },
      { index: 1, term: Number.NaN, membership: MEMBERSHIP },
      { index: 1, term: 1, membership: {} },
      { index: 1, term: 1, membership: { members: [{ id: 7, address: 'a', voter: true }] } },
    ]) {
      const err = await stores.snapshotStore.create(bad as never).catch((e: unknown) => e);
      expect(RaftError.is(err, 'INVALID_ARGUMENT')).toBe(true);
    }
    const members = [{ id: 'n1', address: 'a', voter: true }];
    const sink = await stores.snapshotStore.create({ index: 4, term: 2, membership: { members } });
    members[0] = { id: 'changed', address: 'b', voter: false };
    await sink.commit();
    expect((await readNewest(stores))?.meta).toEqual({
      index: 4,
      term: 2,
      membership: { members: [{ id: 'n1', address: 'a', voter: true }] },
    });
  });
});

describe('sqlite stores: failures are StorageErrors', () => {
  it('a driver error is wrapped, with the SqliteError as cause, and the batch is not half stored', async () => {
    const path = t.dbPath();
    const stores = await t.open({ path });
    await stores.logStore.open();
    await stores.logStore.append(entries(1, 4, 1));
    // Another connection breaks the table under the store: the next statement fails.
    const other = t.inspect(path);
    other.exec('ALTER TABLE log_entry RENAME TO log_entry_gone');
    const err = await storageFailure(stores.logStore.append(entries(4, 6, 1)));
    expect(err.message).toContain('append failed');
    expect(err.cause).toBeInstanceOf(Database.SqliteError);
    other.exec('ALTER TABLE log_entry_gone RENAME TO log_entry');
    expect(await stores.logStore.read(1, 4)).toEqual(entries(1, 4, 1));
    await stores.logStore.append(entries(4, 6, 1));
    expect(await stores.logStore.read(1, 6)).toEqual(entries(1, 6, 1));
  });

  it('a batch that is not contiguous, or has a bad kind, is refused whole', async () => {
    const path = t.dbPath();
    const stores = await t.open({ path });
    await stores.logStore.open();
    await stores.logStore.append(entries(1, 6, 1));
    const holey = [...entries(3, 5, 2), ...entries(6, 7, 2)];
    expect((await storageFailure(stores.logStore.append(holey))).message).toContain('contiguous');
    const badKind = [
      ...entries(3, 4, 2),
      { index: 4, term: 2, kind: 'bogus', data: new Uint8Array(1) },
    ];
    await storageFailure(stores.logStore.append(badKind as LogEntry[]));
    // Nothing of either batch is stored, and the replaced suffix is still there.
    expect(await stores.logStore.read(1, 6)).toEqual(entries(1, 6, 1));
    await stores.close();
    const again = await t.open({ path });
    expect(await again.logStore.open()).toEqual({ firstIndex: 1, lastIndex: 5 });
    expect(await again.logStore.read(1, 6)).toEqual(entries(1, 6, 1));
  });

  it('a log with a missing entry is reported as damaged, at open or at read', async () => {
    const path = t.dbPath();
    {
      const stores = await t.open({ path });
      await stores.logStore.open();
      await stores.logStore.append(entries(1, 11, 1));
      await stores.close();
    }
    const other = new Database(path);
    other.exec('DELETE FROM log_entry WHERE idx = 5');
    other.close();
    const stores = await t.open({ path });
    expect(await stores.logStore.open()).toEqual({ firstIndex: 1, lastIndex: 10 });
    expect(await stores.logStore.read(1, 5)).toEqual(entries(1, 5, 1));
    expect((await storageFailure(stores.logStore.read(3, 8))).message).toContain('damaged');
    await stores.close();
    const other2 = new Database(path);
    other2.exec('DELETE FROM log_entry WHERE idx = 1');
    other2.close();
    const err = await storageFailure(openSqliteStores({ path }));
    expect(err.message).toContain('first entry is 2');
  });

  it('hard state: integers up to 2^53 - 1 and a null vote; a malformed state is refused', async () => {
    const path = t.dbPath();
    const stores = await t.open({ path });
    await stores.stableStore.save({
      term: Number.MAX_SAFE_INTEGER,
      votedFor: null,
      commit: 2 ** 40,
    });
    await storageFailure(stores.stableStore.save({ term: 1.5, votedFor: null, commit: 0 }));
    await storageFailure(stores.stableStore.save({ term: 1, votedFor: 7 as never, commit: 0 }));
    await stores.close();
    const again = await t.open({ path });
    expect(await again.stableStore.load()).toEqual({
      term: Number.MAX_SAFE_INTEGER,
      votedFor: null,
      commit: 2 ** 40,
    });
    const db = t.inspect(path, { readonly: true });
    expect(db.prepare('SELECT count(*) FROM hard_state').pluck().get()).toBe(1);
  });
});
