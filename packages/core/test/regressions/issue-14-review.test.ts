/**
 * Review of issue #14 (single-server membership changes, leadership transfer, ReadIndex, leases).
 * Each test reproduced one finding (it failed before its fix); the scenario is in its comment.
 */
import { describe, expect, it } from 'vitest';
import { membershipEntry, Network } from '../engine/harness.js';
import {
  Cluster,
  clustersPerTest,
  membershipOf,
  nextTurn,
  type TestNode,
  track,
} from '../runtime/helpers.js';

const THREE = ['n1', 'n2', 'n3'];

/** n1..n3 bootstrapped as voters; `extra` nodes start empty, outside the configuration. */
function cluster(extra: readonly string[] = []): Network {
  return new Network({
    voters: THREE,
    learners: extra,
    initial: (id) =>
      extra.includes(id)
        ? { hardState: { term: 0, votedFor: null, commit: 0 }, entries: [] }
        : { hardState: { term: 1, votedFor: null, commit: 1 }, entries: [membershipEntry(THREE)] },
  });
}

describe('liveness: vote requests ignored on the strength of a stale committed configuration', () => {
  it('after replacing a node (add n4, remove n1) a lagging voter and the new voter can elect a leader', () => {
    // {n1,n2,n3}; n3 is partitioned and keeps its committed bootstrap configuration. The
    // operator replaces n1: add n4 as a voter ({n1..n4}, committed by n1,n2,n4), then remove n1
    // ({n2,n3,n4}, committed by n2,n4). n1 hands over to n2 and is shut down. Then n2 crashes.
    // n3 and n4 are a majority of {n2,n3,n4}, but n3 drops every (pre)vote request of n4,
    // because n4 is not a voter in n3's *committed* configuration {n1,n2,n3} (raft.ts:671-687),
    // and n3 itself only asks n1 and n2. Nobody can ever be elected.
    const net = cluster(['n4']);
    net.elect('n1');
    net.isolate('n3');
    net.node('n1').proposeMembership({
      type: 'add',
      member: { id: 'n4', address: 'a4', voter: true },
    });
    net.stabilize();
    net.tickAll(3);
    net.node('n1').proposeMembership({ type: 'remove', id: 'n1' });
    net.stabilize();
    // n1 handed over and stepped down; its successor leads {n2,n3,n4}.
    const successor = net.tickUntil(() => net.leader() !== undefined && net.leader() !== 'n1', 100);
    expect(successor).toBeGreaterThanOrEqual(0);
    const leader = net.leader() as string;
    expect(
      net
        .status(leader)
        .members.map((m) => m.id)
        .sort(),
    ).toEqual(['n2', 'n3', 'n4']);
    const survivor = leader === 'n2' ? 'n4' : 'n2';
    // The retired n1 is shut down, the current leader crashes, n3's partition heals.
    net.crash('n1');
    net.crash(leader);
    net.heal();
    // survivor + n3 are two of the three voters: a leader must emerge.
    net.tickUntil(() => net.leader() !== undefined, 600, [survivor, 'n3']);
  });
});

// ---------------------------------------------------------------------------------------------

const clusters = clustersPerTest();

/** `n` linearizable reads on `node`, each in its own event-loop turn (so each leaves its own
 *  heartbeat round); they are left pending. */
async function readsInSeparateTurns(node: TestNode, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    track(node.node.read());
    await nextTurn();
  }
}

