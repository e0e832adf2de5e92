/**
 * The Ready contract of RawNode (ready.ts, raw-node.ts), asserted on Ready contents in
 * openraft's `take_commands` style: what must be persisted, what may leave at once, what must
 * wait for persistence, and what may be applied.
 */
import { describe, expect, it } from 'vitest';
import { RawNode, validateEngineConfig } from '../../src/engine/raw-node.js';
import { isEmptyReady } from '../../src/engine/ready.js';
import { RaftError } from '../../src/errors.js';
import type { RaftMessage } from '../../src/messages.js';
import {
  bootstrapState,
  bytes,
  entry,
  logWithTerms,
  Network,
  newNode,
  ofType,
  rawNode,
  seededRandom,
  takeReady,
  terms,
} from './harness.js';

const ids = ['n1', 'n2', 'n3'];

/** n1 elected leader of term 2 by hand, its first Ready (the no-op) not yet taken. */
function handElectedLeader() {
  const n1 = newNode('n1', ids, { preVote: false });
  n1.campaign();
  takeReady(n1);
  n1.step({ type: 'voteResponse', from: 'n2', to: 'n1', term: 2, preVote: false, granted: true });
  return n1;
}

describe('Ready after campaign()', () => {
  it('a candidate persists its new term and self-vote before asking for votes', () => {
    const n1 = newNode('n1', ids, { preVote: false });
    expect(n1.hasReady()).toBe(false);
    n1.campaign();
    expect(n1.hasReady()).toBe(true);
    const rd = n1.ready();
    expect(rd.softState).toEqual({ role: 'candidate', leaderId: null });
    expect(rd.hardState).toEqual({ term: 2, votedFor: 'n1', commit: 1 });
    expect(rd.mustSync).toBe(true);
    expect(rd.entries).toEqual([]);
    expect(rd.messages).toEqual([]);
    expect(rd.messagesAfterPersist).toEqual([
      {
        type: 'vote',
        from: 'n1',
        to: 'n2',
        term: 2,
        preVote: false,
        lastLogIndex: 1,
        lastLogTerm: 1,
      },
      {
        type: 'vote',
        from: 'n1',
        to: 'n3',
        term: 2,
        preVote: false,
        lastLogIndex: 1,
        lastLogTerm: 1,
      },
    ]);
  });

  it('a pre-candidate changes no durable state and sends its probes at once', () => {
    const n1 = newNode('n1', ids); // preVote defaults to true
    n1.campaign();
    const rd = n1.ready();
    expect(rd.softState).toEqual({ role: 'preCandidate', leaderId: null });
    expect(rd.hardState).toBeUndefined();
    expect(rd.mustSync).toBe(false);
    expect(rd.messagesAfterPersist).toEqual([]);
    expect(rd.messages).toEqual([
      {
        type: 'vote',
        from: 'n1',
        to: 'n2',
        term: 2,
        preVote: true,
        lastLogIndex: 1,
        lastLogTerm: 1,
      },
      {
        type: 'vote',
        from: 'n1',
        to: 'n3',
        term: 2,
        preVote: true,
        lastLogIndex: 1,
        lastLogTerm: 1,
      },
    ]);
    expect(n1.status()).toMatchObject({ role: 'preCandidate', term: 1, votedFor: null });
  });

  it('a pre-candidate with a majority of pre-votes becomes a candidate at term + 1', () => {
    const n1 = newNode('n1', ids);
    n1.campaign();
    takeReady(n1);
    n1.step({ type: 'voteResponse', from: 'n2', to: 'n1', term: 2, preVote: true, granted: true });
    const rd = n1.ready();
    expect(rd.softState).toEqual({ role: 'candidate', leaderId: null });
    expect(rd.hardState).toEqual({ term: 2, votedFor: 'n1', commit: 1 });
    expect(ofType(rd.messagesAfterPersist, 'vote').map((m) => [m.to, m.term, m.preVote])).toEqual([
      ['n2', 2, false],
      ['n3', 2, false],
    ]);
  });
});

