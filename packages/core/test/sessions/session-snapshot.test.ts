/**
 * Snapshots of a withSessions state machine: the framed image (header, session table, the inner
 * image streamed through), restore from arbitrary chunk splits, and malformed images.
 */
import { describe, expect, it } from 'vitest';
import type {
  ApplyContext,
  ResultCodec,
  SessionStateMachine,
  SnapshotChunks,
  SnapshotMeta,
  StateMachine,
} from '../../src/index.js';
import {
  CodecError,
  ConfigError,
  jsonResultCodec,
  RaftError,
  withSessions,
} from '../../src/index.js';

const META: SnapshotMeta = {
  index: 100,
  term: 3,
  membership: { members: [{ id: 'a', address: 'a', voter: true }] },
};

function ascii(text: string): Uint8Array {
  return Uint8Array.from(text, (c) => c.charCodeAt(0));
}

function text(bytes: Uint8Array): string {
  return String.fromCharCode(...bytes);
}

/**
 * A list of strings (apply appends; the result is the new length, or an error for ''). Its
 * image is the strings joined by newlines, one chunk per string, produced lazily: `pulled`
 * counts the chunks read so far.
 */
class Lines implements StateMachine<string, number> {
  lines: string[] = [];
  calls = 0;
  pulled = 0;
  restoredFrom: string[] = [];
  /** The chunk sizes restore() saw. */
  restoredChunks: number[] = [];

  apply(line: string, _at: ApplyContext): number {
    this.calls++;
    if (line === '') throw new RaftError('INVALID_ARGUMENT', 'empty line');
    this.lines.push(line);
    return this.lines.length;
  }

  snapshot(): AsyncIterable<Uint8Array> {
    const copy = [...this.lines];
    const self = this;
    return (async function* () {
      for (const [i, line] of copy.entries()) {
        self.pulled++;
        yield ascii(i === 0 ? line : `\n${line}`);
      }
    })();
  }

  async restore(chunks: AsyncIterable<Uint8Array>): Promise<void> {
    let all = '';
    this.restoredChunks = [];
    for await (const c of chunks) {
      this.restoredChunks.push(c.byteLength);
      all += text(c);
    }
    this.lines = all === '' ? [] : all.split('\n');
  }
}

/** Collects a snapshot's chunks. */
async function collect(chunks: SnapshotChunks): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const c of chunks) out.push(c);
  return out;
}