describe('safety: the lease outlives the round that confirmed it (reads.ts ROUND_HISTORY)', () => {
  it('a partitioned leader under read load serves a lease read after another leader committed a write', async () => {
    // leaseMs = (100 - 10) * 0.9 = 81 ms after the last round a quorum answered left. Reads.rounds
    // keeps only the last 64..128 (round, time) records; leaseHolds() takes the first record whose
    // round is >= the confirmed round. Once more than 128 rounds left after the confirmed one (each
    // event-loop turn with a linearizable read broadcasts one), the record of the confirmed round
    // is gone and the oldest kept one, sent moments ago, is used instead: the lease is measured
    // from a round nobody answered, and is renewed for as long as reads keep coming.
    const { c, leader } = await clusters.withLeader({ options: { leaseReads: true } });
    await c.settle(leader.node.propose(1));
    await c.run(3);
    c.network.disconnect(leader.id);
    const cutAt = c.clock.now();
    const others = c.followersOf(leader);
    let write: ReturnType<typeof track<unknown>> | null = null;
    let newLeader: TestNode | undefined;
    for (let tick = 0; tick < 40 && leader.node.status().role === 'leader'; tick++) {
      await readsInSeparateTurns(leader, 70);
      await c.step();
      newLeader ??= others.find((n) => n.node.status().role === 'leader');
      if (newLeader !== undefined && write === null) write = track(newLeader.node.propose(10));
      if (write?.settled && write.error === undefined && leader.node.status().role === 'leader') {
        // The write completed (on the new leader) before this read starts.
        const lease = track(leader.node.read({ consistency: 'lease' }));
        await nextTurn();
        const elapsed = c.clock.now() - cutAt;
        // Served: a stale read. The old leader's state machine lacks the completed write.
        expect({
          served: lease.settled && lease.error === undefined,
          total: leader.sm.total,
          elapsed,
        }).toEqual({ served: false, total: 1, elapsed });
        return;
      }
    }
    throw new Error('scenario not reached: the old leader stepped down first');
  });
});

describe('safety: the lease is computed from electionTimeoutMs, stickiness from rounded ticks', () => {
  it('electionTimeoutMs 349 with tickMs 100: a voter votes ~201 ms after the round, the lease lasts 224 ms', async () => {
    // raft-node.ts:499: electionTicks = Math.round(349 / 100) = 3, so a voter that answered a
    // round ignores elections only until its third tick after it: as little as 200 ms + a
    // fraction of a tick later (here the followers tick 1 ms after the leader). The lease is
    // (electionTimeoutMs - tickMs) * (1 - maxClockDrift) = 249 * 0.9 = 224.1 ms
    // (raft-node.ts:404-406): with perfectly synchronised clocks, another leader is elected and
    // commits while the old one still serves lease reads. No read load here.
    const options = { leaseReads: true, tickMs: 100, heartbeatMs: 100, electionTimeoutMs: 349 };
    const c = new Cluster({ options, seed: 3 });
    try {
      const boot = { bootstrap: membershipOf(c.ids) };
      const a = c.add('a');
      await a.node.start(boot);
      await c.clock.advance(1);
      await Promise.all(['b', 'c'].map((id) => c.add(id).node.start(boot)));
      let leader = await c.electLeader();
      if (leader !== a) {
        await c.settle(leader.node.transferLeadership('a'), 200);
        leader = await c.electLeader();
      }
      expect(leader.id).toBe('a');
      await c.settle(leader.node.propose(1), 200);
      await c.run(20);
      c.network.disconnect(leader.id);
      const others = c.followersOf(leader);
      let write: ReturnType<typeof track<unknown>> | null = null;
      let newLeader: TestNode | undefined;
      for (let step = 0; step < 1000 && leader.node.status().role === 'leader'; step++) {
        await c.clock.advance(1);
        newLeader ??= others.find((n) => n.node.status().role === 'leader');
        if (newLeader !== undefined && write === null) write = track(newLeader.node.propose(10));
        if (write?.settled && write.error === undefined && leader.node.status().role === 'leader') {
          const lease = track(leader.node.read({ consistency: 'lease' }));
          await nextTurn();
          expect({
            served: lease.settled && lease.error === undefined,
            total: leader.sm.total,
          }).toEqual({ served: false, total: 1 });
          return;
        }
      }
      throw new Error('scenario not reached: the old leader stepped down first');
    } finally {
      await c.stopAll();
    }
  });
});

