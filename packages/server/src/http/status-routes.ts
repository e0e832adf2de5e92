/** GET /v1/status: the node's view of the cluster, as the contract spells it. */
import type { FastifyInstance } from 'fastify';
import type { ServiceNode } from '../node/assemble-node.js';

/** The body of GET /v1/status. */
export interface StatusBody {
  readonly id: string;
  readonly role: string;
  readonly term: number;
  readonly leaderId: string | null;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly lastLogIndex: number;
  readonly snapshotIndex: number;
  readonly members: readonly { id: string; address: string; voter: boolean }[];
}

/** The status body of `sn` now. */
export function statusOf(sn: ServiceNode<unknown, unknown, unknown>): StatusBody {
  const s = sn.node.status();
  return {
    id: s.id,
    role: s.role,
    term: s.term,
    leaderId: s.leaderId,
    commitIndex: s.commitIndex,
    appliedIndex: s.appliedIndex,
    lastLogIndex: s.lastLogIndex,
    snapshotIndex: s.snapshotIndex,
    members: s.members.map((m) => ({ id: m.id, address: m.address, voter: m.voter })),
  };
}

/** Registers GET /v1/status. */
export function registerStatusRoutes(
  app: FastifyInstance,
  sn: ServiceNode<unknown, unknown, unknown>,
): void {
  app.get('/v1/status', async () => statusOf(sn));
}
