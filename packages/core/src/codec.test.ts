import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CODEC_VERSION,
  type DecodeLimits,
  decodeMessage,
  encodedSize,
  encodeMessage,
} from './codec.js';
import { CodecError, RaftError } from './errors.js';
import { encodeMembership } from './membership.js';
import type {
  AppendMessage,
  AppendResponseMessage,
  InstallSnapshotMessage,
  InstallSnapshotResponseMessage,
  ProposeResponseMessage,
  RaftMessage,
} from './messages.js';
import type { EntryKind, LogEntry, Membership } from './types.js';
import { utf8Encode } from './utf8.js';

const MAX = Number.MAX_SAFE_INTEGER;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/** Unsigned LEB128, written independently of the codec so the tests pin the wire format. */
function uv(value: number): number[] {
  const out: number[] = [];
  let rest = value;
  while (rest >= 0x80) {
    out.push((rest % 0x80) | 0x80);
    rest = Math.floor(rest / 0x80);
  }
  out.push(rest);
  return out;
}

/** A length-prefixed ASCII string. */
function ascii(value: string): number[] {
  return [...uv(value.length), ...Array.from(value, (c) => c.charCodeAt(0))];
}

function bytesOf(...parts: ReadonlyArray<number | readonly number[]>): Uint8Array {
  return Uint8Array.from(parts.flat());
}

/** Version, tag and the envelope {from: 'a', to: 'b', term: 1}. */
function header(tag: number): number[] {
  return [CODEC_VERSION, tag, ...ascii('a'), ...ascii('b'), 1];
}

function data(...values: number[]): Uint8Array {
  return Uint8Array.from(values);
}

/** A voter and a learner, and their encoding spelled out by hand to pin it. */
const MEMBERSHIP: Membership = {
  members: [
    { id: 'a', address: 'x:1', voter: true },
    { id: 'l', address: 'y:2', voter: false },
  ],
};
const MEMBERSHIP_JSON =
  '{"v":1,"members":[{"id":"a","address":"x:1","voter":true},{"id":"l","address":"y:2","voter":false}]}';

/** The body of an installSnapshot after the envelope, membership given as raw bytes. */
function snapshotBody(
  membership: readonly number[],
  size: number,
  offset: number,
  chunk: readonly number[],
): number[] {
  return [
    7,
    2,
    ...uv(membership.length),
    ...membership,
    ...uv(size),
    ...uv(offset),
    ...uv(chunk.length),
    ...chunk,
  ];
}

function entries(firstIndex: number, specs: ReadonlyArray<[number, EntryKind, Uint8Array]>) {
  return specs.map(
    ([term, kind, payload], i): LogEntry => ({ index: firstIndex + i, term, kind, data: payload }),
  );
}

function roundTrip(message: RaftMessage): RaftMessage {
  const encoded = encodeMessage(message);
  expect(encoded.length).toBe(encodedSize(message));
  return decodeMessage(encoded);
}

/** The decoder's whole contract on hostile input: a message, or a CodecError, nothing else. */
function decodeOrCodecError(bytes: Uint8Array): void {
  let decoded: RaftMessage;
  try {
    decoded = decodeMessage(bytes);
  } catch (err) {
    if (!RaftError.is(err, 'CODEC') || !(err instanceof CodecError)) throw err;
    return;
  }
  // Strictness: whatever decodes re-encodes to exactly the same bytes.
  expect(encodeMessage(decoded)).toEqual(bytes);
}

function expectCodecError(
  bytes: Uint8Array,
  messagePart?: string,
  limits?: DecodeLimits,
): CodecError {
  try {
    decodeMessage(bytes, limits);
  } catch (err) {
    expect(RaftError.is(err, 'CODEC')).toBe(true);
    expect(err).toBeInstanceOf(CodecError);
    if (messagePart !== undefined) expect((err as Error).message).toContain(messagePart);
    return err as CodecError;
  }
  throw new Error(`expected a CodecError for [${Array.from(bytes).join(', ')}]`);
}

function expectInvalidArgument(message: RaftMessage, messagePart: string): void {
  for (const encode of [encodeMessage, encodedSize]) {
    try {
      encode(message);
    } catch (err) {
      expect(RaftError.is(err, 'INVALID_ARGUMENT')).toBe(true);
      expect((err as Error).message).toContain(messagePart);
      continue;
    }
    throw new Error('expected an INVALID_ARGUMENT error');
  }
}

// ---------------------------------------------------------------------------------------------
// Examples: one or more per message type
// ---------------------------------------------------------------------------------------------

