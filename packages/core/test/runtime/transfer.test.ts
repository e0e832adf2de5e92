/**
 * `node.transferLeadership()` through the public API.
 */
import { describe, expect, it } from 'vitest';
import { RaftError } from '../../src/index.js';
import { clustersPerTest, type TestNode, TIMING, track } from './helpers.js';

const clusters = clustersPerTest();
const threeNodes = clusters.withLeader;

describe('transferLeadership', () => {
  it('hands leadership to the chosen voter, well before an election timeout', async () => {
    const { c, leader } = await threeNodes();
    await c.settle(leader.node.propose(1));
    const target = c.followersOf(leader)[1] as TestNode;
    const term = leader.node.status().term;
    const start = c.clock.now();
    const result = await c.settle(leader.node.transferLeadership(target.id), 100);
    expect(result).toEqual({ leaderId: target.id, term: term + 1 });
    expect(c.clock.now() - start).toBeLessThan(TIMING.electionTimeoutMs);
    expect(target.node.status().role).toBe('leader');
    expect((await c.settle(target.node.propose(2))).result).toBe(3);
  });

  it('picks the most up-to-date voter when no target is given', async () => {
    const { c, leader } = await threeNodes();
    const result = await c.settle(leader.node.transferLeadership(), 100);
    expect(result.leaderId).not.toBe(leader.id);
    expect(c.get(result.leaderId).node.status().role).toBe('leader');
  });

  it('refuses proposals during the transfer with TRANSFER_IN_PROGRESS', async () => {
    const { c, leader } = await threeNodes();
    const target = c.followersOf(leader)[0] as TestNode;
    c.network.disconnect(target.id);
    const transfer = track(leader.node.transferLeadership(target.id));
    const err = await c.rejection(leader.node.propose(5), 5);
    expect(err).toMatchObject({
      code: 'TRANSFER_IN_PROGRESS',
      retryable: true,
      outcome: 'notApplied',
    });
    // The target never answers: the transfer is abandoned after an election timeout and the
    // leader takes proposals again.
    await c.runUntil(() => transfer.settled, 100, 'the transfer gave up');
    expect(RaftError.is(transfer.error, 'TIMEOUT')).toBe(true);
    expect(leader.node.status().role).toBe('leader');
    expect((await c.settle(leader.node.propose(6))).result).toBe(6);
    c.network.connect(target.id);
  });

  it('refuses a learner, itself, and calls on a follower', async () => {
    const { c, leader } = await threeNodes();
    const d = c.add('d');
    await d.node.start();
    await c.settle(leader.node.addMember({ id: 'd', address: 'mem://d', voter: false }), 400);
    expect(await c.rejection(leader.node.transferLeadership('d'))).toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    expect(await c.rejection(leader.node.transferLeadership(leader.id))).toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    const follower = c.followersOf(leader)[0] as TestNode;
    expect(await c.rejection(follower.node.transferLeadership())).toMatchObject({
      code: 'NOT_LEADER',
      leaderId: leader.id,
    });
  });
});
