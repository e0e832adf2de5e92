/** The calculator's state machine and codec, alone. */
import { describe, expect, it } from 'vitest';
import {
  calculatorCodec,
  commandProblem,
  createCalculator,
  OPERATIONS,
} from '../src/calculator.js';

const at = { index: 1, term: 1 };

describe('the calculator state machine', () => {
  it('applies the four operations in order and counts revisions', () => {
    const { state, stateMachine } = createCalculator();
    expect(stateMachine.apply({ op: 'add', operand: 10 }, at)).toEqual({
      ok: true,
      value: 10,
      revision: 1,
    });
    expect(stateMachine.apply({ op: 'multiply', operand: 3 }, at)).toEqual({
      ok: true,
      value: 30,
      revision: 2,
    });
    expect(stateMachine.apply({ op: 'subtract', operand: 4.5 }, at)).toEqual({
      ok: true,
      value: 25.5,
      revision: 3,
    });
    expect(stateMachine.apply({ op: 'divide', operand: 2 }, at)).toEqual({
      ok: true,
      value: 12.75,
      revision: 4,
    });
    expect(state).toEqual({ value: 12.75, revision: 4 });
  });

  it('refuses, alike on every replica, what would not give a finite number, and changes nothing', () => {
    const { state, stateMachine } = createCalculator();
    stateMachine.apply({ op: 'add', operand: 1e308 }, at);
    const overflow = stateMachine.apply({ op: 'multiply', operand: 10 }, at);
    expect(overflow).toMatchObject({ ok: false, value: 1e308 });
    expect(stateMachine.apply({ op: 'divide', operand: 0 }, at)).toMatchObject({
      ok: false,
      reason: 'division by zero',
    });
    expect(state).toEqual({ value: 1e308, revision: 1 });
    expect(commandProblem({ op: 'add', operand: Number.NaN })).toBe(
      'operand must be a finite number',
    );
    expect(commandProblem({ op: 'divide', operand: 0 })).toBe('division by zero');
    expect(commandProblem({ op: 'divide', operand: -0.5 })).toBeNull();
  });

  it('snapshots and restores value and revision, from chunks cut anywhere', async () => {
    const a = createCalculator();
    a.stateMachine.apply({ op: 'add', operand: -7.25 }, at);
    a.stateMachine.apply({ op: 'multiply', operand: 4 }, at);
    const [image] = [
      ...((await (
        a.stateMachine.snapshot as () => Iterable<Uint8Array>
      )()) as Iterable<Uint8Array>),
    ];
    for (let cut = 0; cut <= 16; cut++) {
      const b = createCalculator();
      const bytes = image as Uint8Array;
      await b.stateMachine.restore?.(
        (async function* () {
          yield bytes.subarray(0, cut);
          yield bytes.subarray(cut);
        })(),
        { index: 2, term: 1, membership: { members: [] } } as never,
      );
      expect(b.state).toEqual({ value: -29, revision: 2 });
    }
    const c = createCalculator();
    await expect(
      c.stateMachine.restore?.(
        (async function* () {
          yield new Uint8Array(3);
        })(),
        {} as never,
      ),
    ).rejects.toThrow(/16 bytes/);
  });

  it('the codec round-trips every operation and refuses other bytes', () => {
    for (const op of OPERATIONS) {
      for (const operand of [0, -1, Math.PI, 1e-300, -1e300]) {
        expect(calculatorCodec.decode(calculatorCodec.encode({ op, operand }))).toEqual({
          op,
          operand,
        });
      }
    }
    expect(() => calculatorCodec.decode(new Uint8Array([9, 0, 0, 0, 0, 0, 0, 0, 0]))).toThrow();
    expect(() => calculatorCodec.decode(new Uint8Array([0, 1]))).toThrow();
  });
});