describe('API: a membership change whose entry another leader overwrote', () => {
  it('rejects with LEADERSHIP_LOST once its index applies with another entry, like propose()', async () => {
    // membership-changes.ts:148 settles an appended change only when a *membership* entry
    // applies at its index (raft-node.ts:1143 calls changes.applied for kind 'membership' only).
    // When the new leader's no-op (or a command) takes the index, the call waits for its whole
    // timeout and rejects with TIMEOUT, outcome 'unknown' ("it may still commit"), although this
    // node has applied another entry there and knows the change can never commit. propose() in
    // the same situation rejects with LEADERSHIP_LOST at once (outcome notApplied).
    const { c, leader } = await clusters.withLeader();
    await c.settle(leader.node.propose(1));
    c.network.disconnect(leader.id);
    const change = track(
      leader.node.addMember({ id: 'd', address: 'mem://d', voter: false }, { timeoutMs: 5000 }),
    );
    const changeIndex = leader.node.status().lastLogIndex;
    const cmd = track(leader.node.propose(7, { timeoutMs: 5000 }));
    const others = c.followersOf(leader);
    const next = await c.electLeader(others);
    await c.settle(next.node.propose(5));
    c.network.connect(leader.id);
    await c.waitApplied(changeIndex + 1, [leader], 200);
    await c.run(5);
    // The command was told at once.
    expect(cmd.settled && (cmd.error as { code?: string }).code).toBe('LEADERSHIP_LOST');
    // The membership change is still pending, and will end in TIMEOUT / unknown.
    expect({ settled: change.settled, code: (change.error as { code?: string })?.code }).toEqual({
      settled: true,
      code: 'LEADERSHIP_LOST',
    });
  });
});

describe('API: a follower forgets nothing about forwarded reads the leader never answered', () => {
  it('reads that timed out leave their entry in Reads.forwarded for as long as the leader stays', async () => {
    // reads.ts: a follower's batch asked of the leader is removed from `forwarded` only by the
    // leader's answer, a leader change, or rejectAll. expire() (timeout, abort) only settles the
    // promises. On a lossy link to a stable leader the map grows with every lost request or
    // answer (forwarded proposals, by contrast, are deleted on expiry: raft-node.ts expire()).
    const { c, leader } = await clusters.withLeader();
    const f = c.followersOf(leader)[0] as TestNode;
    await c.settle(leader.node.propose(1));
    c.network.cut(f.id, leader.id); // f's requests are lost; f still hears the leader
    const reads: ReturnType<typeof track<unknown>>[] = [];
    for (let i = 0; i < 50; i++) {
      reads.push(track(f.node.read({ timeoutMs: 50 })));
      await nextTurn();
    }
    await c.run(10);
    c.network.uncut(f.id, leader.id);
    await c.run(10);
    expect(reads.every((r) => r.settled && (r.error as { code?: string }).code === 'TIMEOUT')).toBe(
      true,
    );
    expect(f.node.status().leaderId).toBe(leader.id);
    const forwarded = (f.node as unknown as { reads: { forwarded: Map<number, unknown> } }).reads
      .forwarded;
    expect(forwarded.size).toBe(0);
  });
});

describe('liveness: a removed leader steps down without handing over when a proposal raced it', () => {
  it('a command proposed between the commit of its removal and the next flush voids the TimeoutNow', () => {
    // raft.ts maybeCommit sets stepDownPending when the removal commits; propose() still takes
    // commands until the next flushAppends (no check of stepDownPending), and handOver() sends
    // TimeoutNow only to a voter whose match equals the leader's last index (raft.ts:1210), which
    // the raced command makes impossible. The leader steps down with nobody told to campaign:
    // the cluster has no leader for an election timeout or more (under load, where the
    // followers have rarely acknowledged the last entry, this is the common case).
    const net = cluster();
    net.elect('n1');
    net.node('n1').proposeMembership({ type: 'remove', id: 'n1' });
    net.processAll(); // n1 sends the append
    net.deliverQueued();
    net.processAll(); // n2, n3 persist and acknowledge
    net.deliverQueued(); // n1 counts the acknowledgements: the removal commits
    expect(net.status('n1').commitIndex).toBe(net.status('n1').lastLogIndex);
    net.node('n1').propose(new Uint8Array([1])); // accepted by a leader about to step down
    const since = net.sent.length;
    net.stabilize();
    expect(net.status('n1').role).toBe('follower');
    const timeoutNows = net.sent.slice(since).filter(({ message: m }) => m.type === 'timeoutNow');
    expect(timeoutNows).toHaveLength(1);
  });
});
