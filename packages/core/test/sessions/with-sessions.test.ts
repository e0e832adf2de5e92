/**
 * The session table of withSessions, through its public API: deduplication, acknowledgements,
 * eviction, expiry by log index, SESSION_EXPIRED, and replayed errors (Raft thesis §6.3).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type {
  ApplyContext,
  SessionCommand,
  SessionOptions,
  SessionStateMachine,
  StateMachine,
} from '../../src/index.js';
import {
  ConfigError,
  DEFAULT_SESSION_OPTIONS,
  RaftError,
  StorageError,
  withSessions,
} from '../../src/index.js';

/** Adds numbers (the result is the new total); records every call; throws on what it is told. */
class Adder implements StateMachine<number, number> {
  total = 0;
  readonly calls: number[] = [];
  apply(n: number, _at: ApplyContext): number {
    this.calls.push(n);
    if (n === -1) throw new RaftError('INVALID_ARGUMENT', 'minus one is refused');
    if (n === -2) {
      const err = new TypeError('minus two is a type error') as TypeError & { code: string };
      err.code = 'E_TWO';
      throw err;
    }
    if (n === -3) throw 'minus three'; // a thrown non-Error value
    if (n === -4) throw new StorageError('the disk failed');
    this.total += n;
    return this.total;
  }
}

/** Applies session commands at consecutive log indexes (or at a chosen one). */
class Driver {
  index = 0;
  readonly inner = new Adder();
  readonly sm: SessionStateMachine<number, number>;

  constructor(options?: SessionOptions<number>) {
    this.sm = withSessions(this.inner, options);
  }

  /** The result, or the thrown error; at the next index (or `at`). */
  send(clientId: string, seq: number, command: number, ack?: number, at?: number): unknown {
    this.index = at ?? this.index + 1;
    const cmd: SessionCommand<number> =
      ack === undefined ? { clientId, seq, command } : { clientId, seq, ack, command };
    try {
      return this.sm.apply(cmd, { index: this.index, term: 1 });
    } catch (err) {
      return err;
    }
  }
}

function isExpired(v: unknown): boolean {
  return RaftError.is(v, 'SESSION_EXPIRED');
}

describe('deduplication', () => {
  it('applies a new seq once; a retry returns the first result without calling the inner state machine', () => {
    const d = new Driver();
    expect(d.send('c1', 1, 5)).toBe(5);
    expect(d.send('c1', 2, 3)).toBe(8);
    expect(d.send('c1', 1, 5)).toBe(5); // a retry of seq 1: its result, not 13
    expect(d.send('c1', 2, 3)).toBe(8);
    expect(d.inner.calls).toEqual([5, 3]);
    expect(d.inner.total).toBe(8);
    // The retry answers with the kept result even if the retried command differs: seq decides.
    expect(d.send('c1', 2, 100)).toBe(8);
    expect(d.inner.calls).toEqual([5, 3]);
  });

  it('keeps clients apart: the same seq of two client ids is two commands', () => {
    const d = new Driver();
    expect(d.send('alice', 1, 1)).toBe(1);
    expect(d.send('bob', 1, 10)).toBe(11);
    expect(d.send('alice', 1, 1)).toBe(1);
    expect(d.send('bob', 1, 10)).toBe(11);
    expect(d.inner.calls).toEqual([1, 10]);
  });

  it('several commands in flight may commit out of order: each seq applies once', () => {
    const d = new Driver();
    expect(d.send('c', 1, 1)).toBe(1);
    expect(d.send('c', 3, 30)).toBe(31); // seq 2 is still on its way
    expect(d.send('c', 2, 20)).toBe(51);
    expect(d.send('c', 3, 30)).toBe(31);
    expect(d.send('c', 2, 20)).toBe(51);
    expect(d.inner.calls).toEqual([1, 30, 20]);
    expect(d.sm.session('c')?.keptSeqs).toEqual([1, 2, 3]);
  });

  it('holds the property for random traffic: each (client, seq) reaches the inner state machine at most once, and every answer is the first one', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.constantFrom('x', 'y', 'z'), fc.integer({ min: 1, max: 6 })), {
          maxLength: 80,
        }),
        (ops) => {
          const d = new Driver({ maxResultsPerSession: 100 });
          const first = new Map<string, unknown>();
          const opened = new Set<string>();
          for (const [client, seq] of ops) {
            const key = `${client}/${seq}`;
            const out = d.send(client, seq, seq);
            if (!opened.has(client) && seq !== 1) {
              expect(isExpired(out)).toBe(true); // no session yet
              continue;
            }
            opened.add(client);
            if (first.has(key)) expect(out).toBe(first.get(key));
            else first.set(key, out);
          }
          expect(d.inner.calls.length).toBe(first.size);
        },
      ),
      { seed: 20_240_603, numRuns: 200 },
    );
  });
});

