import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { committedIndex, majority, voteResult } from './majority.js';

describe('majority', () => {
  it('is floor(n / 2) + 1', () => {
    expect([1, 2, 3, 4, 5, 6, 7].map(majority)).toEqual([1, 2, 2, 3, 3, 4, 4]);
  });
});

describe('committedIndex', () => {
  const ids = (n: number) => Array.from({ length: n }, (_, i) => `n${i + 1}`);
  const of = (matches: number[]) => (id: string) => matches[Number(id.slice(1)) - 1] ?? 0;

  it.each([
    [[], 0],
    [[7], 7],
    [[5, 1], 1],
    [[5, 5], 5],
    [[1, 2, 3], 2],
    [[3, 3, 1], 3],
    [[9, 0, 0], 0],
    [[4, 8, 6, 2], 4],
    [[10, 9, 8, 1, 1], 8],
    [[10, 9, 1, 1, 1], 1],
  ])('matches %j commit %i', (matches, want) => {
    expect(committedIndex(ids(matches.length), of(matches))).toBe(want);
  });

  it('is the largest index a majority has reached (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.nat(50), { minLength: 1, maxLength: 9 }), (matches) => {
        const got = committedIndex(ids(matches.length), of(matches));
        const atLeast = (i: number) => matches.filter((m) => m >= i).length;
        expect(atLeast(got)).toBeGreaterThanOrEqual(majority(matches.length));
        expect(atLeast(got + 1)).toBeLessThan(majority(matches.length));
      }),
      { numRuns: 200, seed: 42 },
    );
  });

  it('only asks about the voters it is given', () => {
    const asked: string[] = [];
    committedIndex(['a', 'b'], (id) => {
      asked.push(id);
      return 1;
    });
    expect(asked.sort()).toEqual(['a', 'b']);
  });
});

describe('voteResult', () => {
  const votes = (v: Record<string, boolean>) => new Map(Object.entries(v));

  it.each([
    [['a'], {}, 'pending'],
    [['a'], { a: true }, 'won'],
    [['a'], { a: false }, 'lost'],
    [['a', 'b', 'c'], { a: true }, 'pending'],
    [['a', 'b', 'c'], { a: true, b: true }, 'won'],
    [['a', 'b', 'c'], { a: true, b: false }, 'pending'],
    [['a', 'b', 'c'], { a: true, b: false, c: false }, 'lost'],
    [['a', 'b', 'c', 'd'], { a: true, b: true }, 'pending'],
    [['a', 'b', 'c', 'd'], { a: true, b: false, c: false }, 'lost'],
    [['a', 'b', 'c', 'd', 'e'], { a: true, b: true, c: true }, 'won'],
    [['a', 'b', 'c', 'd', 'e'], { a: true, b: false, c: false }, 'pending'],
    [['a', 'b', 'c', 'd', 'e'], { b: false, c: false, d: false }, 'lost'],
  ] as const)('voters %j votes %j: %s', (voters, v, want) => {
    expect(voteResult(voters, votes(v))).toBe(want);
  });

  it('ignores votes from non-voters', () => {
    expect(voteResult(['a', 'b', 'c'], votes({ a: true, x: true, y: true }))).toBe('pending');
    expect(voteResult(['a', 'b', 'c'], votes({ x: false, y: false }))).toBe('pending');
  });
});
