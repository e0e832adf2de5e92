/**
 * Raft paper §5.3 log replication, after etcd's raft_paper_test.go (testLeaderStartReplication,
 * testLeaderCommitEntry, testFollowerCheckMsgApp, testFollowerAppendEntries,
 * testLeaderSyncFollowerLog), plus fast backtracking (thesis §5.3, etcd findConflictByTerm).
 */
import { describe, expect, it } from 'vitest';
import type { AppendMessage, RaftMessage } from '../../src/messages.js';
import type { LogEntry, Term } from '../../src/types.js';
import {
  bytes,
  entry,
  logWithTerms,
  Network,
  newNode,
  ofType,
  rawNode,
  takeReady,
  terms,
} from '../engine/harness.js';

const ids = ['n1', 'n2', 'n3'];

/** n1 as leader of term 2 after its no-op is durable; followers n2..n(size) at index 1. */
function leader(size = 3) {
  const voters = Array.from({ length: size }, (_, i) => `n${i + 1}`);
  const n1 = newNode('n1', voters, { preVote: false });
  n1.campaign();
  takeReady(n1);
  for (const from of voters.slice(1))
    n1.step({ type: 'voteResponse', from, to: 'n1', term: 2, preVote: false, granted: true });
  takeReady(n1); // the no-op: written, appends sent (and dropped)
  return { n1, voters };
}

const ack = (from: string, matchIndex: number, term = 2): RaftMessage => ({
  type: 'appendResponse',
  from,
  to: 'n1',
  term,
  success: true,
  matchIndex,
});

