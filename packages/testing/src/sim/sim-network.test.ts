import type { Member, NodeId, RaftMessage } from '@raft/core';
import { describe, expect, it } from 'vitest';
import { Prng } from './prng.js';
import { Scheduler } from './scheduler.js';
import {
  type DropReason,
  SimNetwork,
  type SimNetworkOptions,
  type SimTransport,
} from './sim-network.js';

const IDS = ['n1', 'n2', 'n3'];

function heartbeat(from: NodeId, to: NodeId, term = 1): RaftMessage {
  return { type: 'heartbeat', from, to, term, commit: 0, round: 0 };
}

function members(ids: readonly NodeId[]): Member[] {
  return ids.map((id) => ({ id, address: `sim://${id}`, voter: true }));
}

interface Harness {
  readonly scheduler: Scheduler;
  readonly network: SimNetwork;
  readonly transports: Map<NodeId, SimTransport>;
  /** Received messages per node, as `from->to:term@time`. */
  readonly inbox: Map<NodeId, string[]>;
  readonly drops: DropReason[];
  send(from: NodeId, to: NodeId, term?: number): void;
  settle(maxSteps?: number): Promise<void>;
}

async function setup(options: SimNetworkOptions = {}, seed = 1, ids = IDS): Promise<Harness> {
  const scheduler = new Scheduler();
  const network = new SimNetwork(scheduler, new Prng(seed).fork('network'), options);
  const transports = new Map<NodeId, SimTransport>();
  const inbox = new Map<NodeId, string[]>();
  const drops: DropReason[] = [];
  network.onDrop = (_message, reason) => drops.push(reason);
  for (const id of ids) {
    const transport = network.transport(id);
    transport.setPeers(members(ids));
    const received: string[] = [];
    inbox.set(id, received);
    await transport.start({
      onMessage: (m) => received.push(`${m.from}->${m.to}:${m.term}@${scheduler.now}`),
    });
    transports.set(id, transport);
  }
  return {
    scheduler,
    network,
    transports,
    inbox,
    drops,
    send(from, to, term = 1) {
      transports.get(from)?.send([heartbeat(from, to, term)]);
    },
    async settle(maxSteps = 10_000) {
      const result = await scheduler.runUntil(() => false, maxSteps);
      expect(result.reason).toBe('idle');
    },
  };
}

function terms(lines: readonly string[] | undefined): number[] {
  return (lines ?? []).map((line) => Number(line.split(':')[1]?.split('@')[0]));
}

function checkStats(network: SimNetwork): void {
  const { sent, duplicated, delivered, dropped, inFlight } = network.stats;
  expect(sent + duplicated).toBe(delivered + dropped + inFlight);
}