describe('Ready of a voter', () => {
  it('a granted vote leaves only after the vote is persisted', () => {
    const n2 = newNode('n2', ids);
    n2.step({
      type: 'vote',
      from: 'n1',
      to: 'n2',
      term: 2,
      preVote: false,
      lastLogIndex: 1,
      lastLogTerm: 1,
    });
    const rd = n2.ready();
    expect(rd.hardState).toEqual({ term: 2, votedFor: 'n1', commit: 1 });
    expect(rd.messages).toEqual([]);
    expect(rd.messagesAfterPersist).toEqual([
      { type: 'voteResponse', from: 'n2', to: 'n1', term: 2, preVote: false, granted: true },
    ]);
  });

  it('a rejection carries the voter term and also waits (it is a voteResponse)', () => {
    const n2 = newNode(
      'n2',
      ids,
      {},
      {
        hardState: { term: 3, votedFor: 'n3', commit: 1 },
        entries: bootstrapState(ids).entries,
        applied: 0,
      },
    );
    n2.step({
      type: 'vote',
      from: 'n1',
      to: 'n2',
      term: 3,
      preVote: false,
      lastLogIndex: 1,
      lastLogTerm: 1,
    });
    const rd = n2.ready();
    expect(rd.hardState).toBeUndefined();
    expect(rd.messagesAfterPersist).toEqual([
      { type: 'voteResponse', from: 'n2', to: 'n1', term: 3, preVote: false, granted: false },
    ]);
  });

  it('a granted pre-vote changes nothing durable and answers at the probed term', () => {
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
    const rd = n2.ready();
    expect(rd.hardState).toBeUndefined();
    expect(n2.status()).toMatchObject({ term: 1, votedFor: null });
    expect(rd.messagesAfterPersist).toEqual([
      { type: 'voteResponse', from: 'n2', to: 'n1', term: 2, preVote: true, granted: true },
    ]);
  });
});

describe('Ready of a new leader', () => {
  it('appends a no-op and sends it before it is durable (thesis §10.2.1)', () => {
    const n1 = handElectedLeader();
    const rd = n1.ready();
    expect(rd.softState).toEqual({ role: 'leader', leaderId: 'n1' });
    expect(rd.entries).toEqual([{ index: 2, term: 2, kind: 'noop', data: new Uint8Array(0) }]);
    expect(rd.committedEntries).toEqual([]);
    expect(rd.messagesAfterPersist).toEqual([]);
    const appends = ofType(rd.messages, 'append');
    expect(appends.map((m) => m.to)).toEqual(['n2', 'n3']);
    for (const m of appends) {
      expect(m).toMatchObject({ term: 2, prevIndex: 1, prevTerm: 1, commit: 1 });
      expect(terms(m.entries)).toEqual(['2@2']);
    }
  });

  it('commits its no-op once one follower and its own disk hold it', () => {
    const n1 = handElectedLeader();
    const rd = n1.ready();
    // A follower acknowledges before the leader's own write completes: one durable copy of
    // three is no majority (the leader counts itself only once its write is durable).
    n1.step({
      type: 'appendResponse',
      from: 'n2',
      to: 'n1',
      term: 2,
      success: true,
      matchIndex: 2,
    });
    expect(n1.status().commitIndex).toBe(1);
    n1.advance(rd);
    expect(n1.status().commitIndex).toBe(2);
    const rd2 = n1.ready();
    // A new commit index alone needs no durable write (it is re-learned after a restart).
    expect(rd2.hardState).toBeUndefined();
    expect(terms(rd2.committedEntries)).toEqual(['2@2']);
    // The new commit index goes to n2 at once; n3 is still being probed (one append at a time
    // until it answers), so it learns the commit from its probe's answer or a heartbeat.
    const appends = ofType(rd2.messages, 'append');
    expect(appends.map((m) => [m.to, m.commit, m.entries.length])).toEqual([['n2', 2, 0]]);
    expect(n1.status().progress?.n3).toMatchObject({ state: 'probe', match: 0 });
  });

  it('a single-node cluster commits as soon as its own write is durable', () => {
    const n1 = newNode('n1', ['n1']);
    n1.campaign();
    const rd = n1.ready();
    expect(rd.softState).toEqual({ role: 'leader', leaderId: 'n1' });
    expect(terms(rd.entries)).toEqual(['2@2']);
    expect(rd.committedEntries).toEqual([]);
    n1.advance(rd);
    const rd2 = n1.ready();
    expect(terms(rd2.committedEntries)).toEqual(['2@2']);
    n1.advance(rd2);
    expect(n1.propose(bytes('x'))).toEqual({ index: 3, term: 2 });
    const rd3 = n1.ready();
    expect(terms(rd3.entries)).toEqual(['3@2']);
    expect(rd3.committedEntries).toEqual([]);
    n1.advance(rd3);
    expect(terms(n1.ready().committedEntries)).toEqual(['3@2']);
  });
});

