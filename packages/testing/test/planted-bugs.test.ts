/**
 * A checker that never fails is worth nothing: plant real bugs in the engine, the runtime or the
 * simulated disk, and show that the simulator catches each one within the seeds CI runs, as a
 * violated SAFETY property (not a crash of the harness, not a liveness timeout). Each of the
 * simulator's checks has a bug here that it catches. Code is patched through prototypes, so
 * production code carries no bug switches.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { committedIndex } from '../../core/src/engine/quorum/majority.js';
import { Raft } from '../../core/src/engine/raft.js';
import { RaftLog } from '../../core/src/engine/raft-log.js';
import {
  createRaftNode,
  LeadershipLostError,
  MemoryLogStore,
  MemoryNetwork,
  MemoryStableStore,
} from '../../core/src/index.js';
import type { RaftMessage } from '../../core/src/messages.js';
import { Applier } from '../../core/src/runtime/applier.js';
import { EventEmitter } from '../../core/src/runtime/events.js';
import { ForwardLedger } from '../../core/src/runtime/forwarding.js';
import { Reads } from '../../core/src/runtime/reads.js';
import { SnapshotReceiver } from '../../core/src/runtime/snapshot-receiver.js';
import type { LogEntry } from '../../core/src/types.js';
import type { ScenarioConfig, ScenarioFailure } from '../src/sim/cluster.js';
import { runScenario, SCENARIO_PROFILES } from '../src/sim/cluster.js';
import { runSeeds, seedRange } from '../src/sim/seeds.js';
import { SimDisk } from '../src/sim/sim-disk.js';

/** Properties that are violations of safety (as opposed to liveness or harness errors). */
const SAFETY_PROPERTIES = [
  'Election Safety',
  'Leader Append-Only',
  'Log Matching',
  'Leader Completeness',
  'State Machine Safety',
  'durability',
  'vote safety',
  'monotonic term',
  'no engine errors',
  'apply order',
  'apply durability',
  'durable before send',
  'commit durability',
  'leader progress',
  'apply gaps',
  'replica agreement',
  'at-most-once',
  'outcome honesty',
  'result integrity',
  'snapshot agreement',
  'durable acknowledgement',
  'compaction safety',
  'no fatal errors',
  'linearizability',
];

/** Knobs that make snapshots, compaction and InstallSnapshot happen all the time. */
const SNAPSHOT_HEAVY = { snapshotThreshold: 3, trailingEntries: 0 } as const;

const restore: (() => void)[] = [];
afterEach(() => {
  for (const fn of restore.splice(0)) fn();
});

function patch<T extends object, K extends keyof T>(target: T, key: K, value: T[K]): void {
  const original = target[key];
  target[key] = value;
  restore.push(() => {
    target[key] = original;
  });
}

/** The prototype of the runtime's node class (not exported: reached through an instance). */
function runtimePrototype(): Record<string, unknown> {
  const network = new MemoryNetwork();
  const node = createRaftNode({
    id: 'x',
    stateMachine: { apply: () => 0 },
    codec: { encode: (c: Uint8Array) => c, decode: (b: Uint8Array) => b },
    logStore: new MemoryLogStore(),
    stableStore: new MemoryStableStore(),
    transport: network.transport('x'),
  });
  return Object.getPrototypeOf(node) as Record<string, unknown>;
}

/**
 * Runs seeds from `from` until one fails with a property in `expected` (then returns that
 * failure), or `count` seeds have run. Failures of other properties are collected: a bug may
 * first show elsewhere on some seeds.
 */
async function firstCaught(
  expected: readonly string[],
  from: number,
  count: number,
  config: Omit<ScenarioConfig, 'seed'> = {},
): Promise<{ caught?: ScenarioFailure; others: string[] }> {
  const others: string[] = [];
  for (let seed = from; seed < from + count; seed++) {
    try {
      await runScenario({ ...config, seed });
    } catch (err) {
      const failure = err as ScenarioFailure;
      if (expected.includes(failure.property)) return { caught: failure, others };
      others.push(`${failure.seed}: ${failure.property}`);
    }
  }
  return { others };
}

