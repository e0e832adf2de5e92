/**
 * One seeded simulation scenario: real RaftNodes (engine + runtime) on a SimNetwork, SimDisks
 * and SimClocks, with clients proposing commands and a nemesis injecting faults, and the
 * SafetyChecker watching every event.
 *
 * ```
 *   boot ──► chaos phase (steps) ──► heal phase ──► liveness: one leader, a fresh write
 *            faults: drop, duplicate,     all faults off,     commits, every node applies
 *            reorder, partitions, cuts,   crashed nodes       everything (bounded steps)
 *            crashes losing unsynced      restart
 *            writes, restarts
 * ```
 *
 * Everything is a function of the seed: the same seed replays the same run, event for event.
 * Runs are bounded by step counts, never by wall time.
 */
import type {
  CommandCodec,
  Logger,
  Membership,
  NodeId,
  RaftNode,
  Role,
  StateMachine,
} from '@raft/core';
import { createRaftNode } from '@raft/core';
import { SafetyChecker, SafetyViolation } from '../checkers/safety.js';
import { Prng } from './prng.js';
import { Scheduler } from './scheduler.js';
import { SimClock } from './sim-clock.js';
import { SimDisk } from './sim-disk.js';
import { SimNetwork } from './sim-network.js';

/** Knobs of one scenario; everything not given is drawn from the seed. */
export interface ScenarioConfig {
  readonly seed: number;
  /** Cluster size. Default: drawn from 3, 5, 7. */
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
}

/** The fault and tuning knobs of a scenario; each is drawn from the seed unless fixed. */
export interface ScenarioKnobs {
  readonly maxEntriesPerAppend: number;
  readonly maxInflightAppends: number;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
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
  /** Probability weights of the nemesis actions: partition, isolate, cut, heal, crash. */
  readonly nemesisWeights: readonly [number, number, number, number, number];
}

