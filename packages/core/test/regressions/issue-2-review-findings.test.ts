/**
 * Regressions from the review of issue #2's runtime:
 * - a slow state machine held back heartbeats (applying ran inside the Ready loop) and cost
 *   the leader its leadership;
 * - a duplicated `propose` message was appended, and applied, twice;
 * - the first proposal of a turn left in a batch of its own;
 * - a forwarded proposal's answer was matched by request id alone (ids restarted at 1).
 */
import { describe, expect, it } from 'vitest';
import type { ApplyContext, RaftMessage, Transport } from '../../src/index.js';
import { Cluster, Counter, membershipOf, track } from '../runtime/helpers.js';

describe('issue #2: review findings', () => {
  it('a state machine slower than the election timeout does not depose the leader', async () => {
    const c = new Cluster();
    let slowOn: string | null = null;
    class SlowCounter extends Counter {
      constructor(private readonly id: string) {
        super();
      }
      override apply(command: number, at: ApplyContext): number {
        const result = super.apply(command, at);
        if (command === 999 && this.id === slowOn) {
          // Four election timeouts for one entry.
          return new Promise<number>((resolve) =>
            c.clock.setTimer(4 * 100, () => resolve(result)),
          ) as unknown as number;
        }
        return result;
      }
    }
    for (const id of c.ids)
      c.add(id, { stateMachine: new SlowCounter(id), electionTimeoutMs: 100 });
    await Promise.all(c.nodes.map((n) => n.node.start({ bootstrap: membershipOf(c.ids) })));
    const leader = await c.electLeader();
    const term = leader.node.status().term;
    slowOn = leader.id;
    const p = track(leader.node.propose(999));
    await c.run(60);
    expect(p.error).toBeUndefined();
    expect(p.value?.result).toBeGreaterThan(0);
    for (const n of c.nodes) expect(n.node.status()).toMatchObject({ term, leaderId: leader.id });
    await c.stopAll();
  });

  it('a duplicated forwarded proposal is appended and applied once', async () => {
    const c = new Cluster();
    for (const id of c.ids) {
      const inner = c.network.transport(id);
      const duplicating: Transport = {
        start: (h) => inner.start(h),
        setPeers: (p) => inner.setPeers(p),
        close: () => inner.close(),
        send: (messages) =>
          inner.send(messages.flatMap((m): RaftMessage[] => (m.type === 'propose' ? [m, m] : [m]))),
      };
      c.add(id, { transport: duplicating });
    }
    await Promise.all(c.nodes.map((n) => n.node.start({ bootstrap: membershipOf(c.ids) })));
    const leader = await c.electLeader();
    const follower = c.nodes.find((n) => n !== leader);
    const r = await c.settle((follower as (typeof c.nodes)[number]).node.propose(7));
    await c.run(5);
    for (const n of c.nodes)
      expect(n.sm.applied.filter((a) => a.command === 7)).toEqual([
        { index: r.index, term: r.term, command: 7 },
      ]);
    await c.stopAll();
  });

  it('all proposals of one turn become one log append and one append message per follower', async () => {
    const c = await Cluster.create();
    const leader = await c.electLeader();
    await c.run(3);
    const appends: number[] = [];
    const inner = leader.logStore.inner;
    const append = inner.append.bind(inner);
    inner.append = async (entries) => {
      appends.push(entries.length);
      return append(entries);
    };
    const proposals = Array.from({ length: 10 }, (_, i) => leader.node.propose(i + 1));
    await c.settle(Promise.all(proposals));
    expect(appends[0]).toBe(10);
    await c.stopAll();
  });

  it('answers to forwarded proposals count only from the node they were sent to', async () => {
    const c = await Cluster.create({ options: { requestTimeoutMs: 200 } });
    const leader = await c.electLeader();
    const [f1, f2] = c.nodes.filter((n) => n !== leader) as [
      (typeof c.nodes)[number],
      (typeof c.nodes)[number],
    ];
    // Capture the forward f1 sends, then let f2 (not the leader) answer it with a success.
    let forwarded: RaftMessage | undefined;
    const net = c.network as unknown as { enqueue(from: string, m: readonly RaftMessage[]): void };
    const enqueue = net.enqueue.bind(net);
    net.enqueue = (from, messages) => {
      const kept = messages.filter((m) => {
        if (m.type === 'propose' && m.from === f1.id) {
          forwarded = m;
          return false;
        }
        return true;
      });
      enqueue(from, kept);
    };
    const p = track(f1.node.propose(5));
    await c.run(1);
    expect(forwarded?.type).toBe('propose');
    const requestId = forwarded?.type === 'propose' ? forwarded.requestId : -1;
    const session = forwarded?.type === 'propose' ? forwarded.session : -1;
    // The impostor names the next index, which the leader then fills with its own command:
    // matching by request id alone would report that command's success to f1's caller.
    const { lastLogIndex, term } = leader.node.status();
    enqueue(f2.id, [
      {
        type: 'proposeResponse',
        from: f2.id,
        to: f1.id,
        term,
        session,
        requestId,
        index: lastLogIndex + 1,
        entryTerm: term,
      },
    ]);
    await c.run(1);
    const own = track(leader.node.propose(42));
    await c.run(30);
    expect(own.value?.index).toBe(lastLogIndex + 1);
    expect(p.settled).toBe(true);
    expect(p.error).toMatchObject({ code: 'TIMEOUT' });
    await c.stopAll();
  });
});
