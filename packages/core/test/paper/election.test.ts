/**
 * Raft paper §5.1 and §5.2, after etcd's raft_paper_test.go. Most cases drive a RawNode by
 * hand and assert on its Ready; the multi-node ones use the synchronous harness.
 */
import { describe, expect, it } from 'vitest';
import type { RawNode } from '../../src/engine/raw-node.js';
import type { RaftMessage } from '../../src/messages.js';
import {
  bootstrapState,
  logWithTerms,
  Network,
  newNode,
  ofType,
  rawNode,
  seededRandom,
  takeReady,
} from '../engine/harness.js';

const ids = ['n1', 'n2', 'n3'];
const ELECTION = 10;

/** n1 put into `role` at term 2 (a leader wins with n2's vote; no message is delivered). */
function inRole(role: 'follower' | 'preCandidate' | 'candidate' | 'leader'): RawNode {
  const n1 = newNode('n1', ids, { preVote: role === 'preCandidate' });
  if (role === 'follower') {
    n1.step({ type: 'heartbeat', from: 'n2', to: 'n1', term: 2, commit: 1, round: 1 });
  } else {
    n1.campaign();
    if (role === 'leader')
      n1.step({
        type: 'voteResponse',
        from: 'n2',
        to: 'n1',
        term: 2,
        preVote: false,
        granted: true,
      });
  }
  takeReady(n1);
  expect(n1.status().role).toBe(role);
  return n1;
}

const append = (term: number, from = 'n2'): RaftMessage => ({
  type: 'append',
  from,
  to: 'n1',
  term,
  prevIndex: 1,
  prevTerm: 1,
  entries: [],
  commit: 1,
});

describe('§5.1 terms', () => {
  it.each(['follower', 'preCandidate', 'candidate', 'leader'] as const)(
    'a %s that sees a higher term adopts it and becomes a follower',
    (role) => {
      const n1 = inRole(role);
      n1.step(append(7, 'n3'));
      expect(n1.status()).toMatchObject({
        role: 'follower',
        term: 7,
        leaderId: 'n3',
        votedFor: null,
      });
      const rd = n1.ready();
      expect(rd.hardState).toMatchObject({ term: 7, votedFor: null });
      expect(rd.softState).toEqual({ role: 'follower', leaderId: 'n3' });
    },
  );

  it.each<[string, RaftMessage]>([
    ['heartbeat', { type: 'heartbeat', from: 'n3', to: 'n1', term: 7, commit: 1, round: 1 }],
    [
      'appendResponse',
      { type: 'appendResponse', from: 'n3', to: 'n1', term: 7, success: false, matchIndex: 0 },
    ],
    ['heartbeatResponse', { type: 'heartbeatResponse', from: 'n3', to: 'n1', term: 7, round: 1 }],
    [
      'rejected voteResponse',
      { type: 'voteResponse', from: 'n3', to: 'n1', term: 7, preVote: false, granted: false },
    ],
    [
      'rejected pre-voteResponse',
      { type: 'voteResponse', from: 'n3', to: 'n1', term: 7, preVote: true, granted: false },
    ],
  ])('a leader steps down on a higher-term %s', (_, m) => {
    const n1 = inRole('leader');
    n1.step(m);
    expect(n1.status()).toMatchObject({ role: 'follower', term: 7 });
  });

  it('a higher-term vote request makes a node without a leader adopt the term', () => {
    const n1 = newNode('n1', ids);
    n1.step({
      type: 'vote',
      from: 'n3',
      to: 'n1',
      term: 7,
      preVote: false,
      lastLogIndex: 1,
      lastLogTerm: 1,
    });
    expect(n1.status()).toMatchObject({ role: 'follower', term: 7, votedFor: 'n3' });
  });

  it('a higher-term pre-vote request changes nothing (thesis §9.6)', () => {
    const n1 = newNode('n1', ids);
    n1.step({
      type: 'vote',
      from: 'n3',
      to: 'n1',
      term: 7,
      preVote: true,
      lastLogIndex: 1,
      lastLogTerm: 1,
    });
    expect(n1.status()).toMatchObject({ role: 'follower', term: 1, votedFor: null });
  });

  it('stale-term messages are refused: appends get a rejection at the current term', () => {
    const n1 = rawNode(
      'n1',
      ids,
      {},
      {
        hardState: { term: 5, votedFor: null, commit: 1 },
        entries: logWithTerms(ids, [1]),
        applied: 1,
      },
    );
    n1.step({
      ...append(4),
      entries: [{ index: 2, term: 4, kind: 'command', data: new Uint8Array(1) }],
    } as RaftMessage);
    n1.step({
      type: 'vote',
      from: 'n2',
      to: 'n1',
      term: 4,
      preVote: false,
      lastLogIndex: 9,
      lastLogTerm: 4,
    });
    const rd = n1.ready();
    expect(rd.entries).toEqual([]);
    expect(n1.status()).toMatchObject({ term: 5, lastLogIndex: 1, leaderId: null, votedFor: null });
    // The append is answered (so a stale leader learns the term); a stale vote is not.
    expect(rd.messagesAfterPersist).toEqual([
      { type: 'appendResponse', from: 'n1', to: 'n2', term: 5, success: false, matchIndex: 0 },
    ]);
  });

  it('a stale pre-vote is refused with the current term, so the pre-candidate catches up', () => {
    const n1 = rawNode(
      'n1',
      ids,
      {},
      {
        hardState: { term: 4, votedFor: null, commit: 1 },
        entries: logWithTerms(ids, [1]),
        applied: 1,
      },
    );
    const n3 = newNode(
      'n3',
      ids,
      {},
      {
        hardState: { term: 2, votedFor: null, commit: 1 },
        entries: logWithTerms(ids, [1]),
        applied: 1,
      },
    );
    n3.campaign();
    const probe = ofType(n3.ready().messages, 'vote').find((m) => m.to === 'n1') as RaftMessage;
    expect(probe).toMatchObject({ term: 3, preVote: true });
    n1.step(probe);
    const [answer] = n1.ready().messagesAfterPersist;
    expect(answer).toEqual({
      type: 'voteResponse',
      from: 'n1',
      to: 'n3',
      term: 4,
      preVote: true,
      granted: false,
    });
    n3.step(answer as RaftMessage);
    expect(n3.status()).toMatchObject({ role: 'follower', term: 4 });
  });
});

