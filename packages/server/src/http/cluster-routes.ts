/**
 * Running the cluster over HTTP: membership (`GET/POST /v1/members`, `DELETE /v1/members/{id}`),
 * leadership (`POST /v1/leader/transfer`) and snapshots (`POST /v1/snapshot`). Membership and
 * transfers are served by the leader; a follower passes them on (leader-forwarding.ts).
 *
 * `POST /v1/members` with `voter: true` adds the node as a learner, waits (within the request's
 * bound) until it has caught up, then promotes it, so a new voter never slows commits while it
 * fetches the log. The request is idempotent: posting a member that is already there with the
 * same address answers 200 (promoting it if a voter was asked for and it is still a learner).
 */
import { type Membership, RaftError } from '@raft/core';
import { parseHostPort } from '@raft/core/wire';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { ServiceNode } from '../node/assemble-node.js';
import { BadRequestError } from './http-errors.js';
import { serveOnLeader } from './leader-forwarding.js';
import { jsonBody } from './request-body.js';

const nodeId = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'must be 1-64 letters, digits, ".", "_" or "-"');
const hostPort = z
  .string()
  .refine((s) => (parseHostPort(s)?.port ?? 0) > 0, 'must be host:port with a port');

const addMemberBody = z
  .object({ id: nodeId, address: hostPort, voter: z.boolean().default(true) })
  .strict();
const transferBody = z.object({ to: nodeId.optional() }).strict();

/** Pause between promotion attempts while a new learner catches up. */
const PROMOTE_RETRY_MS = 100;

function membersOf(sn: ServiceNode<unknown, unknown, unknown>, membership: Membership) {
  return {
    members: membership.members.map((m) => ({
      id: m.id,
      address: m.address,
      voter: m.voter,
      http: sn.directory.get(m.id) ?? null,
    })),
  };
}

/** Registers the membership, transfer and snapshot routes. */
export function registerClusterRoutes(
  app: FastifyInstance,
  sn: ServiceNode<unknown, unknown, unknown>,
  timeoutMs: number,
): void {
  const { node } = sn;
  // The leader bounds its own work by `timeoutMs`; its answer needs a moment more to come back.
  const forwarding = { selfId: sn.config.id, directory: sn.directory, timeoutMs: timeoutMs + 1000 };

  app.get('/v1/members', async () => membersOf(sn, { members: node.status().members }));

  app.post('/v1/members', async (req, reply) => {
    const body = jsonBody(req.body, addMemberBody);
    return serveOnLeader(req, reply, forwarding, async () => {
      const deadline = Date.now() + timeoutMs;
      const left = () => Math.max(1, deadline - Date.now());
      const existing = node.status().members.find((m) => m.id === body.id);
      if (existing !== undefined && existing.address !== body.address) {
        throw new BadRequestError(
          `${body.id} is already a member at ${existing.address}; node ids are never reused (remove it first, or pick another id)`,
          409,
          'conflict',
        );
      }
      let membership: Membership = { members: node.status().members };
      if (existing === undefined) {
        try {
          membership = await node.addMember(
            { id: body.id, address: body.address, voter: false },
            { timeoutMs: left() },
          );
        } catch (err) {
          // The same request through another node (a retry) may have added it meanwhile.
          const now = node.status().members.find((m) => m.id === body.id);
          if (now?.address !== body.address) throw err;
          membership = { members: node.status().members };
        }
      } else if (existing.voter && !body.voter) {
        membership = await node.demote(body.id, { timeoutMs: left() });
      }
      const isVoter = membership.members.find((m) => m.id === body.id)?.voter === true;
      if (body.voter && !isVoter) {
        // Caught up: the learner holds the leader's log up to where it was once the learner
        // was in. (Only the leader tracks progress; elsewhere promote() answers NOT_LEADER and
        // the request is passed on.)
        const target = node.status().lastLogIndex;
        for (;;) {
          // A concurrent request may have promoted it meanwhile.
          if (node.status().members.some((m) => m.id === body.id && m.voter)) {
            membership = { members: node.status().members };
            break;
          }
          try {
            const progress = node.status().progress;
            const match = progress?.[body.id]?.match ?? 0;
            if (progress !== undefined && match < target) {
              throw new RaftError('LEARNER_LAGGING', `${body.id} is at ${match} of ${target}`);
            }
            membership = await node.promote(body.id, { timeoutMs: left() });
            break;
          } catch (err) {
            if (
              !RaftError.is(err, 'LEARNER_LAGGING') &&
              !RaftError.is(err, 'MEMBERSHIP_CHANGE_PENDING')
            )
              throw err;
            if (Date.now() + PROMOTE_RETRY_MS >= deadline) {
              throw new RaftError(
                'TIMEOUT',
                `${body.id} was added as a learner but has not caught up within ${timeoutMs} ms; it keeps catching up: POST the same request again to promote it`,
                { outcome: 'unknown' },
              );
            }
            await new Promise((r) => setTimeout(r, PROMOTE_RETRY_MS));
          }
        }
      }
      return membersOf(sn, membership);
    });
  });

  app.delete('/v1/members/:id', async (req, reply) => {
    const id = (req.params as { id: string }).id;
    return serveOnLeader(req, reply, forwarding, async () => {
      // Only the leader's membership is authoritative; a follower passes the request on.
      const status = node.status();
      if (status.role === 'leader' && !status.members.some((m) => m.id === id)) {
        throw new BadRequestError(`${id} is not a member`, 404, 'not_found');
      }
      return membersOf(sn, await node.removeMember(id, { timeoutMs }));
    });
  });

  app.post('/v1/leader/transfer', async (req, reply) => {
    const body = jsonBody(req.body, transferBody, true);
    return serveOnLeader(req, reply, forwarding, async () => {
      const result = await node.transferLeadership(body.to, { timeoutMs });
      return { leaderId: result.leaderId, term: result.term };
    });
  });

  app.post('/v1/snapshot', async () => {
    const meta = await node.takeSnapshot({ timeoutMs });
    return { index: meta.index, term: meta.term };
  });
}