describe('Ready of a follower', () => {
  function follower() {
    const n2 = newNode('n2', ids);
    const append = (over: Partial<Extract<RaftMessage, { type: 'append' }>>) =>
      n2.step({
        type: 'append',
        from: 'n1',
        to: 'n2',
        term: 2,
        prevIndex: 1,
        prevTerm: 1,
        entries: [],
        commit: 1,
        ...over,
      });
    return { n2, append };
  }

  it('acknowledges appended entries only after persisting them', () => {
    const { n2, append } = follower();
    append({ entries: [entry(2, 2), entry(3, 2)] });
    const rd = n2.ready();
    expect(rd.softState).toEqual({ role: 'follower', leaderId: 'n1' });
    expect(rd.hardState).toEqual({ term: 2, votedFor: null, commit: 1 });
    expect(terms(rd.entries)).toEqual(['2@2', '3@2']);
    expect(rd.mustSync).toBe(true);
    expect(rd.messages).toEqual([]);
    expect(rd.messagesAfterPersist).toEqual([
      { type: 'appendResponse', from: 'n2', to: 'n1', term: 2, success: true, matchIndex: 3 },
    ]);
  });

  it('committed entries are only those already durable on this node', () => {
    const { n2, append } = follower();
    // The leader's commit already covers the entries it sends (another follower acknowledged).
    append({ entries: [entry(2, 2), entry(3, 2)], commit: 3 });
    const rd = n2.ready();
    expect(rd.hardState?.commit).toBe(3);
    expect(terms(rd.entries)).toEqual(['2@2', '3@2']);
    expect(rd.committedEntries).toEqual([]);
    n2.advance(rd);
    const rd2 = n2.ready();
    expect(rd2.entries).toEqual([]);
    expect(terms(rd2.committedEntries)).toEqual(['2@2', '3@2']);
  });

  it('never commits past what it holds, whatever the leader says', () => {
    const { n2, append } = follower();
    append({ entries: [entry(2, 2)], commit: 9 });
    expect(n2.status().commitIndex).toBe(2);
    n2.step({ type: 'heartbeat', from: 'n1', to: 'n2', term: 2, commit: 9, round: 1 });
    expect(n2.status().commitIndex).toBe(2);
  });

  it('answers a heartbeat at once (messages), and learns the commit from it', () => {
    const { n2, append } = follower();
    append({ entries: [entry(2, 2)] });
    takeReady(n2);
    n2.step({ type: 'heartbeat', from: 'n1', to: 'n2', term: 2, commit: 2, round: 1 });
    const rd = n2.ready();
    expect(rd.hardState).toBeUndefined();
    expect(n2.status().commitIndex).toBe(2);
    expect(terms(rd.committedEntries)).toEqual(['2@2']);
    expect(rd.messages).toEqual([
      { type: 'heartbeatResponse', from: 'n2', to: 'n1', term: 2, round: 1 },
    ]);
    expect(rd.messagesAfterPersist).toEqual([]);
    expect(rd.mustSync).toBe(false);
  });

  it('rejects a mismatched append with a fast-backtracking hint', () => {
    const { n2, append } = follower();
    append({ prevIndex: 5, prevTerm: 2, entries: [entry(6, 2)] });
    const rd = n2.ready();
    expect(rd.entries).toEqual([]);
    expect(rd.messagesAfterPersist).toEqual([
      {
        type: 'appendResponse',
        from: 'n2',
        to: 'n1',
        term: 2,
        success: false,
        matchIndex: 5,
        conflict: { index: 1, term: 1 },
      },
    ]);
  });

  it('tells a stale leader about the newer term', () => {
    const n2 = newNode(
      'n2',
      ids,
      {},
      {
        hardState: { term: 5, votedFor: null, commit: 1 },
        entries: bootstrapState(ids).entries,
        applied: 0,
      },
    );
    n2.step({ type: 'heartbeat', from: 'n1', to: 'n2', term: 3, commit: 1, round: 1 });
    n2.step({
      type: 'append',
      from: 'n1',
      to: 'n2',
      term: 3,
      prevIndex: 1,
      prevTerm: 1,
      entries: [entry(2, 3)],
      commit: 1,
    });
    const rd = n2.ready();
    expect(rd.entries).toEqual([]);
    expect(rd.messagesAfterPersist).toEqual([
      { type: 'appendResponse', from: 'n2', to: 'n1', term: 5, success: false, matchIndex: 0 },
      { type: 'appendResponse', from: 'n2', to: 'n1', term: 5, success: false, matchIndex: 0 },
    ]);
    expect(n2.status()).toMatchObject({ term: 5, leaderId: null });
  });
});

