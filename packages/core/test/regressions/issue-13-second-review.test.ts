/**
 * Second review of issue #13 (snapshots, compaction, chunked InstallSnapshot). Drives the real
 * RawNode, ReadyLoop and SnapshotReceiver of a follower n2 in a five-node cluster, with a log store
 * whose appends can be held (a slow fsync), and checks the durable state at each crash point.
 *
 * Property: once a snapshot at (s, t) is durable, the log store's entries after s are entries of a
 * log that holds (s, t): the leader's. (SnapshotInstall.keepLog: "MUST be removed before the
 * snapshot is committed (so that no crash leaves them after it)".)
 */
import { describe, expect, it } from 'vitest';
import type { LogEntry, LogIndex, RaftMessage, Term } from '../../src/index.js';
import { MemoryLogStore } from '../../src/index.js';
import type { InstallSnapshotMessage } from '../../src/messages.js';
import { recover } from '../../src/runtime/recovery.js';
import { entry } from '../engine/harness.js';
import { flushTurns, membershipOf } from '../runtime/helpers.js';
import { follower } from './snapshot-follower.js';

const ids = ['n1', 'n2', 'n3', 'n4', 'n5'];
const membership = membershipOf(ids);

function append(
  from: string,
  term: Term,
  prevIndex: LogIndex,
  prevTerm: Term,
  entries: LogEntry[],
  commit: LogIndex,
): RaftMessage {
  return { type: 'append', from, to: 'n2', term, prevIndex, prevTerm, entries, commit };
}

function range(from: LogIndex, to: LogIndex, term: Term): LogEntry[] {
  const out: LogEntry[] = [];
  for (let i = from; i <= to; i++) out.push(entry(i, term));
  return out;
}

function chunk(from: string, term: Term, index: LogIndex, snapTerm: Term): InstallSnapshotMessage {
  const data = new Uint8Array([1, 2, 3, 4]);
  return {
    type: 'installSnapshot',
    from,
    to: 'n2',
    term,
    meta: { index, term: snapTerm, membership },
    size: data.byteLength,
    offset: 0,
    data,
  };
}

/** n3's log (leader of term 3): 1 (membership), 2..5 of term 2, 6..12 of term 3. */
function leaderTerm(i: LogIndex): Term {
  return i === 1 ? 1 : i <= 5 ? 2 : 3;
}

/**
 * At each crash point (after every compact / truncate): the entries the log store holds after
 * the latest durable snapshot must be the leader's. Also restarts a copy of the disk through
 * recover() to show what a crashed node would run with.
 */
function watchCrashPoints(f: Awaited<ReturnType<typeof follower>>): string[] {
  const violations: string[] = [];
  f.logStore.onCut = async (kind, index) => {
    const latest = await f.snapshotStore.open();
    await latest?.close();
    if (latest === null) return;
    const s = latest.meta.index;
    const { firstIndex, lastIndex } = await f.logStore.inner.open();
    const from = Math.max(firstIndex, s + 1);
    const after = lastIndex >= from ? await f.logStore.inner.read(from, lastIndex + 1) : [];
    const foreign = after.filter((e) => e.term !== leaderTerm(e.index));
    if (foreign.length === 0) return;
    // What a restart from this disk recovers.
    const copy = new MemoryLogStore();
    await copy.compact(from - 1);
    await copy.append(after);
    const rec = await recover(
      copy,
      f.stableStore,
      f.snapshotStore,
      async () => {},
      undefined,
      () => {},
    );
    violations.push(
      `after ${kind}(${index}): snapshot at ${s} (term ${latest.meta.term}) is followed by ` +
        foreign.map((e) => `${e.index}@t${e.term}`).join(',') +
        `; a restart recovers snapshot ${rec.snapshot?.index}@t${rec.snapshot?.term} + log ` +
        rec.entries.map((e) => `${e.index}@t${e.term}`).join(','),
    );
  };
  return violations;
}

// Both fail at 48bcc2d (keepLog = keep && index < lastIndex(), `rewrite`, readyInstalls) and pass
// at b140c1b (keepLog decided at hand-out from stableIndex >= index).
describe('issue #13 second review: an install with keepLog leaves stale entries after the snapshot', () => {
  it('a conflict truncated memory, the store still holds the old suffix: commit + compact exposes it', async () => {
    const f = await follower(ids);
    const violations = watchCrashPoints(f);
    // n1, leader of term 2, replicates 2..10 to n2 (n3, n4, n5 have only up to 5).
    await f.deliver(append('n1', 2, 1, 1, range(2, 10, 2), 1));
    // n2's disk is slow: the write of entry 11 is stored, its fsync has not returned.
    f.logStore.hold();
    await f.deliver(append('n1', 2, 10, 2, range(11, 11, 2), 1));
    expect(f.logStore.calls).toEqual(['append 2..10', 'append 11..11']);
    // n3 wins term 3 with n4 and n5; its append conflicts at 6: memory drops 6..11 (term 2).
    await f.deliver(append('n3', 3, 5, 2, range(6, 12, 3), 5));
    // n3 committed up to 8 with n4 and n5, compacted, and sends n2 its snapshot at 8.
    await f.deliver(chunk('n3', 3, 8, 3));
    f.logStore.unhold();
    await flushTurns(20);
    expect(f.installed.map((m) => m.index)).toEqual([8]);
    // At 48bcc2d the install Ready had keepLog = true (our entry 8 is term 3 and our suffix is not empty),
    // so it does not truncate; it commits the snapshot and compacts to 8, then appends 9..12.
    // Between compact(8) and that append the disk holds snapshot 8@t3 followed by 9..11@t2, and
    // a restart accepts it (terms go down after the snapshot: no leader's log looks like that).
    expect(violations).toEqual([]);
  });

  it('two installs before a Ready: the second (keep) skips the truncation the first (discard) required', async () => {
    const f = await follower(ids);
    const violations = watchCrashPoints(f);
    await f.deliver(append('n1', 2, 1, 1, range(2, 10, 2), 1));
    f.logStore.hold();
    await f.deliver(append('n1', 2, 10, 2, range(11, 11, 2), 1));
    // n3 (term 3) streams its snapshot at 7 (term 3): our entry 7 is term 2, so the install
    // discards our log (keepLog = false: the store must be truncated after 7).
    await f.deliver(chunk('n3', 3, 7, 3));
    // The sender got "done" and probes after 7: n2 takes 8..12 into memory.
    await f.deliver(append('n3', 3, 7, 3, range(8, 12, 3), 7));
    // n3 has meanwhile compacted past 7 and streams its snapshot at 9, which our memory matches:
    // rewrite = true, keepLog = true, and the pending install at 7 (keepLog false) is replaced.
    await f.deliver(chunk('n3', 3, 9, 3));
    f.logStore.unhold();
    await flushTurns(20);
    expect(f.installed.map((m) => m.index)).toEqual([9]);
    // At 48bcc2d no truncate is ever issued: after commit(9) + compact(9) the disk holds 10..11
    // of term 2 (the suffix the install at 7 found contradicting) right after the snapshot at 9
    // (term 3).
    expect(violations).toEqual([]);
    expect(f.logStore.calls.filter((c) => c.startsWith('truncate'))).not.toEqual([]);
  });
});