const examples: ReadonlyArray<readonly [string, RaftMessage]> = [
  [
    'vote',
    {
      type: 'vote',
      from: 'n1',
      to: 'n2',
      term: 3,
      preVote: false,
      lastLogIndex: 10,
      lastLogTerm: 2,
    },
  ],
  [
    'pre-vote',
    { type: 'vote', from: 'n1', to: 'n2', term: 4, preVote: true, lastLogIndex: 0, lastLogTerm: 0 },
  ],
  [
    'voteResponse granted',
    { type: 'voteResponse', from: 'n2', to: 'n1', term: 3, preVote: false, granted: true },
  ],
  [
    'voteResponse pre-vote refused',
    { type: 'voteResponse', from: 'n2', to: 'n1', term: 3, preVote: true, granted: false },
  ],
  [
    'append, empty',
    {
      type: 'append',
      from: 'n1',
      to: 'n2',
      term: 5,
      prevIndex: 7,
      prevTerm: 4,
      entries: [],
      commit: 6,
    },
  ],
  [
    'append, mixed kinds and terms',
    {
      type: 'append',
      from: 'n1',
      to: 'n2',
      term: 5,
      prevIndex: 7,
      prevTerm: 4,
      entries: entries(8, [
        [4, 'command', data(1, 2, 3)],
        [5, 'noop', data()],
        [5, 'command', new Uint8Array(300).fill(7)],
        [5, 'membership', data(9)],
        [2, 'command', data(0)],
      ]),
      commit: 8,
    },
  ],
  [
    'append near MAX_SAFE_INTEGER',
    {
      type: 'append',
      from: 'n1',
      to: 'n2',
      term: MAX,
      prevIndex: MAX - 2,
      prevTerm: MAX,
      entries: entries(MAX - 1, [
        [MAX, 'command', data(1)],
        [MAX, 'noop', data()],
      ]),
      commit: MAX,
    },
  ],
  [
    'appendResponse success',
    { type: 'appendResponse', from: 'n2', to: 'n1', term: 5, success: true, matchIndex: 12 },
  ],
  [
    'appendResponse with conflict',
    {
      type: 'appendResponse',
      from: 'n2',
      to: 'n1',
      term: 5,
      success: false,
      matchIndex: 7,
      conflict: { index: 3, term: 0 },
    },
  ],
  [
    'appendResponse with huge conflict',
    {
      type: 'appendResponse',
      from: 'n2',
      to: 'n1',
      term: MAX,
      success: false,
      matchIndex: MAX,
      conflict: { index: MAX, term: MAX },
    },
  ],
  ['heartbeat', { type: 'heartbeat', from: 'n1', to: 'n2', term: 5, commit: 2 ** 40, round: 7 }],
  ['heartbeatResponse', { type: 'heartbeatResponse', from: 'n2', to: 'n1', term: 0, round: 0 }],
  [
    'propose',
    {
      type: 'propose',
      from: 'n3',
      to: 'n1',
      term: 5,
      session: 2 ** 47 + 3,
      requestId: 42,
      data: data(0xde, 0xad),
    },
  ],
  [
    'propose, empty data',
    { type: 'propose', from: 'n3', to: 'n1', term: 5, session: 0, requestId: MAX, data: data() },
  ],
  [
    'proposeResponse accepted',
    {
      type: 'proposeResponse',
      from: 'n1',
      to: 'n3',
      term: 5,
      session: 9,
      requestId: 42,
      index: 99,
      entryTerm: 5,
    },
  ],
  [
    'proposeResponse rejected, no leader',
    {
      type: 'proposeResponse',
      from: 'n1',
      to: 'n3',
      term: 5,
      session: 9,
      requestId: 42,
      index: 0,
      entryTerm: 0,
      rejected: { leaderId: null, reason: 'notLeader' },
    },
  ],
  [
    'proposeResponse rejected, leader hint',
    {
      type: 'proposeResponse',
      from: 'n1',
      to: 'n3',
      term: 5,
      session: MAX,
      requestId: 1,
      index: 0,
      entryTerm: 0,
      rejected: { leaderId: 'n2', reason: 'entryTooLarge' },
    },
  ],
  [
    'unicode ids',
    { type: 'heartbeat', from: 'nœud-é', to: '节点-🦀-𝄞', term: 1, commit: 0, round: 0 },
  ],
  ['empty ids', { type: 'heartbeatResponse', from: '', to: '', term: 1, round: 1 }],
  [
    'unicode leader hint',
    {
      type: 'proposeResponse',
      from: 'ü',
      to: '日本',
      term: 1,
      session: 0,
      requestId: 0,
      index: 0,
      entryTerm: 0,
      rejected: { leaderId: '👑', reason: 'dropped' },
    },
  ],
  [
    'installSnapshot, first chunk, voters and learners',
    {
      type: 'installSnapshot',
      from: 'n1',
      to: 'n4',
      term: 6,
      meta: {
        index: 1200,
        term: 5,
        membership: {
          members: [
            { id: 'n1', address: '10.0.0.1:7000', voter: true },
            { id: 'n2', address: '10.0.0.2:7000', voter: true },
            { id: 'n3', address: '10.0.0.3:7000', voter: true },
            { id: 'n4', address: '10.0.0.4:7000', voter: false },
          ],
        },
      },
      size: 1000,
      offset: 0,
      data: new Uint8Array(300).fill(0x5a),
    },
  ],
  [
    'installSnapshot, last chunk',
    {
      type: 'installSnapshot',
      from: 'n1',
      to: 'n4',
      term: 6,
      meta: { index: 1200, term: 5, membership: MEMBERSHIP },
      size: 1000,
      offset: 700,
      data: new Uint8Array(300).fill(0xa5),
    },
  ],
  [
    'installSnapshot, empty snapshot',
    {
      type: 'installSnapshot',
      from: 'n1',
      to: 'n2',
      term: 1,
      meta: {
        index: 0,
        term: 0,
        membership: { members: [{ id: 'n1', address: '', voter: true }] },
      },
      size: 0,
      offset: 0,
      data: data(),
    },
  ],
  [
    'installSnapshot near MAX_SAFE_INTEGER',
    {
      type: 'installSnapshot',
      from: 'n1',
      to: 'n2',
      term: MAX,
      meta: { index: MAX, term: MAX, membership: MEMBERSHIP },
      size: MAX,
      offset: MAX - 2,
      data: data(1, 2),
    },
  ],
  [
    'installSnapshot, empty chunk at the very end',
    {
      type: 'installSnapshot',
      from: 'n1',
      to: 'n2',
      term: 3,
      meta: { index: 2 ** 52, term: 2, membership: { members: [] } },
      size: MAX,
      offset: MAX,
      data: data(),
    },
  ],
  [
    'installSnapshot, membership strings that JSON escapes',
    {
      type: 'installSnapshot',
      from: 'n1',
      to: 'n2',
      term: 3,
      meta: {
        index: 9,
        term: 2,
        membership: {
          members: [
            { id: 'q"\\/\n\t\u0000\u001f\u007f', address: 'é🦀', voter: true },
            { id: '\u2028\u2029', address: '<&>', voter: false },
          ],
        },
      },
      size: 10,
      offset: 9,
      data: data(0xff),
    },
  ],
  [
    'installSnapshotResponse, in progress',
    {
      type: 'installSnapshotResponse',
      from: 'n4',
      to: 'n1',
      term: 6,
      index: 1200,
      snapshotTerm: 5,
      nextOffset: 300,
      done: false,
    },
  ],
  [
    'installSnapshotResponse, start over',
    {
      type: 'installSnapshotResponse',
      from: 'n4',
      to: 'n1',
      term: 6,
      index: 1200,
      snapshotTerm: 5,
      nextOffset: 0,
      done: false,
    },
  ],
  [
    'installSnapshotResponse, done near MAX_SAFE_INTEGER',
    {
      type: 'installSnapshotResponse',
      from: 'n4',
      to: 'n1',
      term: MAX,
      index: MAX,
      snapshotTerm: MAX,
      nextOffset: MAX,
      done: true,
    },
  ],
  ['timeoutNow', { type: 'timeoutNow', from: 'n1', to: 'n2', term: 4 }],
  [
    'transfer vote',
    {
      type: 'vote',
      from: 'n2',
      to: 'n3',
      term: 5,
      preVote: false,
      lastLogIndex: 9,
      lastLogTerm: 4,
      transfer: true,
    },
  ],
  [
    'readIndex',
    { type: 'readIndex', from: 'n2', to: 'n1', term: 3, session: 2 ** 45, requestId: 9 },
  ],
  [
    'readIndexResponse',
    {
      type: 'readIndexResponse',
      from: 'n1',
      to: 'n2',
      term: 3,
      session: 1,
      requestId: 9,
      index: 77,
    },
  ],
  [
    'readIndexResponse rejected',
    {
      type: 'readIndexResponse',
      from: 'n1',
      to: 'n2',
      term: 3,
      session: 1,
      requestId: 9,
      index: 0,
      rejected: { leaderId: 'n3' },
    },
  ],
  [
    'readIndexResponse rejected, no leader',
    {
      type: 'readIndexResponse',
      from: 'n1',
      to: 'n2',
      term: 3,
      session: 1,
      requestId: 9,
      index: 0,
      rejected: { leaderId: null },
    },
  ],
];

