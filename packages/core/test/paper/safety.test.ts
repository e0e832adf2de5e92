/**
 * Raft paper §5.4 safety: the election restriction (§5.4.1) and committing entries from
 * previous terms (§5.4.2, Figure 8), built explicitly with five servers S1..S5.
 */
import { describe, expect, it } from 'vitest';
import type { RaftMessage } from '../../src/messages.js';
import type { Term } from '../../src/types.js';
import {
  logWithTerms,
  Network,
  newNode,
  ofType,
  rawNode,
  takeReady,
  terms,
} from '../engine/harness.js';

const ids = ['n1', 'n2', 'n3'];

describe('§5.4.1 election restriction', () => {
  // etcd TestVoter: the voter's log is [1@1 2@2 3@2]; grant only to a log at least as
  // up-to-date (higher last term, or same last term and at least as long).
  it.each<[number, Term, boolean]>([
    [3, 2, true], // same log
    [4, 2, true], // same last term, longer
    [2, 2, false], // same last term, shorter
    [1, 3, true], // higher last term, however short
    [9, 1, false], // lower last term, however long
    [3, 1, false],
  ])('a candidate whose log ends at %i@%i is granted: %s', (lastLogIndex, lastLogTerm, granted) => {
    for (const preVote of [false, true]) {
      const n2 = rawNode(
        'n2',
        ids,
        {},
        {
          hardState: { term: 3, votedFor: null, commit: 1 },
          entries: logWithTerms(ids, [1, 2, 2]),
          applied: 1,
        },
      );
      n2.step({ type: 'vote', from: 'n1', to: 'n2', term: 4, preVote, lastLogIndex, lastLogTerm });
      const [answer] = ofType(n2.ready().messagesAfterPersist, 'voteResponse');
      expect(answer).toMatchObject({ preVote, granted });
      // A refused real vote still moves the voter to the candidate's term, without a vote.
      if (!preVote) expect(n2.status()).toMatchObject({ term: 4, votedFor: granted ? 'n1' : null });
    }
  });

  it('a node missing committed entries cannot become leader', () => {
    const net = new Network({ voters: ids, config: { checkQuorum: false, preVote: false } });
    net.elect('n1');
    net.isolate('n3');
    for (let i = 0; i < 3; i++) net.propose('n1', `c${i}`);
    expect(net.status('n1').commitIndex).toBe(5);
    net.heal();
    // n3 campaigns at a higher term with a stale log: both others refuse it.
    net.campaign('n3');
    expect(net.status('n3').role).not.toBe('leader');
    expect(
      net.deliveredWhere((m) => m.type === 'voteResponse' && m.to === 'n3' && m.granted),
    ).toEqual([]);
    // Whoever leads next has every committed entry.
    net.tickUntil(() => net.leader() !== undefined, 200);
    const leader = net.leader() as string;
    expect(leader).not.toBe('n3');
    expect(net.status(leader).lastLogIndex).toBeGreaterThanOrEqual(5);
    net.tickAll(3);
    expect(terms(net.disk('n3').entries).slice(0, 5)).toEqual(
      terms(net.disk(leader).entries).slice(0, 5),
    );
  });
});

