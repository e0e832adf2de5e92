import { describe, expect, it } from 'vitest';
import { Progress } from './progress.js';

describe('Progress', () => {
  it('starts in probe state, not paused, with match 0', () => {
    const pr = new Progress(5, 4);
    expect(pr).toMatchObject({ match: 0, next: 5, state: 'probe', probeSent: false });
    expect(pr.isPaused()).toBe(false);
  });

  it('probe: one append at a time (paused while a probe is outstanding)', () => {
    const pr = new Progress(5, 4);
    pr.probeSent = true;
    expect(pr.isPaused()).toBe(true);
    // An acknowledgement that moves match clears the pause.
    expect(pr.maybeUpdate(5)).toBe(true);
    expect(pr.isPaused()).toBe(false);
    expect(pr).toMatchObject({ match: 5, next: 6 });
  });

  it('replicate: paused only when the in-flight window is full', () => {
    const pr = new Progress(1, 2);
    pr.maybeUpdate(3);
    pr.becomeReplicate();
    expect(pr).toMatchObject({ state: 'replicate', next: 4, match: 3 });
    pr.inflights.add(5);
    expect(pr.isPaused()).toBe(false);
    pr.inflights.add(7);
    expect(pr.isPaused()).toBe(true);
  });

  it('maybeUpdate ignores stale acknowledgements but never moves next backwards', () => {
    const pr = new Progress(10, 4);
    expect(pr.maybeUpdate(4)).toBe(true);
    expect(pr).toMatchObject({ match: 4, next: 10 });
    expect(pr.maybeUpdate(3)).toBe(false);
    expect(pr).toMatchObject({ match: 4, next: 10 });
    expect(pr.maybeUpdate(12)).toBe(true);
    expect(pr).toMatchObject({ match: 12, next: 13 });
  });

  it('becomeProbe and becomeReplicate restart from match + 1 with an empty window', () => {
    const pr = new Progress(1, 4);
    pr.maybeUpdate(6);
    pr.becomeReplicate();
    pr.inflights.add(8);
    pr.next = 9;
    pr.becomeProbe();
    expect(pr).toMatchObject({ state: 'probe', next: 7, probeSent: false });
    expect(pr.inflights.size).toBe(0);
  });

  describe('maybeDecrTo', () => {
    it('replicate: a rejection at or below match is stale', () => {
      const pr = new Progress(1, 4);
      pr.maybeUpdate(5);
      pr.becomeReplicate();
      pr.next = 9;
      expect(pr.maybeDecrTo(5, 0)).toBe(false);
      expect(pr.maybeDecrTo(3, 0)).toBe(false);
      expect(pr.next).toBe(9);
    });

    it('replicate: a current rejection falls back to match + 1, whatever the hint', () => {
      const pr = new Progress(1, 4);
      pr.maybeUpdate(5);
      pr.becomeReplicate();
      pr.next = 9;
      expect(pr.maybeDecrTo(8, 2)).toBe(true);
      expect(pr.next).toBe(6);
    });

    it('probe: only the answer to the latest probe (next - 1) counts', () => {
      const pr = new Progress(10, 4);
      pr.probeSent = true;
      expect(pr.maybeDecrTo(7, 3)).toBe(false);
      expect(pr).toMatchObject({ next: 10, probeSent: true });
    });

    it('probe: jumps to hint + 1 and unpauses', () => {
      const pr = new Progress(10, 4);
      pr.probeSent = true;
      expect(pr.maybeDecrTo(9, 4)).toBe(true);
      expect(pr).toMatchObject({ next: 5, probeSent: false });
    });

    it('probe: never below match + 1, never above the rejected index', () => {
      const pr = new Progress(10, 4);
      pr.maybeUpdate(6);
      pr.next = 10;
      expect(pr.maybeDecrTo(9, 2)).toBe(true);
      expect(pr.next).toBe(7);
      const other = new Progress(10, 4);
      expect(other.maybeDecrTo(9, 50)).toBe(true);
      expect(other.next).toBe(9);
    });
  });
});