describe('acknowledgements', () => {
  it('ack forgets the results at or below it; a retry of one of them is SESSION_EXPIRED', () => {
    const d = new Driver();
    d.send('c', 1, 1);
    d.send('c', 2, 2);
    d.send('c', 3, 3);
    expect(d.sm.session('c')).toMatchObject({ ackedThrough: 0, keptSeqs: [1, 2, 3] });
    expect(d.send('c', 4, 4, 2)).toBe(10);
    expect(d.sm.session('c')).toMatchObject({ ackedThrough: 2, keptSeqs: [3, 4] });
    const late = d.send('c', 2, 2);
    expect(isExpired(late)).toBe(true);
    expect((late as RaftError).message).toMatch(/seq 2 .*no longer kept/);
    expect((late as RaftError).outcome).toBe('unknown');
    expect(d.send('c', 3, 3)).toBe(6); // not acknowledged: still answered
    expect(d.inner.calls).toEqual([1, 2, 3, 4]);
  });

  it('a lower ack than before changes nothing, and a retry may carry a newer ack', () => {
    const d = new Driver();
    d.send('c', 1, 1);
    d.send('c', 2, 2);
    d.send('c', 3, 3, 2);
    d.send('c', 4, 4, 1);
    expect(d.sm.session('c')).toMatchObject({ ackedThrough: 2, keptSeqs: [3, 4] });
    expect(d.send('c', 4, 4, 3)).toBe(10);
    expect(d.sm.session('c')).toMatchObject({ ackedThrough: 3, keptSeqs: [4] });
  });

  it('an ack past seqs that never applied forgets them too: they are SESSION_EXPIRED, never applied', () => {
    const d = new Driver();
    d.send('c', 1, 1);
    d.send('c', 5, 5, 4); // the client gave up on 2..4
    expect(isExpired(d.send('c', 3, 3))).toBe(true);
    expect(d.inner.calls).toEqual([1, 5]);
  });

  it('maxResultsPerSession drops the lowest seq and raises the floor, applied or not', () => {
    const d = new Driver({ maxResultsPerSession: 2 });
    d.send('c', 1, 1);
    d.send('c', 3, 3); // seq 2 not applied yet
    d.send('c', 4, 4); // three kept: seq 1 is dropped
    expect(d.sm.session('c')).toMatchObject({ ackedThrough: 1, keptSeqs: [3, 4] });
    // Above the floor and not applied: it applies. Its result is then the lowest of three, so
    // it is the one dropped (the floor rises to 2); 3 and 4 stay.
    expect(d.send('c', 2, 2)).toBe(10);
    expect(d.sm.session('c')).toMatchObject({ ackedThrough: 2, keptSeqs: [3, 4] });
    expect(isExpired(d.send('c', 2, 2))).toBe(true);
    expect(isExpired(d.send('c', 1, 1))).toBe(true);
    expect(d.send('c', 4, 4)).toBe(8);
    expect(d.inner.calls).toEqual([1, 3, 4, 2]);
  });
});

describe('sessions that do not exist', () => {
  it('an unknown client id opens a session only with seq 1', () => {
    const d = new Driver();
    const err = d.send('new', 2, 2);
    expect(isExpired(err)).toBe(true);
    expect((err as Error).message).toMatch(/no session .* start a new client id/);
    expect(d.sm.session('new')).toBeUndefined();
    expect(d.inner.calls).toEqual([]);
    expect(d.send('new', 1, 1)).toBe(1);
    expect(d.send('new', 2, 2)).toBe(3);
  });

  it('the SESSION_EXPIRED error is a RaftError with that code, outcome unknown, not retryable', () => {
    const d = new Driver();
    const err = d.send('ghost', 7, 1);
    expect(err).toBeInstanceOf(RaftError);
    expect(err).toMatchObject({ code: 'SESSION_EXPIRED', outcome: 'unknown', retryable: false });
  });
});