describe('round trip', () => {
  it.each(examples)('%s', (_name, message) => {
    expect(roundTrip(message)).toStrictEqual(message);
  });

  it('leaves absent optional properties absent', () => {
    const response = roundTrip(examples[7]?.[1] as RaftMessage) as AppendResponseMessage;
    expect('conflict' in response).toBe(false);
    const accepted = roundTrip(examples[14]?.[1] as RaftMessage) as ProposeResponseMessage;
    expect('rejected' in accepted).toBe(false);
  });

  it('round-trips a 1024-entry append', () => {
    const message: AppendMessage = {
      type: 'append',
      from: 'n1',
      to: 'n2',
      term: 9,
      prevIndex: 1_000_000,
      prevTerm: 8,
      entries: Array.from({ length: 1024 }, (_, i) => ({
        index: 1_000_001 + i,
        term: i < 10 ? 8 : 9,
        kind: 'command' as const,
        data: new Uint8Array(100).fill(i & 0xff),
      })),
      commit: 1_000_500,
    };
    // Compared by hand: a deep equality over 1024 typed arrays costs most of a second.
    const decoded = roundTrip(message) as AppendMessage;
    expect({ ...decoded, entries: [] }).toStrictEqual({ ...message, entries: [] });
    expect(decoded.entries).toHaveLength(1024);
    const mismatches = decoded.entries.filter((entry, i) => {
      const expected = message.entries[i] as LogEntry;
      return (
        entry.index !== expected.index ||
        entry.term !== expected.term ||
        entry.kind !== expected.kind ||
        entry.data.length !== expected.data.length ||
        entry.data.some((byte, j) => byte !== expected.data[j])
      );
    });
    expect(mismatches).toEqual([]);
  });

  it('pins the wire format (tags and layout never change within a version)', () => {
    expect(
      encodeMessage({ type: 'heartbeat', from: 'a', to: 'b', term: 1, commit: 300, round: 2 }),
    ).toEqual(bytesOf(header(5), uv(300), 2));
    expect(
      encodeMessage({
        type: 'vote',
        from: 'a',
        to: 'b',
        term: 1,
        preVote: false,
        lastLogIndex: 2,
        lastLogTerm: 1,
        transfer: true,
      }),
    ).toEqual(bytesOf(header(1), 0x02, 2, 1));
    expect(encodeMessage({ type: 'timeoutNow', from: 'a', to: 'b', term: 1 })).toEqual(
      bytesOf(header(11)),
    );
    expect(
      encodeMessage({ type: 'readIndex', from: 'a', to: 'b', term: 1, session: 300, requestId: 7 }),
    ).toEqual(bytesOf(header(12), uv(300), 7));
    expect(
      encodeMessage({
        type: 'readIndexResponse',
        from: 'a',
        to: 'b',
        term: 1,
        session: 5,
        requestId: 7,
        index: 0,
        rejected: { leaderId: 'c' },
      }),
    ).toEqual(bytesOf(header(13), 0x03, 5, 7, 0, ascii('c')));
    expect(
      encodeMessage({
        type: 'vote',
        from: 'a',
        to: 'b',
        term: 1,
        preVote: true,
        lastLogIndex: 2,
        lastLogTerm: 1,
      }),
    ).toEqual(bytesOf(header(1), 0x01, 2, 1));
    expect(
      encodeMessage({
        type: 'voteResponse',
        from: 'a',
        to: 'b',
        term: 1,
        preVote: false,
        granted: true,
      }),
    ).toEqual(bytesOf(header(2), 0x02));
    expect(
      encodeMessage({
        type: 'append',
        from: 'a',
        to: 'b',
        term: 1,
        prevIndex: 4,
        prevTerm: 1,
        entries: entries(5, [
          [1, 'command', data(0xaa)],
          [2, 'noop', data()],
          [2, 'membership', data(0xbb, 0xcc)],
        ]),
        commit: 3,
      }),
    ).toEqual(bytesOf(header(3), 4, 1, 3, 3, [0x00, 1, 0xaa], [0x05, 2, 0], [0x02, 2, 0xbb, 0xcc]));
    expect(
      encodeMessage({
        type: 'appendResponse',
        from: 'a',
        to: 'b',
        term: 1,
        success: false,
        matchIndex: 4,
        conflict: { index: 2, term: 1 },
      }),
    ).toEqual(bytesOf(header(4), 0x02, 4, 2, 1));
    expect(
      encodeMessage({ type: 'heartbeatResponse', from: 'a', to: 'b', term: 1, round: 3 }),
    ).toEqual(bytesOf(header(6), 3));
    expect(
      encodeMessage({
        type: 'propose',
        from: 'a',
        to: 'b',
        term: 1,
        session: 300,
        requestId: 7,
        data: data(1, 2),
      }),
    ).toEqual(bytesOf(header(7), uv(300), 7, 2, 1, 2));
    expect(
      encodeMessage({
        type: 'proposeResponse',
        from: 'a',
        to: 'b',
        term: 1,
        session: 5,
        requestId: 7,
        index: 0,
        entryTerm: 0,
        rejected: { leaderId: 'c', reason: 'entryTooLarge' },
      }),
    ).toEqual(bytesOf(header(8), 0x03, 5, 7, 0, 0, 1, ascii('c')));
    expect(
      encodeMessage({
        type: 'proposeResponse',
        from: 'a',
        to: 'b',
        term: 1,
        session: 5,
        requestId: 7,
        index: 0,
        entryTerm: 0,
        rejected: { leaderId: null, reason: 'staleTerm' },
      }),
    ).toEqual(bytesOf(header(8), 0x01, 5, 7, 0, 0, 3));
    expect(
      encodeMessage({ type: 'heartbeat', from: 'é', to: '🦀', term: MAX, commit: 0, round: 0 }),
    ).toEqual(bytesOf(CODEC_VERSION, 5, 2, 0xc3, 0xa9, 4, 0xf0, 0x9f, 0xa6, 0x80, uv(MAX), 0, 0));
    expect(
      encodeMessage({
        type: 'installSnapshot',
        from: 'a',
        to: 'b',
        term: 1,
        meta: { index: 300, term: 7, membership: MEMBERSHIP },
        size: 2 ** 40,
        offset: 128,
        data: data(0xaa, 0xbb, 0xcc),
      }),
    ).toEqual(
      bytesOf(
        header(9),
        uv(300),
        7,
        ascii(MEMBERSHIP_JSON),
        uv(2 ** 40),
        uv(128),
        3,
        0xaa,
        0xbb,
        0xcc,
      ),
    );
    expect(
      encodeMessage({
        type: 'installSnapshotResponse',
        from: 'a',
        to: 'b',
        term: 1,
        index: 300,
        snapshotTerm: 7,
        nextOffset: 2 ** 40,
        done: true,
      }),
    ).toEqual(bytesOf(header(10), 0x01, uv(300), 7, uv(2 ** 40)));
    expect(
      encodeMessage({
        type: 'installSnapshotResponse',
        from: 'a',
        to: 'b',
        term: 1,
        index: 0,
        snapshotTerm: 0,
        nextOffset: 5,
        done: false,
      }),
    ).toEqual(bytesOf(header(10), 0x00, 0, 0, 5));
  });

  it('writes the membership exactly as encodeMembership does', () => {
    const message = examples[20]?.[1] as InstallSnapshotMessage;
    const membership = Array.from(encodeMembership(message.meta.membership));
    expect(encodeMessage(message)).toEqual(
      bytesOf(
        [CODEC_VERSION, 9, ...ascii('n1'), ...ascii('n4'), 6],
        [...uv(1200), 5, ...uv(membership.length), ...membership],
        [...uv(1000), 0, ...uv(300), ...Array.from(message.data)],
      ),
    );
  });

  it('decodes data as zero-copy plain Uint8Array views, also from an offset view', () => {
    const message = examples[5]?.[1] as AppendMessage;
    const encoded = encodeMessage(message);
    const framed = new Uint8Array(encoded.length + 10);
    framed.set(encoded, 7);
    const decoded = decodeMessage(framed.subarray(7, 7 + encoded.length)) as AppendMessage;
    expect(decoded).toStrictEqual(message);
    for (const entry of decoded.entries) {
      expect(entry.data.buffer).toBe(framed.buffer);
      expect(Object.getPrototypeOf(entry.data)).toBe(Uint8Array.prototype);
    }
    // Writing to the frame shows through the decoded views (documented: do not reuse input).
    const last = decoded.entries[4] as LogEntry;
    framed[last.data.byteOffset] = 0x42;
    expect(last.data[0]).toBe(0x42);
  });

  it('decodes snapshot chunk data as a zero-copy view, also from an offset view', () => {
    const message = examples[21]?.[1] as InstallSnapshotMessage;
    const encoded = encodeMessage(message);
    const framed = new Uint8Array(encoded.length + 10);
    framed.set(encoded, 3);
    const decoded = decodeMessage(framed.subarray(3, 3 + encoded.length)) as InstallSnapshotMessage;
    expect(decoded).toStrictEqual(message);
    expect(decoded.data.buffer).toBe(framed.buffer);
    expect(decoded.data.byteOffset).toBe(3 + encoded.length - message.data.length);
    expect(Object.getPrototypeOf(decoded.data)).toBe(Uint8Array.prototype);
  });

  it('round-trips a snapshot chunk of 1 MiB', () => {
    const chunk = new Uint8Array(1024 * 1024);
    for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 31) & 0xff;
    const message: InstallSnapshotMessage = {
      type: 'installSnapshot',
      from: 'n1',
      to: 'n2',
      term: 4,
      meta: { index: 2 ** 33, term: 4, membership: MEMBERSHIP },
      size: 2 ** 36,
      offset: 2 ** 35,
      data: chunk,
    };
    const decoded = roundTrip(message) as InstallSnapshotMessage;
    expect({ ...decoded, data: null }).toStrictEqual({ ...message, data: null });
    // Compared by hand: a deep equality over a megabyte costs seconds.
    expect(decoded.data.length).toBe(chunk.length);
    expect(decoded.data.findIndex((byte, i) => byte !== chunk[i])).toBe(-1);
  });
});

