/**
 * Single-server membership changes in the engine (thesis §4.1-§4.2): learners, one change at a
 * time, the own-term commit rule, removing followers and the leader, and removed nodes that
 * cannot disrupt the cluster.
 */
import { describe, expect, it } from 'vitest';
import type { MembershipChange } from '../../src/engine/configuration.js';
import type { Membership } from '../../src/types.js';
import type { NodeConfig } from './harness.js';
import { codeOf, membershipEntry, Network, ofType, rawNode, takeReady } from './harness.js';

const THREE = ['n1', 'n2', 'n3'];

/** n1..n3 bootstrapped as voters; `extra` nodes start empty, outside the configuration. */
function cluster(extra: readonly string[] = [], config: NodeConfig = {}): Network {
  return new Network({
    voters: THREE,
    learners: extra,
    config,
    initial: (id) =>
      extra.includes(id)
        ? { hardState: { term: 0, votedFor: null, commit: 0 }, entries: [] }
        : { hardState: { term: 1, votedFor: null, commit: 1 }, entries: [membershipEntry(THREE)] },
  });
}

function change(net: Network, id: string, c: MembershipChange, maxLag?: number): Membership {
  const { membership } = net.node(id).proposeMembership(c, maxLag);
  net.stabilize();
  return membership;
}

const shape = (net: Network, id: string) =>
  net
    .status(id)
    .members.map((m) => `${m.id}${m.voter ? '' : '(learner)'}`)
    .sort();

describe('learners', () => {
  it('a learner receives the log but counts in no quorum', () => {
    const net = cluster(['n4']);
    net.elect('n1');
    change(net, 'n1', { type: 'add', member: { id: 'n4', address: 'a4', voter: false } });
    expect(shape(net, 'n4')).toEqual(['n1', 'n2', 'n3', 'n4(learner)']);
    const { index } = net.propose('n1', 'x');
    expect(net.status('n4').commitIndex).toBe(index);
    // With both voting followers cut off, the learner's acknowledgement commits nothing.
    net.isolate('n2');
    net.isolate('n3');
    const stuck = net.propose('n1', 'y');
    expect(net.status('n4').lastLogIndex).toBe(stuck.index);
    expect(net.status('n1').commitIndex).toBe(index);
  });

  it('a learner never campaigns, even when it hears from no leader', () => {
    const net = cluster(['n4']);
    net.elect('n1');
    change(net, 'n1', { type: 'add', member: { id: 'n4', address: 'a4', voter: false } });
    net.isolate('n4');
    net.tickAll(100, ['n4']);
    expect(net.status('n4')).toMatchObject({ role: 'follower' });
    expect(net.sent.filter(({ message: m }) => m.from === 'n4' && m.type === 'vote')).toEqual([]);
  });

  it('a learner that stops hearing from the leader forgets it, and answers vote requests', () => {
    // Found by the simulator (figure8 seeds 358, 403): a learner kept its last leader for ever,
    // so leader stickiness made it ignore every vote request, and the voter that needed its
    // vote after a promotion it had not seen yet could never be elected.
    const net = new Network({ voters: ['n1', 'n2'], learners: ['n3'] });
    net.elect('n1');
    net.crash('n1');
    net.tickAll(40, ['n3']);
    expect(net.status('n3').leaderId).toBeNull();
    net.node('n3').step({
      type: 'vote',
      from: 'n2',
      to: 'n3',
      term: 3,
      preVote: true,
      lastLogIndex: 5,
      lastLogTerm: 2,
    });
    net.processAll();
    expect(
      net.sent.filter(({ message: m }) => m.type === 'voteResponse' && m.from === 'n3'),
    ).toHaveLength(1);
  });

  it('promote refuses a lagging learner unless forced, and a promoted learner votes', () => {
    const net = cluster(['n4']);
    net.elect('n1');
    change(net, 'n1', { type: 'add', member: { id: 'n4', address: 'a4', voter: false } });
    net.isolate('n4');
    for (let i = 0; i < 5; i++) net.propose('n1', `p${i}`);
    expect(codeOf(() => net.node('n1').proposeMembership({ type: 'promote', id: 'n4' }, 3))).toBe(
      'LEARNER_LAGGING',
    );
    net.heal();
    net.tickAll(3);
    change(net, 'n1', { type: 'promote', id: 'n4' }, 3);
    expect(shape(net, 'n2')).toEqual(['n1', 'n2', 'n3', 'n4']);
    // Four voters: a quorum is three, so two followers down stall commits.
    net.isolate('n3');
    net.isolate('n4');
    const before = net.status('n1').commitIndex;
    net.propose('n1', 'stalls');
    expect(net.status('n1').commitIndex).toBe(before);
  });
});

