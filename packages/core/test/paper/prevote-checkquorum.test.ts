/**
 * Thesis §9.6 PreVote, §6.2 CheckQuorum and §4.2.3 leader stickiness: the mechanisms that
 * keep a node that was partitioned away, or a leader that lost its majority, from disrupting
 * or stalling the cluster. After etcd's TestPreVote*, TestCheckQuorum*, TestLeaderStickiness
 * and TestFreeStuckCandidateWithCheckQuorum.
 */
import { describe, expect, it } from 'vitest';
import type { RaftMessage } from '../../src/messages.js';
import { Network, newNode, ofType, takeReady } from '../engine/harness.js';

const ids = ['n1', 'n2', 'n3'];
const ELECTION = 10;

/** Real (non-pre) vote requests `from` sent through the harness. */
const realVotesFrom = (net: Network, from: string) =>
  net.sent.filter(({ message: m }) => m.type === 'vote' && !m.preVote && m.from === from);

describe('thesis §9.6 PreVote', () => {
  it('a pre-candidate keeps its term and vote; only a won pre-vote starts a real campaign', () => {
    const n1 = newNode('n1', ids);
    n1.campaign();
    expect(n1.status()).toMatchObject({ role: 'preCandidate', term: 1, votedFor: null });
    takeReady(n1);
    // One refusal of two: pending. Both: back to follower, still at term 1.
    n1.step({ type: 'voteResponse', from: 'n2', to: 'n1', term: 1, preVote: true, granted: false });
    expect(n1.status().role).toBe('preCandidate');
    n1.step({ type: 'voteResponse', from: 'n3', to: 'n1', term: 1, preVote: true, granted: false });
    expect(n1.status()).toMatchObject({ role: 'follower', term: 1, votedFor: null });
    expect(n1.ready().hardState).toBeUndefined();
  });

  it('a granted pre-vote does not bind the voter: it can still vote for someone else', () => {
    const n2 = newNode('n2', ids);
    n2.step({
      type: 'vote',
      from: 'n1',
      to: 'n2',
      term: 2,
      preVote: true,
      lastLogIndex: 1,
      lastLogTerm: 1,
    });
    n2.step({
      type: 'vote',
      from: 'n3',
      to: 'n2',
      term: 2,
      preVote: false,
      lastLogIndex: 1,
      lastLogTerm: 1,
    });
    expect(
      ofType(n2.ready().messagesAfterPersist, 'voteResponse').map((m) => [
        m.to,
        m.preVote,
        m.granted,
      ]),
    ).toEqual([
      ['n1', true, true],
      ['n3', false, true],
    ]);
    expect(n2.status()).toMatchObject({ term: 2, votedFor: 'n3' });
  });

  it('a pre-candidate that hears from the leader of its term goes back to following it', () => {
    const n3 = newNode('n3', ids);
    n3.campaign();
    takeReady(n3);
    n3.step({ type: 'heartbeat', from: 'n1', to: 'n3', term: 1, commit: 1, round: 1 });
    expect(n3.status()).toMatchObject({ role: 'follower', term: 1, leaderId: 'n1' });
  });

  it('a partitioned node neither raises its term nor disrupts the leader when it returns', () => {
    const net = new Network({ voters: ids, seed: 7 });
    net.elect('n1');
    expect(net.status('n1').term).toBe(2);
    net.isolate('n3');
    // Ten election timeouts and more: n3 keeps pre-campaigning, in vain.
    net.tickAll(30 * ELECTION);
    expect(net.status('n3')).toMatchObject({ term: 2, leaderId: null });
    expect(net.status('n3').role).toMatch(/preCandidate|follower/);
    net.propose('n1', 'while n3 was away');
    net.heal();
    net.tickAll(5 * ELECTION);
    expect(net.leadersNow()).toEqual(['n1']);
    for (const id of ids)
      expect(net.status(id)).toMatchObject({ term: 2, leaderId: 'n1', commitIndex: 3 });
    expect(realVotesFrom(net, 'n3')).toEqual([]);
  });

  it('without CheckQuorum too: a node with a stale log wins no pre-vote, so terms stay put', () => {
    const net = new Network({ voters: ids, seed: 3, config: { checkQuorum: false } });
    net.elect('n1');
    net.isolate('n3');
    net.propose('n1', 'n3 misses this');
    net.tickAll(5 * ELECTION);
    net.heal();
    const since = net.delivered.length;
    net.node('n3').campaign(); // it times out before hearing from n1 again
    net.stabilize();
    // No lease without CheckQuorum: both answer, and both refuse the stale log (§5.4.1).
    const answers = net.deliveredWhere((m) => m.type === 'voteResponse' && m.to === 'n3', since);
    expect(answers.map((m) => [m.from, m.type === 'voteResponse' && m.granted])).toEqual([
      ['n1', false],
      ['n2', false],
    ]);
    net.tickAll(5 * ELECTION);
    expect(net.leadersNow()).toEqual(['n1']);
    for (const id of ids) expect(net.status(id)).toMatchObject({ term: 2, commitIndex: 3 });
    expect(realVotesFrom(net, 'n3')).toEqual([]);
  });

  it('without CheckQuorum, PreVote alone does not stop an up-to-date node (as in etcd)', () => {
    // Nothing was committed while n3 was away, so its log is as good as anyone's: the others,
    // leader included, grant its pre-vote and then its vote. CheckQuorum's lease is what
    // protects a healthy leader here (see the next describe block).
    const net = new Network({ voters: ids, seed: 3, config: { checkQuorum: false } });
    net.elect('n1');
    net.isolate('n3');
    net.tickAll(5 * ELECTION);
    net.heal();
    net.campaign('n3');
    expect(net.status('n3')).toMatchObject({ role: 'leader', term: 3 });
  });

  it('contrast, without PreVote or CheckQuorum: the returning node forces a new term', () => {
    const net = new Network({
      voters: ids,
      seed: 7,
      config: { preVote: false, checkQuorum: false },
    });
    net.elect('n1');
    net.isolate('n3');
    net.tickAll(5 * ELECTION);
    const n3Term = net.status('n3').term;
    expect(n3Term).toBeGreaterThan(2);
    net.heal();
    net.tickUntil(
      () => net.leader() !== undefined && net.status(net.leader() as string).term >= n3Term,
      20 * ELECTION,
    );
    expect(net.status(net.leader() as string).term).toBeGreaterThanOrEqual(n3Term);
  });

  it('a pre-candidate with a majority of pre-votes then wins the real election', () => {
    const net = new Network({ voters: ids });
    net.campaign('n2');
    expect(net.status('n2')).toMatchObject({ role: 'leader', term: 2 });
    const votes = net.sent.map(({ message: m }) => m).filter((m) => m.type === 'vote');
    expect(
      votes.map((m) => (m.type === 'vote' ? `${m.preVote ? 'pre' : 'real'}@${m.term}` : '')),
    ).toEqual(['pre@2', 'pre@2', 'real@2', 'real@2']);
  });
});