describe('encoder validation', () => {
  const base = { from: 'a', to: 'b', term: 1 } as const;

  it('rejects integers that are negative, fractional, unsafe or NaN', () => {
    for (const bad of [-1, 1.5, MAX + 1, Number.NaN, Number.POSITIVE_INFINITY]) {
      expectInvalidArgument({ type: 'heartbeat', ...base, commit: bad, round: 0 }, 'commit');
      expectInvalidArgument({ type: 'heartbeat', ...base, commit: 0, round: bad }, 'round');
      expectInvalidArgument({ type: 'heartbeatResponse', ...base, term: bad, round: 0 }, 'term');
      expectInvalidArgument({ type: 'readIndex', ...base, session: bad, requestId: 0 }, 'session');
      expectInvalidArgument(
        { type: 'readIndexResponse', ...base, session: 0, requestId: 0, index: bad },
        'index',
      );
      expectInvalidArgument(
        { type: 'propose', ...base, session: 1, requestId: bad, data: data() },
        'requestId',
      );
      expectInvalidArgument(
        { type: 'propose', ...base, session: bad, requestId: 1, data: data() },
        'session',
      );
    }
  });

  it('rejects entries that do not follow prevIndex contiguously, or unsafe indexes', () => {
    const message: AppendMessage = {
      type: 'append',
      ...base,
      prevIndex: 1,
      prevTerm: 1,
      entries: [
        { index: 2, term: 1, kind: 'command', data: data() },
        { index: 4, term: 1, kind: 'command', data: data() },
      ],
      commit: 0,
    };
    expectInvalidArgument(message, 'contiguous');
    // Contiguous among themselves, but not after prevIndex: the wire cannot say this.
    expectInvalidArgument(
      { ...message, entries: entries(7, [[1, 'command', data()]]) },
      'prevIndex',
    );
    expectInvalidArgument(
      {
        ...message,
        prevIndex: MAX - 1,
        entries: entries(MAX, [
          [1, 'command', data()],
          [1, 'command', data()],
        ]),
      },
      'MAX_SAFE_INTEGER',
    );
  });

  it('rejects unknown entry kinds and message types', () => {
    const message = {
      type: 'append',
      ...base,
      prevIndex: 0,
      prevTerm: 0,
      entries: [{ index: 1, term: 1, kind: 'snapshot', data: data() }],
      commit: 0,
    } as unknown as RaftMessage;
    expectInvalidArgument(message, 'kind');
    expectInvalidArgument({ type: 'bogus', ...base } as unknown as RaftMessage, 'bogus');
  });

  it('rejects invalid integers of snapshot chunks and their responses', () => {
    const chunk: InstallSnapshotMessage = {
      type: 'installSnapshot',
      ...base,
      meta: { index: 1, term: 1, membership: MEMBERSHIP },
      size: 10,
      offset: 0,
      data: data(1),
    };
    const response: InstallSnapshotResponseMessage = {
      type: 'installSnapshotResponse',
      ...base,
      index: 1,
      snapshotTerm: 1,
      nextOffset: 0,
      done: false,
    };
    for (const bad of [-1, 1.5, MAX + 1, Number.NaN, Number.POSITIVE_INFINITY]) {
      expectInvalidArgument({ ...chunk, meta: { ...chunk.meta, index: bad } }, 'meta.index');
      expectInvalidArgument({ ...chunk, meta: { ...chunk.meta, term: bad } }, 'meta.term');
      expectInvalidArgument({ ...chunk, size: bad }, 'size');
      expectInvalidArgument({ ...chunk, offset: bad }, 'offset');
      expectInvalidArgument({ ...response, index: bad }, 'index');
      expectInvalidArgument({ ...response, snapshotTerm: bad }, 'snapshotTerm');
      expectInvalidArgument({ ...response, nextOffset: bad }, 'nextOffset');
    }
  });

  it('rejects a snapshot chunk that runs past its size', () => {
    const chunk: InstallSnapshotMessage = {
      type: 'installSnapshot',
      ...base,
      meta: { index: 1, term: 1, membership: MEMBERSHIP },
      size: 10,
      offset: 8,
      data: data(1, 2),
    };
    expect(roundTrip(chunk)).toStrictEqual(chunk);
    expectInvalidArgument({ ...chunk, data: data(1, 2, 3) }, 'runs past the snapshot size');
    expectInvalidArgument({ ...chunk, offset: 11, data: data() }, 'runs past');
    expectInvalidArgument({ ...chunk, size: 0, offset: 0, data: data(1) }, 'runs past');
    // Near 2^53, where offset + length would round.
    expectInvalidArgument({ ...chunk, size: MAX, offset: MAX, data: data(1) }, 'runs past');
    expectInvalidArgument(
      { ...chunk, size: MAX - 1, offset: MAX - 2, data: data(1, 2) },
      'runs past',
    );
  });

  it('rejects a snapshot membership that would not decode back', () => {
    const chunk: InstallSnapshotMessage = {
      type: 'installSnapshot',
      ...base,
      meta: { index: 1, term: 1, membership: MEMBERSHIP },
      size: 0,
      offset: 0,
      data: data(),
    };
    const withMembership = (membership: unknown): RaftMessage =>
      ({ ...chunk, meta: { ...chunk.meta, membership } }) as RaftMessage;
    expectInvalidArgument(withMembership({}), 'members is not an array');
    expectInvalidArgument(withMembership(null), 'members is not an array');
    expectInvalidArgument(withMembership({ members: 'n1' }), 'members is not an array');
    for (const member of [
      null,
      'n1',
      { id: 1, address: 'x', voter: true },
      { id: 'n1', voter: true },
      { id: 'n1', address: 'x' },
      { id: 'n1', address: 'x', voter: 'yes' },
    ]) {
      expectInvalidArgument(
        withMembership({ members: [{ id: 'ok', address: '', voter: false }, member] }),
        'members[1]',
      );
    }
  });

  it('rejects lone surrogates in node ids', () => {
    expectInvalidArgument(
      { type: 'heartbeatResponse', ...base, from: 'x\ud800', round: 0 },
      'surrogate',
    );
    expectInvalidArgument(
      { type: 'heartbeatResponse', ...base, to: '\udc00y', round: 0 },
      'surrogate',
    );
    expectInvalidArgument(
      {
        type: 'proposeResponse',
        ...base,
        session: 0,
        requestId: 0,
        index: 0,
        entryTerm: 0,
        rejected: { leaderId: '\ud83d', reason: 'notLeader' },
      },
      'surrogate',
    );
  });
});

