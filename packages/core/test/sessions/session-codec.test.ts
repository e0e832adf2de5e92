/**
 * sessionCodec: the binary envelope of session commands. Round trips (examples and a property),
 * the exact layout, encode-time validation, and malformed input.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { CommandCodec, SessionCommand } from '../../src/index.js';
import {
  CodecError,
  jsonCodec,
  MAX_CLIENT_ID_BYTES,
  RaftError,
  sessionCodec,
  utf8Codec,
} from '../../src/index.js';

const codec = sessionCodec(utf8Codec);

function bytes(...parts: (number | string)[]): Uint8Array {
  const out: number[] = [];
  for (const p of parts) {
    if (typeof p === 'number') out.push(p);
    else for (const c of p) out.push(c.charCodeAt(0));
  }
  return Uint8Array.from(out);
}

function codecErrorOf(input: Uint8Array): CodecError {
  try {
    codec.decode(input);
  } catch (err) {
    if (err instanceof CodecError) return err;
    throw err;
  }
  throw new Error(`decoded ${Array.from(input).join(',')} without an error`);
}

describe('round trips', () => {
  it('has the documented layout: version, clientId, seq, ack, then the inner bytes', () => {
    expect(codec.encode({ clientId: 'c1', seq: 5, ack: 3, command: 'hi' })).toEqual(
      bytes(1, 2, 'c1', 5, 3, 'hi'),
    );
    // seq 300 is two varint bytes (0xac 0x02); no ack is ack 0.
    expect(codec.encode({ clientId: 'c', seq: 300, command: '' })).toEqual(
      bytes(1, 1, 'c', 0xac, 0x02, 0),
    );
  });

  it('gives back what it was given', () => {
    const cases: SessionCommand<string>[] = [
      { clientId: 'c', seq: 1, command: '' },
      { clientId: 'client-ü-😀', seq: 2, ack: 1, command: 'set x = 1' },
      { clientId: 'x'.repeat(MAX_CLIENT_ID_BYTES), seq: 127, ack: 126, command: 'a' },
      { clientId: 'é'.repeat(MAX_CLIENT_ID_BYTES / 2), seq: 128, command: 'b' },
      {
        clientId: 'max',
        seq: Number.MAX_SAFE_INTEGER,
        ack: Number.MAX_SAFE_INTEGER - 1,
        command: 'z',
      },
    ];
    for (const c of cases) expect(codec.decode(codec.encode(c))).toEqual(c);
  });

  it('ack 0 and no ack encode the same, and decode to no ack property', () => {
    const withZero = codec.encode({ clientId: 'c', seq: 1, ack: 0, command: 'x' });
    expect(withZero).toEqual(codec.encode({ clientId: 'c', seq: 1, command: 'x' }));
    expect(codec.decode(withZero)).toStrictEqual({ clientId: 'c', seq: 1, command: 'x' });
  });

  it('round-trips any valid command (property), and re-encodes decoded bytes identically', () => {
    const json: CommandCodec<SessionCommand<unknown>> = sessionCodec(jsonCodec<unknown>());
    const command = fc
      .record({
        clientId: fc
          .string({ unit: 'grapheme', minLength: 1, maxLength: 40 })
          .filter((s) => utf8Codec.encode(s).byteLength <= MAX_CLIENT_ID_BYTES),
        seq: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
        command: fc.jsonValue(),
      })
      .chain(
        (c): fc.Arbitrary<SessionCommand<unknown>> =>
          c.seq === 1
            ? fc.constant(c)
            : fc
                .option(fc.integer({ min: 1, max: c.seq - 1 }), { nil: undefined })
                .map((ack) => (ack === undefined ? c : { ...c, ack })),
      );
    fc.assert(
      fc.property(command, (c) => {
        const encoded = json.encode(c);
        const decoded = json.decode(encoded);
        expect(decoded).toEqual(JSON.parse(JSON.stringify(c)));
        expect(json.encode(decoded)).toEqual(encoded);
      }),
      { seed: 42, numRuns: 300 },
    );
  });

  it('gives the inner codec only the command bytes', () => {
    const seen: number[][] = [];
    const inner: CommandCodec<string> = {
      encode: (s) => utf8Codec.encode(s),
      decode: (b) => {
        seen.push(Array.from(b));
        return utf8Codec.decode(b);
      },
    };
    const c = sessionCodec(inner);
    c.decode(c.encode({ clientId: 'id', seq: 9, command: 'AB' }));
    expect(seen).toEqual([[65, 66]]);
  });
});

describe('encode refuses an invalid envelope', () => {
  it('with INVALID_ARGUMENT, outcome notApplied', () => {
    const bad: unknown[] = [
      { clientId: '', seq: 1, command: '' },
      { clientId: 'x'.repeat(MAX_CLIENT_ID_BYTES + 1), seq: 1, command: '' },
      { clientId: 'é'.repeat(MAX_CLIENT_ID_BYTES / 2 + 1), seq: 1, command: '' },
      { clientId: '\ud800', seq: 1, command: '' },
      { clientId: 42, seq: 1, command: '' },
      { clientId: 'c', seq: 0, command: '' },
      { clientId: 'c', seq: -1, command: '' },
      { clientId: 'c', seq: 1.5, command: '' },
      { clientId: 'c', seq: Number.NaN, command: '' },
      { clientId: 'c', seq: Number.MAX_SAFE_INTEGER + 1, command: '' },
      { clientId: 'c', seq: '1', command: '' },
      { clientId: 'c', seq: 2, ack: 2, command: '' },
      { clientId: 'c', seq: 2, ack: -1, command: '' },
      { clientId: 'c', seq: 2, ack: 0.5, command: '' },
      undefined,
    ];
    for (const c of bad) {
      let thrown: unknown;
      try {
        codec.encode(c as SessionCommand<string>);
      } catch (err) {
        thrown = err;
      }
      expect(RaftError.is(thrown, 'INVALID_ARGUMENT'), String(JSON.stringify(c))).toBe(true);
      expect((thrown as RaftError).outcome).toBe('notApplied');
    }
  });

  it("passes the inner codec's errors on", () => {
    expect(() => codec.encode({ clientId: 'c', seq: 1, command: 5 as unknown as string })).toThrow(
      /expected a string/,
    );
  });
});

describe('decode rejects malformed bytes with a CodecError at the offending offset', () => {
  const cases: [string, Uint8Array, number, RegExp][] = [
    ['empty input', bytes(), 0, /version: unexpected end/],
    ['an unknown version', bytes(2, 1, 'c', 1, 0), 0, /version 2/],
    ['JSON instead of the envelope', bytes('{"seq":1}'), 0, /version 123/],
    ['a truncated clientId', bytes(1, 5, 'ab'), 2, /clientId: 5 bytes announced/],
    ['an empty clientId', bytes(1, 0, 1, 0), 1, /clientId is empty/],
    ['a clientId over 256 bytes', bytes(1, 0x81, 0x02), 1, /257 bytes, more than the 256/],
    ['a clientId that is not UTF-8', bytes(1, 1, 0xff, 1, 0), 1, /not well-formed UTF-8/],
    ['a missing seq', bytes(1, 1, 'c'), 3, /seq: unexpected end/],
    ['a truncated varint', bytes(1, 1, 'c', 0x80), 4, /seq: unexpected end/],
    ['seq 0', bytes(1, 1, 'c', 0, 0), 3, /seq must be at least 1/],
    ['a redundant varint byte', bytes(1, 1, 'c', 0x81, 0x00, 0), 3, /redundant varint/],
    [
      'a varint longer than 8 bytes',
      bytes(1, 1, 'c', 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0),
      3,
      /longer than 8 bytes/,
    ],
    [
      'a seq above 2^53 - 1',
      bytes(1, 1, 'c', 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10, 0),
      3,
      /not a safe integer/,
    ],
    ['a missing ack', bytes(1, 1, 'c', 1), 4, /ack: unexpected end/],
    ['ack equal to seq', bytes(1, 1, 'c', 3, 3, 'x'), 4, /ack \(3\) must be below seq \(3\)/],
  ];
  for (const [what, input, offset, message] of cases) {
    it(what, () => {
      const err = codecErrorOf(input);
      expect(err.code).toBe('CODEC');
      expect(err.message).toMatch(message);
      expect(err.offset).toBe(offset);
    });
  }

  it('never reads past a short buffer, whatever the bytes (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 24 }), (input) => {
        try {
          const c = codec.decode(input);
          // Whatever decodes is a valid envelope that encodes back to the same bytes.
          expect(codec.encode(c)).toEqual(input);
        } catch (err) {
          expect(err instanceof CodecError || RaftError.is(err, 'INVALID_ARGUMENT')).toBe(true);
        }
      }),
      { seed: 7, numRuns: 2000 },
    );
  });
});
