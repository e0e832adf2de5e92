/**
 * One seeded simulation scenario: real RaftNodes (engine + runtime) on a SimNetwork, SimDisks
 * and SimClocks, with clients proposing commands and a nemesis injecting faults, and the
 * SafetyChecker watching every event.
 *
 * ```
 *   boot ──► chaos phase (steps) ──► heal phase ──► liveness: one leader, a fresh write
 *            faults: drop, duplicate,     all faults off,     commits, every member applies
 *            reorder, partitions, cuts,   crashed nodes       everything, a linearizable read
 *            crashes losing unsynced      restart             is served (bounded steps)
 *            writes, restarts, clock
 *            drift, membership changes,                   ──► the clients' KV history is
 *            leadership transfers                             linearizable (built-in workload)
 * ```
 *
 * The `disk-stall` profile ({@link ScenarioConfig.diskStall}) replaces the nemesis with one
 * targeted fault on a healthy network, and checks liveness while it lasts:
 *
 * ```
 *   boot ──► stable leader (one election ──► stall one disk (the leader's or a ──► stall over,
 *            timeout, same leader and term   follower's) for 3-8 election        its proposals
 *            on every node)                  timeouts; a writer proposes to      settled ──► heal
 *                                            the leader all along                phase, as above
 *   checked after every event from the stall on: no term changes, nobody campaigns, the leader
 *   stays; then every proposal made during the stall committed or failed with a RaftError;
 *   and if the other voters were caught up when it began, the leader's commit index moved during
 *   the stall (the followers acknowledge the appends that keep leaving) and a follower's stall
 *   did not stop the acknowledgements to clients
 * ```
 *
 * The built-in workload (kv-workload.ts) is a replicated key-value store: clients write, CAS and
 * read (ReadIndex on leaders and followers, leases when the seed turns them on) and every
 * operation goes into a history that {@link checkLinearizability} must accept.
 *
 * Everything is a function of the seed: the same seed replays the same run, event for event.
 * Runs are bounded by step counts, never by wall time.
 */
import type {
  AbortSignalLike,
  ApplyContext,
  CommandCodec,
  LogEntry,
  Logger,
  Membership,
  NodeId,
  RaftNode,
  Role,
  StateMachine,
} from '@raft/core';
import { createRaftNode, decodeMembership, RaftError } from '@raft/core';
import type { KvInput } from '../checkers/kv-model.js';
import { kvModel } from '../checkers/kv-model.js';
import { checkLinearizability } from '../checkers/linearizability.js';
import { SafetyChecker, SafetyViolation } from '../checkers/safety.js';
import type { KvCommand, KvResult, PendingOperation } from './kv-workload.js';
import { KvHistory, KvReplica, kvCommandCodec } from './kv-workload.js';
import { Prng } from './prng.js';
import { Scheduler } from './scheduler.js';
import { SimClock } from './sim-clock.js';
import type { SimDiskSnapshot } from './sim-disk.js';
import { SimDisk } from './sim-disk.js';
import { SimNetwork } from './sim-network.js';

/**
 * A state machine to run under the simulator's faults instead of the built-in one: one instance
 * per node incarnation (a restarted node replays the log into a fresh one), a codec, and the
 * commands the simulated clients send. The simulator checks that every replica returns the same
 * result at every index, that no client command applies twice, and that what `propose()`
 * returns is what the state machine produced.
 */
export interface ScenarioStateMachine<Cmd, Res> {
  /** A fresh state machine for one node incarnation. */
  create(node: NodeId): StateMachine<Cmd, Res>;
  readonly codec: CommandCodec<Cmd>;
  /** The next client command. `random` is seeded (uniform in [0, 1)); `seq` counts from 0. */
  command(random: () => number, seq: number): Cmd;
  /** A deterministic text for a result, compared across replicas. Default `JSON.stringify`. */
  fingerprint?(result: Res): string;
  /**
   * A deterministic text for the whole state of `machine` (one returned by `create`), compared
   * across replicas after every apply and every snapshot restore. Optional; state machines
   * with `snapshot()` and `restore()` should give one, so a restore that loses state is caught
   * at once rather than at the next diverging result.
   */
  digest?(machine: StateMachine<Cmd, Res>): string;
}

/** Knobs of one scenario; everything not given is drawn from the seed. */
export interface ScenarioConfig {
  readonly seed: number;
  /** Cluster size. Default: drawn from 2, 3, 3, 4, 5, 5, 6, 7. */
  readonly nodes?: number;
  /** Events in the chaos phase. Default 2000. */
  readonly steps?: number;
  /** Inject faults (drops, duplicates, partitions, crashes). Default true. */
  readonly faults?: boolean;
  /** Events allowed for the cluster to converge after healing. Default 30000. */
  readonly livenessSteps?: number;
  /** Trace lines kept for a failure report. Default 60. */
  readonly traceLines?: number;
  /** Names the profile in replay commands (set by {@link SCENARIO_PROFILES}). */
  readonly profile?: string;
  /** Fixes knobs that are otherwise drawn from the seed (to aim a run at one kind of bug). */
  readonly knobs?: Partial<ScenarioKnobs>;
  /** Your state machine instead of the built-in one (a running hash of the commands). */
  // biome-ignore lint/suspicious/noExplicitAny: any command and result types are accepted.
  readonly stateMachine?: ScenarioStateMachine<any, any>;
  /**
   * The disk-stall scenario instead of the nemesis (see the module comment): no faults (this
   * implies `faults: false`), network delays of at most 10 ms, 3 to 5 nodes with at least three
   * voters; once a leader is stable, the disk of `stallTarget` is stalled for
   * `stallElectionTimeouts` election timeouts. `steps` then bounds the events until the stall is
   * over and its proposals have settled (the chaos phase ends as soon as they have). Default
   * false.
   */
  readonly diskStall?: boolean;
}

/** The fault and tuning knobs of a scenario; each is drawn from the seed unless fixed. */
export interface ScenarioKnobs {
  readonly maxEntriesPerAppend: number;
  readonly maxInflightAppends: number;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  /** What followers do with proposals. */
  readonly followerProposals: 'forward' | 'reject';
  /** The network reports refused sends (the leader then probes instead of streaming). */
  readonly reportUnreachable: boolean;
  readonly dropRate: number;
  readonly duplicateRate: number;
  readonly maxNetDelayMs: number;
  readonly maxDiskDelayMs: number;
  /** Probability that a new leader crashes within 40 ms of its election. */
  readonly leaderCrashRate: number;
  /** Probability that a leader crashes within 10 ms of applying an entry (it just committed). */
  readonly commitCrashRate: number;
  /** Probability that a new leader is isolated the moment it is elected (its first entries
   *  stay on its own disk). */
  readonly leaderIsolateRate: number;
  /** Probability that a leader is isolated the moment it applies a command (what it sends next
   *  is cut off in flight). */
  readonly commitIsolateRate: number;
  /** Probability that a node crashes right after it sends a vote grant, an append
   *  acknowledgement or (as leader) an append, while a write of its own is still pending. */
  readonly ackCrashRate: number;
  /** Probability that a leader crashes when an acknowledgement reaches it while its own write
   *  is still pending. */
  readonly pendingLeaderCrashRate: number;
  /** Old messages delivered again at each heal (stale terms, late forwards). */
  readonly staleReplays: number;
  /** Probability that one state-machine apply takes up to two election timeouts. */
  readonly slowApplyRate: number;
  /** Probability that a client aborts its proposal (AbortSignal) after a random delay. */
  readonly abortRate: number;
  /** Snapshot every this many applied entries (0: no automatic snapshots). Small values make
   *  snapshots, compaction and InstallSnapshot happen all the time. */
  readonly snapshotThreshold: number;
  /** Entries kept behind each snapshot (0: lagging followers always need a snapshot). */
  readonly trailingEntries: number;
  /** Bytes per InstallSnapshot chunk (small: many chunks to lose, duplicate and reorder). */
  readonly snapshotChunkBytes: number;
  /** Probability that a node crashes within 10 ms of starting a snapshot (during creation). */
  readonly snapshotCrashRate: number;
  /** Probability that the sender or the receiver crashes as a snapshot chunk arrives. */
  readonly transferCrashRate: number;
  /** Probability that a node crashes within 3 ms of restoring a snapshot (during the install). */
  readonly installCrashRate: number;
  /** Members that are learners (they replicate the log and count in no quorum), at most the
   *  cluster size minus one; with one voter left, the voter elects itself alone. */
  readonly learners: number;
  /**
   * Probability weights of the nemesis actions: partition, isolate, cut, heal, crash, disk stall
   * (longer than an election timeout), graceful restart (stop() with proposals pending).
   */
  readonly nemesisWeights: readonly [number, number, number, number, number, number, number];
  /** Weight of a nemesis action that changes the membership through the leader: add a new
   *  node (as a learner or a voter), promote, demote or remove a member (the leader too). */
  readonly membershipWeight: number;
  /** Weight of a nemesis action that asks the leader to hand leadership over. */
  readonly transferWeight: number;
  /** Lease reads on (`leaseReads` on every node; clients then also read with 'lease'). */
  readonly leaseReads: boolean;
  /** Each node incarnation's clock runs at a rate drawn from [1 - d, 1 + d]: keep d well under
   *  half of `maxClockDrift` (0.1) for leases to be safe. */
  readonly clockDrift: number;
  /** Keys the built-in KV clients use (few keys: more contention per key). */
  readonly kvKeys: number;
  /** Disk-stall scenario only: whose disk stalls (a follower: a voter other than the leader). */
  readonly stallTarget: 'leader' | 'follower';
  /** Disk-stall scenario only: how long the disk stalls, in election timeouts (drawn from
   *  [3, 8)). */
  readonly stallElectionTimeouts: number;
}