describe('RawNode contract', () => {
  it('one Ready outstanding at a time', () => {
    const n1 = newNode('n1', ids, { preVote: false });
    n1.campaign();
    const rd = n1.ready();
    expect(n1.hasReady()).toBe(false);
    expect(() => n1.ready()).toThrow(/advance/);
    n1.advance(rd);
    expect(() => n1.advance(rd)).toThrow(/without an outstanding Ready/);
    expect(n1.hasReady()).toBe(false);
  });

  it('a fresh node first applies its bootstrap entry, then has nothing to do', () => {
    const fresh = rawNode('n1', ids);
    expect(fresh.hasReady()).toBe(true);
    const first = fresh.ready();
    expect(first.hardState).toBeUndefined();
    expect(first.softState).toBeUndefined();
    expect(terms(first.committedEntries)).toEqual(['1@1']);
    expect(first.committedEntries[0]?.kind).toBe('membership');
    fresh.advance(first);
    expect(fresh.hasReady()).toBe(false);
    const n1 = newNode('n1', ids);
    expect(n1.hasReady()).toBe(false);
    const rd = n1.ready();
    expect(isEmptyReady(rd)).toBe(true);
    expect(rd.mustSync).toBe(false);
    n1.advance(rd);
    n1.campaign();
    const rd2 = n1.ready();
    expect(isEmptyReady(rd2)).toBe(false);
  });

  it('inputs between ready() and advance(): an overtaken write is re-issued', () => {
    const n2 = newNode('n2', ids);
    n2.step({
      type: 'append',
      from: 'n1',
      to: 'n2',
      term: 2,
      prevIndex: 1,
      prevTerm: 1,
      entries: [entry(2, 2), entry(3, 2)],
      commit: 1,
    });
    const rd1 = n2.ready();
    expect(terms(rd1.entries)).toEqual(['2@2', '3@2']);
    // While rd1 is being written, the leader of term 3 replaces index 2 onwards.
    n2.step({
      type: 'append',
      from: 'n3',
      to: 'n2',
      term: 3,
      prevIndex: 1,
      prevTerm: 1,
      entries: [entry(2, 3)],
      commit: 1,
    });
    expect(n2.hasReady()).toBe(false);
    n2.advance(rd1);
    const rd2 = n2.ready();
    expect(terms(rd2.entries)).toEqual(['2@3']);
    expect(rd2.hardState).toEqual({ term: 3, votedFor: null, commit: 1 });
    expect(rd2.messagesAfterPersist).toEqual([
      { type: 'appendResponse', from: 'n2', to: 'n3', term: 3, success: true, matchIndex: 2 },
    ]);
    n2.advance(rd2);
    expect(n2.status()).toMatchObject({ stableIndex: 2, lastLogIndex: 2, lastLogTerm: 3 });
  });

  it('ignores messages addressed to another node, and proposals (the runtime handles those)', () => {
    const n2 = newNode('n2', ids);
    n2.step({ type: 'heartbeat', from: 'n1', to: 'n3', term: 9, commit: 1, round: 1 });
    n2.step({
      type: 'propose',
      from: 'n1',
      to: 'n2',
      term: 9,
      session: 1,
      requestId: 1,
      data: bytes('x'),
    });
    n2.step({
      type: 'proposeResponse',
      from: 'n1',
      to: 'n2',
      term: 9,
      session: 1,
      requestId: 1,
      index: 0,
      entryTerm: 0,
    });
    expect(n2.hasReady()).toBe(false);
    expect(n2.status().term).toBe(1);
  });

  it('propose() throws NotLeaderError off the leader, with the leader hint', () => {
    const n2 = newNode('n2', ids);
    const caught = (fn: () => void): unknown => {
      try {
        fn();
      } catch (err) {
        return err;
      }
      return undefined;
    };
    const none = caught(() => n2.propose(bytes('x')));
    expect(RaftError.is(none, 'NO_LEADER')).toBe(true);
    n2.step({ type: 'heartbeat', from: 'n1', to: 'n2', term: 2, commit: 1, round: 1 });
    const known = caught(() => n2.propose(bytes('x')));
    expect(RaftError.is(known, 'NOT_LEADER')).toBe(true);
    expect(known).toMatchObject({ leaderId: 'n1' });
  });

  it('status() reports the leader progress of every other member', () => {
    const net = new Network({ voters: ids });
    net.elect('n1');
    const s = net.status('n1');
    expect(s).toMatchObject({
      role: 'leader',
      term: 2,
      commitIndex: 2,
      lastLogIndex: 2,
      leaderId: 'n1',
    });
    expect(s.progress).toEqual({
      n2: { match: 2, next: 3, state: 'replicate', recentActive: true, inflight: 0 },
      n3: { match: 2, next: 3, state: 'replicate', recentActive: true, inflight: 0 },
    });
    expect(net.status('n2').progress).toBeUndefined();
  });

  it('reportUnreachable moves a replicating follower back to probing', () => {
    const net = new Network({ voters: ids });
    net.elect('n1');
    net.node('n1').reportUnreachable('n2');
    expect(net.status('n1').progress?.n2?.state).toBe('probe');
    expect(net.status('n1').progress?.n3?.state).toBe('replicate');
    // The next proposal is a probe to n2; its acknowledgement resumes replication.
    net.propose('n1', 'x');
    expect(net.status('n1').progress?.n2).toMatchObject({ state: 'replicate', match: 3 });
  });
});