describe('§5.4.2 committing entries from previous terms (Figure 8)', () => {
  // etcd TestLeaderOnlyCommitsLogFromCurrentTerm: n1 leads term 3 over a log [1@1 2@2 3@2]
  // with its no-op at 4. Acknowledgements up to an old-term index commit nothing.
  it.each<[number, number]>([
    [2, 1],
    [3, 1],
    [4, 4],
  ])('a majority acknowledging index %i moves the commit index to %i', (acked, commit) => {
    const n1 = rawNode(
      'n1',
      ids,
      { preVote: false },
      {
        hardState: { term: 2, votedFor: null, commit: 1 },
        entries: logWithTerms(ids, [1, 2, 2]),
        applied: 1,
      },
    );
    n1.campaign();
    takeReady(n1);
    n1.step({ type: 'voteResponse', from: 'n2', to: 'n1', term: 3, preVote: false, granted: true });
    takeReady(n1);
    n1.step({
      type: 'appendResponse',
      from: 'n2',
      to: 'n1',
      term: 3,
      success: true,
      matchIndex: acked,
    });
    expect(n1.status().commitIndex).toBe(commit);
  });

  const servers = ['s1', 's2', 's3', 's4', 's5'];

  /**
   * Figure 8 (a)-(c), with the engine's own no-ops as the entries (every index 1 is the
   * bootstrap entry of term 1):
   *   (a) S1 leads term 2 and writes 2@2 to S2 only; S1 crashes.
   *   (b) S5 leads term 3 (votes of S3, S4, S5) and writes 2@3 to itself only; S5 crashes.
   *   (c) S1 restarts, leads term 4 (S2, S3, S4) and copies 2@2 to the others. The copies of
   *       its own term-4 entry (3@4) are lost, so 2@2 sits on a majority without being
   *       committed.
   */
  function figure8c() {
    const net = new Network({ voters: servers, config: { preVote: false, checkQuorum: false } });
    net.stabilize();

    // (a)
    let rule = net.addDropRule((m) => m.type === 'append' && m.from === 's1' && m.to !== 's2');
    net.elect('s1');
    expect(net.status('s1')).toMatchObject({ term: 2, commitIndex: 1 });
    expect(terms(net.disk('s2').entries)).toEqual(['1@1', '2@2']);
    net.crash('s1');
    rule();

    // (b)
    rule = net.addDropRule((m) => m.type === 'append' && m.from === 's5');
    net.elect('s5');
    expect(net.status('s5').term).toBe(3);
    expect(terms(net.disk('s5').entries)).toEqual(['1@1', '2@3']);
    net.crash('s5');
    rule();

    // (c) Appends carrying 3@4 arrive without it (as if that part were lost).
    net.restart('s1');
    rule = net.addDropRule((m) => {
      if (m.type !== 'append' || m.from !== 's1' || !m.entries.some((e) => e.term === 4))
        return false;
      net.queue.push({ ...m, entries: m.entries.filter((e) => e.term !== 4) });
      return true;
    });
    net.campaign('s1'); // term 3: S3 and S4 already voted for S5
    expect(net.status('s1').role).toBe('candidate');
    net.campaign('s1'); // term 4
    expect(net.status('s1')).toMatchObject({ role: 'leader', term: 4 });
    for (const id of ['s1', 's2', 's3', 's4'])
      expect(terms(net.disk(id).entries).slice(0, 2)).toEqual(['1@1', '2@2']);
    return { net, removeLoss: rule };
  }

  it('(c) an old-term entry stored on a majority is not committed by counting replicas', () => {
    const { net } = figure8c();
    const s1 = net.status('s1');
    expect(s1.progress?.s2?.match).toBe(2);
    expect(s1.progress?.s3?.match).toBe(2);
    expect(s1.progress?.s4?.match).toBe(2);
    // Four of five servers hold 2@2, yet it is not committed: it is not of term 4.
    expect(s1.commitIndex).toBe(1);
    for (const id of ['s1', 's2', 's3', 's4']) expect(net.applied.get(id)?.length).toBe(1);
  });

  it('(d) ...because S5 can still be elected and overwrite it with 2@3', () => {
    const { net } = figure8c();
    net.crash('s1');
    net.restart('s5');
    net.campaign('s5'); // term 4: refused, S2..S4 voted for S1
    expect(net.status('s5').role).toBe('follower');
    net.campaign('s5'); // term 5: granted, its last term 3 beats their 2
    expect(net.status('s5')).toMatchObject({ role: 'leader', term: 5, commitIndex: 3 });
    for (const id of ['s2', 's3', 's4', 's5']) {
      expect(terms(net.disk(id).entries)).toEqual(['1@1', '2@3', '3@5']);
      expect(terms(net.applied.get(id) ?? [])).toEqual(['1@1', '2@3', '3@5']);
    }
    // S1 comes back and its 2@2 and 3@4 are replaced too; nobody ever applied 2@2 (the
    // harness checks State Machine Safety on every apply).
    net.restart('s1');
    net.tickUntil(() => net.status('s1').commitIndex === 3, 50);
    expect(terms(net.disk('s1').entries)).toEqual(['1@1', '2@3', '3@5']);
  });

  it('(e) once S1 replicates an entry of its own term to a majority, 2@2 is committed and safe', () => {
    const { net, removeLoss } = figure8c();
    removeLoss();
    net.tickAll(1);
    expect(net.status('s1').commitIndex).toBe(3);
    net.crash('s1');
    net.restart('s5');
    const since = net.delivered.length;
    // S5 can no longer win: S2, S3 and S4 hold 3@4, more up-to-date than its 2@3.
    for (let i = 0; i < 3; i++) {
      net.campaign('s5');
      expect(net.status('s5').role).not.toBe('leader');
    }
    expect(
      net.deliveredWhere(
        (m: RaftMessage) => m.type === 'voteResponse' && m.to === 's5' && m.granted,
        since,
      ),
    ).toEqual([]);
    net.tickUntil(() => net.leader() !== undefined, 200);
    net.tickAll(3);
    for (const id of ['s2', 's3', 's4', 's5'])
      expect(terms(net.disk(id).entries).slice(0, 3)).toEqual(['1@1', '2@2', '3@4']);
  });

  it('a leader with no entry of its term yet commits nothing, even with every follower caught up', () => {
    // Checked on a bare node: n1 leads term 3 but its no-op has not been written yet.
    const n1 = newNode(
      'n1',
      ids,
      { preVote: false },
      {
        hardState: { term: 2, votedFor: null, commit: 1 },
        entries: logWithTerms(ids, [1, 2]),
        applied: 1,
      },
    );
    n1.campaign();
    takeReady(n1);
    n1.step({ type: 'voteResponse', from: 'n2', to: 'n1', term: 3, preVote: false, granted: true });
    n1.step({
      type: 'appendResponse',
      from: 'n2',
      to: 'n1',
      term: 3,
      success: true,
      matchIndex: 2,
    });
    n1.step({
      type: 'appendResponse',
      from: 'n3',
      to: 'n1',
      term: 3,
      success: true,
      matchIndex: 2,
    });
    expect(n1.status().commitIndex).toBe(1);
  });
});
