/**
 * Durable-before-send and the apply rules, checked over randomized runs: lossy, duplicating,
 * reordering links, crashes and restarts from disk, proposals at random. The harness checks
 * every Ready (see harness.ts): nothing that vouches for durable state leaves in `messages`,
 * every vote grant / vote request / acknowledgement is backed by what is on disk, committed
 * entries handed out are already durable, Election Safety and State Machine Safety. On top
 * of that, each run must converge once the faults stop.
 *
 * Bounded by steps, not time; the failing seed is in the test name.
 */
import { describe, expect, it } from 'vitest';
import type { RaftMessage } from '../../src/messages.js';
import { Network, seededRandom, terms } from './harness.js';

const five = ['n1', 'n2', 'n3', 'n4', 'n5'];

interface Chaos {
  seed: number;
  preVote: boolean;
  checkQuorum: boolean;
}

function chaosRun({ seed, preVote, checkQuorum }: Chaos) {
  const rng = seededRandom(seed ^ 0x5eed);
  const net = new Network({
    voters: five,
    seed,
    config: { preVote, checkQuorum, maxInflightAppends: 4, maxEntriesPerAppend: 3 },
  });
  const delayed: { due: number; m: RaftMessage }[] = [];
  let now = 0;
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rng() * xs.length)] as T;
  const faults = net.addDropRule((m) => {
    const r = rng();
    if (r < 0.05) return true; // lost
    if (r < 0.08) {
      net.queue.push(m); // duplicated (delivered again on the next pass)
      return false;
    }
    if (r < 0.12) {
      delayed.push({ due: now + 1 + Math.floor(rng() * 5), m }); // reordered
      return true;
    }
    return false;
  });
  const down = new Set<string>();
  const stats = { crashes: 0, proposals: 0 };

  for (now = 0; now < 300; now++) {
    const r = rng();
    if (r < 0.02 && down.size < 2) {
      const id = pick(five.filter((x) => !down.has(x)));
      net.crash(id);
      down.add(id);
      stats.crashes++;
    } else if (r < 0.05 && down.size > 0) {
      const id = pick([...down]);
      net.restart(id);
      down.delete(id);
    } else if (r < 0.3) {
      const leader = net.leader();
      if (leader) {
        net.node(leader).propose(new Uint8Array([now & 0xff]));
        stats.proposals++;
      }
    }
    for (let i = delayed.length - 1; i >= 0; i--) {
      const d = delayed[i] as { due: number; m: RaftMessage };
      if (d.due <= now) {
        delayed.splice(i, 1);
        net.queue.push(d.m);
      }
    }
    net.tickAll(1);
  }

  // Stop the faults; everything must converge.
  faults();
  for (const id of down) net.restart(id);
  net.tickUntil(() => {
    const leader = net.leader();
    if (!leader) return false;
    const s = net.status(leader);
    return five.every((id) => {
      const f = net.status(id);
      return f.commitIndex === s.lastLogIndex && f.lastLogIndex === s.lastLogIndex;
    });
  }, 500);
  return { net, stats };
}

describe('durable before send, over randomized faulty runs', () => {
  const seeds = Array.from({ length: 6 }, (_, i) => i + 1);
  it.each(
    seeds.flatMap((seed) => [
      { seed, preVote: true, checkQuorum: true },
      { seed, preVote: false, checkQuorum: false },
    ]),
  )('seed $seed (preVote $preVote, checkQuorum $checkQuorum)', (chaos) => {
    const { net, stats } = chaosRun(chaos);
    expect(stats.proposals).toBeGreaterThan(0);
    // Every Ready kept the send discipline (the harness would have thrown otherwise).
    for (const { ready } of net.readies) {
      for (const m of ready.messages)
        expect(
          m.type === 'voteResponse' ||
            m.type === 'appendResponse' ||
            (m.type === 'vote' && !m.preVote),
        ).toBe(false);
      for (const m of ready.messagesAfterPersist)
        expect(
          m.type === 'voteResponse' ||
            m.type === 'appendResponse' ||
            (m.type === 'vote' && !m.preVote),
        ).toBe(true);
    }
    // Converged: identical logs and identical applied sequences.
    const reference = terms(net.disk(five[0] as string).entries);
    for (const id of five) {
      expect(terms(net.disk(id).entries)).toEqual(reference);
      expect(terms(net.applied.get(id) ?? [])).toEqual(reference);
    }
  });
});
