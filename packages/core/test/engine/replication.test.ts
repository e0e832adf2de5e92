/**
 * Replication flow control on the leader (thesis §10.2.2 batching and pipelining; etcd
 * `Progress` / `Inflights`): batching of proposals, the in-flight window, probe vs replicate,
 * message size limits, and recovery from lost appends and lost acknowledgements.
 */
import { describe, expect, it } from 'vitest';
import type { Ready } from '../../src/engine/ready.js';
import type { AppendMessage } from '../../src/messages.js';
import { bytes, Network, ofType, terms } from './harness.js';

const ids = ['n1', 'n2', 'n3'];

const appendsTo = (rd: Ready | undefined, to: string): AppendMessage[] =>
  ofType(rd?.messages ?? [], 'append').filter((m) => m.to === to);

/** A cluster with n1 elected and every follower replicating. */
function cluster(config: ConstructorParameters<typeof Network>[0]['config'] = {}, voters = ids) {
  const net = new Network({ voters, config });
  net.elect('n1');
  return net;
}

describe('batching', () => {
  it('proposals made before one ready() leave as one write and one append per follower', () => {
    const net = cluster();
    const n1 = net.node('n1');
    for (let i = 0; i < 5; i++) n1.propose(bytes(`cmd-${i}`));
    const rd = net.process('n1') as Ready;
    expect(terms(rd.entries)).toEqual(['3@2', '4@2', '5@2', '6@2', '7@2']);
    const appends = ofType(rd.messages, 'append');
    expect(appends.map((m) => m.to)).toEqual(['n2', 'n3']);
    for (const m of appends) {
      expect(m).toMatchObject({ prevIndex: 2, prevTerm: 2, commit: 2 });
      expect(terms(m.entries)).toEqual(['3@2', '4@2', '5@2', '6@2', '7@2']);
    }
    net.stabilize();
    for (const id of ids) expect(net.status(id).commitIndex).toBe(7);
  });

  it('maxEntriesPerAppend splits a batch into several appends, pipelined in one Ready', () => {
    const net = cluster({ maxEntriesPerAppend: 2 });
    for (let i = 0; i < 5; i++) net.node('n1').propose(bytes(`c${i}`));
    const rd = net.process('n1');
    expect(appendsTo(rd, 'n2').map((m) => terms(m.entries))).toEqual([
      ['3@2', '4@2'],
      ['5@2', '6@2'],
      ['7@2'],
    ]);
    expect(appendsTo(rd, 'n2').map((m) => m.prevIndex)).toEqual([2, 4, 6]);
  });

  it('maxBytesPerAppend caps the payload of an append; an oversized entry still goes alone', () => {
    const net = cluster({ maxBytesPerAppend: 25 });
    const n1 = net.node('n1');
    for (let i = 0; i < 3; i++) n1.propose(bytes('0123456789')); // 10 bytes each
    n1.propose(bytes('x'.repeat(40)));
    n1.propose(bytes('0123456789'));
    const rd = net.process('n1');
    expect(appendsTo(rd, 'n2').map((m) => m.entries.map((e) => e.data.byteLength))).toEqual([
      [10, 10],
      [10],
      [40],
      [10],
    ]);
  });
});

describe('pipelining (replicate state)', () => {
  it('sends several appends without waiting, bounded by maxInflightAppends', () => {
    const net = cluster({ maxInflightAppends: 3 });
    const n1 = net.node('n1');
    const perReady: number[] = [];
    for (let i = 0; i < 5; i++) {
      n1.propose(bytes(`c${i}`));
      perReady.push(appendsTo(net.process('n1'), 'n2').length);
    }
    // Nothing was delivered: three appends are in flight and the window is full.
    expect(perReady).toEqual([1, 1, 1, 0, 0]);
    expect(net.status('n1').progress?.n2).toMatchObject({
      state: 'replicate',
      inflight: 3,
      match: 2,
      next: 6,
    });
    // Acknowledgements open the window; the two held-back entries leave in one append.
    const since = net.delivered.length;
    net.stabilize();
    const later = net
      .deliveredWhere((m) => m.type === 'append' && m.to === 'n2', since)
      .filter((m) => m.type === 'append' && m.entries.length > 0) as AppendMessage[];
    expect(later.map((m) => terms(m.entries))).toEqual([['3@2'], ['4@2'], ['5@2'], ['6@2', '7@2']]);
    expect(net.status('n1').progress?.n2).toMatchObject({ match: 7, inflight: 0 });
    expect(net.status('n2').commitIndex).toBe(7);
  });

  it('fills the window within a single Ready when one batch needs several appends', () => {
    const net = cluster({ maxInflightAppends: 2, maxEntriesPerAppend: 1 });
    for (let i = 0; i < 5; i++) net.node('n1').propose(bytes(`c${i}`));
    const rd = net.process('n1');
    expect(appendsTo(rd, 'n2').map((m) => terms(m.entries))).toEqual([['3@2'], ['4@2']]);
    expect(net.status('n1').progress?.n2).toMatchObject({ inflight: 2, next: 5 });
    net.stabilize();
    expect(net.status('n1').progress?.n2).toMatchObject({ match: 7, inflight: 0 });
  });
});