describe('restart', () => {
  it('raises the term to the last log term if the hard state lags the log', () => {
    // A crash between persisting entries and persisting the hard state.
    const n = rawNode(
      'n2',
      ids,
      {},
      {
        hardState: { term: 2, votedFor: 'n1', commit: 1 },
        entries: logWithTerms(ids, [1, 2, 3]),
        applied: 0,
      },
    );
    expect(n.status()).toMatchObject({ term: 3, votedFor: null });
    const rd = n.ready();
    expect(rd.hardState).toEqual({ term: 3, votedFor: null, commit: 1 });
  });

  it('refuses a commit index past the log end (the log store lost committed entries)', () => {
    expect(() =>
      rawNode(
        'n2',
        ids,
        {},
        {
          hardState: { term: 3, votedFor: null, commit: 9 },
          entries: logWithTerms(ids, [1, 2, 3]),
          applied: 1,
        },
      ),
    ).toThrow(/commit index 9 is past the last log index 3/);
  });

  it('re-applies from `applied` after a restart', () => {
    const n = rawNode(
      'n2',
      ids,
      {},
      {
        hardState: { term: 3, votedFor: null, commit: 3 },
        entries: logWithTerms(ids, [1, 2, 3]),
        applied: 1,
      },
    );
    expect(n.status()).toMatchObject({ commitIndex: 3, appliedIndex: 1 });
    const rd = n.ready();
    expect(rd.hardState).toBeUndefined();
    expect(terms(rd.committedEntries)).toEqual(['2@2', '3@3']);
  });

  it('with no hard state at all (an empty node) starts at term 0', () => {
    const n = new RawNode(
      { id: 'x', electionTicks: 10, heartbeatTicks: 1, random: seededRandom(1) },
      { hardState: null, entries: [], applied: 0 },
    );
    expect(n.status()).toMatchObject({ term: 0, lastLogIndex: 0, members: [] });
    expect(n.hasReady()).toBe(false);
    // Not a voter of any configuration: it never campaigns.
    for (let i = 0; i < 100; i++) n.tick();
    expect(n.hasReady()).toBe(false);
  });
});

describe('validateEngineConfig', () => {
  const base = { id: 'n1', electionTicks: 10, heartbeatTicks: 1, random: () => 0 };
  it.each([
    [{ id: '' }, /id/],
    [{ electionTicks: 0 }, /electionTicks/],
    [{ electionTicks: 2.5 }, /electionTicks/],
    [{ heartbeatTicks: 10 }, /heartbeatTicks/],
    [{ maxInflightAppends: 0 }, /maxInflightAppends/],
    [{ maxEntriesPerAppend: -1 }, /maxEntriesPerAppend/],
    [{ maxBytesPerAppend: 0 }, /maxBytesPerAppend/],
    [{ random: 7 }, /random/],
  ])('rejects %j', (over, message) => {
    expect(() => validateEngineConfig({ ...base, ...over } as never)).toThrow(message);
    expect(() => new RawNode({ ...base, ...over } as never, bootstrapState(['n1']))).toThrow(
      RangeError,
    );
  });

  it('accepts a valid configuration', () => {
    expect(() => validateEngineConfig(base)).not.toThrow();
  });
});