/**
 * Named scenario profiles. `disk-stall` is the disk-stall scenario (see
 * {@link ScenarioConfig.diskStall}): the target, the stall's length, and PreVote and CheckQuorum
 * (each on or off, evenly) are drawn from the seed. `figure8` aims at §5.4.2: three nodes, one
 * entry per append, and leaders isolated the moment they are elected (their first entries stay on their own disk) or
 * the moment they apply (what they send next is cut off), so that an entry of an earlier term
 * can reach a majority alone, exactly the window the Figure 8 rule closes.
 */
export const SCENARIO_PROFILES = {
  default: {},
  figure8: {
    profile: 'figure8',
    nodes: 3,
    knobs: {
      maxEntriesPerAppend: 1,
      leaderIsolateRate: 0.5,
      commitIsolateRate: 0.2,
      leaderCrashRate: 0,
      commitCrashRate: 0,
      dropRate: 0,
    },
  },
  'disk-stall': {
    profile: 'disk-stall',
    diskStall: true,
    steps: 60_000,
  },
} as const satisfies Record<string, Omit<ScenarioConfig, 'seed'>>;

/** The name of a {@link SCENARIO_PROFILES} entry. */
export type ScenarioProfile = keyof typeof SCENARIO_PROFILES;

/** What a passing scenario did. */
export interface ScenarioReport {
  readonly seed: number;
  readonly nodes: number;
  readonly steps: number;
  readonly virtualMs: number;
  readonly leaders: number;
  readonly applies: number;
  readonly acked: number;
  readonly crashes: number;
  readonly partitions: number;
  readonly leaderCompletenessChecks: number;
  /** Messages whose promises were checked as they left. */
  readonly messagesChecked: number;
  /** Snapshots taken by the nodes themselves. */
  readonly snapshotsTaken: number;
  /** Snapshots installed from a leader (InstallSnapshot). */
  readonly snapshotsInstalled: number;
  /** Membership changes that committed (resolved on the leader that made them). */
  readonly membershipChanges: number;
  /** Leadership transfers that completed. */
  readonly transfers: number;
  /** What the disk-stall scenario did (absent in other scenarios). */
  readonly diskStall?: DiskStallReport;
  /** The built-in workload's history as checked for linearizability (zeros with a user state
   *  machine). */
  readonly history: {
    readonly writes: number;
    readonly cas: number;
    readonly reads: number;
    readonly indeterminate: number;
  };
}

/** What a disk-stall scenario stalled, and what became of the proposals made meanwhile. */
export interface DiskStallReport {
  readonly target: 'leader' | 'follower';
  /** The node whose disk stalled, and the leader at the time (the same for `leader`). */
  readonly node: NodeId;
  readonly leader: NodeId;
  readonly term: number;
  readonly stallMs: number;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  /** Proposals made while the disk stalled (clients' and the stall writer's). */
  readonly proposals: number;
  /** Of those: acknowledged as committed, and acknowledged before the stall ended. */
  readonly committed: number;
  readonly committedDuringStall: number;
  /** Of those: rejected with a RaftError, counted by code (NOT_LEADER from a follower that
   *  rejects proposals, TIMEOUT, ...). */
  readonly failed: Readonly<Record<string, number>>;
  /** The leader's commit index at the start and at the end of the stall. */
  readonly commitAtStart: number;
  readonly commitAtEnd: number;
  /**
   * When the stall began, the leader streamed to every other voter (replicate state) from a
   * point its log still holds (match at or past the leader's snapshot). Only then must commits go
   * on during the stall: a follower that needs a snapshot of a stalled leader (whose snapshot
   * store stalls too), or is still receiving one, leaves no quorum without the stalled node.
   */
  readonly followersCaughtUp: boolean;
}

/** A failed scenario: the seed, where it stopped, the last trace lines, how to replay it. */
export class ScenarioFailure extends Error {
  readonly seed: number;
  readonly steps: number;
  readonly property: string;
  readonly trace: readonly string[];
  constructor(
    seed: number,
    steps: number,
    property: string,
    detail: string,
    trace: readonly string[],
    profile = 'default',
  ) {
    super(
      [
        `simulation failed: ${property}: ${detail}`,
        `seed=${seed} steps=${steps}`,
        'last trace lines:',
        ...trace.map((l) => `  ${l}`),
        `replay: RAFT_SEED=${seed}${profile === 'default' ? '' : ` RAFT_PROFILE=${profile}`} pnpm vitest run --project @raft/testing sim   (or: pnpm sim --seed ${seed}${profile === 'default' ? '' : ` --profile ${profile}`})`,
      ].join('\n'),
    );
    this.name = 'ScenarioFailure';
    this.seed = seed;
    this.steps = steps;
    this.property = property;
    this.trace = trace;
  }
}

/** A client command on the wire: its unique id, then the user's encoded command. */
interface Wrapped<Cmd> {
  readonly id: string;
  readonly cmd: Cmd;
  /** The entry's bytes (set when decoded). */
  readonly raw: Uint8Array;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function wrapCodec<Cmd>(inner: CommandCodec<Cmd>): CommandCodec<Wrapped<Cmd>> {
  return {
    encode(w) {
      const id = encoder.encode(w.id);
      const body = inner.encode(w.cmd);
      const out = new Uint8Array(1 + id.length + body.length);
      out[0] = id.length;
      out.set(id, 1);
      out.set(body, 1 + id.length);
      return out;
    },
    decode(raw) {
      const n = raw[0] as number;
      return {
        id: decoder.decode(raw.subarray(1, 1 + n)),
        cmd: inner.decode(raw.subarray(1 + n)),
        raw,
      };
    },
  };
}

/**
 * The built-in state machine: the replicated key-value store of kv-workload.ts. `command()` is
 * only used for the final write of the heal phase; the KV clients build their own commands.
 */
const kvMachine: ScenarioStateMachine<KvCommand, KvResult> = {
  create: () => new KvReplica(),
  codec: kvCommandCodec,
  command: (_random, seq) => ({ t: 'put', k: 'final', v: `final:${seq}` }),
  // A result that is not a KvResult (a bug elsewhere) gets a fingerprint of its own, so result
  // integrity reports it instead of the fingerprint throwing.
  fingerprint: (r) => (r?.ok === true ? 'ok' : r?.ok === false ? 'no' : `not a result: ${r}`),
  digest: (machine) => (machine as KvReplica).digest(),
};

/** An AbortSignal the simulated clients abort on virtual time. */
class SimAbortSignal implements AbortSignalLike {
  aborted = false;
  reason: unknown = undefined;
  private listeners: (() => void)[] = [];
  addEventListener(_type: 'abort', listener: () => void): void {
    this.listeners.push(listener);
  }
  removeEventListener(_type: 'abort', listener: () => void): void {
    this.listeners = this.listeners.filter((l) => l !== listener);
  }
  abort(): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = new Error('the simulated client gave up');
    for (const l of this.listeners.slice()) l();
  }
}

interface SimNode {
  readonly id: NodeId;
  readonly disk: SimDisk;
  clock: SimClock;
  // biome-ignore lint/suspicious/noExplicitAny: the wrapped command of any state machine.
  node: RaftNode<Wrapped<any>, unknown>;
  /** This incarnation's state machine (the user's, or a KvReplica). */
  user: StateMachine<unknown, unknown>;
  role: Role;
  up: boolean;
  /** A graceful stop() is in progress: no new incarnation until it is done. */
  stopping: boolean;
  incarnation: number;
}

