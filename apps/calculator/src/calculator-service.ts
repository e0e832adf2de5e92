/**
 * The calculator service: its state machine and its HTTP API.
 *
 * | request | success | other answers |
 * | --- | --- | --- |
 * | `GET /v1/value[?consistency=linearizable\|lease\|stale]` | 200 `{"value":n,"revision":N}` | 400, 503, 504 |
 * | `POST /v1/add\|subtract\|multiply\|divide` `{"operand":n}` | 200 `{"value":n,"revision":N}` | 400 (division by zero, a non-finite operand or result, a bad body), 503, 504 |
 *
 * An `Idempotency-Key` header makes an operation apply once: a retry with the same key gets
 * the first answer back (an operation is not idempotent by itself: `add 5` twice adds 10).
 */
import type { ReadConsistency } from '@raft/core';
import { BadRequestError, defineService, idempotencyKeyOf, jsonBody } from '@raft/server';
import { z } from 'zod';
import { calculatorCodec, commandProblem, createCalculator, OPERATIONS } from './calculator.js';

const operandBody = z.object({ operand: z.number({ error: 'must be a number' }) }).strict();
const CONSISTENCIES = new Set(['linearizable', 'lease', 'stale']);

/** `raft-calculator`: one number every node agrees on. */
export const calculatorService = defineService({
  name: 'raft-calculator',
  description: 'The distributed calculator: one number every node agrees on.',
  createStateMachine() {
    const calculator = createCalculator();
    return {
      stateMachine: calculator.stateMachine,
      codec: calculatorCodec,
      state: calculator.state,
    };
  },
  registerRoutes(app, ctx) {
    app.get('/v1/value', async (req) => {
      const c = (req.query as { consistency?: string }).consistency ?? 'linearizable';
      if (!CONSISTENCIES.has(c)) {
        throw new BadRequestError(`consistency must be linearizable, lease or stale, got "${c}"`);
      }
      await ctx.read(c as ReadConsistency);
      return { value: ctx.state.value, revision: ctx.state.revision };
    });
    for (const op of OPERATIONS) {
      app.post(`/v1/${op}`, async (req) => {
        const { operand } = jsonBody(req.body, operandBody);
        const problem = commandProblem({ op, operand });
        if (problem !== null) throw new BadRequestError(problem);
        const { result } = await ctx.propose(
          { op, operand },
          { idempotencyKey: idempotencyKeyOf(req.headers['idempotency-key']) },
        );
        if (!result.ok) throw new BadRequestError(result.reason);
        return { value: result.value, revision: result.revision };
      });
    }
  },
});