describe('decoder rejects malformed input with CodecError', () => {
  it('throws at every proper prefix of every example', () => {
    for (const [, message] of examples) {
      const encoded = encodeMessage(message);
      for (let length = 0; length < encoded.length; length++) {
        expectCodecError(encoded.subarray(0, length));
      }
    }
  });

  it('rejects a wrong version byte', () => {
    const encoded = encodeMessage(examples[0]?.[1] as RaftMessage);
    for (const version of [0, 1, 2, 4, 255]) {
      const copy = encoded.slice();
      copy[0] = version;
      expect(expectCodecError(copy, 'version').offset).toBe(0);
    }
  });

  it('rejects unknown tags', () => {
    for (const tag of [0, 14, 42, 255]) {
      expect(expectCodecError(bytesOf(header(tag), 0, 0, 0, 0), 'tag').offset).toBe(1);
    }
  });

  it('rejects trailing bytes', () => {
    for (const [, message] of examples) {
      const encoded = encodeMessage(message);
      const error = expectCodecError(bytesOf(Array.from(encoded), 0), 'trailing');
      expect(error.offset).toBe(encoded.length);
    }
  });

  it('rejects huge declared lengths without allocating them', () => {
    // 2^40 bytes of proposal data, 2^50 bytes of node id, 2^40 bytes of entry data.
    expectCodecError(bytesOf(header(7), 1, 1, uv(2 ** 40), 1, 2, 3), 'exceeds the remaining');
    expectCodecError(bytesOf(CODEC_VERSION, 5, uv(2 ** 50), 0x61), 'exceeds the remaining');
    expectCodecError(
      bytesOf(header(3), 0, 0, 0, 1, 0x00, uv(2 ** 40), 1, 2),
      'exceeds the remaining',
    );
  });

  it('bounds the entry count by the remaining input and by maxEntries', () => {
    // 2^50 entries declared, a few bytes present.
    const huge = bytesOf(header(3), 0, 0, 0, uv(2 ** 50), 0, 0);
    expectCodecError(huge, 'maxEntries');
    expectCodecError(huge, 'remaining input', { maxEntries: MAX });
    // 3 entries declared, room for 2.
    expectCodecError(bytesOf(header(3), 0, 0, 0, 3, [0, 0], [0, 0]), 'remaining input');
    const many: AppendMessage = {
      type: 'append',
      from: 'a',
      to: 'b',
      term: 1,
      prevIndex: 0,
      prevTerm: 1,
      entries: entries(1, [
        [1, 'noop', data()],
        [1, 'noop', data()],
        [1, 'noop', data()],
      ]),
      commit: 0,
    };
    const encoded = encodeMessage(many);
    expect(decodeMessage(encoded, { maxEntries: 3 })).toStrictEqual(many);
    expect(() => decodeMessage(encoded, { maxEntries: 2 })).toThrow(/maxEntries/);
  });

  it('rejects inputs longer than maxBytes before parsing', () => {
    const encoded = encodeMessage(examples[0]?.[1] as RaftMessage);
    expect(decodeMessage(encoded, { maxBytes: encoded.length })).toStrictEqual(examples[0]?.[1]);
    expect(() => decodeMessage(encoded, { maxBytes: encoded.length - 1 })).toThrow(CodecError);
    expectCodecError(new Uint8Array(64 * 1024 * 1024 + 1), 'maxBytes');
  });

  it('rejects over-long, non-minimal and unsafe varints', () => {
    expectCodecError(
      bytesOf(header(5), [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]),
      'longer',
    );
    expectCodecError(
      bytesOf(header(5), [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10]),
      'MAX_SAFE',
    );
    expectCodecError(
      bytesOf(header(5), [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]),
      'MAX_SAFE',
    );
    expectCodecError(bytesOf(header(5), [0x81, 0x00]), 'non-minimal');
    expectCodecError(bytesOf(header(5), [0x80, 0x80, 0x00]), 'non-minimal');
    // The largest accepted value.
    expect(decodeMessage(bytesOf(header(5), uv(MAX), 0))).toMatchObject({ commit: MAX });
    expect(uv(MAX)).toHaveLength(8);
  });

  it('rejects ill-formed UTF-8 in node ids', () => {
    const cases: ReadonlyArray<readonly number[]> = [
      [0x80], // lone continuation byte
      [0xc0, 0x80], // overlong NUL
      [0xc1, 0xbf], // overlong
      [0xe0, 0x80, 0x80], // overlong 3-byte
      [0xf0, 0x80, 0x80, 0x80], // overlong 4-byte
      [0xed, 0xa0, 0x80], // UTF-16 surrogate U+D800
      [0xed, 0xbf, 0xbf], // UTF-16 surrogate U+DFFF
      [0xf4, 0x90, 0x80, 0x80], // U+110000
      [0xf5, 0x80, 0x80, 0x80], // invalid lead
      [0xff], // invalid lead
      [0xc3], // truncated 2-byte
      [0xe2, 0x82], // truncated 3-byte
      [0xc3, 0x41], // bad continuation
      [0x41, 0xf0, 0x9f, 0xa6], // truncated 4-byte after ASCII
    ];
    for (const utf8 of cases) {
      expectCodecError(bytesOf(CODEC_VERSION, 6, uv(utf8.length), utf8, ascii('b'), 1, 0), 'UTF-8');
    }
    // The boundaries that ARE valid.
    const valid = bytesOf(
      CODEC_VERSION,
      6,
      4,
      [0xf4, 0x8f, 0xbf, 0xbf],
      3,
      [0xef, 0xbf, 0xbf],
      1,
      0,
    );
    expect(decodeMessage(valid)).toStrictEqual({
      type: 'heartbeatResponse',
      from: '\u{10ffff}',
      to: '\uffff',
      term: 1,
      round: 0,
    });
  });

  it('rejects unknown flag bits', () => {
    expectCodecError(bytesOf(header(1), 0x04, 0, 0), 'unknown bits');
    expectCodecError(bytesOf(header(13), 0x04, 0, 0, 0), 'unknown bits');
    expectCodecError(bytesOf(header(13), 0x02, 0, 0, 0, 1, ascii('c')), 'not rejected');
    expectCodecError(bytesOf(header(2), 0x04), 'unknown bits');
    expectCodecError(bytesOf(header(4), 0x80, 0), 'unknown bits');
    expectCodecError(bytesOf(header(8), 0x04, 0, 0, 0), 'unknown bits');
    expectCodecError(bytesOf(header(8), 0x02, 0, 0, 0, ascii('c')), 'not rejected');
  });

  it('rejects an unknown rejection reason of proposeResponse', () => {
    expect(decodeMessage(bytesOf(header(8), 0x01, 0, 0, 0, 0, 2))).toMatchObject({
      rejected: { leaderId: null, reason: 'dropped' },
    });
    expectCodecError(bytesOf(header(8), 0x01, 0, 0, 0, 0, 4), 'rejection reason');
    expectCodecError(bytesOf(header(8), 0x01, 0, 0, 0, 0), 'truncated');
  });

  it('rejects invalid entry headers and redundant terms', () => {
    const append = (...entryBytes: number[]) => bytesOf(header(3), 0, 1, 0, 1, entryBytes);
    expect(decodeMessage(append(0x02, 0))).toMatchObject({ entries: [{ kind: 'membership' }] });
    expectCodecError(append(0x03, 0), 'invalid header'); // kind 3
    expectCodecError(append(0x08, 0), 'invalid header'); // reserved bit
    expectCodecError(append(0x80, 0), 'invalid header');
    // prevTerm is 1, so an explicit term of 1 on the first entry is redundant.
    expectCodecError(append(0x04, 1, 0), 'repeats the previous term');
    expect(decodeMessage(append(0x04, 2, 0))).toMatchObject({ entries: [{ index: 1, term: 2 }] });
  });

  it('rejects a last entry index above MAX_SAFE_INTEGER', () => {
    expectCodecError(bytesOf(header(3), uv(MAX - 1), 0, 0, 2, [0, 0], [0, 0]), 'MAX_SAFE');
    expect(decodeMessage(bytesOf(header(3), uv(MAX - 1), 0, 0, 1, [0, 0]))).toMatchObject({
      entries: [{ index: MAX }],
    });
  });

  it('rejects a snapshot chunk that runs past its size', () => {
    const membership = Array.from(encodeMembership(MEMBERSHIP));
    const chunk = (size: number, offset: number, ...bytes: number[]) =>
      bytesOf(header(9), snapshotBody(membership, size, offset, bytes));
    expect(decodeMessage(chunk(4, 2, 0xaa, 0xbb))).toMatchObject({ size: 4, offset: 2 });
    expect(decodeMessage(chunk(MAX, MAX))).toMatchObject({ size: MAX, offset: MAX });
    const offsetAt = header(9).length + 2 + uv(membership.length).length + membership.length + 1;
    const dataAt = offsetAt + 1;
    expect(expectCodecError(chunk(4, 3, 0xaa, 0xbb), 'runs past the snapshot size').offset).toBe(
      dataAt,
    );
    expect(expectCodecError(chunk(4, 5), 'exceeds the snapshot size').offset).toBe(offsetAt);
    expect(expectCodecError(chunk(0, 0, 0xaa), 'runs past').offset).toBe(dataAt);
    expectCodecError(
      bytesOf(header(9), snapshotBody(membership, MAX - 1, MAX - 2, [1, 2])),
      'runs past',
    );
    expectCodecError(bytesOf(header(9), snapshotBody(membership, MAX, MAX, [1])), 'runs past');
  });

  it('rejects malformed or non-canonical snapshot memberships at their offset', () => {
    const at = header(9).length + 2;
    const chunk = (json: readonly number[]) => bytesOf(header(9), snapshotBody(json, 0, 0, []));
    const text = (value: string): number[] => Array.from(utf8Encode(value));
    const canonical = '{"v":1,"members":[{"id":"a","address":"x:1","voter":true}]}';
    expect(decodeMessage(chunk(text(canonical)))).toMatchObject({
      meta: { membership: { members: [{ id: 'a', address: 'x:1', voter: true }] } },
    });
    const malformed: ReadonlyArray<readonly number[]> = [
      [], // empty
      text('not json'),
      text('null'),
      text('[]'),
      text('{"v":2,"members":[]}'),
      text('{"v":1}'),
      text('{"v":1,"members":{}}'),
      text('{"v":1,"members":[null]}'),
      text('{"v":1,"members":[{"id":"a","address":"x","voter":1}]}'),
      text('{"v":1,"members":[{"id":"a","voter":true}]}'),
      text('{"v":1,"members":[{"id":7,"address":"x","voter":true}]}'),
      [0xff], // ill-formed UTF-8
      [...text('{"v":1,"members":[{"id":"'), 0xc0, 0x80, ...text('","address":"","voter":true}]}')],
    ];
    for (const json of malformed) {
      const error = expectCodecError(chunk(json), 'malformed snapshot membership');
      expect(error.offset).toBe(at + uv(json.length).length);
      expect(error.cause).toBeInstanceOf(Error);
    }
    // Each of these decodes to a valid membership, but not from encodeMembership's bytes, so
    // re-encoding could not reproduce them. Each pairs with where it first differs.
    const nonCanonical: ReadonlyArray<readonly [string, number]> = [
      [' {"v":1,"members":[]}', 0],
      ['{"v":1,"members":[]} ', 20],
      ['{"v":1, "members":[]}', 7],
      ['{"members":[],"v":1}', 2],
      ['{"v":1.0,"members":[]}', 6],
      ['{"v":1,"members":[],"v":1}', 19],
      ['{"v":1,"members":[],"extra":0}', 19],
      [canonical.replace('"id":"a"', '"id":"\\u0061"'), 25],
      [canonical.replace('"voter":true}', '"voter":true,"x":1}'), 56],
      [canonical.replace('{"id":"a","address":"x:1"', '{"address":"x:1","id":"a"'), 20],
    ];
    for (const [json, differsAt] of nonCanonical) {
      const bytes = text(json);
      const error = expectCodecError(chunk(bytes), 'membership');
      expect(error.offset, json).toBe(at + uv(bytes.length).length + differsAt);
    }
    // A byte-order mark, which a UTF-8 decoder might silently drop.
    const bom = [0xef, 0xbb, 0xbf, ...text('{"v":1,"members":[]}')];
    expect(expectCodecError(chunk(bom), 'membership').offset).toBe(at + 1);
  });

  it('bounds snapshot chunks by maxBytes and their lengths by the remaining input', () => {
    const message = examples[20]?.[1] as InstallSnapshotMessage;
    const encoded = encodeMessage(message);
    expect(decodeMessage(encoded, { maxBytes: encoded.length })).toStrictEqual(message);
    expectCodecError(encoded, 'maxBytes', { maxBytes: encoded.length - 1 });
    const membership = Array.from(encodeMembership(MEMBERSHIP));
    // 2^40 bytes of membership, then 2^40 bytes of chunk data, declared and absent.
    expectCodecError(bytesOf(header(9), 7, 2, uv(2 ** 40), 0x7b), 'exceeds the remaining');
    expectCodecError(
      bytesOf(header(9), 7, 2, uv(membership.length), membership, uv(2 ** 41), 0, uv(2 ** 40), 1),
      'exceeds the remaining',
    );
  });

  it('rejects unknown flag bits of installSnapshotResponse', () => {
    expect(decodeMessage(bytesOf(header(10), 0x01, 0, 0, 0))).toMatchObject({ done: true });
    for (const flags of [0x02, 0x03, 0x80, 0xff]) {
      expect(expectCodecError(bytesOf(header(10), flags, 0, 0, 0), 'unknown bits').offset).toBe(
        header(10).length,
      );
    }
  });

  it('rejects a non-Uint8Array input', () => {
    expect(() => decodeMessage([1, 5] as unknown as Uint8Array)).toThrow(CodecError);
  });
});

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