describe('§5.2 leader election', () => {
  it('a fresh node starts as a follower of term 1 without a leader', () => {
    const n = newNode('n1', ids);
    expect(n.status()).toMatchObject({ role: 'follower', term: 1, leaderId: null, votedFor: null });
  });

  it('a follower that hears from no leader starts an election after its election timeout', () => {
    const n1 = newNode('n1', ids, { preVote: false });
    for (let i = 0; i < 2 * ELECTION; i++) n1.tick();
    const rd = n1.ready();
    expect(rd.softState?.role).toBe('candidate');
    expect(rd.hardState).toEqual({ term: 2, votedFor: 'n1', commit: 1 });
    expect(ofType(rd.messagesAfterPersist, 'vote').map((m) => m.to)).toEqual(['n2', 'n3']);
  });

  it('a follower that keeps hearing from the leader never starts an election', () => {
    const n2 = newNode('n2', ids);
    for (let i = 0; i < 20 * ELECTION; i++) {
      n2.tick();
      if (i % 3 === 0)
        n2.step({ type: 'heartbeat', from: 'n1', to: 'n2', term: 2, commit: 1, round: 1 });
    }
    expect(n2.status()).toMatchObject({ role: 'follower', term: 2, leaderId: 'n1' });
  });

  it('a candidate votes for itself and asks for votes only after persisting that vote', () => {
    const n1 = newNode('n1', ids, { preVote: false });
    n1.campaign();
    expect(n1.status()).toMatchObject({ role: 'candidate', term: 2, votedFor: 'n1' });
    const rd = n1.ready();
    expect(rd.hardState).toEqual({ term: 2, votedFor: 'n1', commit: 1 });
    expect(ofType(rd.messages, 'vote')).toEqual([]);
    expect(ofType(rd.messagesAfterPersist, 'vote')).toHaveLength(2);
  });

  it('election timeouts are randomized in [electionTicks, 2 * electionTicks)', () => {
    const timeouts = new Set<number>();
    for (let seed = 1; seed <= 200; seed++) {
      const n = rawNode(
        'n1',
        ids,
        { electionTicks: ELECTION, preVote: false },
        bootstrapState(ids),
        seededRandom(seed),
      );
      takeReady(n);
      let ticks = 0;
      while (n.status().role === 'follower') {
        n.tick();
        ticks++;
        if (ticks > 100) throw new Error('never campaigned');
      }
      timeouts.add(ticks);
    }
    const sorted = [...timeouts].sort((a, b) => a - b);
    // Every value of the range shows up, and nothing outside it.
    expect(sorted).toEqual(Array.from({ length: ELECTION }, (_, i) => ELECTION + i));
  });

  it('the extremes of the random source map to both ends of the range', () => {
    const ticksToCampaign = (random: () => number) => {
      const n = rawNode('n1', ids, { preVote: false }, bootstrapState(ids), random);
      let ticks = 0;
      while (n.status().role === 'follower') {
        n.tick();
        ticks++;
      }
      return ticks;
    };
    expect(ticksToCampaign(() => 0)).toBe(ELECTION);
    expect(ticksToCampaign(() => 0.999999)).toBe(2 * ELECTION - 1);
  });

  it('a new timeout is drawn for each term', () => {
    // The random source is consulted again on every term change, so a candidate that fails
    // does not retry in lockstep with another.
    let calls = 0;
    const random = () => {
      calls++;
      return 0.5;
    };
    const n1 = rawNode('n1', ids, { preVote: false }, bootstrapState(ids), random);
    const before = calls;
    n1.campaign();
    expect(calls).toBe(before + 1);
    n1.step(append(5, 'n2'));
    expect(calls).toBe(before + 2);
  });

  it('different nodes rarely time out together (etcd: conflict probability < 0.3)', () => {
    let conflicts = 0;
    const runs = 100;
    for (let seed = 1; seed <= runs; seed++) {
      const five = ['a', 'b', 'c', 'd', 'e'];
      const net = new Network({ voters: five, seed, config: { preVote: false } });
      net.stabilize();
      // Tick everyone without delivering anything; see how many campaign on the first tick
      // anyone does.
      for (let t = 0; t < 2 * ELECTION; t++) {
        for (const id of five) net.node(id).tick();
        const campaigning = five.filter((id) => net.status(id).role !== 'follower').length;
        if (campaigning > 0) {
          if (campaigning > 1) conflicts++;
          break;
        }
      }
    }
    expect(conflicts / runs).toBeLessThan(0.3);
  });

  // etcd TestLeaderElectionInOneRoundRPC.
  it.each<[number, Record<string, boolean>, string]>([
    [1, {}, 'leader'],
    [3, { n2: true, n3: true }, 'leader'],
    [3, { n2: true }, 'leader'],
    [5, { n2: true, n3: true, n4: true, n5: true }, 'leader'],
    [5, { n2: true, n3: true }, 'leader'],
    [3, { n2: false, n3: false }, 'follower'],
    [5, { n2: false, n3: false, n4: false, n5: false }, 'follower'],
    [5, { n2: true, n3: false, n4: false, n5: false }, 'follower'],
    [3, {}, 'candidate'],
    [5, { n2: true }, 'candidate'],
    [5, { n2: false, n3: false }, 'candidate'],
    [5, {}, 'candidate'],
  ])('a cluster of %i with votes %j: the candidate ends as %s', (size, votes, role) => {
    const voters = Array.from({ length: size }, (_, i) => `n${i + 1}`);
    const n1 = newNode('n1', voters, { preVote: false });
    n1.campaign();
    for (const [from, granted] of Object.entries(votes))
      n1.step({ type: 'voteResponse', from, to: 'n1', term: 2, preVote: false, granted });
    expect(n1.status()).toMatchObject({ role, term: 2 });
  });

  it('votes from non-members and duplicate votes do not count', () => {
    const n1 = newNode('n1', ['n1', 'n2', 'n3', 'n4', 'n5'], { preVote: false });
    n1.campaign();
    for (const from of ['n2', 'n2', 'n2', 'x', 'y'])
      n1.step({ type: 'voteResponse', from, to: 'n1', term: 2, preVote: false, granted: true });
    expect(n1.status().role).toBe('candidate');
    n1.step({ type: 'voteResponse', from: 'n3', to: 'n1', term: 2, preVote: false, granted: true });
    expect(n1.status().role).toBe('leader');
  });

  // etcd TestFollowerVote: at most one vote per term, first come first served.
  it.each<[string | null, string, boolean]>([
    [null, 'n2', true],
    [null, 'n3', true],
    ['n2', 'n2', true],
    ['n3', 'n3', true],
    ['n2', 'n3', false],
    ['n3', 'n2', false],
  ])(
    'a follower that voted for %s, asked by %s at the same term, grants: %s',
    (votedFor, from, granted) => {
      const n1 = rawNode(
        'n1',
        ids,
        {},
        {
          hardState: { term: 2, votedFor, commit: 1 },
          entries: logWithTerms(ids, [1]),
          applied: 1,
        },
      );
      n1.step({
        type: 'vote',
        from,
        to: 'n1',
        term: 2,
        preVote: false,
        lastLogIndex: 1,
        lastLogTerm: 1,
      });
      const rd = n1.ready();
      expect(rd.messagesAfterPersist).toEqual([
        { type: 'voteResponse', from: 'n1', to: from, term: 2, preVote: false, granted },
      ]);
      expect(n1.status().votedFor).toBe(granted ? from : votedFor);
    },
  );

  it('a follower that knows the leader of its term refuses other candidates of that term', () => {
    const n1 = newNode('n1', ids);
    n1.step(append(2, 'n2'));
    n1.step({
      type: 'vote',
      from: 'n3',
      to: 'n1',
      term: 2,
      preVote: false,
      lastLogIndex: 5,
      lastLogTerm: 2,
    });
    expect(ofType(n1.ready().messagesAfterPersist, 'voteResponse')).toEqual([
      { type: 'voteResponse', from: 'n1', to: 'n3', term: 2, preVote: false, granted: false },
    ]);
  });

  it('a candidate refuses other candidates of its term', () => {
    const n1 = newNode('n1', ids, { preVote: false });
    n1.campaign();
    takeReady(n1);
    n1.step({
      type: 'vote',
      from: 'n2',
      to: 'n1',
      term: 2,
      preVote: false,
      lastLogIndex: 1,
      lastLogTerm: 1,
    });
    expect(ofType(n1.ready().messagesAfterPersist, 'voteResponse')[0]?.granted).toBe(false);
    expect(n1.status().role).toBe('candidate');
  });

  it.each(['append', 'heartbeat'] as const)(
    'a candidate that hears a %s from a leader of its term becomes its follower',
    (type) => {
      const n1 = newNode('n1', ids, { preVote: false });
      n1.campaign();
      takeReady(n1);
      n1.step(
        type === 'append'
          ? append(2, 'n3')
          : { type, from: 'n3', to: 'n1', term: 2, commit: 1, round: 1 },
      );
      expect(n1.status()).toMatchObject({
        role: 'follower',
        term: 2,
        leaderId: 'n3',
        votedFor: 'n1',
      });
    },
  );

  it('a candidate that neither wins nor loses times out and campaigns again at a higher term', () => {
    const n1 = newNode('n1', ids, { preVote: false });
    n1.campaign();
    takeReady(n1);
    for (let i = 0; i < 2 * ELECTION; i++) n1.tick();
    expect(n1.status()).toMatchObject({ role: 'candidate', term: 3, votedFor: 'n1' });
    expect(ofType(n1.ready().messagesAfterPersist, 'vote').map((m) => m.term)).toEqual([3, 3]);
  });

  it('a majority elects exactly one leader, which every node then follows', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const five = ['a', 'b', 'c', 'd', 'e'];
      const net = new Network({ voters: five, seed });
      net.tickUntil(() => net.leader() !== undefined, 100);
      net.tickAll(2);
      const leader = net.leader() as string;
      expect(net.leadersNow()).toEqual([leader]);
      const term = net.status(leader).term;
      for (const id of five) expect(net.status(id)).toMatchObject({ term, leaderId: leader });
    }
  });

  it('no leader without a majority: a minority partition elects nobody', () => {
    const five = ['a', 'b', 'c', 'd', 'e'];
    const net = new Network({ voters: five, config: { preVote: false } });
    for (const id of ['c', 'd', 'e']) net.isolate(id);
    net.tickAll(20 * ELECTION);
    expect(net.leadersNow()).toEqual([]);
    // Terms rose with every failed campaign (no PreVote here), yet nobody won.
    expect(net.status('a').term).toBeGreaterThan(2);
  });

  it('split votes: both candidates time out, and a later election picks one leader', () => {
    const four = ['n1', 'n2', 'n3', 'n4'];
    const net = new Network({ voters: four, config: { preVote: false }, seed: 3 });
    net.stabilize();
    // n1 reaches n3 first, n2 reaches n4 first: 2 votes each, 3 needed.
    net.drop('n1', 'n4');
    net.drop('n2', 'n3');
    net.node('n1').campaign();
    net.node('n2').campaign();
    net.stabilize();
    expect(net.status('n1')).toMatchObject({ role: 'candidate', term: 2 });
    expect(net.status('n2')).toMatchObject({ role: 'candidate', term: 2 });
    expect(net.leadersNow()).toEqual([]);
    net.heal();
    net.tickUntil(() => net.leader() !== undefined, 100);
    const leader = net.leader() as string;
    expect(net.status(leader).term).toBeGreaterThanOrEqual(3);
    expect(net.leadersNow()).toEqual([leader]);
  });
});