describe('one change at a time', () => {
  it('refuses a second change while the first is uncommitted (MEMBERSHIP_CHANGE_PENDING)', () => {
    const net = cluster(['n4', 'n5']);
    net.elect('n1');
    net.isolate('n2');
    net.isolate('n3');
    change(net, 'n1', { type: 'add', member: { id: 'n4', address: 'a4', voter: false } });
    expect(
      codeOf(() =>
        net
          .node('n1')
          .proposeMembership({ type: 'add', member: { id: 'n5', address: 'a5', voter: false } }),
      ),
    ).toBe('MEMBERSHIP_CHANGE_PENDING');
    net.heal();
    net.tickAll(3);
    change(net, 'n1', { type: 'add', member: { id: 'n5', address: 'a5', voter: false } });
    expect(shape(net, 'n3')).toEqual(['n1', 'n2', 'n3', 'n4(learner)', 'n5(learner)']);
  });

  it('a new leader changes nothing before an entry of its own term commits', () => {
    // Without CheckQuorum n3 votes for n2 while n1 still leads (no leader stickiness).
    const net = cluster(['n4'], { checkQuorum: false });
    net.elect('n1');
    // n2 wins term 3 but hears no acknowledgement of its no-op yet.
    const off = net.addDropRule((m) => m.type === 'appendResponse' && m.to === 'n2');
    net.elect('n2');
    expect(
      codeOf(() =>
        net
          .node('n2')
          .proposeMembership({ type: 'add', member: { id: 'n4', address: 'a4', voter: false } }),
      ),
    ).toBe('MEMBERSHIP_CHANGE_PENDING');
    off();
    net.tickAll(2);
    change(net, 'n2', { type: 'add', member: { id: 'n4', address: 'a4', voter: false } });
    expect(shape(net, 'n1')).toContain('n4(learner)');
  });

  it('refuses changes that make no sense with INVALID_ARGUMENT, appending nothing', () => {
    const net = cluster();
    net.elect('n1');
    const last = net.status('n1').lastLogIndex;
    const n1 = net.node('n1');
    for (const c of [
      { type: 'add', member: { id: 'n2', address: 'x', voter: true } },
      { type: 'remove', id: 'n9' },
      { type: 'promote', id: 'n2' },
      { type: 'demote', id: 'n9' },
    ] as MembershipChange[]) {
      expect(codeOf(() => n1.proposeMembership(c))).toBe('INVALID_ARGUMENT');
    }
    expect(net.status('n1').lastLogIndex).toBe(last);
    expect(codeOf(() => net.node('n2').proposeMembership({ type: 'remove', id: 'n3' }))).toBe(
      'NOT_LEADER',
    );
  });

  it('never leaves the cluster without a voter', () => {
    const net = new Network({ voters: ['n1'], learners: ['n2'] });
    net.elect('n1');
    expect(codeOf(() => net.node('n1').proposeMembership({ type: 'remove', id: 'n1' }))).toBe(
      'INVALID_ARGUMENT',
    );
    expect(codeOf(() => net.node('n1').proposeMembership({ type: 'demote', id: 'n1' }))).toBe(
      'INVALID_ARGUMENT',
    );
  });
});

