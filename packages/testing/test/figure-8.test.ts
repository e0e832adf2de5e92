/**
 * Raft paper §5.4.2 / Figure 8, scripted against the real engine: a leader must not commit an
 * entry of an earlier term by counting replicas. The same script run with that rule removed
 * (a planted bug) makes two nodes apply different entries at one index; the real engine keeps
 * every node consistent.
 *
 * Three nodes (the paper's five, folded): with maxEntriesPerAppend = 1 a follower can
 * acknowledge the old-term entry alone, which is exactly the window the rule closes.
 *   (a) n1, leader of term 2, writes its no-op at index 2 and nobody receives it;
 *   (b) n2, leader of term 3 (voted in by n3), writes its own no-op at index 2, unreplicated;
 *   (c) n1 returns, wins term 4 with n3, and copies index 2 (term 2) to n3: now on a majority;
 *   (d) n1 is cut off before its term-4 entry reaches n3; n2 returns and wins term 5 with n3's
 *       vote (its last term 3 beats n3's 2), then replicates its own index 2 to n3.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { committedIndex } from '../../core/src/engine/quorum/majority.js';
import { Raft } from '../../core/src/engine/raft.js';
import { RawNode } from '../../core/src/engine/raw-node.js';
import type { HardState, LogEntry, RaftMessage } from '../../core/src/index.js';
import { encodeMembership } from '../../core/src/index.js';

type Ids = 'n1' | 'n2' | 'n3';
const ids: Ids[] = ['n1', 'n2', 'n3'];

function cluster() {
  const first: LogEntry = {
    index: 1,
    term: 1,
    kind: 'membership',
    data: encodeMembership({ members: ids.map((id) => ({ id, address: id, voter: true })) }),
  };
  const nodes = new Map<string, RawNode>();
  /** What each node persisted: a restart starts from exactly this. */
  const disks = new Map<string, { hardState: HardState; entries: LogEntry[] }>();
  const boot = (id: Ids): void => {
    const disk = disks.get(id) ?? {
      hardState: { term: 1, votedFor: null, commit: 1 },
      entries: [first],
    };
    disks.set(id, disk);
    nodes.set(
      id,
      new RawNode(
        {
          id,
          electionTicks: 10,
          heartbeatTicks: 1,
          random: () => 0,
          preVote: false,
          checkQuorum: false,
          maxEntriesPerAppend: 1,
        },
        { hardState: disk.hardState, entries: disk.entries.slice(), applied: 0 },
      ),
    );
  };
  for (const id of ids) boot(id);
  /** Every (index, term) each node applied. */
  const applied = new Map<string, Map<number, number>>(ids.map((id) => [id, new Map()]));
  let inFlight: RaftMessage[] = [];
  /** Drains every node; messages for which `allow` is false are dropped. Bounded rounds. */
  const run = (allow: (m: RaftMessage) => boolean): void => {
    for (let round = 0; round < 100; round++) {
      let progressed = false;
      for (const [id, node] of nodes) {
        while (node.hasReady()) {
          progressed = true;
          const rd = node.ready();
          const disk = disks.get(id) as { hardState: HardState; entries: LogEntry[] };
          const firstNew = rd.entries[0];
          if (firstNew) disk.entries.splice(firstNew.index - 1, disk.entries.length, ...rd.entries);
          if (rd.hardState) disk.hardState = rd.hardState;
          inFlight.push(...rd.messages, ...rd.messagesAfterPersist);
          for (const e of rd.committedEntries) applied.get(id)?.set(e.index, e.term);
          node.advance(rd);
        }
      }
      const batch = inFlight.filter(allow);
      inFlight = [];
      for (const m of batch) nodes.get(m.to)?.step(m);
      if (!progressed && batch.length === 0) return;
    }
    throw new Error('the script did not settle in 100 rounds');
  };
  const node = (id: Ids): RawNode => nodes.get(id) as RawNode;
  const none = (): boolean => false;
  const between = (a: Ids, b: Ids) => (m: RaftMessage) =>
    (m.from === a && m.to === b) || (m.from === b && m.to === a);
  const votesBetween = (a: Ids, b: Ids) => (m: RaftMessage) =>
    between(a, b)(m) && (m.type === 'vote' || m.type === 'voteResponse');
  /** A crash and restart: the node comes back from what it persisted (applied state is rebuilt). */
  const restart = (id: Ids): void => {
    applied.get(id)?.clear();
    boot(id);
  };

  const script = (): void => {
    // (a) n1 leads term 2 (n2's vote); its no-op at index 2 reaches nobody; n1 crashes.
    node('n1').campaign();
    run(votesBetween('n1', 'n2'));
    expect(node('n1').status()).toMatchObject({ role: 'leader', term: 2, lastLogIndex: 2 });
    restart('n1');
    // (b) n2 leads term 3 (n3's vote); its no-op at index 2 reaches nobody; n2 crashes.
    node('n2').campaign();
    run(votesBetween('n2', 'n3'));
    expect(node('n2').status()).toMatchObject({ role: 'leader', term: 3, lastLogIndex: 2 });
    restart('n2');
    // (c) n1 returns: term 3 is lost (n3 voted for n2), term 4 is won with n3.
    node('n1').campaign();
    run(between('n1', 'n3'));
    if (node('n1').status().role !== 'leader') {
      node('n1').campaign();
      // n3 answers n1's probe; n1 then sends index 2 (term 2) alone and n3 acknowledges it.
      let acked = false;
      run((m) => {
        if (acked || !between('n1', 'n3')(m)) return false;
        if (m.type === 'appendResponse' && m.success && m.matchIndex === 2) acked = true;
        return true;
      });
    }
    expect(node('n1').status()).toMatchObject({ role: 'leader', term: 4 });
    expect(node('n3').status().lastLogIndex).toBe(2);
    // (d) n1 crashes before its term-4 entry reaches n3; n2 wins with n3 (term 4 is refused:
    // n3 voted for n1), and its index 2 replaces n1's on n3.
    run(none);
    const n1Applied = new Map(applied.get('n1'));
    restart('n1');
    applied.set('n1', n1Applied);
    node('n2').campaign();
    run(between('n2', 'n3'));
    if (node('n2').status().role !== 'leader') {
      node('n2').campaign();
      run(between('n2', 'n3'));
    }
    expect(node('n2').status()).toMatchObject({ role: 'leader', term: 5 });
  };
  return { script, applied };
}