describe('eviction and expiry', () => {
  it('maxSessions evicts the session least recently used by log index', () => {
    const d = new Driver({ maxSessions: 3 });
    d.send('a', 1, 1); // index 1
    d.send('b', 1, 1); // 2
    d.send('c', 1, 1); // 3
    d.send('a', 2, 1); // 4: a is now the most recent
    d.send('b', 1, 1); // 5: a retry counts as use too
    expect(d.sm.sessions().map((s) => [s.clientId, s.lastIndex])).toEqual([
      ['c', 3],
      ['a', 4],
      ['b', 5],
    ]);
    d.send('d', 1, 1); // 6: one too many: c goes
    expect(d.sm.sessions().map((s) => s.clientId)).toEqual(['a', 'b', 'd']);
    expect(isExpired(d.send('c', 2, 1))).toBe(true);
    d.send('e', 1, 1); // a goes
    expect(d.sm.sessions().map((s) => s.clientId)).toEqual(['b', 'd', 'e']);
    // A refused command of an unknown client opens nothing and evicts nothing.
    expect(isExpired(d.send('f', 2, 1))).toBe(true);
    expect(d.sm.sessions().map((s) => s.clientId)).toEqual(['b', 'd', 'e']);
  });

  it('expireAfterEntries drops a session idle for more than that many indexes, judged from at.index', () => {
    const d = new Driver({ expireAfterEntries: 10 });
    d.send('old', 1, 1, undefined, 5);
    d.send('keep', 1, 1, undefined, 8);
    // Last used at 5: still there at 5 + 10.
    expect(d.send('old', 1, 1, undefined, 15)).toBe(1);
    expect(d.send('old', 2, 1, undefined, 25)).toBe(3);
    // `keep` was last used at 8: at 25 it had expired, when that command applied.
    expect(d.sm.session('keep')).toBeUndefined();
    expect(isExpired(d.send('keep', 2, 1, undefined, 26))).toBe(true);
    // `old` was last used at 25: gone for a command at 36 (11 indexes later).
    expect(isExpired(d.send('old', 3, 1, undefined, 36))).toBe(true);
    expect(d.sm.sessions()).toEqual([]);
    expect(d.inner.calls).toEqual([1, 1, 1]);
  });

  it('a session expires only when a later command applies: nothing happens between applies', () => {
    const d = new Driver({ expireAfterEntries: 1 });
    d.send('a', 1, 1, undefined, 1);
    expect(d.sm.session('a')).toBeDefined(); // no command since: still kept
    d.send('a', 2, 1, undefined, 2);
    d.send('b', 1, 1, undefined, 4);
    expect(d.sm.sessions().map((s) => s.clientId)).toEqual(['b']);
  });

  it('expireAfterEntries: Infinity never expires', () => {
    const d = new Driver({ expireAfterEntries: Number.POSITIVE_INFINITY });
    d.send('a', 1, 1, undefined, 1);
    expect(d.send('a', 1, 1, undefined, Number.MAX_SAFE_INTEGER)).toBe(1);
  });
});

