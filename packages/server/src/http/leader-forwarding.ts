/**
 * Admin requests (membership, leadership transfer) only the leader can serve: a follower that
 * gets one passes it on to the leader's HTTP API (its address from the replicated directory)
 * and answers with the leader's answer, so any node accepts any request.
 */
import { RaftError } from '@raft/core';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Directory } from '../node/service-state-machine.js';

/** Marks a request a node already forwarded (a second hop is refused: no loops). */
export const FORWARDED_HEADER = 'x-raft-forwarded-by';

/**
 * Runs `serve`; when it rejects with NOT_LEADER and the leader's HTTP address is known, sends
 * the request there instead (bounded by `timeoutMs`) and relays its answer. Anything else
 * propagates to the error table.
 */
export async function serveOnLeader(
  req: FastifyRequest,
  reply: FastifyReply,
  context: { readonly selfId: string; readonly directory: Directory; readonly timeoutMs: number },
  serve: () => Promise<unknown>,
): Promise<unknown> {
  try {
    return await serve();
  } catch (err) {
    // By code, not instanceof: a second copy of @raft/core has its own classes.
    const leaderId = RaftError.is(err, 'NOT_LEADER')
      ? (err as { leaderId?: unknown }).leaderId
      : undefined;
    if (typeof leaderId !== 'string') throw err;
    if (req.headers[FORWARDED_HEADER] !== undefined) throw err;
    const http = context.directory.get(leaderId);
    if (http === undefined) throw err;
    let answer: Response;
    try {
      answer = await fetch(`http://${http}${req.url}`, {
        method: req.method,
        headers: { 'content-type': 'application/json', [FORWARDED_HEADER]: context.selfId },
        ...(req.body instanceof Uint8Array && req.body.length > 0 ? { body: req.body } : {}),
        signal: AbortSignal.timeout(context.timeoutMs),
        redirect: 'error',
      });
    } catch (cause) {
      throw new RaftError(
        'UNAVAILABLE',
        `the leader ${leaderId} (http://${http}) did not answer: ${(cause as Error).message}`,
        { cause, outcome: 'unknown' },
      );
    }
    reply.code(answer.status);
    reply.header('content-type', answer.headers.get('content-type') ?? 'application/json');
    return Buffer.from(await answer.arrayBuffer());
  }
}