describe('SimNetwork delivery', () => {
  it('delivers each message once after a delay within [minDelayMs, maxDelayMs)', async () => {
    const h = await setup({ minDelayMs: 2, maxDelayMs: 8 });
    const sentAt: number[] = [];
    h.network.onDeliver = (_message, at) => sentAt.push(h.scheduler.now - at);
    for (let i = 0; i < 50; i++) {
      h.send('n1', 'n2', i);
    }
    await h.settle();
    expect(h.inbox.get('n2')).toHaveLength(50);
    expect(sentAt.every((d) => d >= 2 && d < 8)).toBe(true);
    expect(h.network.stats).toMatchObject({ sent: 50, delivered: 50, dropped: 0, inFlight: 0 });
  });

  it('reorders with random delays; keeps per-link order with fifo or a fixed delay', async () => {
    const inOrder = (xs: number[]): boolean => xs.every((x, i) => i === 0 || (xs[i - 1] ?? 0) < x);
    for (const [options, ordered] of [
      [{ minDelayMs: 1, maxDelayMs: 20 }, false],
      [{ minDelayMs: 1, maxDelayMs: 20, fifo: true }, true],
      [{ minDelayMs: 5, maxDelayMs: 5 }, true],
    ] as const) {
      const h = await setup(options);
      for (let i = 0; i < 30; i++) {
        h.send('n1', 'n2', i);
        h.send('n3', 'n2', 100 + i);
      }
      await h.settle();
      const got = terms(h.inbox.get('n2'));
      expect(got).toHaveLength(60);
      const fromN1 = got.filter((t) => t < 100);
      const fromN3 = got.filter((t) => t >= 100);
      expect(inOrder(fromN1) && inOrder(fromN3)).toBe(ordered);
    }
  });

  it('drops messages to peers not set with setPeers (strict), or to unregistered nodes', async () => {
    const h = await setup();
    h.transports.get('n1')?.setPeers(members(['n1', 'n2']));
    h.send('n1', 'n3');
    h.send('n1', 'n2');
    h.send('n1', 'nX');
    await h.settle();
    expect(h.inbox.get('n3')).toEqual([]);
    expect(h.inbox.get('n2')).toHaveLength(1);
    expect(h.drops).toEqual(['unknownPeer', 'unknownPeer']);

    const lax = await setup({ strictPeers: false });
    lax.transports.get('n1')?.setPeers([]);
    lax.send('n1', 'n3');
    lax.send('n1', 'nX');
    await lax.settle();
    expect(lax.inbox.get('n3')).toHaveLength(1);
    expect(lax.drops).toEqual(['unknownPeer']);
  });

  it('calls onMessage only between start() and close()', async () => {
    const scheduler = new Scheduler();
    const network = new SimNetwork(scheduler, new Prng(3));
    const a = network.transport('a');
    const b = network.transport('b');
    a.setPeers(members(['b']));
    const got: RaftMessage[] = [];
    a.send([heartbeat('a', 'b')]); // b not started yet when it arrives
    await scheduler.runUntil(() => false, 100);
    await b.start({ onMessage: (m) => got.push(m) });
    expect(b.isOpen).toBe(true);
    a.send([heartbeat('a', 'b', 2)]);
    await scheduler.runUntil(() => false, 100);
    a.send([heartbeat('a', 'b', 3)]);
    await b.close(); // closes while the message is in flight
    await scheduler.runUntil(() => false, 100);
    expect(got.map((m) => m.term)).toEqual([2]);
    expect(b.isOpen).toBe(false);
    await expect(b.start({ onMessage: () => {} })).rejects.toMatchObject({ code: 'SHUTDOWN' });
  });

  it('never throws from send(), even for a closed transport', async () => {
    const h = await setup();
    const n1 = h.transports.get('n1') as SimTransport;
    await n1.close();
    expect(() => n1.send([heartbeat('n1', 'n2')])).not.toThrow();
    await h.settle();
    expect(h.drops).toEqual(['senderClosed']);
  });

  it('delivers the same object by default and a structured clone with cloneMessages', async () => {
    for (const cloneMessages of [false, true]) {
      const scheduler = new Scheduler();
      const network = new SimNetwork(scheduler, new Prng(1), { cloneMessages });
      const a = network.transport('a');
      a.setPeers(members(['b']));
      const b = network.transport('b');
      const got: RaftMessage[] = [];
      await b.start({ onMessage: (m) => got.push(m) });
      const sent: RaftMessage = {
        type: 'append',
        from: 'a',
        to: 'b',
        term: 1,
        prevIndex: 0,
        prevTerm: 0,
        commit: 0,
        entries: [{ index: 1, term: 1, kind: 'command', data: new Uint8Array([1, 2, 3]) }],
      };
      a.send([sent]);
      await scheduler.runUntil(() => false, 10);
      expect(got).toHaveLength(1);
      expect(got[0] === sent).toBe(!cloneMessages);
      expect(got[0]).toEqual(sent);
    }
  });

  it('a new incarnation replaces the old transport of the same node', async () => {
    const h = await setup({ minDelayMs: 5, maxDelayMs: 5 });
    const old = h.transports.get('n2') as SimTransport;
    h.send('n1', 'n2', 1); // in flight during the restart
    const fresh = h.network.transport('n2');
    const got: number[] = [];
    await fresh.start({ onMessage: (m) => got.push(m.term) });
    expect(old.isOpen).toBe(false);
    old.send([heartbeat('n2', 'n1')]);
    await h.settle();
    expect(got).toEqual([1]);
    expect(h.inbox.get('n2')).toEqual([]);
    expect(h.drops).toEqual(['senderClosed']);
  });
});

