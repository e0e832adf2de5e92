import { describe, expect, it } from 'vitest';
import type { Logger, RaftEvent } from '../../src/index.js';
import type { TestNode } from './helpers.js';
import { Cluster } from './helpers.js';

/** Checks the ordering rules every node's event stream must follow. */
function expectCoherentEvents(n: TestNode, initialTerm = 1): void {
  let term = initialTerm;
  let role: string = 'follower';
  let leaderId: string | null = null;
  const events = n.events;
  events.forEach((e, i) => {
    if (e.type === 'termChanged') {
      // Terms only go up, and each termChanged is a change.
      expect(e.term, `${n.id} event ${i}`).toBeGreaterThan(term);
      term = e.term;
    } else if (e.type === 'roleChanged') {
      // Reported at the term already announced, and always a real change.
      expect(e.term, `${n.id} event ${i}`).toBe(term);
      expect(e.role, `${n.id} event ${i}`).not.toBe(role);
      role = e.role;
      if (e.role === 'leader') {
        // A new leader announces itself as leader right after the role change.
        expect(events[i + 1], `${n.id} event ${i + 1}`).toEqual({
          type: 'leaderChanged',
          leaderId: n.id,
          term,
        });
      }
    } else if (e.type === 'leaderChanged') {
      expect(e.term, `${n.id} event ${i}`).toBe(term);
      expect(e.leaderId, `${n.id} event ${i}`).not.toBe(leaderId);
      leaderId = e.leaderId;
    }
  });
  // The stream ends where status() is.
  const s = n.node.status();
  expect({ term, role, leaderId }).toEqual({ term: s.term, role: s.role, leaderId: s.leaderId });
}

/** term -> the leader ids announced for it, across the cluster. */
function announcedLeaders(nodes: readonly TestNode[]): Map<number, Set<string>> {
  const byTerm = new Map<number, Set<string>>();
  for (const n of nodes) {
    for (const e of n.events) {
      if (e.type !== 'leaderChanged' || e.leaderId === null) continue;
      const ids = byTerm.get(e.term) ?? new Set<string>();
      ids.add(e.leaderId);
      byTerm.set(e.term, ids);
    }
  }
  return byTerm;
}

describe('events', () => {
  it('reports roleChanged, leaderChanged and termChanged in a coherent order', async () => {
    const c = await Cluster.create();
    const leader = await c.electLeader();
    const term = leader.node.status().term;

    // The winner: ... termChanged(T), ..., roleChanged(leader, T), leaderChanged(self, T).
    const tail = leader.events.slice(-2);
    expect(tail).toEqual([
      { type: 'roleChanged', role: 'leader', term },
      { type: 'leaderChanged', leaderId: leader.id, term },
    ]);
    expect(leader.events).toContainEqual({ type: 'termChanged', term });
    // The followers learn the term no later than they learn the leader.
    for (const f of c.followersOf(leader)) {
      const t = f.events.findIndex((e) => e.type === 'termChanged' && e.term === term);
      const l = f.events.findIndex((e) => e.type === 'leaderChanged' && e.leaderId === leader.id);
      expect(t).toBeGreaterThanOrEqual(0);
      expect(l).toBeGreaterThan(t);
    }
    for (const n of c.nodes) expectCoherentEvents(n);

    // A second election: the rules still hold, and every term has one announced leader.
    c.network.disconnect(leader.id);
    const fresh = await c.electLeader(c.followersOf(leader));
    c.network.connect(leader.id);
    await c.electLeader();
    expect(c.leaders()).toEqual([fresh]);
    for (const n of c.nodes) expectCoherentEvents(n);
    for (const ids of announcedLeaders(c.nodes).values()) expect(ids.size).toBe(1);
    await c.stopAll();
  });

  it('a leader cut off from its quorum reports stepping down', async () => {
    const c = await Cluster.create();
    const leader = await c.electLeader();
    const term = leader.node.status().term;
    const seen = leader.events.length;
    c.network.disconnect(leader.id);
    await c.runUntil(() => leader.node.status().role !== 'leader', 30, 'step-down');
    expect(leader.events.slice(seen, seen + 2)).toEqual([
      { type: 'roleChanged', role: 'follower', term },
      { type: 'leaderChanged', leaderId: null, term },
    ]);
    await c.stopAll();
  });

  it('unsubscribe stops delivery, and is idempotent', async () => {
    const c = await Cluster.create();
    const a = c.get('a');
    const kept: RaftEvent[] = [];
    const dropped: RaftEvent[] = [];
    a.node.subscribe((e) => kept.push(e));
    const unsubscribe = a.node.subscribe((e) => dropped.push(e));
    await c.electLeader();
    expect(dropped).toEqual(kept);
    expect(kept.length).toBeGreaterThan(0);
    const before = dropped.length;

    unsubscribe();
    unsubscribe();
    // Force more events: cut the leader off so a new term starts.
    const leader = c.leaders()[0] as TestNode;
    c.network.disconnect(leader.id);
    await c.runUntil(() => kept.length > before, 60, 'a new event on a');
    expect(dropped.length).toBe(before);
    await c.stopAll();
  });

  it('a listener may unsubscribe itself while an event is being delivered', async () => {
    const c = await Cluster.create();
    const a = c.get('a');
    const once: RaftEvent[] = [];
    const after: RaftEvent[] = [];
    const off = a.node.subscribe((e) => {
      once.push(e);
      off();
    });
    a.node.subscribe((e) => after.push(e));
    await c.electLeader();
    expect(once).toHaveLength(1);
    expect(after[0]).toEqual(once[0]);
    expect(after.length).toBeGreaterThan(1);
    await c.stopAll();
  });

  it('a throwing listener is logged and does not break the node or other listeners', async () => {
    const logged: { fields: Record<string, unknown>; msg: string | undefined }[] = [];
    const logger: Logger = {
      debug: () => {},
      info: () => {},
      warn: () => {},
      error: (fields, msg) => logged.push({ fields, msg }),
    };
    const c = new Cluster();
    const boom = new Error('listener bug');
    for (const id of c.ids) {
      const n = c.add(id, { logger });
      n.node.subscribe(() => {
        throw boom;
      });
    }
    // Listeners subscribed after the throwing one still run (the harness logs into `events`
    // first, so add one more after it).
    const late: RaftEvent[] = [];
    c.get('a').node.subscribe((e) => late.push(e));
    await Promise.all(
      c.nodes.map((n) =>
        n.node.start({
          bootstrap: { members: c.ids.map((id) => ({ id, address: id, voter: true })) },
        }),
      ),
    );

    const leader = await c.electLeader();
    const r = await c.settle(leader.node.propose(9));
    expect(r.result).toBe(9);
    await c.waitApplied(r.index);
    for (const n of c.nodes) {
      expect(n.node.state).toBe('running');
      expect(n.sm.commands).toEqual([9]);
    }
    expect(late.length).toBeGreaterThan(0);
    expect(late).toEqual(c.get('a').events);
    expect(logged.length).toBeGreaterThan(0);
    expect(logged[0]).toMatchObject({ fields: { err: boom }, msg: 'event listener threw' });
    await c.stopAll();
  });

  it('subscribing before start() sees the first election', async () => {
    const c = await Cluster.create({ ids: ['solo'] });
    await c.electLeader();
    // The harness subscribes right after createRaftNode(), before start().
    expect(c.get('solo').events.map((e) => e.type)).toContain('roleChanged');
    expectCoherentEvents(c.get('solo'));
    await c.stopAll();
  });
});