const safeNat = fc.oneof(
  fc.nat({ max: 200 }),
  fc.nat(),
  fc.maxSafeNat(),
  fc.constantFrom(0, 127, 128, 16_383, 16_384, 2 ** 32, 2 ** 49, MAX),
);
const nodeId = fc.oneof(
  fc.constantFrom('n1', 'n2', 'node-3', ''),
  fc.string({ unit: 'binary', maxLength: 12 }),
);
const payload = fc.uint8Array({ maxLength: 48 });
const envelope = fc.record({ from: nodeId, to: nodeId, term: safeNat });

const voteArb = fc
  .record(
    {
      env: envelope,
      preVote: fc.boolean(),
      lastLogIndex: safeNat,
      lastLogTerm: safeNat,
      transfer: fc.constant(true as const),
    },
    { requiredKeys: ['env', 'preVote', 'lastLogIndex', 'lastLogTerm'], noNullPrototype: true },
  )
  .map(({ env, ...rest }): RaftMessage => ({ type: 'vote', ...env, ...rest }));

const voteResponseArb = fc
  .record({ env: envelope, preVote: fc.boolean(), granted: fc.boolean() })
  .map(({ env, ...rest }): RaftMessage => ({ type: 'voteResponse', ...env, ...rest }));

const appendArb = fc
  .record({
    env: envelope,
    prevIndex: safeNat,
    prevTerm: safeNat,
    commit: safeNat,
    entries: fc.array(
      fc.record({
        // Small terms repeat often, exercising the omitted-term path.
        term: fc.oneof(fc.nat({ max: 3 }), safeNat),
        kind: fc.constantFrom<EntryKind>('command', 'noop', 'membership'),
        data: payload,
      }),
      { maxLength: 12 },
    ),
  })
  .map(({ env, prevIndex, prevTerm, commit, entries: specs }): RaftMessage => {
    const first = Math.min(prevIndex, MAX - specs.length);
    return {
      type: 'append',
      ...env,
      prevIndex: first,
      prevTerm,
      entries: specs.map((spec, i) => ({ index: first + 1 + i, ...spec })),
      commit,
    };
  });