/** The disk-stall scenario's stall (see {@link ScenarioConfig.diskStall}). */
interface StallState {
  /** Whose disk stalls, and the leader when it began (the same node when the leader's does). */
  readonly node: SimNode;
  readonly leader: SimNode;
  readonly term: number;
  /** Virtual times: the stall lasts `[start, end)`. */
  readonly start: number;
  readonly end: number;
  readonly commitAtStart: number;
  commitAtEnd: number;
  /** See {@link DiskStallReport.followersCaughtUp}. */
  readonly followersCaughtUp: boolean;
  /** Proposals made during the stall, and what became of them. */
  proposals: number;
  unsettled: number;
  committed: number;
  committedDuringStall: number;
  /** By RaftError code. */
  readonly failed: Record<string, number>;
  /** The first breach of the stall's liveness properties seen, if any. */
  breach: string | null;
}

/** The index whose cumulative weight first exceeds `r`. */
function pickWeighted(weights: readonly number[], r: number): number {
  let rest = r;
  for (let i = 0; i < weights.length; i++) {
    rest -= weights[i] as number;
    if (rest < 0) return i;
  }
  return weights.length - 1;
}

function thrownFingerprint(err: unknown): string {
  return `threw:${err instanceof Error ? err.message : String(err)}`;
}