describe('probe state', () => {
  it('sends one append at a time until the follower answers', () => {
    const net = cluster();
    const n1 = net.node('n1');
    n1.reportUnreachable('n2');
    const toN2: number[] = [];
    const toN3: number[] = [];
    for (let i = 0; i < 3; i++) {
      n1.propose(bytes(`c${i}`));
      const rd = net.process('n1');
      toN2.push(appendsTo(rd, 'n2').length);
      toN3.push(appendsTo(rd, 'n3').length);
    }
    expect(toN2).toEqual([1, 0, 0]);
    expect(toN3).toEqual([1, 1, 1]);
    // The probe's acknowledgement switches n2 back to replicate and it catches up.
    net.stabilize();
    expect(net.status('n1').progress?.n2).toMatchObject({ state: 'replicate', match: 5 });
  });

  it('a follower that missed many appends is repaired after a single rejection', () => {
    const net = cluster();
    net.isolate('n3');
    for (let i = 0; i < 20; i++) net.propose('n1', `c${i}`);
    net.heal();
    const since = net.delivered.length;
    net.propose('n1', 'last');
    const rejections = net.deliveredWhere(
      (m) => m.type === 'appendResponse' && !m.success && m.from === 'n3',
      since,
    );
    expect(rejections).toHaveLength(1);
    expect(net.status('n3').lastLogIndex).toBe(23);
    expect(net.status('n3').commitIndex).toBe(23);
  });
});

describe('lost messages do not stall replication', () => {
  it('lost acknowledgements: a heartbeat response frees the full in-flight window', () => {
    // Two voters: every entry needs n2's acknowledgement to commit.
    const net = cluster({ maxInflightAppends: 2 }, ['n1', 'n2']);
    const restoreAcks = net.addDropRule((m) => m.type === 'appendResponse' && m.from === 'n2');
    for (let i = 0; i < 3; i++) net.propose('n1', `c${i}`);
    // n2 holds the first two entries; the leader never heard back, and holds back the third.
    expect(net.status('n2').lastLogIndex).toBe(4);
    expect(net.status('n1')).toMatchObject({ commitIndex: 2, lastLogIndex: 5 });
    expect(net.status('n1').progress?.n2).toMatchObject({ inflight: 2, match: 2 });
    restoreAcks();
    // No proposal, no acknowledgement of the old appends: only heartbeats can unblock it.
    const ticks = net.tickUntil(() => net.status('n1').commitIndex === 5, 20);
    expect(ticks).toBeLessThanOrEqual(2);
    expect(net.status('n2')).toMatchObject({ lastLogIndex: 5, commitIndex: 5 });
    expect(net.status('n1').progress?.n2).toMatchObject({ state: 'replicate', match: 5 });
  });

  it('lost appends (window full): the follower rejects the next one and is probed back', () => {
    const net = cluster({ maxInflightAppends: 2 }, ['n1', 'n2']);
    const restore = net.addDropRule((m) => m.type === 'append' && m.to === 'n2');
    for (let i = 0; i < 3; i++) net.propose('n1', `c${i}`);
    expect(net.status('n2').lastLogIndex).toBe(2);
    restore();
    const since = net.delivered.length;
    net.tickUntil(() => net.status('n1').commitIndex === 5, 20);
    const rejections = net.deliveredWhere((m) => m.type === 'appendResponse' && !m.success, since);
    expect(rejections).toHaveLength(1);
    expect(net.status('n2').lastLogIndex).toBe(5);
  });

  it('lost appends (window not full): a heartbeat response triggers a resend', () => {
    const net = cluster({}, ['n1', 'n2']);
    const restore = net.addDropRule((m) => m.type === 'append' && m.to === 'n2');
    net.propose('n1', 'c0');
    expect(net.status('n1').progress?.n2).toMatchObject({ state: 'replicate', inflight: 1 });
    restore();
    const ticks = net.tickUntil(() => net.status('n1').commitIndex === 3, 20);
    expect(ticks).toBeLessThanOrEqual(2);
  });

  it('a lost probe is resent after the next heartbeat response', () => {
    const net = cluster();
    net.node('n1').reportUnreachable('n2');
    const restore = net.addDropRule((m) => m.type === 'append' && m.to === 'n2');
    net.propose('n1', 'c0');
    net.propose('n1', 'c1');
    expect(net.status('n2').lastLogIndex).toBe(2);
    restore();
    net.tickUntil(() => net.status('n2').lastLogIndex === 4, 5);
    expect(net.status('n1').progress?.n2).toMatchObject({ state: 'replicate', match: 4 });
  });
});

describe('heartbeats', () => {
  it('go every heartbeatTicks and carry min(follower match, commit)', () => {
    const net = cluster({ heartbeatTicks: 3 });
    net.isolate('n3');
    net.propose('n1', 'c0');
    expect(net.status('n1').commitIndex).toBe(3);
    net.heal();
    const n1 = net.node('n1');
    n1.tick();
    n1.tick();
    expect(n1.hasReady()).toBe(false);
    n1.tick();
    const rd = net.process('n1');
    const beats = ofType(rd?.messages ?? [], 'heartbeat');
    expect(beats.map((m) => [m.to, m.commit])).toEqual([
      ['n2', 3],
      ['n3', 2],
    ]);
  });

  it('followers learn the commit index without any new proposal', () => {
    const net = cluster();
    // n2 misses the append that carries the new commit index, but holds the entry.
    net.node('n1').propose(bytes('c0'));
    net.process('n1');
    net.deliverQueued();
    net.process('n2');
    net.process('n3');
    net.deliverQueued();
    const restore = net.addDropRule((m) => m.type === 'append' && m.to === 'n2');
    net.stabilize();
    expect(net.status('n1').commitIndex).toBe(3);
    expect(net.status('n2')).toMatchObject({ lastLogIndex: 3, commitIndex: 2 });
    restore();
    net.tickAll(1);
    expect(net.status('n2').commitIndex).toBe(3);
    expect(terms(net.applied.get('n2') ?? [])).toEqual(['1@1', '2@2', '3@2']);
  });
});