describe('§5.3 log replication', () => {
  it('a new leader appends a no-op of its term and replicates it (§5.4.2, thesis §3.6.2)', () => {
    const net = new Network({ voters: ids });
    net.elect('n1');
    for (const id of ids) {
      expect(terms(net.disk(id).entries)).toEqual(['1@1', '2@2']);
      expect(net.disk(id).entries[1]?.kind).toBe('noop');
      expect(net.status(id).commitIndex).toBe(2);
    }
  });

  it('the leader appends a proposal to its log and sends it to every follower', () => {
    const { n1 } = leader();
    for (const from of ['n2', 'n3']) n1.step(ack(from, 2));
    takeReady(n1);
    expect(n1.propose(bytes('some data'))).toEqual({ index: 3, term: 2 });
    const rd = n1.ready();
    expect(rd.entries).toEqual([{ index: 3, term: 2, kind: 'command', data: bytes('some data') }]);
    expect(ofType(rd.messages, 'append')).toEqual(
      ['n2', 'n3'].map((to) => ({
        type: 'append',
        from: 'n1',
        to,
        term: 2,
        prevIndex: 2,
        prevTerm: 2,
        entries: rd.entries,
        commit: 2,
      })),
    );
  });

  // etcd TestLeaderAcknowledgeCommit.
  it.each<[number, string[], boolean]>([
    [1, [], true],
    [3, [], false],
    [3, ['n2'], true],
    [3, ['n2', 'n3'], true],
    [5, [], false],
    [5, ['n2'], false],
    [5, ['n2', 'n3'], true],
    [5, ['n2', 'n3', 'n4'], true],
    [5, ['n2', 'n3', 'n4', 'n5'], true],
  ])('cluster of %i, acknowledged by %j: committed %s', (size, acks, committed) => {
    const voters = Array.from({ length: size }, (_, i) => `n${i + 1}`);
    const n1 = newNode('n1', voters, { preVote: false });
    n1.campaign();
    takeReady(n1);
    for (const from of voters.slice(1))
      n1.step({ type: 'voteResponse', from, to: 'n1', term: 2, preVote: false, granted: true });
    takeReady(n1); // no-op at 2 durable
    for (const from of acks) n1.step(ack(from, 2));
    expect(n1.status().commitIndex).toBe(committed ? 2 : 1);
  });

  it('the commit index reaches followers in the next append, and they apply in order', () => {
    const net = new Network({ voters: ids });
    net.elect('n1');
    const a = net.propose('n1', 'a');
    const b = net.propose('n1', 'b');
    expect([a.index, b.index]).toEqual([3, 4]);
    for (const id of ids) {
      expect(net.status(id).commitIndex).toBe(4);
      expect(terms(net.applied.get(id) ?? [])).toEqual(['1@1', '2@2', '3@2', '4@2']);
    }
  });

  it('the leader commits preceding entries of earlier terms together with its own', () => {
    // etcd TestLeaderCommitPrecedingEntries: entries of terms 2 and 3 are uncommitted when n1
    // becomes leader of term 4; its no-op commits them all at once.
    const log = logWithTerms(ids, [1, 2, 3]);
    const n1 = rawNode(
      'n1',
      ids,
      { preVote: false },
      { hardState: { term: 3, votedFor: null, commit: 1 }, entries: log, applied: 1 },
    );
    n1.campaign();
    takeReady(n1);
    n1.step({ type: 'voteResponse', from: 'n2', to: 'n1', term: 4, preVote: false, granted: true });
    const rd = n1.ready();
    expect(terms(rd.entries)).toEqual(['4@4']);
    n1.advance(rd);
    n1.step(ack('n2', 4, 4));
    expect(terms(n1.ready().committedEntries)).toEqual(['2@2', '3@3', '4@4']);
  });

  // etcd TestFollowerCheckMsgApp: the consistency check on (prevIndex, prevTerm).
  it.each<[number, number, boolean, { index: number; term: number } | undefined]>([
    [0, 0, true, undefined], // before the log: always matches
    [1, 1, true, undefined],
    [3, 3, true, undefined],
    [3, 2, false, { index: 2, term: 2 }], // term mismatch at 3: skip the whole of term 3
    [4, 3, false, { index: 3, term: 3 }], // past the end: point at the last entry
    [9, 5, false, { index: 3, term: 3 }],
  ])(
    'follower with [1@1 2@2 3@3] given prevIndex %i prevTerm %i: success %s',
    (prevIndex, prevTerm, success, conflict) => {
      const n2 = rawNode(
        'n2',
        ids,
        {},
        {
          hardState: { term: 3, votedFor: null, commit: 1 },
          entries: logWithTerms(ids, [1, 2, 3]),
          applied: 1,
        },
      );
      n2.step({
        type: 'append',
        from: 'n1',
        to: 'n2',
        term: 3,
        prevIndex,
        prevTerm,
        entries: [],
        commit: 1,
      });
      const [answer] = ofType(n2.ready().messagesAfterPersist, 'appendResponse');
      expect(answer?.success).toBe(success);
      expect(answer?.conflict).toEqual(conflict);
      // The follower never goes backwards because of an empty append.
      expect(n2.status().lastLogIndex).toBe(3);
    },
  );

  // etcd TestFollowerAppendEntries.
  it.each<[number, number, LogEntry[], string[], string[]]>([
    [2, 2, [entry(3, 3)], ['1@1', '2@2', '3@3'], ['3@3']],
    [1, 1, [entry(2, 3), entry(3, 4)], ['1@1', '2@3', '3@4'], ['2@3', '3@4']],
    [0, 0, [entry(1, 1)], ['1@1', '2@2'], []],
    [0, 0, [entry(1, 3)], ['1@3'], ['1@3']],
    [1, 1, [entry(2, 2)], ['1@1', '2@2'], []],
  ])(
    'append after %i@%i of %j gives log %j, unstable %j',
    (prevIndex, prevTerm, entries, want, unstable) => {
      const n2 = rawNode(
        'n2',
        ids,
        {},
        {
          hardState: { term: 2, votedFor: null, commit: 0 },
          entries: logWithTerms(ids, [1, 2]),
          applied: 0,
        },
      );
      n2.step({
        type: 'append',
        from: 'n1',
        to: 'n2',
        term: 4,
        prevIndex,
        prevTerm,
        entries,
        commit: 0,
      });
      const rd = n2.ready();
      expect(terms(rd.entries)).toEqual(unstable);
      n2.advance(rd);
      const durable = n2.status();
      expect(durable.lastLogIndex).toBe(want.length);
      expect(`${durable.lastLogIndex}@${durable.lastLogTerm}`).toBe(want[want.length - 1]);
    },
  );

  it('a duplicated or reordered old append never truncates newer entries', () => {
    const n2 = newNode('n2', ids);
    const first: AppendMessage = {
      type: 'append',
      from: 'n1',
      to: 'n2',
      term: 2,
      prevIndex: 1,
      prevTerm: 1,
      entries: [entry(2, 2)],
      commit: 1,
    };
    const second: AppendMessage = {
      ...first,
      prevIndex: 2,
      prevTerm: 2,
      entries: [entry(3, 2), entry(4, 2)],
    };
    n2.step(first);
    n2.step(second);
    n2.step(first);
    const rd = n2.ready();
    expect(terms(rd.entries)).toEqual(['2@2', '3@2', '4@2']);
    // Both answers for `first` report 2: true of the prefix, and the leader ignores stale ones.
    expect(ofType(rd.messagesAfterPersist, 'appendResponse').map((m) => m.matchIndex)).toEqual([
      2, 4, 2,
    ]);
  });

  // Figure 7 (etcd TestLeaderSyncFollowerLog): the leader of term 8 brings each follower's log
  // to its own, whatever the follower had: missing entries, extra uncommitted entries, or both.
  const leaderLog = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6];
  it.each<[string, Term[], number]>([
    ['(a) missing one entry', [1, 1, 1, 4, 4, 5, 5, 6, 6], 1],
    ['(b) missing many entries', [1, 1, 1, 4], 1],
    ['(c) one extra entry', [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6], 0],
    ['(d) extra entries of a later term', [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7], 0],
    ['(e) missing entries, extra entries of term 4', [1, 1, 1, 4, 4, 4, 4], 1],
    ['(f) extra entries of terms 2 and 3', [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3], 1],
  ])(
    'Figure 7 %s: the follower ends with the leader log (%j), after %i rejection(s)',
    (_, follower, expected) => {
      const net = new Network({
        voters: ids,
        config: { preVote: false },
        initial: (id) => ({
          hardState: { term: 7, votedFor: null, commit: 1 },
          entries: logWithTerms(ids, id === 'n2' ? follower : leaderLog),
        }),
      });
      net.stabilize();
      net.elect('n1');
      expect(net.status('n1').term).toBe(8);
      const rejections = net.deliveredWhere(
        (m) => m.type === 'appendResponse' && !m.success && m.from === 'n2',
      );
      expect(rejections).toHaveLength(expected);
      const want = [...terms(logWithTerms(ids, leaderLog)), '11@8'];
      expect(terms(net.disk('n2').entries)).toEqual(want);
      expect(terms(net.disk('n1').entries)).toEqual(want);
      expect(net.status('n2').commitIndex).toBe(11);
    },
  );
});

