/**
 * The KV store (the state machine raft-kv runs), its command codec, and the store behind the
 * server's sessions (writes with an idempotency key apply once, also after a snapshot).
 */
import { Directory, withDirectory } from '@raft/server';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type KvCommand, type KvResult, kvCommandCodec, MAX_KEY_BYTES } from '../src/kv-command.js';
import { KvStore } from '../src/kv-store.js';

const text = (s: string) => new TextEncoder().encode(s);
const at = (index: number) => ({ index, term: 1 });
const META = { index: 1, term: 1, membership: { members: [] } };

async function* chunksOf(image: Iterable<Uint8Array> | AsyncIterable<Uint8Array>) {
  for await (const c of image) yield c;
}

async function imageOf(store: KvStore): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const c of store.snapshot()) parts.push(c);
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let pos = 0;
  for (const p of parts) {
    out.set(p, pos);
    pos += p.length;
  }
  return out;
}

/** A fresh store, which is its own state machine. */
function freshStore() {
  const store = new KvStore();
  return { store, stateMachine: store };
}

describe('the KV store', () => {
  it('puts, deletes and compares-and-sets, counting one revision per change', () => {
    const { stateMachine: sm, store } = freshStore();
    const apply = (command: KvCommand, i: number) => sm.apply(command, at(i)) as KvResult;
    expect(apply({ op: 'put', key: 'a', value: text('1') }, 1)).toEqual({ op: 'put', revision: 1 });
    expect(apply({ op: 'delete', key: 'missing' }, 2)).toEqual({
      op: 'delete',
      revision: 1,
      deleted: false,
    });
    expect(apply({ op: 'cas', key: 'a', expected: text('2'), value: text('3') }, 3)).toEqual({
      op: 'cas',
      ok: false,
      revision: 1,
      current: '1',
    });
    expect(apply({ op: 'cas', key: 'a', expected: text('1'), value: text('3') }, 4)).toEqual({
      op: 'cas',
      ok: true,
      revision: 2,
    });
    expect(apply({ op: 'cas', key: 'b', expected: null, value: text('new') }, 5)).toEqual({
      op: 'cas',
      ok: true,
      revision: 3,
    });
    expect(apply({ op: 'cas', key: 'b', expected: null, value: text('x') }, 6)).toMatchObject({
      ok: false,
      current: 'new',
    });
    expect(apply({ op: 'cas', key: 'b', expected: text('new'), value: null }, 7)).toEqual({
      op: 'cas',
      ok: true,
      revision: 4,
    });
    expect(apply({ op: 'delete', key: 'a' }, 8)).toEqual({
      op: 'delete',
      revision: 5,
      deleted: true,
    });
    expect(store.size).toBe(0);
    expect(store.revision).toBe(5);
  });

  it('lists keys by prefix, sorted, up to a limit', () => {
    const { stateMachine: sm, store } = freshStore();
    for (const [i, key] of ['b/2', 'a/1', 'b/1', 'b/3', 'c'].entries()) {
      sm.apply({ op: 'put', key, value: text(key) }, at(i + 1));
    }
    expect(store.keys('b/', 10)).toEqual(['b/1', 'b/2', 'b/3']);
    expect(store.keys('b/', 2)).toEqual(['b/1', 'b/2']);
    expect(store.keys('', 100)).toEqual(['a/1', 'b/1', 'b/2', 'b/3', 'c']);
    expect(store.get('b/2')).toEqual({ value: text('b/2'), modRevision: 1 });
  });

  it('behind the server, a write with an idempotency key applies once, also after a snapshot', async () => {
    const wrap = () => {
      const store = new KvStore();
      return { store, machine: withDirectory<KvCommand, KvResult>(store, new Directory()) };
    };
    const a = wrap();
    const put = (value: string) => ({ op: 'put' as const, key: 'k', value: text(value) });
    const first = a.machine.apply({ kind: 'once', key: 'req-1', command: put('v1') }, at(1));
    const retry = a.machine.apply({ kind: 'once', key: 'req-1', command: put('v1') }, at(2));
    expect(first).toEqual({ kind: 'service', result: { op: 'put', revision: 1 } });
    expect(retry).toEqual(first);
    expect(a.store.revision).toBe(1);
    a.machine.apply({ kind: 'once', key: 'req-2', command: put('v2') }, at(3));
    expect(a.store.revision).toBe(2);
    const snapshot = a.machine.snapshot as NonNullable<typeof a.machine.snapshot>;
    const b = wrap();
    await (b.machine.restore as NonNullable<typeof b.machine.restore>)(
      chunksOf(await snapshot()),
      META,
    );
    // The retry is answered from the restored table, not applied again.
    expect(b.machine.apply({ kind: 'once', key: 'req-1', command: put('other') }, at(4))).toEqual(
      first,
    );
    expect(b.store.revision).toBe(2);
    expect(b.store.get('k')?.value).toEqual(text('v2'));
  });

  it('restores from an image cut anywhere, and refuses a bad magic, a truncated or a padded image', async () => {
    const a = new KvStore();
    a.apply({ op: 'put', key: 'x', value: text('1') }, at(1));
    a.apply({ op: 'put', key: 'y', value: new Uint8Array(300).fill(7) }, at(2));
    a.apply({ op: 'delete', key: 'x' }, at(3));
    a.apply({ op: 'put', key: 'z€', value: text('') }, at(4));
    const image = await imageOf(a);
    for (let cut = 0; cut <= image.length; cut++) {
      const b = new KvStore();
      await b.restore(chunksOf([image.subarray(0, cut), image.subarray(cut)]));
      expect(b.revision, `cut at ${cut}`).toBe(4);
      expect(b.keys('', 10)).toEqual(['y', 'z€']);
      expect(b.get('y')).toEqual({ value: new Uint8Array(300).fill(7), modRevision: 2 });
      expect(b.get('z€')).toEqual({ value: text(''), modRevision: 4 });
    }
    const bytewise = new KvStore();
    await bytewise.restore(chunksOf([...image].map((b) => Uint8Array.of(b))));
    expect(bytewise.keys('', 10)).toEqual(['y', 'z€']);
    const kept = new KvStore();
    kept.apply({ op: 'put', key: 'keep', value: text('me') }, at(1));
    for (let n = 0; n < image.length; n++) {
      await expect(
        kept.restore(chunksOf([image.subarray(0, n)])),
        `truncated to ${n}`,
      ).rejects.toThrow(n < 4 ? /truncated in the magic/ : /truncated/);
    }
    await expect(kept.restore(chunksOf([Uint8Array.from([...image, 0])]))).rejects.toThrow(
      /trailing/,
    );
    const bad = image.slice();
    bad[0] = 0;
    await expect(kept.restore(chunksOf([bad]))).rejects.toThrow(/bad magic/);
    // A failed restore leaves the state as it was.
    expect(kept.keys('', 10)).toEqual(['keep']);
  });

  it('a large store snapshots in chunks and restores whole', async () => {
    const a = freshStore();
    for (let i = 0; i < 3000; i++) {
      a.stateMachine.apply(
        { op: 'put', key: `key-${i}`, value: new Uint8Array(1000).fill(i) },
        at(i + 1),
      );
    }
    const chunks: Uint8Array[] = [];
    const snapshot = () => a.stateMachine.snapshot();
    for await (const c of snapshot()) {
      chunks.push(c);
    }
    expect(chunks.length).toBeGreaterThan(1);
    const b = freshStore();
    await b.stateMachine.restore(chunksOf(chunks));
    expect(b.store.size).toBe(3000);
    expect(b.store.get('key-2999')?.value[0]).toBe(2999 & 0xff);
  });
});

