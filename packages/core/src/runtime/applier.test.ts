import { describe, expect, it } from 'vitest';
import { ApplyError, StorageError } from '../errors.js';
import type { StateMachine } from '../interfaces/state-machine.js';
import { noopLogger } from '../logger.js';
import type { LogEntry } from '../types.js';
import type { ApplierHost } from './applier.js';
import { Applier } from './applier.js';

const bytes = new Uint8Array(0);
const entries = (from: number, to: number): LogEntry[] =>
  Array.from({ length: to - from }, (_, i) => ({
    index: from + i,
    term: 1,
    kind: 'command' as const,
    data: bytes,
  }));

interface Recorder extends ApplierHost<number> {
  readonly applied: number[];
  readonly errors: (ApplyError | undefined)[];
  readonly deferred: (() => void)[];
  readonly failures: unknown[];
  time: number;
}

function recorder(): Recorder {
  const r: Recorder = {
    applied: [],
    errors: [],
    deferred: [],
    failures: [],
    time: 0,
    isRunning: () => true,
    onApplied: (e, _result, error) => {
      r.applied.push(e.index);
      r.errors.push(error);
    },
    onProgress: () => {},
    fail: (err) => r.failures.push(err),
    now: () => r.time,
    defer: (cb) => r.deferred.push(cb),
  };
  return r;
}

const codec = { encode: (c: Uint8Array) => c, decode: (b: Uint8Array) => b };

describe('Applier', () => {
  it('yields to the event loop during a long synchronous stretch, then goes on in order', () => {
    const host = recorder();
    // Each apply "takes" 1 ms on the host clock: 500 entries are 50 stretches of 10 ms.
    const sm: StateMachine<Uint8Array, number> = {
      apply: (_c, at) => {
        host.time += 1;
        return at.index;
      },
    };
    const applier = new Applier(sm, codec, noopLogger, host);
    applier.enqueue(entries(1, 501));
    let turns = 0;
    while (host.deferred.length > 0 && turns < 1000) {
      turns++;
      (host.deferred.shift() as () => void)();
    }
    expect(turns).toBeGreaterThanOrEqual(10);
    expect(host.applied).toEqual(Array.from({ length: 500 }, (_, i) => i + 1));
    expect(applier.applied).toBe(500);
  });

  it('a thenable that settles twice applies its entry once', async () => {
    const host = recorder();
    const sm: StateMachine<Uint8Array, number> = {
      apply: (_c, at) =>
        ({
          // biome-ignore lint/suspicious/noThenProperty: a misbehaving thenable on purpose.
          then(ok: (v: number) => void) {
            ok(at.index);
            ok(at.index);
          },
        }) as unknown as Promise<number>,
    };
    const applier = new Applier(sm, codec, noopLogger, host);
    applier.enqueue(entries(1, 4));
    await applier.whenIdle();
    expect(host.applied).toEqual([1, 2, 3]);
  });

  it('an exception is the command result; a StorageError is fatal', async () => {
    const host = recorder();
    const sm: StateMachine<Uint8Array, number> = {
      apply: (_c, at) => {
        if (at.index === 2) throw new RangeError('bad command');
        if (at.index === 4) return Promise.reject(new StorageError('disk gone'));
        return at.index;
      },
    };
    const applier = new Applier(sm, codec, noopLogger, host);
    applier.enqueue(entries(1, 6));
    await applier.whenIdle();
    expect(host.applied).toEqual([1, 2, 3]);
    expect(host.errors[1]).toBeInstanceOf(ApplyError);
    expect(host.failures).toHaveLength(1);
    expect(host.failures[0]).toBeInstanceOf(StorageError);
  });
});
