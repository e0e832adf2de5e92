/**
 * Thesis §3.8 persisted state and server restarts (paper Figure 2, "Persistent state on all
 * servers ... updated on stable storage before responding to RPCs"): a node restarted from
 * what it persisted keeps its term, its vote and its log, and nothing it promised is lost.
 * The harness restarts a node from its "disk" (exactly what its Readies asked to persist);
 * whatever was only in memory is gone.
 */
import { describe, expect, it } from 'vitest';
import type { RaftMessage } from '../../src/messages.js';
import { bytes, Network, ofType, terms } from '../engine/harness.js';

const ids = ['n1', 'n2', 'n3'];

describe('thesis §3.8 persisted state and server restarts', () => {
  it('a restarted node comes back with its term, vote and log; the commit index is re-learned', () => {
    const net = new Network({ voters: ids });
    net.elect('n1');
    for (let i = 0; i < 3; i++) net.propose('n1', `c${i}`);
    for (const id of ids) {
      const before = net.status(id);
      net.crash(id);
      const node = net.restart(id);
      const after = node.status();
      expect(after).toMatchObject({
        term: before.term,
        votedFor: before.votedFor,
        lastLogIndex: before.lastLogIndex,
        lastLogTerm: before.lastLogTerm,
        role: 'follower',
      });
      // Only term and vote changes are persisted with the commit index of their moment, so
      // the restarted commit index may lag; it never exceeds what was committed.
      expect(after.commitIndex).toBeLessThanOrEqual(before.commitIndex);
      // Nothing changed, so nothing to rewrite; what it knows committed is applied again.
      const rd = net.process(id);
      expect(rd?.hardState).toBeUndefined();
      expect(rd?.entries).toEqual([]);
      expect(terms(rd?.committedEntries ?? [])).toEqual(
        ['1@1', '2@2', '3@2', '4@2', '5@2'].slice(0, after.commitIndex),
      );
    }
  });

  it('a vote survives a restart: no second vote in the same term', () => {
    const net = new Network({ voters: ids, config: { preVote: false } });
    net.stabilize();
    const vote = (from: string): RaftMessage => ({
      type: 'vote',
      from,
      to: 'n2',
      term: 2,
      preVote: false,
      lastLogIndex: 1,
      lastLogTerm: 1,
    });
    net.node('n2').step(vote('n1'));
    net.process('n2'); // persists term 2 + vote for n1, then sends the grant
    net.crash('n2');
    const n2 = net.restart('n2');
    expect(n2.status()).toMatchObject({ term: 2, votedFor: 'n1' });
    n2.step(vote('n3'));
    n2.step(vote('n1')); // a retransmission from the same candidate is granted again
    const answers = ofType(net.process('n2')?.messagesAfterPersist ?? [], 'voteResponse');
    expect(answers.map((m) => [m.to, m.granted])).toEqual([
      ['n3', false],
      ['n1', true],
    ]);
  });

  it('a candidate that restarts keeps its self-vote and does not vote for a rival', () => {
    const net = new Network({ voters: ids, config: { preVote: false } });
    net.stabilize();
    net.node('n1').campaign();
    net.process('n1');
    net.queue = []; // its requests are lost
    net.crash('n1');
    const n1 = net.restart('n1');
    expect(n1.status()).toMatchObject({ role: 'follower', term: 2, votedFor: 'n1' });
    n1.step({
      type: 'vote',
      from: 'n2',
      to: 'n1',
      term: 2,
      preVote: false,
      lastLogIndex: 1,
      lastLogTerm: 1,
    });
    expect(ofType(net.process('n1')?.messagesAfterPersist ?? [], 'voteResponse')[0]?.granted).toBe(
      false,
    );
  });

  it('an acknowledged entry survives the follower crashing right after the acknowledgement', () => {
    const net = new Network({ voters: ids });
    net.elect('n1');
    net.node('n1').propose(bytes('x'));
    net.process('n1');
    net.deliverQueued();
    net.process('n2'); // persisted, then acknowledged
    net.crash('n2');
    net.restart('n2');
    expect(terms(net.disk('n2').entries)).toEqual(['1@1', '2@2', '3@2']);
    expect(net.status('n2').lastLogIndex).toBe(3);
  });

  it('a follower that crashes before persisting never acknowledged: the leader just resends', () => {
    const net = new Network({ voters: ids });
    net.elect('n1');
    net.node('n1').propose(bytes('x'));
    net.process('n1');
    net.deliverQueued(); // n2 and n3 hold the entry in memory only
    net.crash('n2');
    net.crash('n3');
    expect(
      net.sent.filter((s) => s.message.type === 'appendResponse' && s.message.matchIndex === 3),
    ).toEqual([]);
    net.restart('n2');
    net.restart('n3');
    expect(net.status('n2').lastLogIndex).toBe(2);
    expect(net.status('n1').commitIndex).toBe(2);
    net.tickUntil(() => net.status('n1').commitIndex === 3, 10);
    expect(terms(net.disk('n2').entries)).toEqual(['1@1', '2@2', '3@2']);
  });

  it('the leader sends before its own write is durable (thesis §10.2.1); a crash then loses nothing committed', () => {
    const net = new Network({ voters: ids });
    net.elect('n1');
    const n1 = net.node('n1');
    n1.propose(bytes('x'));
    // n1 takes the Ready and sends its appends, but crashes before its disk write completes.
    const rd = n1.ready();
    expect(terms(rd.entries)).toEqual(['3@2']);
    for (const m of rd.messages) net.deliver(m);
    net.crash('n1');
    net.stabilize();
    // The entry is on n2 and n3 only, not on the crashed leader's disk.
    expect(terms(net.disk('n1').entries)).toEqual(['1@1', '2@2']);
    expect(terms(net.disk('n2').entries)).toEqual(['1@1', '2@2', '3@2']);
    // A new leader (which must hold it, being up-to-date) commits it with its own no-op.
    net.tickUntil(() => net.leader() !== undefined, 100, ['n2', 'n3']);
    const leader = net.leader() as string;
    net.tickAll(2, ['n2', 'n3']);
    expect(terms(net.applied.get(leader) ?? []).slice(0, 3)).toEqual(['1@1', '2@2', '3@2']);
    // n1 returns, learns the entry it never persisted, and applies it.
    net.restart('n1');
    net.tickUntil(() => (net.applied.get('n1') ?? []).length >= 4, 50);
    expect(terms(net.disk('n1').entries).slice(0, 3)).toEqual(['1@1', '2@2', '3@2']);
  });

  it('a whole-cluster restart keeps every committed entry and elects a leader at a higher term', () => {
    const net = new Network({ voters: ids, seed: 4 });
    net.elect('n1');
    for (let i = 0; i < 5; i++) net.propose('n1', `c${i}`);
    const committed = terms(net.applied.get('n1') ?? []);
    for (const id of ids) net.crash(id);
    for (const id of ids) net.restart(id);
    net.tickUntil(() => net.leader() !== undefined, 100);
    const leader = net.leader() as string;
    expect(net.status(leader).term).toBeGreaterThan(2);
    net.tickAll(2);
    for (const id of ids)
      expect(terms(net.applied.get(id) ?? []).slice(0, committed.length)).toEqual(committed);
  });
});
