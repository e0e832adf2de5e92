/**
 * The harness checks that every other engine and paper test leans on: they must hold on a
 * healthy engine and fire on a broken one (bugs planted through the prototypes, restored
 * after each test), or they prove nothing.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Raft } from '../../src/engine/raft.js';
import { RaftLog } from '../../src/engine/raft-log.js';
import type { RaftMessage } from '../../src/messages.js';
import { Network, seededRandom, terms } from './harness.js';

const ids = ['n1', 'n2', 'n3'];
const restore: (() => void)[] = [];
afterEach(() => {
  for (const fn of restore.splice(0)) fn();
});
function patch<T extends object>(target: T, key: string, value: unknown): void {
  const t = target as Record<string, unknown>;
  const original = t[key];
  t[key] = value;
  restore.push(() => {
    t[key] = original;
  });
}

describe('harness', () => {
  it('seededRandom is deterministic and uniform in [0, 1)', () => {
    const a = seededRandom(42);
    const b = seededRandom(42);
    const xs = Array.from({ length: 1000 }, () => a());
    expect(Array.from({ length: 1000 }, () => b())).toEqual(xs);
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
    expect(Math.min(...xs)).toBeLessThan(0.01);
    expect(Math.max(...xs)).toBeGreaterThan(0.99);
    expect(seededRandom(43)()).not.toBe(xs[0]);
  });

  it('the same seed replays the same run', () => {
    const run = () => {
      const net = new Network({ voters: ids, seed: 9 });
      net.tickUntil(() => net.leader() !== undefined, 100);
      return { leader: net.leader(), delivered: net.delivered.length };
    };
    expect(run()).toEqual(run());
  });

  it('stabilize settles and reports the rounds; a partition drops messages both ways', () => {
    const net = new Network({ voters: ids });
    expect(net.stabilize()).toBe(1); // the bootstrap entry is applied, then nothing
    net.isolate('n3');
    net.elect('n1');
    net.propose('n1', 'x');
    expect(net.status('n3')).toMatchObject({ term: 1, lastLogIndex: 1 });
    net.heal();
    net.tickAll(1);
    expect(net.status('n3')).toMatchObject({ term: 2, lastLogIndex: 3, commitIndex: 3 });
  });

  it('a restarted node is rebuilt from its disk alone', () => {
    const net = new Network({ voters: ids });
    net.elect('n1');
    net.propose('n1', 'x');
    net.crash('n2');
    expect(() => net.node('n2')).toThrow(/down/);
    net.restart('n2');
    expect(terms(net.disk('n2').entries)).toEqual(['1@1', '2@2', '3@2']);
    expect(net.status('n2')).toMatchObject({ term: 2, lastLogIndex: 3, role: 'follower' });
  });

  it('catches an engine that acknowledges before persisting', () => {
    patch(Raft.prototype, 'send', function (this: Raft, m: RaftMessage) {
      this.msgs.push(m);
    });
    const net = new Network({ voters: ids });
    expect(() => net.elect('n1')).toThrow(/before persisting/);
  });

  it('catches an engine that applies entries that are not durable yet', () => {
    patch(RaftLog.prototype, 'nextCommittedEntries', function (this: RaftLog) {
      return this.committed <= this.applying
        ? []
        : this.slice(this.applying + 1, this.committed + 1);
    });
    patch(RaftLog.prototype, 'hasNextCommittedEntries', function (this: RaftLog) {
      return this.committed > this.applying;
    });
    const net = new Network({ voters: ids });
    net.elect('n1');
    const n2 = net.node('n2');
    n2.step({
      type: 'append',
      from: 'n1',
      to: 'n2',
      term: 2,
      prevIndex: 2,
      prevTerm: 2,
      entries: [{ index: 3, term: 2, kind: 'command', data: new Uint8Array(0) }],
      commit: 3,
    });
    expect(() => net.process('n2')).toThrow(/not durable/);
  });

  it('catches two leaders in one term', () => {
    // Refusals counted as grants.
    const proto = Raft.prototype as unknown as Record<
      string,
      (from: string, granted: boolean) => void
    >;
    const recordVote = proto.recordVote as (from: string, granted: boolean) => void;
    patch(Raft.prototype, 'recordVote', function (this: Raft, from: string) {
      recordVote.call(this, from, true);
    });
    const net = new Network({ voters: ids, config: { preVote: false } });
    net.node('n1').campaign();
    net.node('n2').campaign();
    expect(() => net.stabilize()).toThrow(/Election Safety/);
  });
});
