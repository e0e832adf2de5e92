/**
 * Leadership transfer in the engine (thesis §3.10): catch the target up, TimeoutNow, an
 * election past PreVote and leader stickiness, proposals refused meanwhile, and a transfer that
 * gives up after an election timeout.
 */
import { describe, expect, it } from 'vitest';
import { bytes, codeOf, Network, ofType } from './harness.js';

const THREE = ['n1', 'n2', 'n3'];
const ELECTION = 10;

const timeoutNows = (net: Network, since = 0) =>
  ofType(
    net.sent.slice(since).map((s) => s.message),
    'timeoutNow',
  );

describe('leadership transfer', () => {
  it('hands leadership to an up-to-date voter at once, past PreVote and stickiness', () => {
    const net = new Network({ voters: THREE });
    net.elect('n1');
    net.propose('n1', 'a');
    const term = net.status('n1').term;
    net.node('n1').transferLeadership('n3');
    net.stabilize();
    expect(net.leader()).toBe('n3');
    expect(net.status('n3').term).toBe(term + 1);
    expect(net.status('n1').role).toBe('follower');
    // The target's vote requests are real ones, flagged as a transfer: no pre-vote round.
    const votes = ofType(
      net.sent.map((s) => s.message),
      'vote',
    ).filter((m) => m.from === 'n3');
    expect(votes.every((m) => !m.preVote && m.transfer === true)).toBe(true);
  });

  it('brings a lagging target up to date before sending TimeoutNow', () => {
    const net = new Network({ voters: THREE });
    net.elect('n1');
    net.isolate('n3');
    for (let i = 0; i < 5; i++) net.propose('n1', `p${i}`);
    net.heal();
    const since = net.sent.length;
    net.node('n1').transferLeadership('n3');
    net.stabilize();
    const sent = timeoutNows(net, since);
    expect(sent).toHaveLength(1);
    expect(net.leader()).toBe('n3');
    expect(net.status('n3').lastLogIndex).toBeGreaterThanOrEqual(7);
  });

  it('refuses proposals during the transfer, and takes them again once it is abandoned', () => {
    const net = new Network({ voters: THREE });
    net.elect('n1');
    net.crash('n3');
    const n1 = net.node('n1');
    n1.transferLeadership('n3');
    expect(codeOf(() => n1.propose(bytes('x')))).toBe('TRANSFER_IN_PROGRESS');
    expect(codeOf(() => n1.proposeMembership({ type: 'remove', id: 'n2' }))).toBe(
      'TRANSFER_IN_PROGRESS',
    );
    expect(n1.status().leadTransferee).toBe('n3');
    net.tickAll(ELECTION, ['n1', 'n2']);
    expect(n1.status()).toMatchObject({ role: 'leader' });
    expect(n1.status().leadTransferee).toBeUndefined();
    expect(() => n1.propose(bytes('y'))).not.toThrow();
  });

  it('refuses a learner, itself, an unknown id, and calls on a follower', () => {
    const net = new Network({ voters: THREE, learners: ['n4'] });
    net.elect('n1');
    expect(codeOf(() => net.node('n1').transferLeadership('n4'))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => net.node('n1').transferLeadership('n1'))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => net.node('n1').transferLeadership('n9'))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => net.node('n2').transferLeadership('n3'))).toBe('NOT_LEADER');
  });

  it('a TimeoutNow from a stale term is ignored', () => {
    const net = new Network({ voters: THREE });
    net.elect('n1');
    const term = net.status('n2').term;
    net.node('n2').step({ type: 'timeoutNow', from: 'n1', to: 'n2', term: term - 1 });
    net.stabilize();
    expect(net.leader()).toBe('n1');
    expect(net.status('n2').term).toBe(term);
  });

  it('without a transfer, a follower still ignores vote requests while it hears a leader', () => {
    const net = new Network({ voters: THREE });
    net.elect('n1');
    const term = net.status('n2').term;
    net.node('n2').step({
      type: 'vote',
      from: 'n3',
      to: 'n2',
      term: term + 1,
      preVote: false,
      lastLogIndex: 50,
      lastLogTerm: term,
    });
    expect(net.status('n2').term).toBe(term);
  });
});