describe('thesis §6.2 CheckQuorum', () => {
  it('an isolated leader steps down within one to two election timeouts', () => {
    for (let seed = 1; seed <= 10; seed++) {
      const net = new Network({ voters: ids, seed });
      net.elect('n1');
      net.tickAll(seed); // some phase of the CheckQuorum period
      net.isolate('n1');
      let ticks = 0;
      while (net.status('n1').role === 'leader' && ticks < 10 * ELECTION) {
        net.tickAll(1, ['n1']);
        ticks++;
      }
      expect(net.status('n1')).toMatchObject({ role: 'follower', term: 2, leaderId: null });
      // Never before a full election timeout without contact; the first check may still see
      // the activity of the period before the partition.
      expect(ticks).toBeGreaterThanOrEqual(ELECTION);
      expect(ticks).toBeLessThanOrEqual(2 * ELECTION);
    }
  });

  it('a leader that hears from a majority stays leader indefinitely', () => {
    const five = ['n1', 'n2', 'n3', 'n4', 'n5'];
    const net = new Network({ voters: five });
    net.elect('n1');
    net.isolate('n4');
    net.isolate('n5');
    net.tickAll(20 * ELECTION, ['n1', 'n2', 'n3']);
    expect(net.status('n1')).toMatchObject({ role: 'leader', term: 2 });
  });

  it('a leader that hears from only a minority steps down', () => {
    const five = ['n1', 'n2', 'n3', 'n4', 'n5'];
    const net = new Network({ voters: five });
    net.elect('n1');
    for (const id of ['n3', 'n4', 'n5']) net.cut('n1', id);
    net.tickAll(2 * ELECTION, ['n1', 'n2']);
    expect(net.status('n1').role).toBe('follower');
  });

  it('contrast, without CheckQuorum: an isolated leader believes it leads forever', () => {
    const net = new Network({ voters: ids, config: { checkQuorum: false } });
    net.elect('n1');
    net.isolate('n1');
    net.tickAll(20 * ELECTION, ['n1']);
    expect(net.status('n1').role).toBe('leader');
  });

  it('after the partition heals the deposed leader follows the new one', () => {
    const net = new Network({ voters: ids, seed: 5 });
    net.elect('n1');
    net.isolate('n1');
    net.tickUntil(
      () => net.status('n1').role !== 'leader' && net.leadersNow().length === 1,
      20 * ELECTION,
    );
    const leader = net.leader() as string;
    expect(leader).not.toBe('n1');
    const term = net.status(leader).term;
    expect(net.status('n1').term).toBe(2); // PreVote: no term inflation while isolated
    net.heal();
    net.tickAll(3 * ELECTION);
    expect(net.leadersNow()).toEqual([leader]);
    expect(net.status('n1')).toMatchObject({ role: 'follower', term, leaderId: leader });
  });
});

