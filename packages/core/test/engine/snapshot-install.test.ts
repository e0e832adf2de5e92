/**
 * Installing a snapshot from the leader, at the engine: what the Ready tells the runtime to do
 * with the log store (keep what follows the snapshot, or empty it after the snapshot), which
 * entries it writes again, and how a follower's log and commit index look afterwards.
 */
import { describe, expect, it } from 'vitest';
import type { AppendMessage, LogEntry, LogIndex, RaftMessage, Term } from '../../src/index.js';
import { entry, newNode, takeReady } from './harness.js';

const ids = ['n1', 'n2', 'n3'];
const membership = {
  members: ids.map((id) => ({ id, address: `addr-${id}`, voter: true })),
};

function append(
  from: string,
  term: Term,
  prevIndex: LogIndex,
  prevTerm: Term,
  entries: readonly LogEntry[],
  commit: LogIndex,
): AppendMessage {
  return { type: 'append', from, to: 'n2', term, prevIndex, prevTerm, entries, commit };
}

function range(from: LogIndex, to: LogIndex, term: Term): LogEntry[] {
  const out: LogEntry[] = [];
  for (let i = from; i <= to; i++) out.push(entry(i, term));
  return out;
}

function acks(messages: readonly RaftMessage[]): LogIndex[] {
  return messages.flatMap((m) => (m.type === 'appendResponse' && m.success ? [m.matchIndex] : []));
}

describe('installing a snapshot (engine)', () => {
  it('a kept suffix whose prefix the store holds durably stays in the store', () => {
    const n2 = newNode('n2', ids);
    n2.step(append('n1', 2, 1, 1, range(2, 9, 2), 1));
    takeReady(n2); // 2..9 durable
    expect(n2.installSnapshot({ index: 5, term: 2, membership }, 'n1')).toBe(true);
    const rd = n2.ready();
    expect(rd.snapshot).toEqual({ meta: { index: 5, term: 2, membership }, keepLog: true });
    expect(rd.entries).toEqual([]);
    // Acknowledged only up to the snapshot, after the Ready is handled.
    expect(acks(rd.messagesAfterPersist)).toEqual([5]);
    n2.advance(rd);
    const status = n2.status();
    expect([status.firstIndex, status.lastLogIndex, status.commitIndex]).toEqual([6, 9, 5]);
  });

  it('a store that may hold entries of another prefix after the snapshot is emptied after it', () => {
    // n2 stored 2..8 of term 2; a leader of term 3 then overwrote 4.. in memory (not yet
    // written), and sends a snapshot at 6 of term 3 that matches memory. The store still holds
    // 7 and 8 of term 2, which follow another entry 6: kept, a crash after the snapshot commits
    // would leave them after it.
    const n2 = newNode('n2', ids);
    n2.step(append('n1', 2, 1, 1, range(2, 8, 2), 1));
    takeReady(n2);
    n2.step(append('n3', 3, 3, 2, range(4, 9, 3), 1));
    expect(n2.installSnapshot({ index: 6, term: 3, membership }, 'n3')).toBe(true);
    const rd = n2.ready();
    expect(rd.snapshot?.keepLog).toBe(false);
    // Everything kept after the snapshot is written again, after the store is emptied.
    expect(rd.entries.map((e) => `${e.index}:${e.term}`)).toEqual(['7:3', '8:3', '9:3']);
    n2.advance(rd);
    expect(n2.status().stableIndex).toBe(9);
  });

  it('an install while a write is in flight keeps what that write stores and acknowledges', () => {
    const n2 = newNode('n2', ids);
    n2.step(append('n1', 2, 1, 1, range(2, 10, 2), 1));
    const inFlight = n2.ready(); // the write of 2..10 is in flight
    expect(acks(inFlight.messagesAfterPersist)).toEqual([10]);
    expect(n2.installSnapshot({ index: 5, term: 2, membership }, 'n1')).toBe(true);
    n2.advance(inFlight); // durable: the ack of 10 leaves
    const rd = n2.ready();
    // The store holds 2..10: it must not be truncated after 5.
    expect(rd.snapshot?.keepLog).toBe(true);
    expect(rd.entries).toEqual([]);
    n2.advance(rd);
  });

  it('a contradicted log is dropped, in memory and in the store, and the membership comes from the snapshot', () => {
    const n2 = newNode('n2', ids);
    n2.step(append('n1', 2, 1, 1, range(2, 8, 2), 1));
    takeReady(n2);
    const meta = {
      index: 6,
      term: 3,
      membership: {
        members: [...membership.members, { id: 'n4', address: 'addr-n4', voter: false }],
      },
    };
    expect(n2.installSnapshot(meta, 'n3')).toBe(true);
    const rd = n2.ready();
    expect(rd.snapshot?.keepLog).toBe(false);
    expect(rd.entries).toEqual([]);
    n2.advance(rd);
    const status = n2.status();
    expect([status.firstIndex, status.lastLogIndex, status.commitIndex]).toEqual([7, 6, 6]);
    expect(status.snapshotIndex).toBe(6);
    expect(n2.members().map((m) => `${m.id}:${m.voter}`)).toEqual([
      'n1:true',
      'n2:true',
      'n3:true',
      'n4:false',
    ]);
  });

  it('a snapshot the commit index already covers is acknowledged at once, not installed', () => {
    const n2 = newNode('n2', ids);
    n2.step(append('n1', 2, 1, 1, range(2, 8, 2), 6));
    takeReady(n2);
    expect(n2.installSnapshot({ index: 5, term: 2, membership }, 'n1')).toBe(false);
    const rd = n2.ready();
    expect(rd.snapshot).toBeUndefined();
    expect(acks(rd.messagesAfterPersist)).toEqual([6]);
  });
});