describe('removing members', () => {
  it('a removed follower is told until it knows, then gets nothing more and never campaigns', () => {
    const net = cluster();
    net.elect('n1');
    change(net, 'n1', { type: 'remove', id: 'n3' });
    expect(shape(net, 'n2')).toEqual(['n1', 'n2']);
    // The leader keeps replicating to n3 until n3 holds its removal and knows it committed.
    net.tickAll(3);
    expect(shape(net, 'n3')).toEqual(['n1', 'n2']);
    const n3 = net.status('n3');
    expect(n3.commitIndex).toBeGreaterThanOrEqual(n3.membershipIndex);
    expect(Object.keys(net.status('n1').progress ?? {})).toEqual(['n2']);
    const term = net.status('n1').term;
    const since = net.delivered.length;
    net.propose('n1', 'after');
    net.tickAll(60);
    expect(net.deliveredWhere((m) => m.to === 'n3', since)).toEqual([]);
    expect(net.sent.slice(since).filter(({ message: m }) => m.from === 'n3')).toEqual([]);
    expect(net.status('n1')).toMatchObject({ role: 'leader', term });
  });

  it('a removed follower that never learned it campaigns without disturbing the cluster', () => {
    const net = cluster();
    net.elect('n1');
    net.isolate('n3');
    change(net, 'n1', { type: 'remove', id: 'n3' });
    const term = net.status('n1').term;
    // Unreachable past the bound: the leader gives up on telling it.
    net.tickAll(50, ['n1', 'n2']);
    expect(Object.keys(net.status('n1').progress ?? {})).toEqual(['n2']);
    net.heal();
    net.node('n3').campaign();
    net.stabilize();
    net.tickAll(30);
    expect(net.status('n1')).toMatchObject({ role: 'leader', term });
    expect(net.status('n2').term).toBe(term);
  });

  it('vote requests from a node outside the configuration are ignored, term and all', () => {
    const net = cluster();
    net.elect('n1');
    change(net, 'n1', { type: 'remove', id: 'n3' });
    const term = net.status('n2').term;
    net.node('n2').step({
      type: 'vote',
      from: 'n3',
      to: 'n2',
      term: term + 5,
      preVote: false,
      lastLogIndex: 99,
      lastLogTerm: term + 4,
    });
    expect(net.status('n2').term).toBe(term);
    net.stabilize();
    expect(net.deliveredWhere((m) => m.type === 'voteResponse' && m.to === 'n3')).toEqual([]);
  });

  it('while its own configuration is uncommitted, a node listens to a candidate it excludes', () => {
    // Found by the simulator (figure8 seed 1322): three nodes held three different uncommitted
    // configurations, each ignoring the only candidate the others could elect.
    const net = cluster();
    net.elect('n3');
    net.isolate('n3');
    net.node('n3').proposeMembership({ type: 'remove', id: 'n1' });
    net.stabilize();
    net.crash('n3');
    net.restart('n3');
    const n3 = net.status('n3');
    expect(n3.members.map((m) => m.id)).toEqual(['n2', 'n3']);
    expect(n3.membershipIndex).toBeGreaterThan(n3.commitIndex);
    net.node('n3').step({
      type: 'vote',
      from: 'n1',
      to: 'n3',
      term: n3.term + 1,
      preVote: false,
      lastLogIndex: n3.lastLogIndex + 5,
      lastLogTerm: n3.term + 1,
    });
    const rd = net.node('n3').ready();
    expect(ofType(rd.messagesAfterPersist, 'voteResponse').map((m) => m.granted)).toEqual([true]);
  });

  it('a removed leader leads until its removal commits, then hands over and steps down', () => {
    const net = cluster();
    net.elect('n1');
    const term = net.status('n1').term;
    const { index } = net.node('n1').proposeMembership({ type: 'remove', id: 'n1' });
    // Before the commit it still leads (and does not count itself toward the quorum).
    expect(net.status('n1').role).toBe('leader');
    net.stabilize();
    expect(net.status('n1').role).toBe('follower');
    expect(net.status('n2').commitIndex).toBeGreaterThanOrEqual(index);
    const timeoutNows = ofType(
      net.sent.map((s) => s.message),
      'timeoutNow',
    );
    expect(timeoutNows).toHaveLength(1);
    // The successor takes over at once, without waiting for an election timeout.
    net.stabilize();
    const leader = net.leader();
    expect(leader).toBe(timeoutNows[0]?.to);
    expect(net.status(leader as string).term).toBe(term + 1);
    expect(shape(net, leader as string)).toEqual(['n2', 'n3']);
    // The old leader never campaigns again.
    const since = net.sent.length;
    net.tickAll(50);
    expect(
      net.sent.slice(since).filter(({ message: m }) => m.type === 'vote' && m.from === 'n1'),
    ).toEqual([]);
    expect(net.status('n1').role).toBe('follower');
  });
});

describe('a node with an empty log', () => {
  it('knows no configuration: for an election timeout after it starts it grants no vote', () => {
    for (const [ticks, preVote, granted] of [
      [0, true, false],
      [0, false, false],
      [9, false, false],
      [10, false, true],
      [10, true, true],
    ] as const) {
      const empty = rawNode('n4', [], {}, { hardState: null, entries: [], applied: 0 });
      for (let i = 0; i < ticks; i++) empty.tick();
      empty.step({
        type: 'vote',
        from: 'n1',
        to: 'n4',
        term: 5,
        preVote,
        lastLogIndex: 0,
        lastLogTerm: 0,
      });
      const rd = empty.ready();
      const answers = ofType([...rd.messages, ...rd.messagesAfterPersist], 'voteResponse');
      expect(answers.map((m) => [m.preVote, m.granted])).toEqual([[preVote, granted]]);
    }
  });

  it('a follower told it acknowledged more than it holds stops: its storage lost state', () => {
    const n = rawNode('n2', THREE);
    takeReady(n);
    n.step({ type: 'heartbeat', from: 'n1', to: 'n2', term: 2, commit: 40, round: 1 });
    expect(n.lostState()).toEqual({ leaderId: 'n1', acknowledged: 40, last: 1 });
    expect(n.status().commitIndex).toBe(1);
  });
});