async function expectCaught(
  expected: readonly string[],
  count: number,
  config: Omit<ScenarioConfig, 'seed'> = {},
): Promise<ScenarioFailure> {
  const { caught, others } = await firstCaught(expected, 1, count, config);
  expect(
    caught,
    `no seed in 1..${count} caught it as ${expected.join(' / ')}; other failures: ${others.join(', ')}`,
  ).toBeDefined();
  const failure = caught as ScenarioFailure;
  expect(SAFETY_PROPERTIES).toContain(failure.property);
  // The report is replayable.
  expect(failure.message).toContain(`seed=${failure.seed}`);
  expect(failure.message).toContain(`RAFT_SEED=${failure.seed}`);
  return failure;
}

describe('planted bugs are caught by the simulator', () => {
  it('granting votes without the §5.4.1 up-to-date check', async () => {
    patch(RaftLog.prototype, 'isUpToDate', () => true);
    await expectCaught(SAFETY_PROPERTIES, 200);
  }, 120_000);

  it('sending votes and append acknowledgements before they are durable: caught as they leave', async () => {
    patch(
      Raft.prototype as unknown as { send(m: RaftMessage): void },
      'send',
      function (this: Raft, m: RaftMessage) {
        this.msgs.push(m);
      },
    );
    await expectCaught(['durable before send'], 50);
  }, 120_000);

  it('committing an earlier-term entry by counting replicas (§5.4.2, Figure 8)', async () => {
    patch(Raft.prototype, 'maybeCommit', function (this: Raft) {
      const self = this as unknown as {
        voters: string[];
        progress: Map<string, { match: number }>;
      };
      const index = committedIndex(self.voters, (id) => self.progress.get(id)?.match ?? 0);
      return index > this.log.committed ? this.log.commitTo(index) : false;
    });
    // The default profile rarely opens this window; the figure8 profile aims at it.
    const failure = await expectCaught(SAFETY_PROPERTIES, 300, SCENARIO_PROFILES.figure8);
    expect(failure.message).toContain('--profile figure8');
  }, 300_000);

  it('a leader counting its own entries before they are durable: caught at commit', async () => {
    const propose = Raft.prototype.propose;
    patch(Raft.prototype, 'propose', function (this: Raft, data: Uint8Array) {
      const at = propose.call(this, data);
      this.progress.get(this.id)?.maybeUpdate(at.index);
      return at;
    });
    await expectCaught(['commit durability'], 300, { nodes: 3, knobs: { maxDiskDelayMs: 8 } });
  }, 120_000);

  it('a disk that loses acknowledged entries in a crash: caught in the leader progress', async () => {
    const crash = SimDisk.prototype.crash;
    patch(SimDisk.prototype, 'crash', function (this: SimDisk) {
      crash.call(this);
      // A disk whose fsync lied: the last durable entry is gone too.
      const log = this.durableEntries() as LogEntry[];
      if (log.length > 1) log.length--;
    });
    await expectCaught(['leader progress', 'commit durability'], 300);
  }, 120_000);

  it('a follower that takes appends from an earlier term: caught with stale messages delivered again', async () => {
    const step = Raft.prototype.step;
    patch(Raft.prototype, 'step', function (this: Raft, m: RaftMessage) {
      step.call(this, m.type === 'append' && m.term < this.term ? { ...m, term: this.term } : m);
    });
    await expectCaught(SAFETY_PROPERTIES, 300, { knobs: { staleReplays: 40 } });
  }, 120_000);

  it('forwarding without the term stamp and the ledger: a command applies twice', async () => {
    patch(ForwardLedger.prototype, 'check', () => ({ kind: 'append' as const }));
    await expectCaught(['at-most-once'], 500, {
      knobs: { followerProposals: 'forward', duplicateRate: 0.1, staleReplays: 40 },
    });
  }, 120_000);

  it('a timed-out proposal reported as not applied: caught as outcome honesty', async () => {
    const proto = runtimePrototype();
    const expire = proto.expire as (p: unknown, err: Error) => void;
    patch(proto, 'expire', function (this: unknown, p: unknown, err: Error & { code?: string }) {
      expire.call(this, p, err.code === 'TIMEOUT' ? new LeadershipLostError() : err);
    });
    await expectCaught(['outcome honesty'], 500, { knobs: { dropRate: 0.15 } });
  }, 120_000);

  it('propose() resolving with the result of another entry: caught as result integrity', async () => {
    const proto = Applier.prototype as unknown as Record<string, unknown>;
    const finish = proto.finish as (entry: LogEntry, result: unknown, error: unknown) => void;
    let previous: unknown;
    patch(
      proto,
      'finish',
      function (this: unknown, entry: LogEntry, result: unknown, error: unknown) {
        const stale = previous;
        if (entry.kind === 'command') previous = result;
        finish.call(this, entry, entry.kind === 'command' ? stale : result, error);
      },
    );
    await expectCaught(['result integrity', 'replica agreement'], 50);
  }, 120_000);

  it('an applier that skips a command: caught as a gap in the applies', async () => {
    const proto = Applier.prototype as unknown as Record<string, unknown>;
    const applyOne = proto.applyOne as (entry: LogEntry) => unknown;
    const finish = proto.finish as (entry: LogEntry, result: unknown, error: unknown) => void;
    patch(proto, 'applyOne', function (this: unknown, entry: LogEntry) {
      if (entry.kind === 'command' && entry.index % 7 === 0) {
        finish.call(this, entry, undefined, undefined);
        return undefined;
      }
      return applyOne.call(this, entry);
    });
    await expectCaught(['apply gaps'], 50);
  }, 120_000);

  it('two leaders in a term that no event reports: caught from the nodes own state', async () => {
    // A candidate counts itself twice (wins one vote short of a majority), and leadership
    // never shows in events: only the nodes' own state tells.
    const proto = Raft.prototype as unknown as Record<string, unknown>;
    const recordVote = proto.recordVote as (from: string, granted: boolean) => void;
    patch(proto, 'recordVote', function (this: Raft, from: string, granted: boolean) {
      recordVote.call(this, from, granted);
      const self = this as unknown as {
        votes: Map<string, boolean>;
        voters: string[];
        becomeLeader(): void;
      };
      const grants = self.voters.filter((id) => self.votes.get(id) === true).length;
      if (this.role === 'candidate' && grants + 1 >= Math.floor(self.voters.length / 2) + 1)
        self.becomeLeader();
    });
    const emit = EventEmitter.prototype.emit;
    patch(EventEmitter.prototype, 'emit', function (this: EventEmitter, event) {
      if (event.type === 'roleChanged' && event.role === 'leader') return;
      emit.call(this, event);
    });
    const failure = await expectCaught(['Election Safety'], 300, { knobs: { preVote: false } });
    expect(failure.message).toMatch(/were both leader at term/);
  }, 120_000);

  it('a follower that keeps its log after a snapshot that contradicts it', async () => {
    const proto = RaftLog.prototype as unknown as Record<string, unknown>;
    patch(proto, 'restore', function (this: RaftLog, index: number, term: number) {
      // As if our entry at the snapshot's index always matched: the suffix after it stays.
      const self = this as unknown as {
        entries: LogEntry[];
        offset: number;
        offsetTerm: number;
        stableIndex: number;
      };
      const keepFrom = Math.min(index, self.offset + self.entries.length) - self.offset;
      self.entries = self.entries.slice(keepFrom);
      if (self.entries.length === 0 || self.stableIndex < index) self.stableIndex = index;
      self.offset = index;
      self.offsetTerm = term;
      this.committed = index;
      this.applying = index;
      this.applied = index;
      return true;
    });
    const failure = await expectCaught(SAFETY_PROPERTIES, 400, { knobs: SNAPSHOT_HEAVY });
    expect(['Log Matching', 'State Machine Safety', 'snapshot agreement']).toContain(
      failure.property,
    );
  }, 300_000);

  it('an install that does not restore the state machine: caught as replica agreement', async () => {
    const proto = runtimePrototype();
    patch(
      proto,
      'restoreFrom',
      function (
        this: { applier: Applier<unknown, unknown> },
        source: {
          meta: { index: number; term: number; membership: { members: [] } };
        },
      ) {
        this.applier.restored(source.meta as never);
        return Promise.resolve();
      },
    );
    await expectCaught(['replica agreement', 'result integrity'], 300, { knobs: SNAPSHOT_HEAVY });
  }, 300_000);

  it('a snapshot labelled with the wrong term: caught as snapshot agreement', async () => {
    const proto = Applier.prototype as unknown as Record<string, unknown>;
    const finish = proto.finish as (entry: LogEntry, result: unknown, error: unknown) => void;
    patch(
      proto,
      'finish',
      function (this: { appliedTerm: number }, entry: LogEntry, result: unknown, error: unknown) {
        finish.call(this, entry, result, error);
        this.appliedTerm = entry.term + 1;
      },
    );
    await expectCaught(['snapshot agreement'], 200, { knobs: SNAPSHOT_HEAVY });
  }, 300_000);

  it('a receiver that writes chunks at whatever offset they carry: a corrupt install', async () => {
    const proto = SnapshotReceiver.prototype as unknown as Record<string, unknown>;
    const handle = proto.handle as (t: { received: number }, m: { offset: number }) => unknown;
    patch(
      proto,
      'handle',
      function (this: unknown, t: { received: number }, m: { offset: number }) {
        // Trusts every chunk to be the next one: duplicates and reordered chunks are appended.
        return handle.call(this, t, { ...m, offset: t.received });
      },
    );
    await expectCaught(SAFETY_PROPERTIES, 400, {
      knobs: { ...SNAPSHOT_HEAVY, snapshotChunkBytes: 7, duplicateRate: 0.1 },
    });
  }, 300_000);

  it('ReadIndex without the heartbeat round: a deposed leader serves stale reads', async () => {
    const proto = Raft.prototype as unknown as Record<string, unknown>;
    patch(proto, 'readIndex', function (this: Raft, id: number) {
      // Confirmed at once, as if this node were certainly still the leader.
      if (this.role !== 'leader') throw new Error('not leader');
      this.readStates.push({ id, index: this.log.committed });
    });
    const failure = await expectCaught(SAFETY_PROPERTIES, 400, {
      knobs: { leaseReads: false, dropRate: 0.05 },
    });
    expect(failure.property).toBe('linearizability');
    expect(failure.message).toContain('not linearizable');
  }, 300_000);

  it('a lease that never expires: a leader cut off from its quorum serves stale reads', async () => {
    const proto = Reads.prototype as unknown as Record<string, unknown>;
    patch(proto, 'leaseHolds', () => true);
    const failure = await expectCaught(SAFETY_PROPERTIES, 400, {
      knobs: { leaseReads: true, checkQuorum: true },
    });
    expect(failure.property).toBe('linearizability');
  }, 300_000);

  it('the healthy code passes the same seeds', async () => {
    const report = await runSeeds(seedRange(1, 500));
    expect(report.failures.map((f) => f.message)).toEqual([]);
    const targeted = await runSeeds(seedRange(1, 300), SCENARIO_PROFILES.figure8);
    expect(targeted.failures.map((f) => f.message)).toEqual([]);
  }, 300_000);
});