function join(chunks: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

/** `bytes` re-cut into chunks of `size`, as an async stream that records whether it was closed. */
function rechunk(bytes: Uint8Array, size: number) {
  const state = { closed: false, read: 0 };
  const stream: AsyncIterable<Uint8Array> = {
    [Symbol.asyncIterator]() {
      let at = 0;
      return {
        async next() {
          if (at >= bytes.byteLength) return { done: true, value: undefined };
          const c = bytes.slice(at, at + size);
          at += size;
          state.read++;
          return { done: false, value: c };
        },
        async return() {
          state.closed = true;
          return { done: true, value: undefined };
        },
      };
    },
  };
  return { stream, state };
}

async function imageOf(sm: SessionStateMachine<string, number>): Promise<Uint8Array> {
  const snapshot = sm.snapshot;
  if (snapshot === undefined) throw new Error('no snapshot()');
  return join(await collect(await snapshot.call(sm)));
}

/** A wrapper with three clients in assorted states: kept results, an acked prefix, an error. */
function populated(): { inner: Lines; sm: SessionStateMachine<string, number>; next: number } {
  const inner = new Lines();
  const sm = withSessions(inner);
  let index = 0;
  const at = () => ({ index: ++index, term: 1 });
  sm.apply({ clientId: 'alice', seq: 1, command: 'a1' }, at());
  sm.apply({ clientId: 'bob', seq: 1, command: 'b1' }, at());
  sm.apply({ clientId: 'alice', seq: 2, command: 'a2' }, at());
  try {
    sm.apply({ clientId: 'bob', seq: 2, command: '' }, at());
  } catch {
    // kept as bob's seq 2 outcome
  }
  sm.apply({ clientId: 'alice', seq: 3, ack: 1, command: 'a3' }, at());
  sm.apply({ clientId: 'carol-ü', seq: 1, command: 'c1' }, at());
  return { inner, sm, next: index + 1 };
}

/** What a client sees for every seq of the populated table, and whether inner was called. */
function answers(sm: SessionStateMachine<string, number>, inner: Lines, from: number): unknown[] {
  const callsBefore = inner.calls;
  const out: unknown[] = [];
  let index = from;
  const probes: [string, number, string][] = [
    ['alice', 1, 'a1'],
    ['alice', 2, 'a2'],
    ['alice', 3, 'a3'],
    ['bob', 1, 'b1'],
    ['bob', 2, ''],
    ['carol-ü', 1, 'c1'],
    ['dave', 2, 'd2'],
  ];
  for (const [clientId, seq, command] of probes) {
    try {
      out.push(sm.apply({ clientId, seq, command }, { index: index++, term: 1 }));
    } catch (err) {
      out.push({ code: (err as RaftError).code, message: (err as Error).message });
    }
  }
  out.push({ innerCalls: inner.calls - callsBefore });
  return out;
}

describe('the snapshot image', () => {
  it('is the header and table in one chunk, then the inner chunks themselves, pulled lazily', async () => {
    const { inner, sm } = populated();
    const chunks = await sm.snapshot?.();
    if (chunks === undefined) throw new Error('no snapshot()');
    expect(inner.pulled).toBe(0);
    const it = (chunks as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
    const head = await it.next();
    expect(text((head.value as Uint8Array).subarray(0, 4))).toBe('RSES');
    expect((head.value as Uint8Array)[4]).toBe(1); // table version
    expect(inner.pulled).toBe(0); // the header does not pull the inner image
    const rest: string[] = [];
    for (let r = await it.next(); r.done !== true; r = await it.next()) rest.push(text(r.value));
    expect(rest).toEqual(['a1', '\nb1', '\na2', '\na3', '\nc1']);
    expect(inner.pulled).toBe(5);
  });

  it('fixes the table when snapshot() is called: later applies are not in it', async () => {
    const { inner, sm, next } = populated();
    const chunks = await sm.snapshot?.();
    sm.apply({ clientId: 'alice', seq: 4, command: 'a4' }, { index: next, term: 1 });
    sm.apply({ clientId: 'erin', seq: 1, command: 'e1' }, { index: next + 1, term: 1 });
    const image = join(await collect(chunks as SnapshotChunks));
    const restoredInner = new Lines();
    const restored = withSessions(restoredInner);
    await restored.restore?.(rechunk(image, 7).stream, META);
    expect(restored.sessions().map((s) => s.clientId)).toEqual(['bob', 'alice', 'carol-ü']);
    expect(restored.session('alice')?.keptSeqs).toEqual([2, 3]);
    expect(inner.lines).toHaveLength(7);
    expect(restoredInner.lines).toEqual(['a1', 'b1', 'a2', 'a3', 'c1']);
  });

  it('passes a synchronous iterable, or a promise of one, through as well', async () => {
    const sync = withSessions<string, number>({
      apply: () => 1,
      snapshot: () => [ascii('x'), ascii('yz')],
      restore: async () => {},
    });
    const syncChunks = await collect((await sync.snapshot?.()) as SnapshotChunks);
    expect(syncChunks.slice(1).map(text)).toEqual(['x', 'yz']);
    const later = withSessions<string, number>({
      apply: () => 1,
      snapshot: async () => [ascii('later')],
      restore: async () => {},
    });
    const pending = later.snapshot?.();
    expect(pending).toBeInstanceOf(Promise);
    const laterChunks = await collect((await pending) as SnapshotChunks);
    expect(laterChunks.slice(1).map(text)).toEqual(['later']);
  });
});

describe('restore', () => {
  for (const size of [1, 3, 4096]) {
    it(`from chunks of ${size} byte(s): the restored wrapper answers exactly like the original`, async () => {
      const original = populated();
      const image = await imageOf(original.sm);
      const inner = new Lines();
      const restored = withSessions(inner);
      const { stream, state } = rechunk(image, size);
      await restored.restore?.(stream, META);
      expect(state.closed).toBe(false); // read to the end, not abandoned
      expect(restored.sessions()).toEqual(original.sm.sessions());
      expect(inner.lines).toEqual(original.inner.lines);
      // The inner restore got the stream as it came (re-cut only where the table ended).
      expect(inner.restoredChunks.every((n) => n <= size)).toBe(true);
      const fromRestored = answers(restored, inner, original.next);
      expect(fromRestored).toEqual(answers(original.sm, original.inner, original.next));
      expect(fromRestored).toEqual([
        { code: 'SESSION_EXPIRED', message: expect.stringMatching(/seq 1 .* no longer kept/) },
        3,
        4,
        2,
        { code: 'INVALID_ARGUMENT', message: 'empty line' },
        5,
        { code: 'SESSION_EXPIRED', message: expect.stringMatching(/"dave" has no session/) },
        { innerCalls: 0 },
      ]);
    });
  }

  it('from every possible two-way split', async () => {
    const original = populated();
    const image = await imageOf(original.sm);
    for (let cut = 0; cut <= image.byteLength; cut++) {
      const inner = new Lines();
      const restored = withSessions(inner);
      await restored.restore?.(
        (async function* () {
          yield image.slice(0, cut);
          yield image.slice(cut);
        })(),
        META,
      );
      expect(restored.sessions(), `cut at ${cut}`).toEqual(original.sm.sessions());
      expect(inner.lines, `cut at ${cut}`).toEqual(original.inner.lines);
    }
  });

  it('replaces the whole table, and the kept errors replay as the same RaftError', async () => {
    const { sm } = populated();
    const image = await imageOf(sm);
    const target = withSessions(new Lines());
    target.apply({ clientId: 'zed', seq: 1, command: 'z' }, { index: 1, term: 1 });
    await target.restore?.(rechunk(image, 5).stream, META);
    expect(target.session('zed')).toBeUndefined();
    let replayed: unknown;
    try {
      target.apply({ clientId: 'bob', seq: 2, command: '' }, { index: 101, term: 3 });
    } catch (err) {
      replayed = err;
    }
    expect(RaftError.is(replayed, 'INVALID_ARGUMENT')).toBe(true);
    expect(replayed).toMatchObject({ message: 'empty line' });
  });

  it('round-trips an empty table and an empty inner image', async () => {
    const sm = withSessions(new Lines());
    const image = await imageOf(sm);
    expect(image.byteLength).toBe(17); // the header and a zero session count
    const inner = new Lines();
    inner.lines = ['stale'];
    const restored = withSessions(inner);
    await restored.restore?.(rechunk(image, 1).stream, META);
    expect(restored.sessions()).toEqual([]);
    expect(inner.lines).toEqual([]);
  });

  it('uses the resultCodec both ways', async () => {
    const calls: string[] = [];
    const codec: ResultCodec<{ n: number }> = {
      encode: (r) => {
        calls.push(`encode ${r.n}`);
        return Uint8Array.of(r.n);
      },
      decode: (b) => {
        calls.push(`decode ${b[0]}`);
        return { n: b[0] as number };
      },
    };
    const make = () =>
      withSessions<number, { n: number }>(
        { apply: (n) => ({ n }), snapshot: () => [], restore: async () => {} },
        { resultCodec: codec },
      );
    const sm = make();
    sm.apply({ clientId: 'c', seq: 1, command: 7 }, { index: 1, term: 1 });
    const image = join(await collect((await sm.snapshot?.()) as SnapshotChunks));
    const restored = make();
    await restored.restore?.(rechunk(image, 2).stream, META);
    expect(restored.apply({ clientId: 'c', seq: 1, command: 7 }, { index: 2, term: 1 })).toEqual({
      n: 7,
    });
    expect(calls).toEqual(['encode 7', 'decode 7']);
  });

  it('closes the source when the inner restore stops early', async () => {
    const { sm } = populated();
    const image = await imageOf(sm);
    const restored = withSessions<string, number>({
      apply: () => 0,
      snapshot: () => [],
      async restore(chunks) {
        for await (const _ of chunks) break; // reads one chunk only
      },
    });
    const { stream, state } = rechunk(image, 4);
    await restored.restore?.(stream, META);
    expect(state.closed).toBe(true);
    const untouched = withSessions<string, number>({
      apply: () => 0,
      snapshot: () => [],
      restore: async () => {}, // never reads
    });
    const second = rechunk(image, 4);
    await untouched.restore?.(second.stream, META);
    expect(second.state.closed).toBe(true);
  });
});

describe('malformed images are CodecErrors', () => {
  /** A valid image with the table part replaced (length fixed up). */
  function withTable(table: number[], rest: number[] = []): Uint8Array {
    const header = [0x52, 0x53, 0x45, 0x53, 1, 0, 0, 0, 0, 0, 0, 0];
    const n = table.length;
    header.push((n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
    return Uint8Array.from([...header, ...table, ...rest]);
  }
  const id = (s: string) => [s.length, ...ascii(s)];

  const cases: [string, Uint8Array, RegExp, number][] = [
    ['an empty stream', new Uint8Array(0), /ends inside the session header \(0 of 16/, 0],
    ['a short header', ascii('RSES'), /ends inside the session header \(4 of 16/, 4],
    ['a wrong magic', withTable([0]).map((b, i) => (i === 0 ? 0x41 : b)), /not a session/, 0],
    ['an unknown version', withTable([0]).map((b, i) => (i === 4 ? 2 : b)), /version 2/, 4],
    ['a reserved byte set', withTable([0]).map((b, i) => (i === 6 ? 1 : b)), /reserved/, 6],
    [
      'a table length past 2^53',
      Uint8Array.from([0x52, 0x53, 0x45, 0x53, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]),
      /not a safe integer/,
      8,
    ],
    [
      'a table cut short',
      withTable([1, ...id('c'), 1, 0, 0]).slice(0, 18),
      /ends inside the session table \(2 of 6/,
      18,
    ],
    [
      'a session count that cannot fit',
      withTable([9, ...id('c'), 1, 0, 0]),
      /9 sessions cannot fit/,
      17,
    ],
    ['an empty clientId', withTable([1, 0, 1, 0, 0, 0]), /clientId is empty/, 17],
    [
      'a duplicate clientId',
      withTable([2, ...id('c'), 1, 0, 0, ...id('c'), 2, 0, 0]),
      /"c" appears twice/,
      22,
    ],
    ['lastIndex 0', withTable([1, ...id('c'), 0, 0, 0]), /lastIndex must be at least 1/, 19],
    [
      'a seq at the floor',
      withTable([1, ...id('c'), 5, 2, 1, 2, 0, 0]),
      /seq 2 is not above 2/,
      22,
    ],
    [
      'seqs out of order',
      withTable([1, ...id('c'), 5, 0, 2, 3, 0, 0, 2, 0, 0]),
      /seq 2 is not above 3/,
      25,
    ],
    [
      'an unknown result kind',
      withTable([1, ...id('c'), 5, 0, 1, 1, 7, 0]),
      /unknown result kind 7/,
      23,
    ],
    [
      'a bad error code flag',
      withTable([1, ...id('c'), 5, 0, 1, 1, 1, 0, 0, 2]),
      /code flag 2/,
      26,
    ],
    [
      'a RaftError without a code',
      withTable([1, ...id('c'), 5, 0, 1, 1, 2, 0, 0, 0]),
      /has no code/,
      26,
    ],
    [
      'a result that does not decode',
      withTable([1, ...id('c'), 5, 0, 1, 1, 0, 1, 0x7b]),
      /resultCodec.decode failed for seq 1/,
      24,
    ],
    ['bytes after the last session', withTable([0, 0]), /1 bytes after the last session/, 17],
  ];
  for (const [what, image, message, offset] of cases) {
    it(what, async () => {
      let innerCalled = false;
      const sm = withSessions<string, number>({
        apply: () => 0,
        snapshot: () => [],
        restore: async () => {
          innerCalled = true;
        },
      });
      const { stream, state } = rechunk(image, 3);
      const err = await Promise.resolve(sm.restore?.(stream, META)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CodecError);
      expect((err as CodecError).message).toMatch(message);
      expect((err as CodecError).offset).toBe(offset);
      expect(innerCalled).toBe(false);
      expect(state.closed).toBe(true);
    });
  }
});

describe('snapshot methods follow the inner state machine', () => {
  it('an inner state machine without snapshots gives a wrapper without them', () => {
    const sm = withSessions<string, number>({ apply: () => 1 });
    expect(sm.snapshot).toBeUndefined();
    expect(sm.restore).toBeUndefined();
    expect('snapshot' in sm).toBe(false);
  });

  it('one of the two alone is refused with a ConfigError', () => {
    expect(() => withSessions<string, number>({ apply: () => 1, snapshot: () => [] })).toThrow(
      ConfigError,
    );
    expect(() => withSessions<string, number>({ apply: () => 1, restore: async () => {} })).toThrow(
      /implements restore\(\) without snapshot\(\)/,
    );
  });
});

describe('jsonResultCodec', () => {
  it('encodes undefined as no bytes, JSON otherwise, and refuses what JSON cannot carry', () => {
    const codec = jsonResultCodec<unknown>();
    expect(codec.encode(undefined)).toEqual(new Uint8Array(0));
    expect(codec.decode(new Uint8Array(0))).toBeUndefined();
    expect(codec.decode(codec.encode({ a: [1, 'x', null] }))).toEqual({ a: [1, 'x', null] });
    expect(codec.decode(codec.encode(''))).toBe('');
    expect(text(codec.encode(null))).toBe('null');
    expect(() => codec.encode(() => 1)).toThrow(/cannot be encoded as JSON/);
    expect(() => codec.decode(Uint8Array.of(0xff))).toThrow(/UTF-8/);
  });

  it('is the default: results of a state machine that returns nothing survive a snapshot', async () => {
    const make = () =>
      withSessions<string, void>({ apply: () => {}, snapshot: () => [], restore: async () => {} });
    const sm = make();
    sm.apply({ clientId: 'c', seq: 1, command: 'x' }, { index: 1, term: 1 });
    const image = join(await collect((await sm.snapshot?.()) as SnapshotChunks));
    const restored = make();
    await restored.restore?.(rechunk(image, 1).stream, META);
    expect(restored.session('c')?.keptSeqs).toEqual([1]);
  });
});
