/**
 * What the in-memory stores promise beyond the shared conformance suites (@raft/testing runs
 * those against them): options, pruning, the close-and-reuse restart model, and the refusals.
 */
import { describe, expect, it } from 'vitest';
import { RaftError } from '../errors.js';
import type { SnapshotMeta } from '../types.js';
import { MemoryLogStore } from './memory-log-store.js';
import { MemorySnapshotStore } from './memory-snapshot-store.js';

function meta(index: number, term = 1): SnapshotMeta {
  return {
    index,
    term,
    membership: {
      members: [
        { id: 'n1', address: 'a1', voter: true },
        { id: 'n9', address: 'a9', voter: false },
      ],
    },
  };
}

async function commit(store: MemorySnapshotStore, index: number, term = 1): Promise<void> {
  const sink = await store.create(meta(index, term));
  await sink.write(Uint8Array.of(index & 0xff, term & 0xff));
  await sink.commit();
}

const isCode = (code: string) => (err: unknown) => RaftError.is(err) && err.code === code;

describe('MemorySnapshotStore', () => {
  it('takes retain as a positive integer, default 2', async () => {
    for (const retain of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => new MemorySnapshotStore({ retain })).toThrow(
        expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
      );
    }
    const store = new MemorySnapshotStore();
    for (const index of [1, 2, 3]) await commit(store, index);
    expect(store.list().map((m) => m.index)).toEqual([2, 3]);
  });

  it('prunes to the newest `retain` by index, ties by commit order, and lists oldest first', async () => {
    const store = new MemorySnapshotStore({ retain: 3 });
    await commit(store, 10);
    await commit(store, 4);
    await commit(store, 7);
    expect(store.list().map((m) => m.index)).toEqual([4, 7, 10]);
    await commit(store, 2); // older than everything kept: pruned at once
    expect(store.list().map((m) => m.index)).toEqual([4, 7, 10]);
    await commit(store, 10, 2);
    expect(store.list().map((m) => `${m.index}/${m.term}`)).toEqual(['7/1', '10/1', '10/2']);
    expect((await store.open())?.meta.term).toBe(2);
    // list() hands out copies.
    const [first] = store.list() as SnapshotMeta[];
    (first as { index: number }).index = 99;
    expect(store.list()[0]?.index).toBe(7);
  });

  it('keeps written chunks as copies, and reads only the requested range', async () => {
    const store = new MemorySnapshotStore();
    const sink = await store.create(meta(5));
    const buffer = Uint8Array.of(1, 2, 3);
    await sink.write(buffer);
    buffer.set([7, 8, 9]);
    await sink.write(buffer);
    await sink.commit();
    buffer.fill(0);
    const source = await store.open();
    expect(source?.size).toBe(6);
    expect(await source?.read(2, 3)).toEqual(Uint8Array.of(3, 7, 8));
    // A result is the caller's: changing it changes nothing stored.
    const out = (await source?.read(0, 6)) as Uint8Array;
    out.fill(0xff);
    expect(await source?.read(0, 6)).toEqual(Uint8Array.of(1, 2, 3, 7, 8, 9));
  });

  it('refuses a sink used after commit() or abort(), with a StorageError', async () => {
    const store = new MemorySnapshotStore();
    const committed = await store.create(meta(1));
    await committed.commit();
    await expect(committed.write(Uint8Array.of(1))).rejects.toSatisfy(isCode('STORAGE'));
    await expect(committed.commit()).rejects.toSatisfy(isCode('STORAGE'));
    await expect(committed.abort()).resolves.toBeUndefined();
    const aborted = await store.create(meta(2));
    await aborted.abort();
    await expect(aborted.write(Uint8Array.of(1))).rejects.toSatisfy(isCode('STORAGE'));
    await expect(aborted.commit()).rejects.toSatisfy(isCode('STORAGE'));
    expect(store.list().map((m) => m.index)).toEqual([1]);
  });

  it('close() kills open sinks and sources; the same instance then works again as a restart', async () => {
    const store = new MemorySnapshotStore();
    await commit(store, 3);
    const source = await store.open();
    const sink = await store.create(meta(8));
    await sink.write(Uint8Array.of(1, 2));
    await store.close();
    await expect(source?.read(0, 1)).rejects.toSatisfy(isCode('STORAGE'));
    await expect(sink.write(Uint8Array.of(3))).rejects.toSatisfy(isCode('STORAGE'));
    await expect(sink.commit()).rejects.toSatisfy(isCode('STORAGE'));
    await expect(sink.abort()).resolves.toBeUndefined();
    await expect(source?.close()).resolves.toBeUndefined();
    // The restarted node: the uncommitted snapshot is gone, the committed one stays.
    const reopened = await store.open();
    expect(reopened?.meta).toEqual(meta(3));
    expect(await reopened?.read(0, 2)).toEqual(Uint8Array.of(3, 1));
    await commit(store, 4);
    expect(store.list().map((m) => m.index)).toEqual([3, 4]);
  });

  it('rejects a meta without a non-negative integer index and term', async () => {
    const store = new MemorySnapshotStore();
    await expect(store.create(meta(-1))).rejects.toSatisfy(isCode('INVALID_ARGUMENT'));
    await expect(store.create(meta(1, 0.5))).rejects.toSatisfy(isCode('INVALID_ARGUMENT'));
  });
});

describe('MemoryLogStore compaction', () => {
  const entry = (index: number) => ({
    index,
    term: 1,
    kind: 'command' as const,
    data: Uint8Array.of(index),
  });

  it('keeps the entries by reference across a compaction, and reports its bounds', async () => {
    const store = new MemoryLogStore();
    await store.open();
    const log = [1, 2, 3, 4, 5].map(entry);
    await store.append(log);
    await store.compact(2);
    expect(store.bounds()).toEqual({ firstIndex: 3, lastIndex: 5 });
    const [third] = await store.read(3, 4);
    expect(third).toBe(log[2]);
    expect(store.snapshotEntries()).toEqual(log.slice(2));
  });

  it('refuses to rewrite compacted entries, and non-integer indexes', async () => {
    const store = new MemoryLogStore();
    await store.open();
    await store.append([1, 2, 3].map(entry));
    await store.compact(2);
    await expect(store.append([entry(2), entry(3)])).rejects.toSatisfy(isCode('STORAGE'));
    expect(store.bounds()).toEqual({ firstIndex: 3, lastIndex: 3 });
    await expect(store.compact(Number.NaN)).rejects.toSatisfy(isCode('INVALID_ARGUMENT'));
    await expect(store.truncate(2.5)).rejects.toSatisfy(isCode('INVALID_ARGUMENT'));
    await store.close();
    await expect(store.compact(3)).rejects.toSatisfy(isCode('STORAGE'));
    await expect(store.truncate(3)).rejects.toSatisfy(isCode('STORAGE'));
    expect(await store.open()).toEqual({ firstIndex: 3, lastIndex: 3 });
  });
});
