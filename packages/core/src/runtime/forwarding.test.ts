import { describe, expect, it } from 'vitest';
import { RawNode } from '../engine/raw-node.js';
import { encodeMembership } from '../membership.js';
import type { ProposeMessage } from '../messages.js';
import { ForwardedProposals, ForwardLedger } from './forwarding.js';
import { Pending } from './proposals.js';

/** A one-voter engine that leads term 2 with its term durable. */
function leaderEngine(): RawNode {
  const engine = new RawNode(
    { id: 'L', electionTicks: 10, heartbeatTicks: 1, random: () => 0.5 },
    {
      hardState: { term: 1, votedFor: null, commit: 1 },
      entries: [
        {
          index: 1,
          term: 1,
          kind: 'membership',
          data: encodeMembership({ members: [{ id: 'L', address: 'L', voter: true }] }),
        },
      ],
      applied: 0,
    },
  );
  engine.campaign();
  engine.advance(engine.ready());
  return engine;
}

const seeded = (): (() => number) => {
  let x = 42;
  return () => {
    x = (x * 1_103_515_245 + 12_345) % 2 ** 31;
    return x / 2 ** 31;
  };
};

function forward(from: ForwardedProposals<unknown>, data: number): ProposeMessage {
  const p = new Pending<unknown>(0);
  p.promise.catch(() => {});
  return from.forward(p, 'F', 'L', 2, Uint8Array.of(data));
}

describe('forwarding ledger', () => {
  it('two incarnations seeded alike still get different sessions', () => {
    const first = new ForwardedProposals(seeded(), 0);
    const second = new ForwardedProposals(seeded(), 0);
    expect(first.session).not.toBe(second.session);
  });

  it('a duplicate gets the first position; a forgotten one is ignored, never appended again', () => {
    const engine = leaderEngine();
    expect(engine.basicStatus()).toMatchObject({ role: 'leader', term: 2, termDurable: true });
    const ledger = new ForwardLedger('L', 1024);
    ledger.begin(1);
    const follower = new ForwardedProposals(seeded(), 0);
    const messages = Array.from({ length: 1100 }, (_, i) => forward(follower, i & 0xff));
    const first = messages[0] as ProposeMessage;
    expect(ledger.check(first, engine, 0, 100).kind).toBe('append');
    ledger.recordAppended(first, 10, 2);
    expect(ledger.check(first, engine, 0, 100)).toMatchObject({
      kind: 'answer',
      message: { index: 10, entryTerm: 2 },
    });
    for (let i = 1; i < messages.length; i++)
      ledger.recordAppended(messages[i] as ProposeMessage, 10 + i, 2);
    // The first ones are forgotten (floor raised): a late copy is neither appended nor answered.
    expect(ledger.check(first, engine, 0, 100).kind).toBe('ignore');
    const recent = messages[1099] as ProposeMessage;
    expect(ledger.check(recent, engine, 0, 100)).toMatchObject({ kind: 'answer' });
  });

  it('refuses what it knows it did not append: another term, back-pressure, a new session past the limit', () => {
    const engine = leaderEngine();
    const ledger = new ForwardLedger('L', 1024);
    ledger.begin(1);
    const follower = new ForwardedProposals(seeded(), 0);
    const stale = { ...forward(follower, 1), term: 1 };
    // Term 1 was this incarnation's start term: it may have led it before a restart.
    expect(ledger.check(stale, engine, 0, 100).kind).toBe('ignore');
    expect(ledger.check(forward(follower, 2), engine, 100, 100)).toMatchObject({
      kind: 'answer',
      message: { rejected: { reason: 'dropped' } },
    });
    expect(ledger.check({ ...forward(follower, 3), term: 3 }, engine, 0, 100)).toMatchObject({
      kind: 'answer',
      message: { rejected: { reason: 'notLeader' } },
    });
  });

  it('a refusal stays true: a later copy of a refused forward is refused, never appended', () => {
    // Found by the simulator (seed 1479): a forward refused during a leadership transfer was
    // duplicated by the network, and the copy arrived after the transfer gave up.
    const engine = leaderEngine();
    const ledger = new ForwardLedger('L', 1024);
    ledger.begin(1);
    const follower = new ForwardedProposals(seeded(), 0);
    const busy = forward(follower, 1);
    expect(ledger.check(busy, engine, 100, 100)).toMatchObject({
      kind: 'answer',
      message: { rejected: { reason: 'dropped' } },
    });
    // The back-pressure is gone when the copy arrives: still refused.
    expect(ledger.check(busy, engine, 0, 100)).toMatchObject({
      kind: 'answer',
      message: { rejected: { reason: 'dropped' } },
    });
    const transferring = forward(follower, 2);
    expect(ledger.check(transferring, engine, 0, 100).kind).toBe('append');
    ledger.refused(transferring, engine, new Error('TRANSFER_IN_PROGRESS'));
    expect(ledger.check(transferring, engine, 0, 100)).toMatchObject({
      kind: 'answer',
      message: { rejected: { reason: 'dropped' } },
    });
    // Other forwards of the session are unaffected.
    expect(ledger.check(forward(follower, 3), engine, 0, 100).kind).toBe('append');
  });
});