const appendResponseArb = fc
  .record(
    {
      env: envelope,
      success: fc.boolean(),
      matchIndex: safeNat,
      conflict: fc.record({ index: safeNat, term: safeNat }, { noNullPrototype: true }),
    },
    { requiredKeys: ['env', 'success', 'matchIndex'], noNullPrototype: true },
  )
  .map(({ env, ...rest }): RaftMessage => ({ type: 'appendResponse', ...env, ...rest }));

const heartbeatArb = fc
  .record({ env: envelope, commit: safeNat, round: safeNat })
  .map(({ env, commit, round }): RaftMessage => ({ type: 'heartbeat', ...env, commit, round }));

const heartbeatResponseArb = fc
  .record({ env: envelope, round: safeNat })
  .map(({ env, round }): RaftMessage => ({ type: 'heartbeatResponse', ...env, round }));

const timeoutNowArb = envelope.map((env): RaftMessage => ({ type: 'timeoutNow', ...env }));

const readIndexArb = fc
  .record({ env: envelope, session: safeNat, requestId: safeNat })
  .map(({ env, ...rest }): RaftMessage => ({ type: 'readIndex', ...env, ...rest }));

const readIndexResponseArb = fc
  .record(
    {
      env: envelope,
      session: safeNat,
      requestId: safeNat,
      index: safeNat,
      rejected: fc.record(
        { leaderId: fc.option(fc.string(), { nil: null }) },
        { noNullPrototype: true },
      ),
    },
    { requiredKeys: ['env', 'session', 'requestId', 'index'], noNullPrototype: true },
  )
  .map(({ env, ...rest }): RaftMessage => ({ type: 'readIndexResponse', ...env, ...rest }));