describe('an uncommitted removal held by one node only', () => {
  it.each(['remove', 'demote'] as const)(
    'a leader whose %s of itself is on its disk alone campaigns after a restart, and hands over',
    (type) => {
      const net = new Network({ voters: ['n1', 'n2'] });
      net.elect('n1');
      // The change stays on n1: n2 never sees it.
      const off = net.addDropRule((m) => m.from === 'n1' && m.type === 'append');
      net.node('n1').proposeMembership({ type, id: 'n1' });
      net.stabilize();
      net.crash('n1');
      net.restart('n1');
      off();
      // n2 still counts n1 as a voter and cannot win without it; n1 refuses it (n1's log is
      // longer). Only n1 can move: it campaigns in the new configuration, where n2 elects it.
      net.tickUntil(() => net.status('n2').members.length === (type === 'remove' ? 1 : 2), 300);
      net.tickUntil(() => net.leader() === 'n2', 300);
      expect(
        net
          .status('n2')
          .members.filter((m) => m.voter)
          .map((m) => m.id),
      ).toEqual(['n2']);
      expect(net.status('n1').role).toBe('follower');
    },
  );
});

describe('known trap: a stale append must not roll the configuration back', () => {
  it('a duplicate append carrying an older configuration entry leaves the newer one in force', () => {
    const net = cluster(['n4', 'n5']);
    net.elect('n1');
    change(net, 'n1', { type: 'add', member: { id: 'n4', address: 'a4', voter: false } });
    change(net, 'n1', { type: 'add', member: { id: 'n5', address: 'a5', voter: false } });
    const mark = net.delivered.length;
    change(net, 'n1', { type: 'promote', id: 'n4' });
    change(net, 'n1', { type: 'promote', id: 'n5' });
    expect(net.status('n2').members.filter((m) => m.voter)).toHaveLength(5);
    // The append that carried "add n5 as a learner" (three voters), delivered again late:
    // every entry in it matches n2's log already.
    const stale = net.delivered
      .slice(0, mark)
      .filter(
        (m) =>
          m.type === 'append' && m.to === 'n2' && m.entries.some((e) => e.kind === 'membership'),
      )
      .pop();
    expect(stale).toBeDefined();
    // After a restart n2 knows only the commit index of its last durable hard state (commit
    // alone is never synced), so the late append is not below its commit: it is processed.
    net.crash('n2');
    net.restart('n2');
    expect(net.status('n2').commitIndex).toBeLessThan((stale as { prevIndex: number }).prevIndex);
    net.node('n2').step(stale as NonNullable<typeof stale>);
    net.stabilize();
    expect(net.status('n2').members.filter((m) => m.voter)).toHaveLength(5);
    // With five voters, n2 and n3 cannot elect one of them with two votes.
    net.isolate('n1');
    net.isolate('n4');
    net.isolate('n5');
    net.tickAll(60, ['n2', 'n3']);
    expect([net.status('n2').role, net.status('n3').role]).not.toContain('leader');
  });

  it('reverts to the previous configuration only when the newer entry is truncated', () => {
    const net = cluster(['n4']);
    net.elect('n1');
    const durable = net.disk('n1').entries.length;
    // The change reaches n2 only, and n1 never learns that it did: it stays uncommitted.
    const off = net.addDropRule(
      (m) => (m.from === 'n1' && m.to === 'n3') || (m.type === 'appendResponse' && m.to === 'n1'),
    );
    net
      .node('n1')
      .proposeMembership({ type: 'add', member: { id: 'n4', address: 'a4', voter: false } });
    net.stabilize();
    expect(shape(net, 'n2')).toContain('n4(learner)');
    // n1 crashes before the change was durable on its disk; n3 wins with n1's vote.
    net.crash('n1');
    off();
    net.disk('n1').entries.splice(durable);
    net.restart('n1');
    net.elect('n3');
    net.propose('n3', 'overwrite');
    expect(shape(net, 'n2')).toEqual(['n1', 'n2', 'n3']);
  });
});