describe('thesis §4.2.3 leader stickiness (with CheckQuorum)', () => {
  const vote = (to: string, term: number, preVote: boolean): RaftMessage => ({
    type: 'vote',
    from: 'n3',
    to,
    term,
    preVote,
    lastLogIndex: 100,
    lastLogTerm: term - 1,
  });

  it.each([false, true])(
    'a follower that heard from its leader lately ignores higher-term vote requests (preVote %s)',
    (preVote) => {
      const net = new Network({ voters: ids });
      net.elect('n1');
      net.isolate('n1');
      const n2 = net.node('n2');
      n2.step(vote('n2', 3, preVote));
      expect(n2.hasReady()).toBe(false);
      expect(n2.status()).toMatchObject({ term: 2, leaderId: 'n1', votedFor: 'n1' });
      // Still within the election timeout since the last heartbeat: still ignored.
      net.tick('n2', ELECTION - 1);
      n2.step(vote('n2', 3, preVote));
      expect(net.status('n2').term).toBe(2);
      const rd = net.process('n2');
      expect(ofType(rd?.messagesAfterPersist ?? [], 'voteResponse')).toEqual([]);
      // A full election timeout without the leader: the request is answered and granted.
      net.tick('n2', 1);
      n2.step(vote('n2', 3, preVote));
      const answer = ofType(net.process('n2')?.messagesAfterPersist ?? [], 'voteResponse');
      expect(answer).toEqual([
        { type: 'voteResponse', from: 'n2', to: 'n3', term: 3, preVote, granted: true },
      ]);
    },
  );

  it('the leader itself ignores higher-term vote requests while it holds its quorum', () => {
    const net = new Network({ voters: ids });
    net.elect('n1');
    net.node('n1').step(vote('n1', 9, false));
    expect(net.status('n1')).toMatchObject({ role: 'leader', term: 2 });
  });

  it('without CheckQuorum there is no lease: the same request deposes the leader', () => {
    const net = new Network({ voters: ids, config: { checkQuorum: false } });
    net.elect('n1');
    net.node('n1').step(vote('n1', 9, false));
    expect(net.status('n1')).toMatchObject({ role: 'follower', term: 9, votedFor: 'n3' });
  });

  it('a rejoining node whose term grew (no PreVote) is answered at its term and forces an election', () => {
    // With CheckQuorum but without PreVote, the lease alone ignores the stray node's votes,
    // yet its answers to the leader's heartbeats carry its higher term (etcd behaves alike).
    const net = new Network({ voters: ids, seed: 2, config: { preVote: false } });
    net.elect('n1');
    net.isolate('n3');
    net.tickAll(5 * ELECTION);
    const strayTerm = net.status('n3').term;
    expect(strayTerm).toBeGreaterThan(2);
    net.heal();
    // n1's next heartbeat is answered at the stray term: the healthy leader is deposed.
    net.tickAll(1);
    expect(net.status('n1')).toMatchObject({ role: 'follower', term: strayTerm });
    net.tickUntil(() => net.leader() !== undefined, 30 * ELECTION);
    expect(net.status(net.leader() as string).term).toBeGreaterThanOrEqual(strayTerm);
    expect(net.leadersNow()).toHaveLength(1);
  });
});