const proposeArb = fc
  .record({ env: envelope, session: safeNat, requestId: safeNat, data: payload })
  .map(({ env, ...rest }): RaftMessage => ({ type: 'propose', ...env, ...rest }));

const proposeResponseArb = fc
  .record(
    {
      env: envelope,
      session: safeNat,
      requestId: safeNat,
      index: safeNat,
      entryTerm: safeNat,
      rejected: fc.record(
        {
          leaderId: fc.option(nodeId, { nil: null }),
          reason: fc.constantFrom(
            'notLeader' as const,
            'entryTooLarge' as const,
            'dropped' as const,
            'staleTerm' as const,
          ),
        },
        { noNullPrototype: true },
      ),
    },
    { requiredKeys: ['env', 'session', 'requestId', 'index', 'entryTerm'], noNullPrototype: true },
  )
  .map(({ env, ...rest }): RaftMessage => ({ type: 'proposeResponse', ...env, ...rest }));

const membershipArb: fc.Arbitrary<Membership> = fc.record(
  {
    members: fc.array(
      fc.record(
        {
          id: nodeId,
          address: fc.oneof(
            fc.constant('127.0.0.1:7000'),
            fc.string({ unit: 'binary', maxLength: 12 }),
          ),
          voter: fc.boolean(),
        },
        { noNullPrototype: true },
      ),
      { maxLength: 5 },
    ),
  },
  { noNullPrototype: true },
);

const installSnapshotArb = fc
  .record({
    env: envelope,
    index: safeNat,
    term: safeNat,
    membership: membershipArb,
    offset: safeNat,
    rest: safeNat,
    data: payload,
  })
  .map(({ env, index, term, membership, offset: at, rest, data: chunk }): RaftMessage => {
    const offset = Math.min(at, MAX - chunk.length);
    const end = offset + chunk.length;
    // Often exactly the last chunk (rest 0), otherwise anything up to MAX.
    const size = end + Math.min(rest, MAX - end);
    return {
      type: 'installSnapshot',
      ...env,
      meta: { index, term, membership },
      size,
      offset,
      data: chunk,
    };
  });

const installSnapshotResponseArb = fc
  .record({
    env: envelope,
    index: safeNat,
    snapshotTerm: safeNat,
    nextOffset: safeNat,
    done: fc.boolean(),
  })
  .map(({ env, ...rest }): RaftMessage => ({ type: 'installSnapshotResponse', ...env, ...rest }));

const messageArb: fc.Arbitrary<RaftMessage> = fc.oneof(
  voteArb,
  voteResponseArb,
  appendArb,
  appendResponseArb,
  heartbeatArb,
  heartbeatResponseArb,
  timeoutNowArb,
  readIndexArb,
  readIndexResponseArb,
  proposeArb,
  proposeResponseArb,
  installSnapshotArb,
  installSnapshotResponseArb,
);

/** One way to damage a valid encoding. Positions are taken modulo the encoding's length. */
const mutationArb = fc.oneof(
  fc.record({
    kind: fc.constant('flip' as const),
    flips: fc.array(fc.tuple(fc.nat(), fc.nat(7)), { minLength: 1, maxLength: 4 }),
  }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({
    kind: fc.constant('append' as const),
    extra: fc.uint8Array({ minLength: 1, maxLength: 16 }),
  }),
  fc.record({
    kind: fc.constant('length' as const),
    at: fc.nat(),
    replace: fc.nat(3),
    value: fc.oneof(
      fc.nat({ max: 300 }),
      fc.maxSafeNat(),
      fc.constantFrom(2 ** 40, 2 ** 53, 2 ** 56),
    ),
  }),
  fc.record({ kind: fc.constant('byte' as const), at: fc.nat(), value: fc.nat(255) }),
);

function mutate(
  bytes: Uint8Array,
  mutation: typeof mutationArb extends fc.Arbitrary<infer M> ? M : never,
): Uint8Array {
  const out = Array.from(bytes);
  switch (mutation.kind) {
    case 'flip':
      for (const [at, bit] of mutation.flips) {
        const i = at % out.length;
        out[i] = (out[i] as number) ^ (1 << bit);
      }
      break;
    case 'truncate':
      out.length = mutation.at % out.length;
      break;
    case 'append':
      out.push(...mutation.extra);
      break;
    case 'length':
      // Splice in a (possibly huge or over-long) varint where some field used to be.
      out.splice(mutation.at % out.length, mutation.replace, ...uv(mutation.value));
      break;
    case 'byte':
      out[mutation.at % out.length] = mutation.value;
      break;
  }
  return Uint8Array.from(out);
}

describe('properties', () => {
  it('decode(encode(m)) deep-equals m for arbitrary valid messages', () => {
    fc.assert(
      fc.property(messageArb, (message) => {
        const encoded = encodeMessage(message);
        expect(encoded.length).toBe(encodedSize(message));
        expect(decodeMessage(encoded)).toStrictEqual(message);
      }),
      { numRuns: 2000 },
    );
  });

  it('arbitrary bytes decode to a message or throw CodecError', () => {
    const headerArb = fc.oneof(
      fc.constant<number[]>([]),
      fc.tuple(fc.constantFrom(CODEC_VERSION, CODEC_VERSION, 0, 2), fc.nat(12)),
    );
    fc.assert(
      fc.property(headerArb, fc.uint8Array({ maxLength: 64 }), (prefix, rest) => {
        decodeOrCodecError(bytesOf(prefix, Array.from(rest)));
      }),
      { numRuns: 2000 },
    );
  });

  it('mutated valid encodings decode to a message or throw CodecError', () => {
    fc.assert(
      fc.property(messageArb, mutationArb, (message, mutation) => {
        decodeOrCodecError(mutate(encodeMessage(message), mutation));
      }),
      { numRuns: 2000 },
    );
  });
});
