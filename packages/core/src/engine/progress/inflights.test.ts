import { describe, expect, it } from 'vitest';
import { Inflights } from './inflights.js';

describe('Inflights', () => {
  it('starts empty and fills up to its capacity', () => {
    const inf = new Inflights(3);
    expect(inf.size).toBe(0);
    expect(inf.isFull()).toBe(false);
    inf.add(5);
    inf.add(7);
    expect(inf.isFull()).toBe(false);
    inf.add(9);
    expect(inf.size).toBe(3);
    expect(inf.isFull()).toBe(true);
  });

  it('throws when adding to a full window (a caller bug: check isFull first)', () => {
    const inf = new Inflights(1);
    inf.add(1);
    expect(() => inf.add(2)).toThrow(RangeError);
  });

  it('freeLE frees every append whose last index is <= the acknowledged index', () => {
    const inf = new Inflights(4);
    for (const i of [2, 4, 6, 8]) inf.add(i);
    inf.freeLE(1);
    expect(inf.size).toBe(4);
    inf.freeLE(5);
    expect(inf.size).toBe(2);
    inf.freeLE(6);
    expect(inf.size).toBe(1);
    inf.freeLE(100);
    expect(inf.size).toBe(0);
    inf.freeLE(100);
    expect(inf.size).toBe(0);
  });

  it('wraps around its ring buffer', () => {
    const inf = new Inflights(3);
    let next = 1;
    // Many times around the ring: add until full, free the two oldest.
    for (let round = 0; round < 10; round++) {
      while (!inf.isFull()) inf.add(next++);
      expect(inf.size).toBe(3);
      inf.freeLE(next - 2);
      expect(inf.size).toBe(1);
    }
    inf.freeLE(next - 1);
    expect(inf.size).toBe(0);
  });

  it('freeFirst frees exactly the oldest append, and is harmless when empty', () => {
    const inf = new Inflights(2);
    inf.freeFirst();
    expect(inf.size).toBe(0);
    inf.add(3);
    inf.add(4);
    inf.freeFirst();
    expect(inf.size).toBe(1);
    // The remaining slot is index 4: freeing <= 3 leaves it, <= 4 frees it.
    inf.freeLE(3);
    expect(inf.size).toBe(1);
    inf.freeLE(4);
    expect(inf.size).toBe(0);
  });

  it('reset empties the window', () => {
    const inf = new Inflights(2);
    inf.add(1);
    inf.add(2);
    inf.reset();
    expect(inf.size).toBe(0);
    expect(inf.isFull()).toBe(false);
    inf.add(10);
    inf.freeLE(9);
    expect(inf.size).toBe(1);
  });
});