describe('errors as results', () => {
  it('a retry of a command that threw a RaftError throws one with the same code and message, without calling the inner state machine', () => {
    const d = new Driver();
    const first = d.send('c', 1, -1);
    expect(RaftError.is(first, 'INVALID_ARGUMENT')).toBe(true);
    const again = d.send('c', 1, -1);
    expect(again).not.toBe(first);
    expect(RaftError.is(again, 'INVALID_ARGUMENT')).toBe(true);
    expect(again).toMatchObject({ name: 'RaftError', message: 'minus one is refused' });
    expect(d.inner.calls).toEqual([-1]);
    // The session is open (seq 1 applied, with an error): seq 2 goes on.
    expect(d.send('c', 2, 4)).toBe(4);
  });

  it('a plain error keeps its name, message and string code; a thrown non-Error becomes an Error', () => {
    const d = new Driver();
    expect(d.send('c', 1, -2)).toBeInstanceOf(TypeError);
    const again = d.send('c', 1, -2) as Error & { code?: string };
    expect(again).toBeInstanceOf(Error);
    expect(RaftError.is(again)).toBe(false);
    expect(again).toMatchObject({
      name: 'TypeError',
      message: 'minus two is a type error',
      code: 'E_TWO',
    });
    expect(d.send('c', 2, -3)).toBe('minus three');
    const replayed = d.send('c', 2, -3);
    expect(replayed).toBeInstanceOf(Error);
    expect(replayed).toMatchObject({ name: 'Error', message: 'minus three' });
    expect(d.inner.calls).toEqual([-2, -3]);
  });

  it('a StorageError is not a result: it is rethrown unrecorded, and a retry applies', () => {
    const d = new Driver();
    expect(RaftError.is(d.send('c', 1, -4), 'STORAGE')).toBe(true);
    expect(d.sm.session('c')?.keptSeqs).toEqual([]);
    expect(RaftError.is(d.send('c', 1, -4), 'STORAGE')).toBe(true);
    expect(d.inner.calls).toEqual([-4, -4]);
  });

  it('a malformed envelope throws INVALID_ARGUMENT and touches no session', () => {
    const d = new Driver();
    d.send('c', 1, 1);
    const bad: unknown[] = [
      { clientId: '', seq: 1, command: 1 },
      { clientId: 'c', seq: 0, command: 1 },
      { clientId: 'c', seq: 1.5, command: 1 },
      { clientId: 'c', seq: 3, ack: 3, command: 1 },
      { clientId: 'c', seq: 3, ack: -1, command: 1 },
      { clientId: 'x'.repeat(257), seq: 1, command: 1 },
      { clientId: 7, seq: 1, command: 1 },
      null,
    ];
    for (const cmd of bad) {
      const at = { index: ++d.index, term: 1 };
      let thrown: unknown;
      try {
        d.sm.apply(cmd as SessionCommand<number>, at);
      } catch (err) {
        thrown = err;
      }
      expect(RaftError.is(thrown, 'INVALID_ARGUMENT'), JSON.stringify(cmd)).toBe(true);
    }
    expect(d.sm.sessions()).toEqual([
      { clientId: 'c', lastIndex: 1, ackedThrough: 0, keptSeqs: [1] },
    ]);
    expect(d.inner.calls).toEqual([1]);
  });
});

describe('asynchronous inner state machines', () => {
  it('keeps the result once the promise settles; a rejection is kept as the error', async () => {
    const calls: number[] = [];
    const sm = withSessions<number, number>({
      async apply(n) {
        calls.push(n);
        if (n < 0) throw new Error(`negative: ${n}`);
        return n * 10;
      },
    });
    await expect(
      sm.apply({ clientId: 'c', seq: 1, command: 2 }, { index: 1, term: 1 }),
    ).resolves.toBe(20);
    expect(sm.apply({ clientId: 'c', seq: 1, command: 2 }, { index: 2, term: 1 })).toBe(20);
    await expect(
      sm.apply({ clientId: 'c', seq: 2, command: -1 }, { index: 3, term: 1 }),
    ).rejects.toThrow('negative: -1');
    expect(() => sm.apply({ clientId: 'c', seq: 2, command: -1 }, { index: 4, term: 1 })).toThrow(
      'negative: -1',
    );
    expect(calls).toEqual([2, -1]);
  });

  it('a synchronous inner state machine gets synchronous answers (no promise per entry)', () => {
    const sm = withSessions(new Adder());
    const out = sm.apply({ clientId: 'c', seq: 1, command: 1 }, { index: 1, term: 1 });
    expect(out).toBe(1);
  });
});

describe('options', () => {
  it('has documented defaults', () => {
    expect(DEFAULT_SESSION_OPTIONS).toEqual({
      maxSessions: 10_000,
      expireAfterEntries: 1_000_000,
      maxResultsPerSession: 64,
    });
  });

  it('refuses bad values and unknown keys with a ConfigError naming the field', () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ maxSessions: 0 }, 'maxSessions'],
      [{ maxSessions: 1.5 }, 'maxSessions'],
      [{ maxSessions: Number.POSITIVE_INFINITY }, 'maxSessions'],
      [{ expireAfterEntries: -1 }, 'expireAfterEntries'],
      [{ maxResultsPerSession: 0 }, 'maxResultsPerSession'],
      [{ resultCodec: {} }, 'resultCodec'],
      [{ maxSession: 5 }, 'maxSession'],
    ];
    for (const [options, field] of cases) {
      let thrown: unknown;
      try {
        withSessions(new Adder(), options as SessionOptions<number>);
      } catch (err) {
        thrown = err;
      }
      expect(thrown, JSON.stringify(options)).toBeInstanceOf(ConfigError);
      expect((thrown as ConfigError).field).toBe(field);
    }
  });
});
