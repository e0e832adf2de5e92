import { describe, expect, it } from 'vitest';
import type { RaftMessage } from '../messages.js';
import { Backoff } from './backoff.js';
import { SendQueue } from './send-queue.js';

const hb = (round: number): RaftMessage => ({
  type: 'heartbeat',
  from: 'a',
  to: 'b',
  term: 1,
  commit: 0,
  round,
});
const vote = (term: number): RaftMessage => ({
  type: 'vote',
  from: 'a',
  to: 'b',
  term,
  preVote: false,
  lastLogIndex: 0,
  lastLogTerm: 0,
});

describe('SendQueue', () => {
  it('keeps order, and coalesces heartbeats in place only when asked', () => {
    const q = new SendQueue({ maxBytes: 1000, maxMessages: 10 });
    expect(q.push({ message: hb(1), size: 10 }, true)).toBe(true);
    expect(q.push({ message: vote(2), size: 10 }, true)).toBe(true);
    expect(q.push({ message: hb(3), size: 12 }, true)).toBe('coalesced');
    expect(q.push({ message: hb(4), size: 10 }, false)).toBe(true);
    expect(q.length).toBe(3);
    expect(q.bytes).toBe(32);
    expect(q.take(1000, (s) => s).map((i) => i.message)).toEqual([hb(3), vote(2), hb(4)]);
    expect(q.length).toBe(0);
    expect(q.bytes).toBe(0);
  });

  it('refuses what does not fit, by count and by bytes, and takes within a budget', () => {
    const q = new SendQueue({ maxBytes: 100, maxMessages: 3 });
    expect(q.push({ message: vote(1), size: 60 }, true)).toBe(true);
    expect(q.push({ message: vote(2), size: 50 }, true)).toBe(false);
    expect(q.push({ message: vote(3), size: 20 }, true)).toBe(true);
    expect(q.push({ message: vote(4), size: 20 }, true)).toBe(true);
    expect(q.push({ message: vote(5), size: 1 }, true)).toBe(false);
    // Always at least one, then only what fits the budget.
    expect(q.take(10, (s) => s).map((i) => i.message.term)).toEqual([1]);
    expect(q.take(30, (s) => s).map((i) => i.message.term)).toEqual([3]);
    expect(q.clear()).toBe(1);
  });

  it('stays consistent across many pushes and takes (front compaction)', () => {
    const q = new SendQueue({ maxBytes: 1e9, maxMessages: 1e6 });
    let next = 0;
    let expected = 0;
    for (let round = 0; round < 50; round++) {
      for (let i = 0; i < 100; i++) q.push({ message: vote(next++), size: 1 }, true);
      q.push({ message: hb(round), size: 1 }, true);
      for (const item of q.take(70, () => 1)) {
        if (item.message.type === 'vote') expect(item.message.term).toBe(expected++);
      }
    }
    for (const item of q.take(1e9, () => 1)) {
      if (item.message.type === 'vote') expect(item.message.term).toBe(expected++);
    }
    expect(expected).toBe(next);
    expect(q.length).toBe(0);
  });
});

describe('Backoff', () => {
  it('doubles up to the cap, jittered within [base/2, base), and resets', () => {
    const values = [0, 0.999, 0.5];
    let i = 0;
    const b = new Backoff({ initialMs: 100, maxMs: 800 }, () => values[i++ % 3] as number);
    const delays = Array.from({ length: 6 }, () => b.next());
    expect(delays[0]).toBe(50);
    expect(delays[1]).toBeCloseTo(199.9, 1);
    expect(delays[2]).toBe(300);
    expect(delays[3]).toBe(400);
    expect(delays[4]).toBeCloseTo(799.6, 1);
    expect(delays[5]).toBe(600);
    b.reset();
    expect(b.failures).toBe(0);
    expect(b.next()).toBeLessThan(100);
  });
});
