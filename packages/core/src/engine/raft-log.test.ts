import { describe, expect, it } from 'vitest';
import type { LogEntry } from '../types.js';
import { RaftLog } from './raft-log.js';

const e = (index: number, term: number): LogEntry => ({
  index,
  term,
  kind: 'command',
  data: new Uint8Array(index % 4),
});
/** Entries 1.. with the given terms. */
const log = (...terms: number[]): LogEntry[] => terms.map((t, i) => e(i + 1, t));
const pairs = (entries: readonly LogEntry[]) => entries.map((x) => `${x.index}@${x.term}`);

describe('RaftLog', () => {
  it('refuses a commit index past the log (committed entries were lost)', () => {
    expect(() => new RaftLog(log(1, 1, 2), 10, 0)).toThrow(
      /commit index 10 is past the last log index 3/,
    );
  });

  it('loads a contiguous log as durable, clamping applied to commit', () => {
    const l = new RaftLog(log(1, 1, 2), 3, 7);
    expect(l.firstIndex()).toBe(1);
    expect(l.lastIndex()).toBe(3);
    expect(l.lastTerm()).toBe(2);
    expect(l.stableIndex).toBe(3);
    expect(l.committed).toBe(3);
    expect(l.applied).toBe(3);
    expect(l.applying).toBe(3);
    expect(l.unstableEntries()).toEqual([]);
  });

  it('rejects a log with a gap', () => {
    expect(() => new RaftLog([e(1, 1), e(3, 1)], 0, 0)).toThrow(RangeError);
    expect(() => new RaftLog([e(2, 1)], 0, 0)).toThrow(RangeError);
  });

  it('an empty log has last index 0 and last term 0', () => {
    const l = new RaftLog([], 0, 0);
    expect(l.lastIndex()).toBe(0);
    expect(l.lastTerm()).toBe(0);
    expect(l.term(0)).toBe(0);
    expect(l.term(1)).toBeUndefined();
  });

  it('term(): 0 before the log, undefined past it', () => {
    const l = new RaftLog(log(1, 2), 0, 0);
    expect(l.term(0)).toBe(0);
    expect(l.term(2)).toBe(2);
    expect(l.term(3)).toBeUndefined();
    expect(l.matchTerm(2, 2)).toBe(true);
    expect(l.matchTerm(2, 1)).toBe(false);
    expect(l.matchTerm(3, 2)).toBe(false);
  });

  it('isUpToDate: a higher last term wins, then a longer log (§5.4.1)', () => {
    const l = new RaftLog(log(1, 2, 2), 0, 0);
    expect(l.isUpToDate(3, 2)).toBe(true);
    expect(l.isUpToDate(4, 2)).toBe(true);
    expect(l.isUpToDate(2, 2)).toBe(false);
    expect(l.isUpToDate(1, 3)).toBe(true);
    expect(l.isUpToDate(100, 1)).toBe(false);
  });

  it('findConflictByTerm: the largest index <= index whose term <= term', () => {
    const l = new RaftLog(log(1, 2, 2, 2, 5, 5, 7), 0, 0);
    expect(l.findConflictByTerm(7, 7)).toBe(7);
    expect(l.findConflictByTerm(7, 6)).toBe(6);
    expect(l.findConflictByTerm(7, 4)).toBe(4);
    expect(l.findConflictByTerm(6, 2)).toBe(4);
    expect(l.findConflictByTerm(7, 1)).toBe(1);
    expect(l.findConflictByTerm(7, 0)).toBe(0);
    // An index past the log is clamped to the last index.
    expect(l.findConflictByTerm(100, 9)).toBe(7);
  });

  describe('slice', () => {
    const l = new RaftLog(log(1, 1, 1, 1, 1, 1, 1, 1), 0, 0); // payloads 1,2,3,0,1,2,3,0 bytes
    it('returns [from, to)', () => {
      expect(pairs(l.slice(2, 5))).toEqual(['2@1', '3@1', '4@1']);
      expect(l.slice(5, 5)).toEqual([]);
      expect(pairs(l.slice(7, 100))).toEqual(['7@1', '8@1']);
    });
    it('caps the entry count', () => {
      expect(pairs(l.slice(1, 9, 3))).toEqual(['1@1', '2@1', '3@1']);
    });
    it('caps the payload bytes, counting the first entry, which always goes', () => {
      // 1 + 2 = 3 bytes fit in 3; adding entry 3 (3 bytes) would make 6.
      expect(pairs(l.slice(1, 9, Number.POSITIVE_INFINITY, 3))).toEqual(['1@1', '2@1']);
      // Entry 3 alone is 3 bytes, over a 1-byte cap: it still goes, alone.
      expect(pairs(l.slice(3, 9, Number.POSITIVE_INFINITY, 1))).toEqual(['3@1']);
      // Zero-byte entries are free.
      expect(pairs(l.slice(4, 9, Number.POSITIVE_INFINITY, 1))).toEqual(['4@1', '5@1']);
    });
  });

  describe('appendAfter (§5.3)', () => {
    it('appends new entries after a matching prefix', () => {
      const l = new RaftLog(log(1, 1), 0, 0);
      expect(l.appendAfter(2, [e(3, 2), e(4, 2)])).toBe(4);
      expect(l.lastIndex()).toBe(4);
      expect(l.stableIndex).toBe(2);
      expect(pairs(l.unstableEntries())).toEqual(['3@2', '4@2']);
    });

    it('skips entries it already has: a duplicated or stale append never truncates', () => {
      const l = new RaftLog(log(1, 1, 2, 2, 2), 0, 0);
      expect(l.appendAfter(1, [e(2, 1), e(3, 2)])).toBe(3);
      expect(l.lastIndex()).toBe(5);
      expect(l.truncatedFrom).toBe(Number.POSITIVE_INFINITY);
      expect(l.unstableEntries()).toEqual([]);
    });

    it('truncates at the first conflict and moves stableIndex back', () => {
      const l = new RaftLog(log(1, 1, 2, 2, 2), 1, 0);
      expect(l.appendAfter(2, [e(3, 2), e(4, 3)])).toBe(4);
      expect(pairs(l.slice(1, 10))).toEqual(['1@1', '2@1', '3@2', '4@3']);
      expect(l.truncatedFrom).toBe(4);
      expect(l.stableIndex).toBe(3);
      expect(pairs(l.unstableEntries())).toEqual(['4@3']);
    });

    it('refuses to overwrite a committed entry (a Raft invariant broken elsewhere)', () => {
      const l = new RaftLog(log(1, 1, 2), 3, 0);
      expect(() => l.appendAfter(2, [e(3, 3)])).toThrow(RangeError);
    });

    it('returns prevIndex + entries.length even when the log is longer', () => {
      const l = new RaftLog(log(1, 1, 1, 1), 0, 0);
      expect(l.appendAfter(1, [])).toBe(1);
      expect(l.appendAfter(1, [e(2, 1)])).toBe(2);
      expect(l.lastIndex()).toBe(4);
    });
  });

  describe('stability and commit', () => {
    it('stableTo advances only when the entry still has the written term', () => {
      const l = new RaftLog(log(1), 0, 0);
      l.append(e(2, 2));
      l.append(e(3, 2));
      l.stableTo(3, 1);
      expect(l.stableIndex).toBe(1);
      l.stableTo(2, 2);
      expect(l.stableIndex).toBe(2);
      l.stableTo(1, 1);
      expect(l.stableIndex).toBe(2);
      l.stableTo(3, 2);
      expect(l.stableIndex).toBe(3);
    });

    it('a write overtaken by a truncation does not mark the new suffix durable', () => {
      const l = new RaftLog(log(1), 0, 0);
      l.append(e(2, 2));
      l.append(e(3, 2));
      const written = l.unstableEntries();
      // Before the write completes, a new leader replaces index 3.
      l.appendAfter(2, [e(3, 3)]);
      const last = written[written.length - 1] as LogEntry;
      l.stableTo(last.index, last.term);
      expect(l.stableIndex).toBe(1);
      expect(pairs(l.unstableEntries())).toEqual(['2@2', '3@3']);
    });

    it('commitTo only moves forward and never past the last index', () => {
      const l = new RaftLog(log(1, 1, 1), 1, 0);
      expect(l.commitTo(0)).toBe(false);
      expect(l.commitTo(2)).toBe(true);
      expect(l.commitTo(2)).toBe(false);
      expect(() => l.commitTo(4)).toThrow(RangeError);
    });

    it('hands out committed entries only once they are durable', () => {
      const l = new RaftLog(log(1), 1, 0);
      l.append(e(2, 1));
      l.append(e(3, 1));
      l.commitTo(3);
      expect(pairs(l.nextCommittedEntries())).toEqual(['1@1']);
      l.stableTo(2, 1);
      expect(l.hasNextCommittedEntries()).toBe(true);
      expect(pairs(l.nextCommittedEntries())).toEqual(['1@1', '2@1']);
      l.applying = 2;
      expect(l.hasNextCommittedEntries()).toBe(false);
      expect(l.nextCommittedEntries()).toEqual([]);
      l.stableTo(3, 1);
      expect(pairs(l.nextCommittedEntries())).toEqual(['3@1']);
      l.appliedTo(3);
      l.appliedTo(1);
      expect(l.applied).toBe(3);
    });
  });
});
