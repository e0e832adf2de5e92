/**
 * Membership changes through the public API: learners, promotion, removal (of a follower and of
 * the leader), one change at a time, and the events and status that show them.
 */
import { describe, expect, it } from 'vitest';
import type { Member, RaftEvent } from '../../src/index.js';
import { type Cluster, clustersPerTest, SnapCounter, type TestNode, track } from './helpers.js';

const learner = (id: string): Member => ({ id, address: `mem://${id}`, voter: false });

const clusters = clustersPerTest();
const threeNodes = clusters.withLeader;

/** A node started on empty storage, waiting for a leader to contact it. */
async function joiner(c: Cluster, id: string): Promise<TestNode> {
  const n = c.add(id);
  await n.node.start();
  return n;
}

const membershipEvents = (n: TestNode) =>
  n.events.filter((e): e is Extract<RaftEvent, { type: 'membershipChanged' }> => {
    return e.type === 'membershipChanged';
  });

describe('adding members', () => {
  it('adds a learner that catches up, then promotes it to a voter', async () => {
    const { c, leader } = await threeNodes();
    for (let i = 1; i <= 5; i++) await c.settle(leader.node.propose(i));
    const d = await joiner(c, 'd');
    const added = await c.settle(leader.node.addMember(learner('d')), 400);
    expect(added.members.map((m) => [m.id, m.voter])).toEqual([
      ['a', true],
      ['b', true],
      ['c', true],
      ['d', false],
    ]);
    await c.runUntil(() => d.sm.total === 15, 400, 'the learner applied the log');
    const promoted = await c.settle(leader.node.promote('d'), 400);
    expect(promoted.members.find((m) => m.id === 'd')?.voter).toBe(true);
    await c.runUntil(
      () => c.nodes.every((n) => n.node.status().members.every((m) => m.voter)),
      200,
      'every node sees four voters',
    );
    // Every node reported both changes, the learner included.
    for (const n of c.nodes) {
      const last = membershipEvents(n).at(-1);
      expect(last?.membership.members.find((m) => m.id === 'd')?.voter).toBe(true);
    }
    expect(membershipEvents(leader).map((e) => e.index)).toEqual([
      expect.any(Number),
      expect.any(Number),
    ]);
  });

  it('refuses to promote a lagging learner unless forced', async () => {
    const { c, leader } = await threeNodes({ options: { maxPromotionLag: 2 } });
    await joiner(c, 'd');
    c.network.disconnect('d');
    await c.settle(leader.node.addMember(learner('d')), 400);
    for (let i = 1; i <= 5; i++) await c.settle(leader.node.propose(i));
    const err = await c.rejection(leader.node.promote('d'));
    expect(err).toMatchObject({ code: 'LEARNER_LAGGING', retryable: true, outcome: 'notApplied' });
    c.network.connect('d');
    const forced = await c.settle(leader.node.promote('d', { force: true }), 400);
    expect(forced.members.find((m) => m.id === 'd')?.voter).toBe(true);
  });

  it('allows one change at a time: a concurrent one is refused with MEMBERSHIP_CHANGE_PENDING', async () => {
    const { c, leader } = await threeNodes();
    await joiner(c, 'd');
    await joiner(c, 'e');
    const first = track(leader.node.addMember(learner('d')));
    const second = await c.rejection(leader.node.addMember(learner('e')));
    expect(second).toMatchObject({ code: 'MEMBERSHIP_CHANGE_PENDING', retryable: true });
    await c.settle(first.promise, 400);
    const after = await c.settle(leader.node.addMember(learner('e')), 400);
    expect(after.members.map((m) => m.id)).toEqual(['a', 'b', 'c', 'd', 'e']);
  });

  it('refuses bad input and calls on a follower, appending nothing', async () => {
    const { c, leader } = await threeNodes();
    const follower = c.followersOf(leader)[0] as TestNode;
    const last = leader.node.status().lastLogIndex;
    expect(await c.rejection(follower.node.addMember(learner('d')))).toMatchObject({
      code: 'NOT_LEADER',
      leaderId: leader.id,
    });
    expect(await c.rejection(leader.node.addMember(learner('b')))).toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    expect(
      await c.rejection(leader.node.addMember({ id: '', address: 'x', voter: true })),
    ).toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(await c.rejection(leader.node.removeMember('zz'))).toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    expect(await c.rejection(leader.node.promote('b'))).toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(leader.node.status().lastLogIndex).toBe(last);
  });
});