/** Indexes at which two nodes applied entries of different terms. */
function conflicts(applied: Map<string, Map<number, number>>): string[] {
  const seen = new Map<number, { id: string; term: number }>();
  const out: string[] = [];
  for (const [id, byIndex] of applied) {
    for (const [index, term] of byIndex) {
      const other = seen.get(index);
      if (other === undefined) seen.set(index, { id, term });
      else if (other.term !== term)
        out.push(
          `index ${index}: ${other.id} applied term ${other.term}, ${id} applied term ${term}`,
        );
    }
  }
  return out;
}

const original = Raft.prototype.maybeCommit;
afterEach(() => {
  Raft.prototype.maybeCommit = original;
});

describe('§5.4.2 committing entries from previous terms (Figure 8)', () => {
  it('the engine never commits an earlier-term entry by counting replicas', () => {
    const { script, applied } = cluster();
    script();
    expect(applied.get('n1')?.has(2)).toBe(false);
    expect(conflicts(applied)).toEqual([]);
    // n2's entries win, and every node that applied index 2 applied n2's term-3 no-op.
    expect(applied.get('n3')?.get(2)).toBe(3);
  });

  it('a planted bug that commits by counting is caught: two nodes apply different entries at index 2', () => {
    Raft.prototype.maybeCommit = function (this: Raft) {
      const self = this as unknown as {
        voters: string[];
        progress: Map<string, { match: number }>;
      };
      const index = committedIndex(self.voters, (id) => self.progress.get(id)?.match ?? 0);
      return index > this.log.committed ? this.log.commitTo(index) : false;
    };
    const { script, applied } = cluster();
    script();
    expect(applied.get('n1')?.get(2)).toBe(2);
    expect(conflicts(applied)).toEqual([
      'index 2: n1 applied term 2, n2 applied term 3',
      'index 2: n1 applied term 2, n3 applied term 3',
    ]);
  });
});