describe('the command codecs', () => {
  const bytes = fc.uint8Array({ maxLength: 64 });
  const key = fc
    .string({ minLength: 1, maxLength: 40, unit: 'grapheme' })
    .filter((k) => new TextEncoder().encode(k).length <= MAX_KEY_BYTES);
  const command: fc.Arbitrary<KvCommand> = fc.oneof(
    fc.record({ op: fc.constant('put' as const), key, value: bytes }),
    fc.record({ op: fc.constant('delete' as const), key }),
    fc.record({
      op: fc.constant('cas' as const),
      key,
      expected: fc.option(bytes, { nil: null }),
      value: fc.option(bytes, { nil: null }),
    }),
  );
  it('round-trip every command', () => {
    fc.assert(
      fc.property(command, (c) => {
        expect(kvCommandCodec.decode(kvCommandCodec.encode(c))).toEqual(c);
      }),
      { seed: 1717, numRuns: 500 },
    );
  });

  it('refuse bad keys when encoding and malformed bytes when decoding', () => {
    expect(() => kvCommandCodec.encode({ op: 'delete', key: '' })).toThrow(/non-empty/);
    expect(() =>
      kvCommandCodec.encode({ op: 'delete', key: 'x'.repeat(MAX_KEY_BYTES + 1) }),
    ).toThrow(/at most 1024 bytes/);
    expect(() => kvCommandCodec.encode({ op: 'delete', key: '\uD800' })).toThrow(/surrogate/);
    const good = kvCommandCodec.encode({ op: 'cas', key: 'k', expected: text('ab'), value: null });
    for (let n = 0; n < good.length; n++) {
      expect(() => kvCommandCodec.decode(good.subarray(0, n)), `truncated to ${n}`).toThrow();
    }
    expect(() => kvCommandCodec.decode(Uint8Array.from([...good, 1]))).toThrow(/trailing/);
  });
});