describe('a learner joining a compacted log', () => {
  it('catches up from a snapshot, serves linearizable reads, and can be promoted', async () => {
    const { c, leader } = await threeNodes({
      snapshots: true,
      stateMachine: () => new SnapCounter(),
      options: { snapshotThreshold: 10, trailingEntries: 0, snapshotChunkBytes: 16 },
    });
    for (let i = 1; i <= 30; i++) await c.settle(leader.node.propose(i));
    await c.runUntil(() => leader.node.status().snapshotIndex >= 20, 200, 'a snapshot');
    const d = c.add('d', {
      snapshotThreshold: 10,
      trailingEntries: 0,
      snapshotChunkBytes: 16,
    });
    await d.node.start();
    await c.settle(leader.node.addMember(learner('d')), 400);
    await c.runUntil(() => d.sm.total === 465, 600, 'the learner caught up');
    expect(d.events.some((e) => e.type === 'snapshotInstalled')).toBe(true);
    // A learner reads through the leader's read index, like any follower.
    await c.settle(leader.node.propose(100));
    const r = await c.settle(d.node.read(), 200);
    expect(d.sm.total).toBe(565);
    expect(r.index).toBeGreaterThanOrEqual(d.node.status().commitIndex - 1);
    const promoted = await c.settle(leader.node.promote('d'), 400);
    expect(promoted.members.find((m) => m.id === 'd')?.voter).toBe(true);
  });
});

describe('removing members', () => {
  it('removes a follower, which then cannot disturb the cluster', async () => {
    const { c, leader } = await threeNodes();
    const victim = c.followersOf(leader)[0] as TestNode;
    const after = await c.settle(leader.node.removeMember(victim.id), 400);
    expect(after.members.map((m) => m.id)).not.toContain(victim.id);
    const term = leader.node.status().term;
    // The removed node hears from nobody: it campaigns, and nobody listens.
    await c.run(100);
    expect(leader.node.status()).toMatchObject({ role: 'leader', term });
    const r = await c.settle(leader.node.propose(7));
    expect(r.result).toBe(7);
  });

  it('removes the leader: it hands over, steps down, and the rest goes on', async () => {
    const { c, leader } = await threeNodes();
    const term = leader.node.status().term;
    const after = await c.settle(leader.node.removeMember(leader.id), 400);
    expect(after.members.map((m) => m.id)).not.toContain(leader.id);
    const rest = c.followersOf(leader);
    const next = await c.electLeader(rest, 100);
    expect(next.node.status().term).toBe(term + 1);
    expect(leader.node.status().role).toBe('follower');
    expect((await c.settle(next.node.propose(3))).result).toBe(3);
    await c.run(50);
    expect(leader.node.status().role).toBe('follower');
    expect(next.node.status().term).toBe(term + 1);
  });
});

describe('a node that lost its disk', () => {
  it('fails with a StorageError naming the cause when it comes back under its old id', async () => {
    const { c, leader } = await threeNodes();
    for (let i = 1; i <= 3; i++) await c.settle(leader.node.propose(i));
    const victim = c.followersOf(leader)[0] as TestNode;
    await c.settle(victim.node.stop());
    // Same id, empty disk (no bootstrap: that would make a new cluster of its own).
    const wiped = c.add(victim.id);
    await wiped.node.start();
    await c.runUntil(() => wiped.node.state === 'failed', 100, 'the wiped node fails');
    const fatal = wiped.events.find((e) => e.type === 'fatal');
    expect(fatal?.type === 'fatal' && fatal.error.code).toBe('STORAGE');
    expect(fatal?.type === 'fatal' && fatal.error.message).toMatch(
      /lost entries it had acknowledged.*new id/,
    );
    // It never voted or acknowledged anything, and the others go on.
    expect((await c.settle(leader.node.propose(10))).result).toBe(16);
  });

  it('rejoins under a new id: remove the old one, add the new one as a learner, promote it', async () => {
    const { c, leader } = await threeNodes();
    for (let i = 1; i <= 3; i++) await c.settle(leader.node.propose(i));
    const lost = c.followersOf(leader)[0] as TestNode;
    await c.settle(lost.node.stop());
    await c.settle(leader.node.removeMember(lost.id), 400);
    const fresh = await joiner(c, `${lost.id}-2`);
    await c.settle(leader.node.addMember(learner(fresh.id)), 400);
    await c.runUntil(() => fresh.sm.total === 6, 400, 'the new member caught up');
    const final = await c.settle(leader.node.promote(fresh.id), 400);
    expect(final.members.map((m) => [m.id, m.voter]).sort()).toEqual(
      [
        ...c
          .followersOf(leader)
          .filter((n) => n !== lost && n !== fresh)
          .map((n) => [n.id, true]),
        [leader.id, true],
        [fresh.id, true],
      ].sort(),
    );
  });
});
