/**
 * GET /v1/cluster: what the dashboard shows, gathered by the node serving it: every member's
 * status (its own directly, the others' from their `GET /v1/status`, at the HTTP address the
 * directory holds, each bounded by `peerTimeoutMs`), the replication lag of each (entries behind
 * the leader's log), this node's activity of the last minutes and the leader changes it saw.
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { ServiceNode } from '../node/assemble-node.js';
import type { Activity, ActivitySample, ElectionRecord } from '../observe/activity.js';
import { type StatusBody, statusOf } from './status-routes.js';

/** One member as the dashboard shows it. */
export interface MemberView {
  readonly id: string;
  readonly address: string;
  readonly voter: boolean;
  readonly http: string | null;
  /** Its own status, or null when it did not answer (then `error` says why). */
  readonly status: StatusBody | null;
  readonly error?: string;
  /** Entries behind the leader's last index (null: unknown). */
  readonly lag: number | null;
}

/** The body of GET /v1/cluster. */
export interface ClusterView {
  readonly service: { readonly name: string; readonly description: string };
  readonly self: string;
  readonly at: number;
  readonly leaderId: string | null;
  readonly term: number;
  readonly members: readonly MemberView[];
  readonly activity: readonly ActivitySample[];
  readonly elections: readonly ElectionRecord[];
}

const index = z.number().int().nonnegative();
/** A peer's answer is checked before it is shown (or counted in the leader and the lag). */
const statusSchema = z.object({
  id: z.string().max(64),
  role: z.enum(['follower', 'preCandidate', 'candidate', 'leader']),
  term: index,
  leaderId: z.string().max(64).nullable(),
  commitIndex: index,
  appliedIndex: index,
  lastLogIndex: index,
  snapshotIndex: index,
  members: z
    .array(z.object({ id: z.string().max(64), address: z.string().max(300), voter: z.boolean() }))
    .max(1000),
});

/** Largest status answer read from a peer. */
const MAX_STATUS_BYTES = 256 * 1024;

async function fetchStatus(http: string, timeoutMs: number): Promise<StatusBody> {
  const res = await fetch(`http://${http}/v1/status`, {
    signal: AbortSignal.timeout(timeoutMs),
    redirect: 'error',
  });
  if (!res.ok) throw new Error(`answered ${res.status}`);
  const text = await res.text();
  if (text.length > MAX_STATUS_BYTES) throw new Error('its status is too large');
  const parsed = statusSchema.safeParse(JSON.parse(text));
  if (!parsed.success) throw new Error('its status is not a node status');
  return parsed.data;
}

/** Gathers the view. */
export async function clusterView(
  sn: ServiceNode<unknown, unknown, unknown>,
  activity: Activity,
  peerTimeoutMs: number,
): Promise<ClusterView> {
  const own = statusOf(sn);
  const members = await Promise.all(
    own.members.map(async (m) => {
      const http = m.id === own.id ? sn.config.advertiseHttp : (sn.directory.get(m.id) ?? null);
      if (m.id === own.id) return { ...m, http, status: own };
      if (http === null) {
        return { ...m, http, status: null, error: 'its HTTP address is not known yet' };
      }
      try {
        return { ...m, http, status: await fetchStatus(http, peerTimeoutMs) };
      } catch (err) {
        const e = err as Error & { cause?: Error };
        return { ...m, http, status: null, error: e.cause?.message ?? e.message };
      }
    }),
  );
  // The leader is whoever claims it in the highest term any member reports.
  let leader: StatusBody | null = null;
  for (const m of members) {
    const s = m.status;
    if (s !== null && s.role === 'leader' && (leader === null || s.term > leader.term)) leader = s;
  }
  const term = Math.max(own.term, ...members.map((m) => m.status?.term ?? 0));
  return {
    service: { name: sn.service.name, description: sn.service.description },
    self: own.id,
    at: Date.now(),
    leaderId: leader?.id ?? own.leaderId,
    term,
    members: members.map((m) => ({
      ...m,
      lag:
        leader === null || m.status === null
          ? null
          : Math.max(0, leader.lastLogIndex - m.status.lastLogIndex),
    })),
    activity: activity.history(),
    elections: activity.recentElections(),
  };
}

/** How long one gathered view answers every caller (several dashboards cost one fan-out). */
const VIEW_REUSE_MS = 500;

/** Registers GET /v1/cluster. */
export function registerClusterView(
  app: FastifyInstance,
  sn: ServiceNode<unknown, unknown, unknown>,
  activity: Activity,
  peerTimeoutMs = 800,
): void {
  let latest: { at: number; view: Promise<ClusterView> } | null = null;
  app.get('/v1/cluster', async () => {
    const now = Date.now();
    if (latest === null || now - latest.at > VIEW_REUSE_MS) {
      latest = { at: now, view: clusterView(sn, activity, peerTimeoutMs) };
    }
    return latest.view;
  });
}