describe('SimNetwork faults', () => {
  it('partition() blocks links between groups, both ways; unnamed nodes reach nobody', async () => {
    const h = await setup({}, 1, ['n1', 'n2', 'n3', 'n4']);
    h.network.partition([['n1', 'n2'], ['n3']]);
    for (const from of ['n1', 'n2', 'n3', 'n4']) {
      for (const to of ['n1', 'n2', 'n3', 'n4']) {
        if (from !== to) {
          h.send(from, to);
        }
      }
    }
    await h.settle();
    expect(h.inbox.get('n1')?.map((l) => l.split(':')[0])).toEqual(['n2->n1']);
    expect(h.inbox.get('n2')?.map((l) => l.split(':')[0])).toEqual(['n1->n2']);
    expect(h.inbox.get('n3')).toEqual([]);
    expect(h.inbox.get('n4')).toEqual([]);
    expect(() => h.network.partition([['n1'], ['n1']])).toThrow(RangeError);
  });

  it('cut() blocks one direction only; uncut() restores it', async () => {
    const h = await setup();
    h.network.cut('n1', 'n2');
    expect(h.network.isBlocked('n1', 'n2')).toBe(true);
    expect(h.network.isBlocked('n2', 'n1')).toBe(false);
    h.send('n1', 'n2');
    h.send('n2', 'n1');
    await h.settle();
    expect(h.inbox.get('n2')).toEqual([]);
    expect(h.inbox.get('n1')).toHaveLength(1);
    h.network.uncut('n1', 'n2');
    h.send('n1', 'n2');
    await h.settle();
    expect(h.inbox.get('n2')).toHaveLength(1);
  });

  it('isolate() blocks every link of a node; heal() clears partitions, cuts and isolation', async () => {
    const h = await setup();
    h.network.isolate('n3');
    h.network.cut('n1', 'n2');
    h.network.partition([['n1'], ['n2', 'n3']]);
    h.send('n3', 'n1');
    h.send('n2', 'n3');
    h.send('n1', 'n2');
    await h.settle();
    expect([...h.inbox.values()].flat()).toEqual([]);
    h.network.heal();
    h.send('n3', 'n1');
    h.send('n2', 'n3');
    h.send('n1', 'n2');
    await h.settle();
    expect([...h.inbox.values()].flat()).toHaveLength(3);
  });

  it('a partition made while messages are in flight drops them on arrival', async () => {
    const h = await setup({ minDelayMs: 10, maxDelayMs: 10 });
    h.send('n1', 'n2');
    await h.scheduler.runFor(5, 100);
    h.network.partition([['n1'], ['n2', 'n3']]);
    await h.settle();
    expect(h.inbox.get('n2')).toEqual([]);
    expect(h.drops).toEqual(['blocked']);
  });

  it('a down node neither sends nor receives; in-flight messages to it are dropped', async () => {
    const h = await setup({ minDelayMs: 10, maxDelayMs: 10 });
    h.send('n1', 'n2', 1); // in flight when n2 goes down
    h.send('n2', 'n3', 2); // in flight from n2: still delivered
    h.network.setDown('n2', true);
    expect(h.network.isDown('n2')).toBe(true);
    h.send('n2', 'n1', 3);
    h.send('n3', 'n2', 4);
    await h.settle();
    expect(h.drops).toEqual(['senderDown', 'receiverDown', 'receiverDown']);
    expect(terms(h.inbox.get('n3'))).toEqual([2]);
    expect(h.inbox.get('n2')).toEqual([]);
    h.network.setDown('n2', false);
    h.send('n1', 'n2', 5);
    await h.settle();
    expect(terms(h.inbox.get('n2'))).toEqual([5]);
    checkStats(h.network);
  });

  it('drops at dropRate and duplicates at duplicateRate, counting both', async () => {
    const all = await setup({ dropRate: 1 });
    for (let i = 0; i < 20; i++) {
      all.send('n1', 'n2', i);
    }
    await all.settle();
    expect(all.network.stats).toMatchObject({ sent: 20, dropped: 20, delivered: 0 });
    expect(all.drops.every((r) => r === 'random')).toBe(true);

    const dup = await setup({ duplicateRate: 1 });
    for (let i = 0; i < 20; i++) {
      dup.send('n1', 'n2', i);
    }
    await dup.settle();
    expect(dup.network.stats).toMatchObject({ sent: 20, duplicated: 20, delivered: 40 });
    const counts = new Map<number, number>();
    for (const t of terms(dup.inbox.get('n2'))) {
      counts.set(t, (counts.get(t) ?? 0) + 1);
    }
    expect([...counts.values()].every((c) => c === 2)).toBe(true);

    const some = await setup({ dropRate: 0.3, duplicateRate: 0.2 }, 9);
    for (let i = 0; i < 1000; i++) {
      some.send('n1', 'n2', i);
    }
    await some.settle();
    const { dropped, duplicated } = some.network.stats;
    expect(dropped).toBeGreaterThan(230);
    expect(dropped).toBeLessThan(400);
    // Only messages that were not lost can be duplicated: about 1000 * 0.7 * 0.2 = 140.
    expect(duplicated).toBeGreaterThan(90);
    expect(duplicated).toBeLessThan(190);
    checkStats(some.network);
  });

  it('configure() changes the knobs at run time and validates them', async () => {
    const h = await setup();
    h.network.configure({ dropRate: 1 });
    h.send('n1', 'n2');
    h.network.configure({ dropRate: 0, minDelayMs: 3, maxDelayMs: 3 });
    h.send('n1', 'n2');
    await h.settle();
    expect(h.inbox.get('n2')).toEqual(['n1->n2:1@3']);
    expect(() => h.network.configure({ dropRate: 2 })).toThrow(RangeError);
    expect(() => h.network.configure({ minDelayMs: 5, maxDelayMs: 4 })).toThrow(RangeError);
    expect(h.network.currentFaults.maxDelayMs).toBe(3);
  });

  it('reports unreachable peers to the sender, later and only when asked to', async () => {
    const h = await setup({ reportUnreachable: true });
    const reports: string[] = [];
    const scheduler = h.scheduler;
    const fresh = h.network.transport('n1');
    fresh.setPeers(members(IDS));
    await fresh.start({
      onMessage: () => {},
      onUnreachable: (peer) => reports.push(`${peer}@${scheduler.now}`),
    });
    h.network.isolate('n2');
    h.network.setDown('n3', true);
    fresh.send([heartbeat('n1', 'n2'), heartbeat('n1', 'n3')]);
    expect(reports).toEqual([]); // never synchronously inside send()
    await h.settle();
    expect(reports).toEqual(['n2@1', 'n3@1']);
  });
});

describe('SimNetwork determinism', () => {
  async function trace(seed: number): Promise<string[]> {
    const h = await setup(
      { dropRate: 0.1, duplicateRate: 0.1, minDelayMs: 1, maxDelayMs: 30 },
      seed,
    );
    const lines: string[] = [];
    h.network.onDeliver = (m, at) =>
      lines.push(`${h.scheduler.now}:${m.from}->${m.to}:${m.term}:${at}`);
    const prng = new Prng(seed).fork('workload');
    for (let round = 0; round < 20; round++) {
      for (let i = 0; i < 10; i++) {
        const from = prng.pick(IDS);
        const to = prng.pick(IDS.filter((id) => id !== from));
        h.send(from, to, round * 10 + i);
      }
      await h.scheduler.runFor(prng.range(0, 20), 10_000);
    }
    await h.settle();
    return lines;
  }

  it('gives identical delivery traces for the same seed', async () => {
    const a = await trace(5);
    expect(a.length).toBeGreaterThan(150);
    expect(await trace(5)).toEqual(a);
    expect(await trace(6)).not.toEqual(a);
  });
});