/**
 * Named scenario profiles. `figure8` aims at §5.4.2: three nodes, one entry per append, and
 * leaders isolated the moment they are elected (their first entries stay on their own disk) or
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

const identityCodec: CommandCodec<Uint8Array> = { encode: (c) => c, decode: (b) => b };

interface SimNode {
  readonly id: NodeId;
  readonly disk: SimDisk;
  clock: SimClock;
  node: RaftNode<Uint8Array, number>;
  role: Role;
  up: boolean;
  incarnation: number;
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

/** Runs one scenario. Resolves with a report, or rejects with a {@link ScenarioFailure}. */
export async function runScenario(config: ScenarioConfig): Promise<ScenarioReport> {
  const seed = config.seed;
  const root = new Prng(seed);
  const knobs = root.fork('knobs');
  const faults = config.faults ?? true;
  const n = config.nodes ?? knobs.pick([3, 3, 3, 5, 5, 7]);
  const chaosSteps = config.steps ?? 2000;
  const livenessSteps = config.livenessSteps ?? 30_000;
  const traceLimit = config.traceLines ?? 60;
  const k = config.knobs ?? {};
  // Every knob takes its draw even when fixed, so fixing one never shifts the others.
  const draw = <T>(value: T | undefined, drawn: T): T => value ?? drawn;
  const maxEntriesPerAppend = draw(k.maxEntriesPerAppend, knobs.pick([1, 2, 4, 64, 4096]));
  const maxInflightAppends = draw(k.maxInflightAppends, knobs.pick([1, 2, 8, 64]));
  const preVote = draw(k.preVote, knobs.chance(0.8));
  const checkQuorum = draw(k.checkQuorum, knobs.chance(0.8));
  const dropRate = faults ? draw(k.dropRate, knobs.pick([0, 0.01, 0.05, 0.15])) : 0;
  const duplicateRate = faults ? draw(k.duplicateRate, knobs.pick([0, 0.02, 0.1])) : 0;
  const maxNetDelay = draw(k.maxNetDelayMs, knobs.pick([2, 5, 15, 40]));
  const maxDiskDelay = draw(k.maxDiskDelayMs, knobs.pick([0.5, 2, 8]));
  // Short-lived leaders that crash soon after election leave entries of their term on few
  // nodes: the precondition of Figure 8 (§5.4.2) and of most interesting log repairs.
  const leaderCrashRate = faults ? draw(k.leaderCrashRate, knobs.pick([0, 0.1, 0.3, 0.6])) : 0;
  const commitCrashRate = faults ? draw(k.commitCrashRate, knobs.pick([0, 0, 0.01, 0.05])) : 0;
  const leaderIsolateRate = faults ? draw(k.leaderIsolateRate, knobs.pick([0, 0, 0.2, 0.5])) : 0;
  const commitIsolateRate = faults ? draw(k.commitIsolateRate, knobs.pick([0, 0, 0.02, 0.1])) : 0;
  const weights = k.nemesisWeights ?? [25, 10, 10, 25, 30];
  const totalWeight = weights.reduce((a, b) => a + b, 0);

  const scheduler = new Scheduler();
  const network = new SimNetwork(scheduler, root.fork('network'), {
    minDelayMs: 0.5,
    maxDelayMs: maxNetDelay,
    dropRate,
    duplicateRate,
  });
  const checker = new SafetyChecker();
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
      return `  ${sn.id}${sn.up ? '' : ' (down)'} ${st.role} term=${st.term} leader=${st.leaderId} commit=${st.commitIndex} applied=${st.appliedIndex} last=${st.lastLogIndex} durable=${sn.disk.durableEntries().length} pendingDisk=${sn.disk.pendingOperations} state=${sn.node.state}${st.progress ? ` progress=${JSON.stringify(st.progress)}` : ''}`;
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

  const ids = Array.from({ length: n }, (_, i) => `n${i + 1}`);
  const bootstrap: Membership = { members: ids.map((id) => ({ id, address: id, voter: true })) };
  log(
    `seed=${seed} nodes=${n} drop=${dropRate} dup=${duplicateRate} netDelay<=${maxNetDelay} diskDelay<=${maxDiskDelay} maxEntries=${maxEntriesPerAppend} inflight=${maxInflightAppends} preVote=${preVote} checkQuorum=${checkQuorum} leaderCrash=${leaderCrashRate} commitCrash=${commitCrashRate} leaderIsolate=${leaderIsolateRate} commitIsolate=${commitIsolateRate}`,
  );

  const nodes = new Map<NodeId, SimNode>();
  const nemesisPrng = root.fork('nemesis');
  let phase: 'chaos' | 'heal' = 'chaos';
  let crashes = 0;
  let partitions = 0;

  const boot = (id: NodeId, disk: SimDisk, incarnation: number): SimNode => {
    const stores =
      incarnation === 0
        ? { logStore: disk.logStore, stableStore: disk.stableStore }
        : disk.reopen();
    const clock = new SimClock(scheduler, { label: id });
    let sn: SimNode;
    const sm: StateMachine<Uint8Array, number> = {
      apply: (command, at) => {
        guard(() => checker.onApply(id, at.index, at.term, command));
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
        return at.index;
      },
    };
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
    const node = createRaftNode<Uint8Array, number>({
      id,
      stateMachine: sm,
      codec: identityCodec,
      logStore: stores.logStore,
      stableStore: stores.stableStore,
      transport: network.transport(id),
      clock,
      random: root.fork(`random:${id}:${incarnation}`).asRandom(),
      tickMs: 10,
      heartbeatMs: 30,
      electionTimeoutMs: 150,
      requestTimeoutMs: 2000,
      logger,
      maxEntriesPerAppend,
      maxInflightAppends,
      preVote,
      checkQuorum,
    });
    sn = { id, disk, clock, node, role: 'follower', up: true, incarnation };
    guard(() => checker.onStart(id, disk.durableEntries()));
    node.subscribe((ev) => {
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
      } else if (ev.type === 'fatal') {
        log(`${id} fatal ${ev.error.message}`);
        guard(() => checker.onFatal(id, ev.error.message));
      }
    });
    node.start({ bootstrap }).catch((err: unknown) => {
      if (sn.up && nodes.get(id) === sn) log(`${id} start failed: ${String(err)}`);
    });
    return sn;
  };

  for (const id of ids) {
    const disk = new SimDisk(scheduler, root.fork(`disk:${id}`), {
      minDelayMs: 0.1,
      maxDelayMs: maxDiskDelay,
      label: id,
    });
    disk.onAppendIssued = (entries) => guard(() => checker.onAppendIssued(id, entries));
    disk.onDurableAppend = (entries) => guard(() => checker.onDurableAppend(id, entries));
    disk.onDurableSave = (hs) => guard(() => checker.onDurableSave(id, hs));
    nodes.set(id, boot(id, disk, 0));
  }

  const crashAndRestart = (sn: SimNode): void => {
    if (!sn.up || phase !== 'chaos') return;
    crash(sn);
    scheduler.schedule(
      nemesisPrng.range(20, 600),
      () => restart(nodes.get(sn.id) as SimNode),
      'restart',
    );
  };
  const crash = (sn: SimNode): void => {
    // Check what it applied before it goes: the periodic check may not have seen it yet.
    guard(() => checker.onCommitted(sn.id, sn.node.status().appliedIndex));
    sn.up = false;
    sn.clock.cancelAll();
    sn.disk.crash();
    network.setDown(sn.id, true);
    crashes++;
    log(`CRASH ${sn.id} (pending disk writes lost)`);
  };
  const restart = (sn: SimNode): void => {
    if (sn.up) return;
    network.setDown(sn.id, false);
    const next = boot(sn.id, sn.disk, sn.incarnation + 1);
    nodes.set(sn.id, next);
    log(`RESTART ${sn.id}`);
  };

  // Clients: each keeps one proposal in flight against a random live node.
  const clientPrng = root.fork('clients');
  let commandSeq = 0;
  const clientCount = clientPrng.pick([1, 2, 4]);
  const runClient = (c: number): void => {
    if (phase !== 'chaos') return;
    const live = [...nodes.values()].filter((s) => s.up);
    const target = live.length > 0 ? clientPrng.pick(live) : undefined;
    if (target === undefined) {
      scheduler.schedule(20, () => runClient(c), 'client');
      return;
    }
    const command = new TextEncoder().encode(`c${c}:${commandSeq++}`);
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      timer.cancel();
      scheduler.schedule(clientPrng.range(0.5, 20), () => runClient(c), 'client');
    };
    // The client's own bound: a crashed node's promise never settles.
    const timer = scheduler.schedule(3000, finish, 'client-timeout');
    target.node.propose(command).then(
      (r) => {
        guard(() => checker.onAcked(r.index, r.term, command));
        finish();
      },
      () => finish(),
    );
  };
  for (let c = 0; c < clientCount; c++)
    scheduler.schedule(clientPrng.range(0, 50), () => runClient(c), 'client');

  // Nemesis.
  const nemesis = nemesisPrng;
  const strike = (): void => {
    if (phase !== 'chaos') return;
    const all = [...nodes.values()];
    const action = pickWeighted(weights, nemesis.next() * totalWeight);
    if (action === 0) {
      const shuffled = nemesis.shuffle(ids.slice());
      const cut = 1 + nemesis.int(n - 1);
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
      log('HEAL network');
    } else {
      const live = all.filter((s) => s.up);
      // Prefer the leader: crashing it exercises the most recovery paths.
      const leader = live.find((s) => s.role === 'leader');
      const victim =
        leader !== undefined && nemesis.chance(0.5)
          ? leader
          : live.length > 0
            ? nemesis.pick(live)
            : undefined;
      if (victim !== undefined) crashAndRestart(victim);
    }
    scheduler.schedule(nemesis.range(30, 400), strike, 'nemesis');
  };
  if (faults) scheduler.schedule(nemesis.range(100, 300), strike, 'nemesis');

  const stopped = (): boolean => {
    if ((scheduler.steps & 7) === 0 && violation === null) {
      for (const sn of nodes.values()) {
        if (sn.up) guard(() => checker.onCommitted(sn.id, sn.node.status().appliedIndex));
      }
    }
    return violation !== null;
  };
  await scheduler.runUntil(() => stopped() || scheduler.steps >= chaosSteps, chaosSteps + 1);
  if (violation)
    fail(
      (violation as SafetyViolation).violation.property,
      (violation as SafetyViolation).violation.message,
    );

  // Heal: every fault off, every node back, then the cluster must make progress.
  phase = 'heal';
  network.heal();
  network.configure({ dropRate: 0, duplicateRate: 0 });
  for (const sn of nodes.values()) restart(sn);
  log('HEAL all: faults off, crashed nodes restarted');

  const liveLeader = (): SimNode | undefined => {
    const leaders = [...nodes.values()].filter((s) => s.up && s.node.status().role === 'leader');
    if (leaders.length !== 1) return undefined;
    const leader = leaders[0] as SimNode;
    const term = leader.node.status().term;
    return [...nodes.values()].every((s) => s.node.status().term <= term) ? leader : undefined;
  };
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
        const command = new TextEncoder().encode(`final:${commandSeq++}`);
        leader.node.propose(command, { timeoutMs: 1000 }).then(
          (r) => {
            guard(() => checker.onAcked(r.index, r.term, command));
            fresh = { index: r.index };
          },
          () => {
            freshFailed++;
            proposing = false;
          },
        );
      }
      return false;
    }
    const target = (fresh as { index: number }).index;
    return [...nodes.values()].every((s) => s.node.status().appliedIndex >= target);
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
  const behind = [...nodes.values()].filter((s) => s.node.status().appliedIndex < target);
  if (behind.length > 0) {
    fail(
      'liveness',
      `${behind.map((s) => s.id).join(',')} did not apply up to ${target} after healing`,
    );
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
  };
}
