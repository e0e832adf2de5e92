/** GET /v1/status: the node's view of the cluster, as the contract spells it. */
import type { FastifyInstance } from 'fastify';
import type { KvNode } from '../node/assemble-node.js';

/** Registers GET /v1/status. */
export function registerStatusRoutes(app: FastifyInstance, kv: KvNode): void {
  app.get('/v1/status', async () => {
    const s = kv.node.status();
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
  });
}