/** Runs one scenario. Resolves with a report, or rejects with a {@link ScenarioFailure}. */
export async function runScenario(config: ScenarioConfig): Promise<ScenarioReport> {
  const seed = config.seed;
  const root = new Prng(seed);
  const knobs = root.fork('knobs');
  const stallMode = config.diskStall === true;
  /** The disk-stall scenario's own draws, a stream apart: the other knobs keep their values. */
  const stallPrng = root.fork('stall');
  const faults = !stallMode && (config.faults ?? true);
  // The disk-stall scenario needs a quorum without the stalled follower: three voters at least.
  const n = config.nodes ?? knobs.pick(stallMode ? [3, 3, 4, 5] : [2, 3, 3, 4, 5, 5, 6, 7]);
  const chaosSteps = config.steps ?? 2000;
  const livenessSteps = config.livenessSteps ?? 30_000;
  const traceLimit = config.traceLines ?? 60;
  const k = config.knobs ?? {};
  // biome-ignore lint/suspicious/noExplicitAny: the user's command and result types.
  const machine: ScenarioStateMachine<any, any> = config.stateMachine ?? kvMachine;
  /** The built-in KV workload, with its linearizability history. */
  const kv = config.stateMachine === undefined;
  const fingerprint = machine.fingerprint ?? ((r: unknown) => JSON.stringify(r) ?? 'undefined');
  const codec = wrapCodec(machine.codec);
  // Every knob takes its draw even when fixed, so fixing one never shifts the others.
  const draw = <T>(value: T | undefined, drawn: T): T => value ?? drawn;
  const chaos = <T>(value: T | undefined, drawn: T, off: T): T =>
    faults ? draw(value, drawn) : off;
  const maxEntriesPerAppend = draw(k.maxEntriesPerAppend, knobs.pick([1, 2, 4, 64, 4096]));
  const maxInflightAppends = draw(k.maxInflightAppends, knobs.pick([1, 2, 8, 64]));
  // The disk-stall scenario tries each setting as often as the other, with a draw of its own
  // (the knobs stream still takes its draw, so the knobs after it keep their values).
  const setting = (p: number): boolean => {
    const drawn = knobs.chance(p);
    return stallMode ? stallPrng.chance(0.5) : drawn;
  };
  const preVote = draw(k.preVote, setting(0.8));
  const checkQuorum = draw(k.checkQuorum, setting(0.8));
  const followerProposals = draw(
    k.followerProposals,
    knobs.chance(0.8) ? ('forward' as const) : ('reject' as const),
  );
  const reportUnreachable = draw(k.reportUnreachable, knobs.chance(0.5));
  const dropRate = chaos(k.dropRate, knobs.pick([0, 0.01, 0.05, 0.15]), 0);
  const duplicateRate = chaos(k.duplicateRate, knobs.pick([0, 0.02, 0.1]), 0);
  // Well below the heartbeat interval in the disk-stall scenario: a healthy network.
  const maxNetDelay = draw(k.maxNetDelayMs, knobs.pick(stallMode ? [1, 2, 5, 10] : [2, 5, 15, 40]));
  const maxDiskDelay = draw(k.maxDiskDelayMs, knobs.pick([0.5, 2, 8]));
  // Short-lived leaders that crash soon after election leave entries of their term on few
  // nodes: the precondition of Figure 8 (§5.4.2) and of most interesting log repairs.
  const leaderCrashRate = chaos(k.leaderCrashRate, knobs.pick([0, 0.1, 0.3, 0.6]), 0);
  const commitCrashRate = chaos(k.commitCrashRate, knobs.pick([0, 0, 0.01, 0.05]), 0);
  const leaderIsolateRate = chaos(k.leaderIsolateRate, knobs.pick([0, 0, 0.2, 0.5]), 0);
  const commitIsolateRate = chaos(k.commitIsolateRate, knobs.pick([0, 0, 0.02, 0.1]), 0);
  const ackCrashRate = chaos(k.ackCrashRate, knobs.pick([0, 0, 0.005, 0.02]), 0);
  const pendingLeaderCrashRate = chaos(k.pendingLeaderCrashRate, knobs.pick([0, 0, 0.01, 0.05]), 0);
  const staleReplays = chaos(k.staleReplays, knobs.pick([0, 0, 5, 20]), 0);
  const slowApplyRate = chaos(k.slowApplyRate, knobs.pick([0, 0, 0.01, 0.05]), 0);
  const abortRate = chaos(k.abortRate, knobs.pick([0, 0, 0.05, 0.2]), 0);
  const learners = Math.min(
    stallMode ? n - 3 : n - 1,
    draw(k.learners, knobs.pick([0, 0, 0, 0, 1, 2])),
  );
  const snapshotThreshold = draw(k.snapshotThreshold, knobs.pick([0, 0, 3, 10, 40, 200]));
  const trailingEntries = draw(k.trailingEntries, knobs.pick([0, 0, 2, 10, 100]));
  const snapshotChunkBytes = draw(k.snapshotChunkBytes, knobs.pick([5, 16, 64, 4096]));
  const snapshotCrashRate = chaos(k.snapshotCrashRate, knobs.pick([0, 0, 0.05, 0.2]), 0);
  const transferCrashRate = chaos(k.transferCrashRate, knobs.pick([0, 0, 0.01, 0.05]), 0);
  const installCrashRate = chaos(k.installCrashRate, knobs.pick([0, 0, 0.1, 0.3]), 0);
  // Drawn after every older knob, so the older ones keep their values for a given seed.
  const membershipWeight = chaos(k.membershipWeight, knobs.pick([0, 5, 15, 30]), 0);
  const transferWeight = chaos(k.transferWeight, knobs.pick([0, 5, 15]), 0);
  const leaseReads = draw(k.leaseReads, knobs.chance(0.5)) && checkQuorum;
  const clockDrift = chaos(k.clockDrift, knobs.pick([0, 0.01, 0.03]), 0);
  const kvKeys = draw(k.kvKeys, knobs.pick([1, 2, 3, 5]));
  const stallTarget = draw(
    k.stallTarget,
    stallPrng.chance(0.5) ? ('leader' as const) : ('follower' as const),
  );
  const stallElectionTimeouts = draw(k.stallElectionTimeouts, stallPrng.range(3, 8));
  const weights = [
    ...(k.nemesisWeights ?? [25, 10, 10, 25, 30, 8, 8]),
    membershipWeight,
    transferWeight,
  ];
  const totalWeight = weights.reduce((a, b) => a + b, 0);
  const electionTimeoutMs = 150;

  const scheduler = new Scheduler();
  const network = new SimNetwork(scheduler, root.fork('network'), {
    minDelayMs: 0.5,
    maxDelayMs: maxNetDelay,
    dropRate,
    duplicateRate,
    reportUnreachable,
    historySize: staleReplays > 0 ? 256 : 0,
  });
  const ids = Array.from({ length: n }, (_, i) => `n${i + 1}`);
  const voterIds = ids.slice(0, n - learners);
  const disks = new Map<NodeId, SimDisk>();
  /** Every configuration any node appended, by index (variants when one was truncated). */
  const configs: { readonly index: number; readonly voters: readonly NodeId[] }[] = [
    { index: 1, voters: voterIds },
  ];
  /**
   * The voter sets that may have committed the entry (index, term): the configuration in force
   * at it, read from the durable log of a node that holds it (logs that hold an entry agree on
   * everything before it), and every configuration appended anywhere after it.
   */
  const votersFor = (index: number, term: number): (readonly NodeId[])[] => {
    const later = configs.filter((c) => c.index > index).map((c) => c.voters);
    for (const disk of disks.values()) {
      const first = disk.durableFirstIndex();
      const entries = disk.durableEntries();
      if (entries[index - first]?.term !== term) continue;
      for (let i = index - first; i >= 0; i--) {
        const e = entries[i] as LogEntry;
        if (e.kind === 'membership') {
          const m = decodeMembership(e.data).members;
          return [m.filter((x) => x.voter).map((x) => x.id), ...later];
        }
      }
      const snapshot = disk
        .durableSnapshots()
        .reduce<SimDiskSnapshot | undefined>(
          (best, sn) => (best === undefined || sn.meta.index > best.meta.index ? sn : best),
          undefined,
        );
      if (snapshot !== undefined && snapshot.meta.index < first + entries.length)
        return [snapshot.meta.membership.members.filter((x) => x.voter).map((x) => x.id), ...later];
    }
    return configs.map((c) => c.voters);
  };
  const checker = new SafetyChecker({
    voters: votersFor,
    durable: (id) => {
      const disk = disks.get(id);
      if (disk === undefined) return undefined;
      const snapshots = disk.durableSnapshots();
      return {
        entries: disk.durableEntries(),
        firstIndex: disk.durableFirstIndex(),
        snapshotIndex: snapshots.reduce((max, sn) => Math.max(max, sn.meta.index), 0),
        hardState: disk.durableHardState(),
      };
    },
  });
  const trace: string[] = [];
  const log = (line: string): void => {
    trace.push(`t=${scheduler.now.toFixed(1)} ${line}`);
    if (trace.length > traceLimit) trace.shift();
  };
  let violation: SafetyViolation | null = null;
  const guard = (fn: () => void): void => {
    try {
      fn();
    } catch (err) {
      if (err instanceof SafetyViolation) violation ??= err;
      else throw err;
    }
  };
  const fail = (property: string, detail: string): never => {
    const states = [...nodes.values()].map((sn) => {
      const st = sn.node.status();
      return `  ${sn.id}${sn.up ? '' : ' (down)'} ${st.role} term=${st.term} leader=${st.leaderId} commit=${st.commitIndex} applied=${st.appliedIndex} last=${st.lastLogIndex} durable=[${sn.disk.durableFirstIndex()},${sn.disk.durableLastIndex()}] snapshot=${st.snapshotIndex} members=${st.members.map((m) => `${m.id}${m.voter ? '' : '(l)'}`).join(',')} pendingDisk=${sn.disk.pendingOperations} state=${sn.node.state}${st.progress ? ` progress=${JSON.stringify(st.progress)}` : ''}`;
    });
    throw new ScenarioFailure(
      seed,
      scheduler.steps,
      property,
      `${detail}\nnodes:\n${states.join('\n')}`,
      trace,
      config.profile,
    );
  };

  const bootstrap: Membership = {
    members: ids.map((id) => ({ id, address: id, voter: voterIds.includes(id) })),
  };
  log(
    `seed=${seed} nodes=${n} learners=${learners} membership=${membershipWeight} transfer=${transferWeight} lease=${leaseReads} drift=${clockDrift} keys=${kvKeys} drop=${dropRate} dup=${duplicateRate} netDelay<=${maxNetDelay} diskDelay<=${maxDiskDelay} maxEntries=${maxEntriesPerAppend} inflight=${maxInflightAppends} preVote=${preVote} checkQuorum=${checkQuorum} followers=${followerProposals} unreachable=${reportUnreachable} leaderCrash=${leaderCrashRate} commitCrash=${commitCrashRate} leaderIsolate=${leaderIsolateRate} commitIsolate=${commitIsolateRate} ackCrash=${ackCrashRate} pendingLeaderCrash=${pendingLeaderCrashRate} staleReplays=${staleReplays} slowApply=${slowApplyRate} abort=${abortRate} snapshotThreshold=${snapshotThreshold} trailing=${trailingEntries} chunk=${snapshotChunkBytes} snapshotCrash=${snapshotCrashRate} transferCrash=${transferCrashRate} installCrash=${installCrashRate}${stallMode ? ` stall=${stallTarget} x${stallElectionTimeouts.toFixed(2)}` : ''}`,
  );

  const nodes = new Map<NodeId, SimNode>();
  const nemesisPrng = root.fork('nemesis');
  let phase: 'chaos' | 'heal' = 'chaos';
  /** The disk-stall scenario's stall, once it has begun (see beginStall). */
  let stall: StallState | null = null;
  let crashes = 0;
  let partitions = 0;
  let snapshotsTaken = 0;
  let snapshotsInstalled = 0;
  let membershipChanges = 0;
  let transfers = 0;
  let nextNodeNumber = n + 1;
  const history = new KvHistory();
  const driftPrng = root.fork('drift');

  const boot = (id: NodeId, disk: SimDisk, incarnation: number): SimNode => {
    const stores =
      incarnation === 0
        ? {
            logStore: disk.logStore,
            stableStore: disk.stableStore,
            snapshotStore: disk.snapshotStore,
          }
        : disk.reopen();
    const clock = new SimClock(scheduler, {
      label: id,
      rate: clockDrift === 0 ? 1 : driftPrng.range(1 - clockDrift, 1 + clockDrift),
    });
    const user = machine.create(id);
    let sn: SimNode;
    const digest =
      machine.digest === undefined
        ? undefined
        : (): string => (machine.digest as (m: typeof user) => string)(user);
    const applied = (w: Wrapped<unknown>, at: ApplyContext, result: string): void => {
      guard(() => checker.onApply(id, at.index, at.term, w.raw, { id: w.id, result }));
      if (digest !== undefined) guard(() => checker.onStateDigest(id, at.index, digest()));
      if (
        commitCrashRate > 0 &&
        phase === 'chaos' &&
        sn.role === 'leader' &&
        nemesisPrng.chance(commitCrashRate)
      ) {
        scheduler.schedule(nemesisPrng.range(0, 10), () => crashAndRestart(sn), 'commit-crash');
      }
      if (
        commitIsolateRate > 0 &&
        phase === 'chaos' &&
        sn.role === 'leader' &&
        nemesisPrng.chance(commitIsolateRate)
      ) {
        network.isolate(id);
        log(`ISOLATE ${id} (leader, just applied ${at.index})`);
      }
    };
    const sm: StateMachine<Wrapped<unknown>, unknown> = {
      apply: (w, at) => {
        let out: unknown;
        try {
          out = user.apply(w.cmd, at);
        } catch (err) {
          applied(w, at, thrownFingerprint(err));
          throw err;
        }
        const slow = slowApplyRate > 0 && phase === 'chaos' && nemesisPrng.chance(slowApplyRate);
        if (out instanceof Promise || slow) {
          return (async () => {
            let result: unknown;
            try {
              result = await out;
            } catch (err) {
              applied(w, at, thrownFingerprint(err));
              throw err;
            }
            if (slow) {
              // On the node's clock: a crash cancels it, and this incarnation applies no more.
              await new Promise<void>((resolve) => {
                clock.setTimer(nemesisPrng.range(0, 2 * electionTimeoutMs), resolve);
              });
            }
            applied(w, at, fingerprint(result));
            return result;
          })();
        }
        applied(w, at, fingerprint(out));
        return out;
      },
    };
    if (user.snapshot !== undefined && user.restore !== undefined) {
      const takeImage = user.snapshot.bind(user);
      const restoreImage = user.restore.bind(user);
      sm.snapshot = async () => {
        const image = await takeImage();
        if (snapshotCrashRate > 0 && phase === 'chaos' && nemesisPrng.chance(snapshotCrashRate)) {
          scheduler.schedule(
            nemesisPrng.range(0, 10),
            () => crashAndRestart(sn, 'taking a snapshot'),
            'snapshot-crash',
          );
        }
        // Produced over virtual time, on the node's clock: applies go on meanwhile, and a crash
        // lands in the middle of it.
        const delayMs = nemesisPrng.range(0, 3);
        return (async function* () {
          for await (const chunk of image as AsyncIterable<Uint8Array>) {
            await new Promise<void>((resolve) => {
              clock.setTimer(delayMs, resolve);
            });
            yield chunk;
          }
        })();
      };
      sm.restore = async (chunks, meta) => {
        await restoreImage(chunks, meta);
        log(`${id} restored the snapshot at ${meta.index}`);
        guard(() => checker.onRestore(id, meta.index, digest?.()));
        if (installCrashRate > 0 && phase === 'chaos' && nemesisPrng.chance(installCrashRate)) {
          scheduler.schedule(
            nemesisPrng.range(0, 3),
            () => crashAndRestart(sn, 'installing a snapshot'),
            'install-crash',
          );
        }
      };
    }
    // The runtime logs an error when the engine refuses a message (for example an append that
    // would overwrite a committed entry): in a correct cluster that never happens.
    const logger: Logger = {
      debug: () => {},
      info: () => {},
      warn: () => {},
      error: (fields, msg) => {
        const err = fields.err instanceof Error ? `: ${fields.err.message}` : '';
        guard(() => checker.onEngineError(id, `${msg ?? 'error'}${err}`));
      },
    };
    const node = createRaftNode<Wrapped<unknown>, unknown>({
      id,
      stateMachine: sm,
      codec,
      logStore: stores.logStore,
      stableStore: stores.stableStore,
      transport: network.transport(id),
      clock,
      random: root.fork(`random:${id}:${incarnation}`).asRandom(),
      tickMs: 10,
      heartbeatMs: 30,
      electionTimeoutMs,
      requestTimeoutMs: 2000,
      logger,
      maxEntriesPerAppend,
      maxInflightAppends,
      preVote,
      checkQuorum,
      followerProposals,
      snapshotStore: stores.snapshotStore,
      snapshotThreshold,
      trailingEntries,
      snapshotChunkBytes,
      snapshotTransferTimeoutMs: 2000,
      leaseReads,
    });
    sn = {
      id,
      disk,
      clock,
      node,
      user: user as StateMachine<unknown, unknown>,
      role: 'follower',
      up: true,
      stopping: false,
      incarnation,
    };
    guard(() => checker.onStart(id, disk.durableEntries(), disk.durableFirstIndex()));
    node.subscribe((ev) => {
      // Events come out of Readies, which a stalled disk holds back: also those of a change made
      // during the stall may come after it. The chaos phase watches for them until it ends.
      if (
        stall !== null &&
        phase === 'chaos' &&
        (ev.type === 'roleChanged' || ev.type === 'leaderChanged' || ev.type === 'termChanged')
      ) {
        stall.breach ??= `${id} reported ${ev.type} ${JSON.stringify(ev)} after the stall began`;
      }
      if (ev.type === 'roleChanged') {
        sn.role = ev.role;
        log(`${id} ${ev.role} term=${ev.term}`);
        guard(() => checker.onRoleChanged(id, ev.role, ev.term));
        if (
          ev.role === 'leader' &&
          phase === 'chaos' &&
          leaderCrashRate > 0 &&
          nemesisPrng.chance(leaderCrashRate)
        ) {
          scheduler.schedule(nemesisPrng.range(0, 40), () => crashAndRestart(sn), 'leader-crash');
        }
        if (
          ev.role === 'leader' &&
          phase === 'chaos' &&
          leaderIsolateRate > 0 &&
          nemesisPrng.chance(leaderIsolateRate)
        ) {
          // Synchronously, before the runtime sends this Ready's messages: the new leader's
          // no-op stays on its own disk.
          network.isolate(id);
          log(`ISOLATE ${id} (just elected)`);
        }
      } else if (ev.type === 'snapshotTaken' || ev.type === 'snapshotInstalled') {
        if (ev.type === 'snapshotTaken') snapshotsTaken++;
        else snapshotsInstalled++;
        log(`${id} ${ev.type} at ${ev.meta.index} (term ${ev.meta.term})`);
      } else if (ev.type === 'membershipChanged') {
        const voters = ev.membership.members.filter((m) => m.voter).map((m) => m.id);
        if (
          ev.index > 0 &&
          !configs.some((c) => c.index === ev.index && c.voters.join() === voters.join())
        )
          configs.push({ index: ev.index, voters });
        log(
          `${id} membership at ${ev.index}: ${ev.membership.members.map((m) => `${m.id}${m.voter ? '' : '(l)'}`).join(',')}`,
        );
      } else if (ev.type === 'fatal') {
        log(`${id} fatal ${ev.error.message}`);
        guard(() => checker.onFatal(id, ev.error.message));
      }
    });
    // Nodes added later start empty and wait for the leader to contact them.
    node.start(ids.includes(id) ? { bootstrap } : undefined).catch((err: unknown) => {
      if (sn.up && nodes.get(id) === sn) log(`${id} start failed: ${String(err)}`);
    });
    return sn;
  };

  const addNode = (id: NodeId): SimNode => {
    const disk = new SimDisk(scheduler, root.fork(`disk:${id}`), {
      minDelayMs: 0.1,
      maxDelayMs: maxDiskDelay,
      label: id,
    });
    disk.onAppendIssued = (entries) => guard(() => checker.onAppendIssued(id, entries));
    disk.onDurableAppend = (entries, truncatedFrom) =>
      guard(() => checker.onDurableAppend(id, entries, truncatedFrom));
    disk.onDurableSave = (hs) => guard(() => checker.onDurableSave(id, hs));
    disk.onCutIssued = (kind, index) => guard(() => checker.onCutIssued(id, kind, index));
    disk.onDurableTruncate = (from) => guard(() => checker.onDurableTruncate(id, from));
    disk.onDurableCompact = (first) => guard(() => checker.onDurableCompact(id, first));
    disk.onDurableSnapshot = (snap) =>
      guard(() => checker.onDurableSnapshot(id, snap.meta.index, snap.meta.term));
    disks.set(id, disk);
    const sn = boot(id, disk, 0);
    nodes.set(id, sn);
    return sn;
  };
  for (const id of ids) addNode(id);

  // Promises checked as messages leave; crashes aimed at the windows where a promise matters.
  network.onSend = (from, m) => {
    guard(() => checker.onMessageSent(from, m));
    if (ackCrashRate === 0 || phase !== 'chaos') return;
    // A vote grant or an append ack promises durable state; a leader's append claims its term.
    const promise =
      (m.type === 'voteResponse' && m.granted && !m.preVote) ||
      (m.type === 'appendResponse' && m.success) ||
      (m.type === 'append' && m.entries.length > 0);
    const sn = nodes.get(from);
    if (promise && sn?.up && nemesisPrng.chance(ackCrashRate)) {
      // Next event, once the runtime has issued its next write (a Ready sends before it
      // persists): the message is already on its way, and the pending write is lost.
      scheduler.schedule(
        0,
        () => {
          if (sn.disk.pendingOperations > 0)
            crashAndRestart(sn, `just sent ${m.type} to ${m.to}, a write pending`);
        },
        'ack-crash',
      );
    }
  };
  network.onDeliver = (m) => {
    if (m.type === 'installSnapshot' && transferCrashRate > 0 && phase === 'chaos') {
      const victim = nodes.get(nemesisPrng.chance(0.5) ? m.to : m.from);
      if (victim?.up && nemesisPrng.chance(transferCrashRate)) {
        scheduler.schedule(
          0,
          () => crashAndRestart(victim, `snapshot chunk at ${m.offset} of ${m.size} in flight`),
          'transfer-crash',
        );
      }
    }
    if (pendingLeaderCrashRate === 0 || phase !== 'chaos') return;
    if (m.type !== 'appendResponse' || !m.success) return;
    const leader = nodes.get(m.to);
    if (
      leader?.up &&
      leader.role === 'leader' &&
      leader.disk.pendingOperations > 0 &&
      nemesisPrng.chance(pendingLeaderCrashRate)
    ) {
      scheduler.schedule(
        0,
        () => crashAndRestart(leader, `leader, acked by ${m.from} with its own write pending`),
        'pending-leader-crash',
      );
    }
  };

  const crashAndRestart = (sn: SimNode, why = ''): void => {
    if (!sn.up || phase !== 'chaos' || nodes.get(sn.id) !== sn) return;
    crash(sn, why);
    scheduler.schedule(
      nemesisPrng.range(20, 600),
      () => restart(nodes.get(sn.id) as SimNode),
      'restart',
    );
  };
  const crash = (sn: SimNode, why: string): void => {
    // Check what it applied before it goes: the periodic check may not have seen it yet.
    guard(() => checker.onCommitted(sn.id, sn.node.status().appliedIndex));
    sn.up = false;
    sn.clock.cancelAll();
    sn.disk.crash();
    network.setDown(sn.id, true);
    crashes++;
    log(`CRASH ${sn.id}${why === '' ? '' : ` (${why})`} (pending disk writes lost)`);
  };
  const restart = (sn: SimNode): void => {
    if (sn.up || sn.stopping || nodes.get(sn.id) !== sn) return;
    network.setDown(sn.id, false);
    const next = boot(sn.id, sn.disk, sn.incarnation + 1);
    nodes.set(sn.id, next);
    log(`RESTART ${sn.id}`);
  };
  /** stop() with whatever is pending, then a restart on the same disk. */
  const gracefulRestart = (sn: SimNode): void => {
    if (!sn.up || phase !== 'chaos') return;
    guard(() => checker.onCommitted(sn.id, sn.node.status().appliedIndex));
    sn.up = false;
    sn.stopping = true;
    log(`STOP ${sn.id} (graceful, proposals pending)`);
    const stopped = (outcome: string): void => {
      log(`${sn.id} ${outcome}`);
      sn.stopping = false;
      sn.clock.cancelAll();
      // Also in the heal phase, which restarts every node it finds down, but not this one yet.
      scheduler.schedule(nemesisPrng.range(20, 300), () => restart(sn), 'restart');
    };
    sn.node.stop().then(
      () => stopped('stopped'),
      (err: unknown) => stopped(`stop() failed: ${String(err)}`),
    );
  };

  // Clients: each keeps one proposal in flight against a random live node.
  const clientPrng = root.fork('clients');
  const commandRandom = root.fork('commands').asRandom();
  let commandSeq = 0;
  const clientCount = kv ? clientPrng.pick([2, 3, 4, 6]) : clientPrng.pick([1, 2, 4]);
  /** What a client learns: an acknowledgement, or an honest "not applied". */
  const observe = (
    id: string,
    // biome-ignore lint/suspicious/noExplicitAny: the wrapped command of any state machine.
    w: Wrapped<any>,
    outcome: Promise<{ index: number; term: number; result: unknown }>,
    done: () => void,
  ): void => {
    const raw = codec.encode(w);
    // A proposal made while the disk stalls must settle: committed, or a typed error.
    const tracked = stall !== null && phase === 'chaos' && scheduler.now < stall.end ? stall : null;
    if (tracked !== null) {
      tracked.proposals++;
      tracked.unsettled++;
    }
    outcome.then(
      (r) => {
        if (tracked !== null) {
          tracked.unsettled--;
          tracked.committed++;
          if (scheduler.now < tracked.end) tracked.committedDuringStall++;
        }
        guard(() => checker.onAcked(r.index, r.term, raw, { id, result: fingerprint(r.result) }));
        done();
      },
      (err: unknown) => {
        if (tracked !== null) {
          tracked.unsettled--;
          if (RaftError.is(err)) tracked.failed[err.code] = (tracked.failed[err.code] ?? 0) + 1;
          else
            tracked.breach ??= `${id}, proposed during the stall, failed with an untyped error: ${String(err)}`;
        }
        if (RaftError.is(err, 'APPLY_FAILED')) {
          // Applied, with the state machine's exception as the result.
          const cause = thrownFingerprint(err.cause);
          guard(() => checker.onAcked(err.index, err.term, raw, { id, result: cause }));
        } else if (RaftError.is(err) && err.outcome === 'notApplied') {
          guard(() => checker.onNotApplied(id, err.code));
        }
        done();
      },
    );
  };
  const runClient = (c: number): void => {
    if (phase !== 'chaos') return;
    const live = [...nodes.values()].filter((s) => s.up);
    const target = live.length > 0 ? clientPrng.pick(live) : undefined;
    if (target === undefined) {
      scheduler.schedule(20, () => runClient(c), 'client');
      return;
    }
    const seq = commandSeq++;
    const id = `c${c}:${seq}`;
    const w = { id, cmd: machine.command(commandRandom, seq), raw: new Uint8Array(0) };
    let finished = false;
    const finish = (): void => {
      if (finished) return;
      finished = true;
      timer.cancel();
      scheduler.schedule(clientPrng.range(0.5, 20), () => runClient(c), 'client');
    };
    // The client's own bound: a crashed node's promise never settles.
    const timer = scheduler.schedule(3000, finish, 'client-timeout');
    let signal: SimAbortSignal | undefined;
    if (abortRate > 0 && clientPrng.chance(abortRate)) {
      const s = new SimAbortSignal();
      signal = s;
      scheduler.schedule(clientPrng.range(0, 300), () => s.abort(), 'client-abort');
    }
    observe(id, w, target.node.propose(w, signal === undefined ? undefined : { signal }), finish);
  };

  /**
   * A KV client: one operation at a time against a random live node (any member or not):
   * `put` and `cas` through propose(), reads through read() and then the node's own replica.
   * Every outcome goes into the history; an `unknown` one leaves the operation open.
   */
  const runKvClient = (c: number): void => {
    if (phase !== 'chaos') return;
    const live = [...nodes.values()].filter((s) => s.up);
    const target = live.length > 0 ? clientPrng.pick(live) : undefined;
    if (target === undefined) {
      scheduler.schedule(20, () => runKvClient(c), 'client');
      return;
    }
    const key = `k${clientPrng.int(kvKeys)}`;
    const seq = commandSeq++;
    const id = `c${c}:${seq}`;
    const roll = clientPrng.next();
    let finished = false;
    let op: PendingOperation | null = null;
    const finish = (): void => {
      if (finished) return;
      finished = true;
      timer.cancel();
      // The client's own bound ran out (a crashed node's promise never settles): unknown.
      op?.unknown();
      scheduler.schedule(clientPrng.range(0.5, 20), () => runKvClient(c), 'client');
    };
    const timer = scheduler.schedule(3000, finish, 'client-timeout');
    if (roll < 0.45) {
      const consistency = leaseReads && clientPrng.chance(0.4) ? 'lease' : 'linearizable';
      const input: KvInput = { type: 'get', key };
      const pending = history.invoke(`c${c}`, input, scheduler.now);
      op = pending;
      const replica = target.user as unknown as KvReplica;
      target.node.read({ consistency }).then(
        () => {
          pending.ok({ value: replica.get(key) }, scheduler.now);
          finish();
        },
        () => {
          pending.discard();
          finish();
        },
      );
      return;
    }
    const value = `v${seq}`;
    let cmd: KvCommand;
    let input: KvInput;
    if (roll < 0.8) {
      cmd = { t: 'put', k: key, v: value };
      input = { type: 'put', key, value };
    } else {
      // Expect the value the target has applied: often current, sometimes stale (then no swap).
      const expected = (target.user as unknown as KvReplica).get(key);
      cmd = { t: 'cas', k: key, e: expected, v: value };
      input = { type: 'cas', key, expected, value };
    }
    const pending = history.invoke(`c${c}`, input, scheduler.now);
    op = pending;
    const w = { id, cmd, raw: new Uint8Array(0) };
    const outcome = target.node.propose(w);
    observe(id, w, outcome, () => {});
    outcome.then(
      (r) => {
        const ok = (r.result as KvResult | undefined)?.ok;
        // Without a result (a bug that result integrity reports), a CAS's outcome is unknown.
        if (input.type === 'cas' && typeof ok !== 'boolean') pending.unknown();
        else pending.ok(input.type === 'cas' ? { ok: ok as boolean } : {}, scheduler.now);
        finish();
      },
      (err: unknown) => {
        if (RaftError.is(err) && err.outcome === 'notApplied') pending.discard();
        else pending.unknown();
        finish();
      },
    );
  };
  for (let c = 0; c < clientCount; c++) {
    const run = kv ? runKvClient : runClient;
    scheduler.schedule(clientPrng.range(0, 50), () => run(c), 'client');
  }

  /** The leader, if exactly one live node leads. */
  const currentLeader = (): SimNode | undefined => {
    const leaders = [...nodes.values()].filter((s) => s.up && s.role === 'leader');
    return leaders.length === 1 ? leaders[0] : undefined;
  };
  /** A membership change through the leader: add, promote, demote or remove one member. */
  const changeMembership = (): void => {
    const leader = currentLeader();
    if (leader === undefined) return;
    const members = leader.node.status().members;
    const voters = members.filter((m) => m.voter);
    const learnersNow = members.filter((m) => !m.voter);
    const roll = nemesisPrng.next();
    let what: string;
    let call: Promise<Membership>;
    if (roll < 0.3 && nodes.size < 9) {
      const id = `n${nextNodeNumber++}`;
      addNode(id);
      const voter = nemesisPrng.chance(0.25);
      what = `add ${id}${voter ? '' : ' (learner)'}`;
      call = leader.node.addMember({ id, address: id, voter }, { timeoutMs: 1000 });
    } else if (roll < 0.55 && learnersNow.length > 0) {
      const id = nemesisPrng.pick(learnersNow).id;
      const force = nemesisPrng.chance(0.3);
      what = `promote ${id}${force ? ' (forced)' : ''}`;
      call = leader.node.promote(id, { timeoutMs: 1000, force });
    } else if (roll < 0.7 && voters.length > 1) {
      const id = nemesisPrng.pick(voters).id;
      what = `demote ${id}`;
      call = leader.node.demote(id, { timeoutMs: 1000 });
    } else if (members.length > 1 && (voters.length > 1 || learnersNow.length > 0)) {
      const candidates = voters.length > 1 ? members : learnersNow;
      const id = nemesisPrng.pick(candidates).id;
      what = `remove ${id}${id === leader.id ? ' (the leader)' : ''}`;
      call = leader.node.removeMember(id, { timeoutMs: 1000 });
    } else {
      return;
    }
    log(`MEMBERSHIP ${what} via ${leader.id}`);
    call.then(
      (m) => {
        membershipChanges++;
        log(
          `${leader.id} ${what}: done, ${m.members.map((x) => `${x.id}${x.voter ? '' : '(l)'}`).join(',')}`,
        );
      },
      (err: unknown) => log(`${leader.id} ${what}: ${RaftError.is(err) ? err.code : String(err)}`),
    );
  };
  const transferLeadership = (): void => {
    const leader = currentLeader();
    if (leader === undefined) return;
    const voters = leader.node
      .status()
      .members.filter((m) => m.voter && m.id !== leader.id)
      .map((m) => m.id);
    const to = voters.length > 0 && nemesisPrng.chance(0.7) ? nemesisPrng.pick(voters) : undefined;
    log(`TRANSFER ${leader.id} -> ${to ?? 'any'}`);
    leader.node.transferLeadership(to, { timeoutMs: 1000 }).then(
      (r) => {
        transfers++;
        log(`${leader.id} handed leadership to ${r.leaderId} (term ${r.term})`);
      },
      (err: unknown) => log(`${leader.id} transfer: ${RaftError.is(err) ? err.code : String(err)}`),
    );
  };

  // The disk-stall scenario (ScenarioConfig.diskStall): wait for a stable leader, then stall.
  const stallMs = stallElectionTimeouts * electionTimeoutMs;
  let stableSince = -1;
  let stableLeader: SimNode | undefined;
  let stableTerm = -1;
  /** Every node agrees on one leader and its term (it leads, the others follow it). */
  const agreedLeader = (): { leader: SimNode; term: number } | undefined => {
    const all = [...nodes.values()];
    const leaders = all.filter((sn) => sn.up && sn.node.status().role === 'leader');
    if (leaders.length !== 1) return undefined;
    const leader = leaders[0] as SimNode;
    const term = leader.node.status().term;
    const agreed = all.every((sn) => {
      const st = sn.node.status();
      return (
        sn.up &&
        st.term === term &&
        (sn === leader || (st.role === 'follower' && st.leaderId === leader.id))
      );
    });
    return agreed ? { leader, term } : undefined;
  };
  const watchForStableLeader = (): void => {
    if (phase !== 'chaos' || stall !== null) return;
    const agreed = agreedLeader();
    if (agreed === undefined) {
      stableSince = -1;
    } else if (stableSince < 0 || agreed.leader !== stableLeader || agreed.term !== stableTerm) {
      stableSince = scheduler.now;
      stableLeader = agreed.leader;
      stableTerm = agreed.term;
    } else if (scheduler.now - stableSince >= electionTimeoutMs) {
      // A leader heard by everyone for an election timeout: its no-op has long committed.
      beginStall(agreed.leader, agreed.term);
      return;
    }
    scheduler.schedule(stallPrng.range(5, 15), watchForStableLeader, 'stall-watch');
  };
  const beginStall = (leader: SimNode, term: number): void => {
    const voters = leader.node.status().members.filter((m) => m.voter && m.id !== leader.id);
    const victim =
      stallTarget === 'leader'
        ? leader
        : (nodes.get(stallPrng.pick(voters.map((m) => m.id))) as SimNode);
    victim.disk.stall(stallMs);
    const status = leader.node.status();
    const commitIndex = status.commitIndex;
    const followersCaughtUp = voters.every((m) => {
      const pr = status.progress?.[m.id];
      return pr !== undefined && pr.state === 'replicate' && pr.match >= status.snapshotIndex;
    });
    const state: StallState = {
      node: victim,
      leader,
      term,
      start: scheduler.now,
      end: scheduler.now + stallMs,
      commitAtStart: commitIndex,
      commitAtEnd: commitIndex,
      followersCaughtUp,
      proposals: 0,
      unsettled: 0,
      committed: 0,
      committedDuringStall: 0,
      failed: {},
      breach: null,
    };
    stall = state;
    log(
      `STALL disk of ${victim.id} (${stallTarget}, leader ${leader.id} at term ${term}) for ${stallMs.toFixed(0)} ms${followersCaughtUp ? '' : ', a follower still catching up'}`,
    );
    // Scheduled before any disk operation the stall holds back: it runs first at that time.
    scheduler.schedule(
      stallMs,
      () => {
        state.commitAtEnd = leader.node.status().commitIndex;
        log(`STALL over: ${victim.id}, ${state.proposals} proposals meanwhile`);
      },
      'stall-end',
    );
    scheduler.schedule(stallPrng.range(0, 10), stallWrite, 'stall-writer');
  };
  /** Keeps proposing to the leader while the disk stalls (beside the clients, which wait for
   *  each answer): puts to keys of their own, so every one of them is in the history. */
  const stallWrite = (): void => {
    const st = stall;
    if (st === null || phase !== 'chaos' || scheduler.now >= st.end) return;
    const seq = commandSeq++;
    const id = `stall:${seq}`;
    let pending: PendingOperation | null = null;
    let cmd: unknown;
    if (kv) {
      const key = `s${seq}`;
      const value = `v${seq}`;
      cmd = { t: 'put', k: key, v: value } satisfies KvCommand;
      pending = history.invoke(id, { type: 'put', key, value }, scheduler.now);
    } else {
      cmd = machine.command(commandRandom, seq);
    }
    const w = { id, cmd, raw: new Uint8Array(0) };
    const outcome = st.leader.node.propose(w);
    observe(id, w, outcome, () => {});
    outcome.then(
      () => pending?.ok({}, scheduler.now),
      (err: unknown) => {
        if (RaftError.is(err) && err.outcome === 'notApplied') pending?.discard();
        else pending?.unknown();
      },
    );
    scheduler.schedule(stallPrng.range(5, 25), stallWrite, 'stall-writer');
  };
  /** After every event from the stall on: nobody changed term or campaigned, and the leader
   *  still leads, heard by every other node. */
  const checkStall = (): void => {
    const st = stall;
    if (st === null || st.breach !== null) return;
    for (const sn of nodes.values()) {
      const s = sn.node.status();
      let breach: string | null = null;
      if (s.term !== st.term) breach = `${sn.id} is at term ${s.term}, not ${st.term}`;
      else if (sn === st.leader && s.role !== 'leader')
        breach = `the leader ${sn.id} became ${s.role}`;
      else if (sn !== st.leader && (s.role !== 'follower' || s.leaderId !== st.leader.id))
        breach = `${sn.id} is ${s.role} with leader ${s.leaderId}, not a follower of ${st.leader.id}`;
      if (breach !== null) {
        const into = (scheduler.now - st.start) / electionTimeoutMs;
        st.breach = `${breach}, ${into.toFixed(2)} election timeouts after the stall began`;
        return;
      }
    }
  };
  /** The stall is over (and an election timeout more, to see any late election), and every
   *  proposal made during it has settled; or a breach was seen. */
  const stallDone = (): boolean => {
    const st = stall;
    if (st === null) return false;
    if (st.breach !== null) return true;
    return scheduler.now >= st.end + electionTimeoutMs && st.unsettled === 0;
  };
  if (stallMode) scheduler.schedule(stallPrng.range(5, 15), watchForStableLeader, 'stall-watch');

  // Nemesis.
  const nemesis = nemesisPrng;
  const strike = (): void => {
    if (phase !== 'chaos') return;
    const all = [...nodes.values()];
    const ids = [...nodes.keys()];
    const live = all.filter((s) => s.up);
    const action = pickWeighted(weights, nemesis.next() * totalWeight);
    if (action === 0) {
      const shuffled = nemesis.shuffle(ids.slice());
      const cut = 1 + nemesis.int(ids.length - 1);
      network.partition([shuffled.slice(0, cut), shuffled.slice(cut)]);
      partitions++;
      log(`PARTITION ${shuffled.slice(0, cut).join(',')} | ${shuffled.slice(cut).join(',')}`);
    } else if (action === 1) {
      const id = nemesis.pick(ids);
      network.isolate(id);
      partitions++;
      log(`ISOLATE ${id}`);
    } else if (action === 2) {
      const from = nemesis.pick(ids);
      const to = nemesis.pick(ids.filter((x) => x !== from));
      network.cut(from, to);
      partitions++;
      log(`CUT ${from}->${to}`);
    } else if (action === 3) {
      network.heal();
      const replayed = network.replay(staleReplays);
      log(`HEAL network${replayed > 0 ? `, ${replayed} old messages delivered again` : ''}`);
    } else if (action === 4) {
      // Prefer the leader: crashing it exercises the most recovery paths.
      const leader = live.find((s) => s.role === 'leader');
      const victim =
        leader !== undefined && nemesis.chance(0.5)
          ? leader
          : live.length > 0
            ? nemesis.pick(live)
            : undefined;
      if (victim !== undefined) crashAndRestart(victim);
    } else if (action === 5) {
      const victim = live.length > 0 ? nemesis.pick(live) : undefined;
      if (victim !== undefined) {
        const ms = nemesis.range(electionTimeoutMs, 3 * electionTimeoutMs);
        victim.disk.stall(ms);
        log(`STALL disk of ${victim.id} for ${ms.toFixed(0)} ms`);
      }
    } else if (action === 6) {
      const leader = live.find((s) => s.role === 'leader');
      const victim = leader ?? (live.length > 0 ? nemesis.pick(live) : undefined);
      if (victim !== undefined) gracefulRestart(victim);
    } else if (action === 7) {
      changeMembership();
    } else {
      transferLeadership();
    }
    scheduler.schedule(nemesis.range(30, 400), strike, 'nemesis');
  };
  if (faults) scheduler.schedule(nemesis.range(100, 300), strike, 'nemesis');

  const stopped = (): boolean => {
    if (violation !== null) return true;
    // Election Safety from each node's own state, after every event.
    for (const sn of nodes.values()) {
      if (!sn.up) continue;
      const st = sn.node.status();
      guard(() => checker.onNodeState(sn.id, st.role, st.term));
    }
    if ((scheduler.steps & 7) === 0) {
      for (const sn of nodes.values()) {
        if (!sn.up) continue;
        const st = sn.node.status();
        guard(() => checker.onCommitted(sn.id, st.appliedIndex));
        if (st.progress !== undefined) {
          const matches = Object.entries(st.progress).map(([f, p]) => [f, p.match] as const);
          guard(() =>
            checker.onLeaderProgress(sn.id, st.term, matches, (f) => {
              const other = nodes.get(f);
              const durable = disks.get(f)?.durableHardState()?.term ?? 0;
              return Math.max(durable, other?.up ? other.node.status().term : 0);
            }),
          );
        }
      }
    }
    return violation !== null;
  };
  await scheduler.runUntil(() => {
    if (stopped()) return true;
    if (stallMode) {
      checkStall();
      if (stallDone()) return true;
    }
    return scheduler.steps >= chaosSteps;
  }, chaosSteps + 1);
  if (violation)
    fail(
      (violation as SafetyViolation).violation.property,
      (violation as SafetyViolation).violation.message,
    );
  const stalled = stall as StallState | null;
  if (stallMode) {
    if (stalled === null) {
      fail(
        'disk stall',
        `no leader was stable for an election timeout within ${chaosSteps} events`,
      );
    } else if (stalled.breach !== null) {
      fail('disk stall liveness', stalled.breach);
    } else if (!stallDone()) {
      fail(
        'disk stall liveness',
        `${stalled.unsettled} of the ${stalled.proposals} proposals made during the stall had not settled after ${chaosSteps} events`,
      );
    } else if (stalled.committed === 0) {
      fail(
        'disk stall liveness',
        `none of the ${stalled.proposals} proposals made during the stall committed (failed: ${JSON.stringify(stalled.failed)})`,
      );
    } else if (stalled.followersCaughtUp && stalled.commitAtEnd <= stalled.commitAtStart) {
      // The followers acknowledge the appends that leave meanwhile: with the leader's disk
      // stalled they are a quorum without it (thesis §10.2.1), with a follower's the others and
      // the leader are.
      fail(
        'disk stall liveness',
        `the leader's commit index stayed at ${stalled.commitAtStart} while ${stalled.node.id} (${stallTarget}) stalled`,
      );
    } else if (
      stalled.followersCaughtUp &&
      stallTarget === 'follower' &&
      stalled.committedDuringStall === 0
    ) {
      fail(
        'disk stall liveness',
        `no proposal was acknowledged while the follower ${stalled.node.id} stalled (commit ${stalled.commitAtStart} -> ${stalled.commitAtEnd})`,
      );
    }
  }

  // Heal: every fault off, every node back, then the cluster must make progress.
  phase = 'heal';
  network.heal();
  network.configure({ dropRate: 0, duplicateRate: 0 });
  const replayed = network.replay(staleReplays);
  for (const sn of nodes.values()) restart(sn);
  log(
    `HEAL all: faults off, crashed nodes restarted${replayed > 0 ? `, ${replayed} old messages delivered again` : ''}`,
  );

  /** The nodes in the configuration the leader has in force (removed nodes are out). */
  const membersOf = (leader: SimNode): SimNode[] => {
    const ids = new Set(leader.node.status().members.map((m) => m.id));
    return [...nodes.values()].filter((s) => ids.has(s.id));
  };
  const liveLeader = (): SimNode | undefined => {
    const leaders = [...nodes.values()].filter((s) => s.up && s.node.status().role === 'leader');
    if (leaders.length !== 1) return undefined;
    const leader = leaders[0] as SimNode;
    const term = leader.node.status().term;
    return membersOf(leader).every((s) => s.node.status().term <= term) ? leader : undefined;
  };
  /** After the fresh write: a linearizable read on a member must be served. */
  let read = 'none' as 'none' | 'pending' | 'done';
  let readFailed = 0;
  let finalMembers: SimNode[] = [];
  const budget = scheduler.steps + livenessSteps;
  let fresh: { index: number } | null = null;
  let freshFailed = 0;
  let proposing = false;
  await scheduler.runUntil(() => {
    if (stopped() || scheduler.steps >= budget) return true;
    if (fresh === null) {
      const leader = liveLeader();
      if (leader !== undefined && !proposing) {
        proposing = true;
        const seq = commandSeq++;
        const id = `final:${seq}`;
        const w = { id, cmd: machine.command(commandRandom, seq), raw: new Uint8Array(0) };
        observe(
          id,
          w,
          leader.node.propose(w, { timeoutMs: 1000 }).then((r) => {
            fresh = { index: r.index };
            return r;
          }),
          () => {
            if (fresh === null) {
              freshFailed++;
              proposing = false;
            }
          },
        );
      }
      return false;
    }
    const target = (fresh as { index: number }).index;
    const leader = liveLeader();
    if (leader === undefined) return false;
    finalMembers = membersOf(leader);
    if (!finalMembers.every((s) => s.node.status().appliedIndex >= target)) return false;
    if (read === 'none') {
      read = 'pending';
      const reader = nemesisPrng.pick(finalMembers);
      reader.node.read({ timeoutMs: 1000 }).then(
        (r) => {
          read = r.index >= target ? 'done' : 'none';
          if (read === 'none') readFailed++;
        },
        (err: unknown) => {
          readFailed++;
          read = 'none';
          log(`final read on ${reader.id}: ${RaftError.is(err) ? err.code : String(err)}`);
        },
      );
    }
    return read === 'done';
  }, livenessSteps + 1);
  if (violation)
    fail(
      (violation as SafetyViolation).violation.property,
      (violation as SafetyViolation).violation.message,
    );
  if (fresh === null) {
    fail(
      'liveness',
      `no leader committed a fresh write within ${livenessSteps} events after healing (${freshFailed} attempts failed)`,
    );
  }
  const target = (fresh as unknown as { index: number }).index;
  const behind = finalMembers.filter((s) => s.node.status().appliedIndex < target);
  if (behind.length > 0 || finalMembers.length === 0) {
    fail(
      'liveness',
      `${behind.map((s) => s.id).join(',') || 'no member'} did not apply up to ${target} after healing`,
    );
  }
  if (read !== 'done') {
    fail(
      'liveness',
      `no linearizable read was served within ${livenessSteps} events after healing (${readFailed} attempts failed)`,
    );
  }
  history.closeOpen();
  const counts = history.counts();
  if (kv) {
    const result = checkLinearizability(kvModel, history.operations());
    if (result.ok === false) {
      fail(
        'linearizability',
        `the clients' KV history is not linearizable:\n${result.counterexample.explanation}`,
      );
    } else if (result.ok === 'unknown') {
      fail(
        'linearizability',
        `the checker ran out of budget on partitions ${result.unknownPartitions.join(',')} (${counts.writes + counts.cas + counts.reads} operations)`,
      );
    }
  }

  const virtualMs = scheduler.now;
  const steps = scheduler.steps;
  for (const sn of nodes.values()) {
    sn.clock.cancelAll();
    sn.disk.crash();
  }
  return {
    seed,
    nodes: n,
    steps,
    virtualMs,
    leaders: checker.counts.leaders,
    applies: checker.counts.applies,
    acked: checker.counts.acked,
    crashes,
    partitions,
    leaderCompletenessChecks: checker.leaderCompletenessChecks,
    messagesChecked: checker.counts.messagesChecked,
    snapshotsTaken,
    snapshotsInstalled,
    membershipChanges,
    transfers,
    ...(stalled !== null
      ? {
          diskStall: {
            target: stallTarget,
            node: stalled.node.id,
            leader: stalled.leader.id,
            term: stalled.term,
            stallMs,
            preVote,
            checkQuorum,
            proposals: stalled.proposals,
            committed: stalled.committed,
            committedDuringStall: stalled.committedDuringStall,
            failed: stalled.failed,
            commitAtStart: stalled.commitAtStart,
            commitAtEnd: stalled.commitAtEnd,
            followersCaughtUp: stalled.followersCaughtUp,
          },
        }
      : {}),
    history: counts,
  };
}