describe('§5.3 fast backtracking (thesis §5.3: one round trip per conflicting term)', () => {
  /** Terms `term` repeated `count` times. */
  const run = (term: Term, count: number): Term[] => Array<Term>(count).fill(term);

  /**
   * n1 (leader log `leaderTerms`) is elected with n3's vote (n3 holds the same log) and repairs
   * n2 (log `followerTerms`). Returns the rejections n2 sent and checks the repair.
   */
  function repair(leaderTerms: Term[], followerTerms: Term[], config = {}) {
    const top = Math.max(...leaderTerms, ...followerTerms);
    const net = new Network({
      voters: ids,
      config: { preVote: false, ...config },
      initial: (id) => ({
        hardState: { term: top, votedFor: null, commit: 1 },
        entries: logWithTerms(ids, id === 'n2' ? followerTerms : leaderTerms),
      }),
    });
    net.stabilize();
    net.node('n1').campaign();
    const rounds = net.stabilize();
    expect(net.status('n1').role).toBe('leader');
    const want = terms(net.disk('n1').entries);
    expect(want).toHaveLength(leaderTerms.length + 1);
    expect(terms(net.disk('n2').entries)).toEqual(want);
    const rejections = net.deliveredWhere(
      (m) => m.type === 'appendResponse' && !m.success && m.from === 'n2',
    );
    return { rejections: rejections.length, rounds };
  }

  it('1000 divergent follower entries in 2 terms: one rejection, not 1000', () => {
    // Leader: 1 then 1000 entries of term 4. Follower: 1 then 500 of term 2, 500 of term 3.
    // Decrementing nextIndex one entry at a time would take 1000 round trips.
    const { rejections, rounds } = repair(
      [1, ...run(4, 1000)],
      [1, ...run(2, 500), ...run(3, 500)],
    );
    expect(rejections).toBeLessThanOrEqual(4);
    expect(rejections).toBe(1);
    expect(rounds).toBeLessThan(20);
  });

  it('a follower log far longer than the leader log, in 2 terms', () => {
    const { rejections } = repair(
      [1, ...run(2, 10), ...run(5, 5)],
      [1, ...run(2, 10), ...run(3, 1000), ...run(4, 1000)],
    );
    expect(rejections).toBe(1);
  });

  it('a shared prefix of 500 entries, then 500 divergent entries on each side', () => {
    const { rejections } = repair(
      [1, ...run(2, 500), ...run(4, 500)],
      [1, ...run(2, 500), ...run(3, 500)],
    );
    expect(rejections).toBe(1);
  });

  it('a follower missing 1000 entries catches up with one rejection', () => {
    const { rejections } = repair([1, ...run(2, 1000)], [1]);
    expect(rejections).toBe(1);
  });

  it('many small alternating terms on both sides: bounded by the number of terms, not entries', () => {
    // Leader: terms 2,4,6,...,20 with 50 entries each; follower: 3,5,...,21 with 50 each.
    const leaderTerms = [1, ...Array.from({ length: 10 }, (_, i) => run(2 + 2 * i, 50)).flat()];
    const followerTerms = [1, ...Array.from({ length: 10 }, (_, i) => run(3 + 2 * i, 50)).flat()];
    // Make the leader electable: its last term must be the highest.
    leaderTerms.push(30);
    const { rejections } = repair(leaderTerms, followerTerms);
    // One rejection per follower term (10) plus the first probe: 11, against 501 one by one.
    expect(rejections).toBe(11);
  });

  it('repairs a long log with small appends too (maxEntriesPerAppend 64)', () => {
    const { rejections } = repair([1, ...run(4, 1000)], [1, ...run(2, 500), ...run(3, 500)], {
      maxEntriesPerAppend: 64,
    });
    expect(rejections).toBe(1);
  });
});
