/**
 * The replicated calculator: one number, changed by arithmetic commands in log order, so every
 * node agrees on it. A command whose result would not be a finite number (an overflow) is
 * refused by every replica alike and changes nothing.
 *
 * ```text
 * command bytes: op (1 byte: 0 add, 1 subtract, 2 multiply, 3 divide) ‖ operand (float64 BE)
 * snapshot:      value (float64 BE) ‖ revision (float64 BE)
 * ```
 */
import type { ApplyContext, CommandCodec, StateMachine } from '@raft/core';

/** The four operations. */
export const OPERATIONS = ['add', 'subtract', 'multiply', 'divide'] as const;
export type Operation = (typeof OPERATIONS)[number];

/** One arithmetic step. */
export interface CalculatorCommand {
  readonly op: Operation;
  readonly operand: number;
}

/** What applying a command gives: the new value, or why it was refused. */
export type CalculatorResult =
  | { readonly ok: true; readonly value: number; readonly revision: number }
  | { readonly ok: false; readonly reason: string; readonly value: number };

/** The replicated number and how many commands changed it. */
export interface CalculatorState {
  value: number;
  revision: number;
}

/** Why `command` cannot be proposed (null: it can). Checked before proposing. */
export function commandProblem(command: CalculatorCommand): string | null {
  if (!Number.isFinite(command.operand)) return 'operand must be a finite number';
  if (command.op === 'divide' && command.operand === 0) return 'division by zero';
  return null;
}

/** The binary codec of commands. */
export const calculatorCodec: CommandCodec<CalculatorCommand> = {
  encode(command) {
    const index = OPERATIONS.indexOf(command.op);
    if (index < 0) throw new Error(`unknown operation ${String(command.op)}`);
    const out = new Uint8Array(9);
    out[0] = index;
    new DataView(out.buffer).setFloat64(1, command.operand);
    return out;
  },
  decode(bytes) {
    const op = OPERATIONS[bytes[0] ?? 255];
    if (op === undefined || bytes.length !== 9) throw new Error('not a calculator command');
    return { op, operand: new DataView(bytes.buffer, bytes.byteOffset, 9).getFloat64(1) };
  },
};

function compute(value: number, { op, operand }: CalculatorCommand): number {
  switch (op) {
    case 'add':
      return value + operand;
    case 'subtract':
      return value - operand;
    case 'multiply':
      return value * operand;
    case 'divide':
      return value / operand;
  }
}

/** A fresh calculator at 0 and its state machine. */
export function createCalculator(): {
  readonly state: CalculatorState;
  readonly stateMachine: StateMachine<CalculatorCommand, CalculatorResult>;
} {
  const state: CalculatorState = { value: 0, revision: 0 };
  return {
    state,
    stateMachine: {
      apply(command: CalculatorCommand, _at: ApplyContext): CalculatorResult {
        const problem = commandProblem(command);
        const next = compute(state.value, command);
        if (problem !== null || !Number.isFinite(next)) {
          return {
            ok: false,
            reason: problem ?? `the result of ${command.op} ${command.operand} would not be finite`,
            value: state.value,
          };
        }
        state.value = next;
        state.revision += 1;
        return { ok: true, value: state.value, revision: state.revision };
      },
      snapshot() {
        const out = new Uint8Array(16);
        const view = new DataView(out.buffer);
        view.setFloat64(0, state.value);
        view.setFloat64(8, state.revision);
        return [out];
      },
      async restore(chunks) {
        const parts: Uint8Array[] = [];
        let length = 0;
        for await (const c of chunks) {
          parts.push(c);
          length += c.length;
        }
        if (length !== 16) throw new Error(`a calculator snapshot has 16 bytes, not ${length}`);
        const image = new Uint8Array(16);
        let at = 0;
        for (const p of parts) {
          image.set(p, at);
          at += p.length;
        }
        const view = new DataView(image.buffer);
        state.value = view.getFloat64(0);
        state.revision = view.getFloat64(8);
      },
    },
  };
}
