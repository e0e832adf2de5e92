/**
 * The nemesis: a schedule of faults drawn from a seeded PRNG, and applying and healing each.
 *
 * One fault at a time: it starts at its planned time, lasts its planned duration, is healed, and
 * the cluster gets a quiet gap before the next one. The seed fixes the kinds, times, durations
 * and random targets; faults aimed at "the leader" resolve it when they start (real processes are
 * not deterministic), so the executed schedule, printed with every result, names the targets.
 *
 * | kind                  | fault                                                  | heal            |
 * | --------------------- | ------------------------------------------------------ | --------------- |
 * | kill                  | SIGKILL one random node                                | restart it      |
 * | kill-leader           | SIGKILL the leader                                     | restart it      |
 * | kill-minority         | SIGKILL a random minority (5 nodes: two)               | restart them    |
 * | pause                 | SIGSTOP one random node                                | SIGCONT         |
 * | pause-leader          | SIGSTOP the leader                                     | SIGCONT         |
 * | isolate               | cut one random node from all others                    | remove the cuts |
 * | isolate-leader        | cut the leader from all others                         | remove the cuts |
 * | split                 | a random majority / minority; half the time the leader | remove the cuts |
 * |                       | is put on the minority side                            |                 |
 * | bridge                | two groups that cannot talk, and one node that talks   | remove the cuts |
 * |                       | to both (3 nodes: A - B cut, C sees both)              |                 |
 * | slow-disk             | throttle one random node's disk writes (a cgroup:      | lift the limit, |
 * |                       | 50 write IOPS, each O_DSYNC append tens of ms)         | move it back    |
 * | slow-disk-leader      | throttle the leader's disk writes                      | the same        |
 *
 * The partition kinds need a packet filter and the slow-disk kinds a cgroup blkio (v1) or io
 * (v2) controller (slow-disk.ts); without them the schedule uses the others only. Skewed clocks
 * (clock-skew.ts) are not a fault of the schedule: every node's clock runs at its own rate for
 * the whole run.
 */
import type { Prng } from '@raft/testing';
import type { ChaosCluster, ChaosNode } from './cluster.js';
import type { Cut, PacketFilter } from './packet-filter.js';
import type { SlowDisk } from './slow-disk.js';

export type NemesisKind =
  | 'kill'
  | 'kill-leader'
  | 'kill-minority'
  | 'pause'
  | 'pause-leader'
  | 'isolate'
  | 'isolate-leader'
  | 'split'
  | 'bridge'
  | 'slow-disk'
  | 'slow-disk-leader';

export const PROCESS_KINDS: readonly NemesisKind[] = [
  'kill',
  'kill-leader',
  'kill-minority',
  'pause',
  'pause-leader',
];
export const PARTITION_KINDS: readonly NemesisKind[] = [
  'isolate',
  'isolate-leader',
  'split',
  'bridge',
];
export const DISK_KINDS: readonly NemesisKind[] = ['slow-disk', 'slow-disk-leader'];

/** One fault of the plan: all of it drawn from the seed. */
export interface PlannedFault {
  /** Start, in ms after the workload started. */
  readonly at: number;
  readonly durationMs: number;
  readonly kind: NemesisKind;
  /** A random order of the node indexes: random targets are taken from its front. */
  readonly order: readonly number[];
  /** For `split`: put the leader on the minority side. */
  readonly leaderInMinority: boolean;
}

/** A fault as it happened: times in ms after the workload started, the targets by id. */
export interface AppliedFault {
  readonly kind: NemesisKind;
  readonly at: number;
  healedAt: number | null;
  /**
   * Killed, paused or slowed nodes (`n2 (254:0 (vda) at 50 write iops)`), or the sides of a
   * partition (`n1 | n2 n3`).
   */
  readonly targets: string;
  /** Something that did not go to plan (no leader found, a heal that failed). */
  note?: string;
}

export interface PlanOptions {
  readonly size: number;
  /** Faults start within [startMs, endMs) and are healed by endMs. */
  readonly startMs: number;
  readonly endMs: number;
  readonly partitions: boolean;
  /** Whether nodes' disks can be slowed (the slow-disk kinds). */
  readonly slowDisk: boolean;
  readonly minFaultMs?: number;
  readonly maxFaultMs?: number;
  readonly minGapMs?: number;
  readonly maxGapMs?: number;
}

/** The plan for one run, from `prng` alone. */
export function planSchedule(prng: Prng, o: PlanOptions): PlannedFault[] {
  const kinds = [
    ...PROCESS_KINDS,
    ...(o.partitions ? PARTITION_KINDS : []),
    ...(o.slowDisk ? DISK_KINDS : []),
  ].filter((k) => k !== 'kill-minority' || o.size >= 5);
  const minFault = o.minFaultMs ?? 2000;
  const maxFault = o.maxFaultMs ?? 6000;
  const minGap = o.minGapMs ?? 1000;
  const maxGap = o.maxGapMs ?? 3000;
  const plan: PlannedFault[] = [];
  let t = o.startMs;
  while (t + minFault <= o.endMs) {
    const kind = prng.pick(kinds);
    const durationMs = Math.min(Math.round(prng.range(minFault, maxFault)), o.endMs - t);
    const order = prng.shuffle(Array.from({ length: o.size }, (_, i) => i));
    const leaderInMinority = prng.chance(0.5);
    plan.push({ at: t, durationMs, kind, order, leaderInMinority });
    t += durationMs + Math.round(prng.range(minGap, maxGap));
  }
  return plan;
}

/** A plan, one line per fault. */
export function describePlan(plan: readonly PlannedFault[]): string {
  return plan
    .map(
      (f) => `  +${(f.at / 1000).toFixed(1)}s ${f.kind} for ${(f.durationMs / 1000).toFixed(1)}s`,
    )
    .join('\n');
}

/** An executed schedule, one line per fault. */
export function describeSchedule(schedule: readonly AppliedFault[]): string {
  if (schedule.length === 0) return '  (no faults)';
  return schedule
    .map((f) => {
      const healed =
        f.healedAt === null ? 'never healed' : `healed +${(f.healedAt / 1000).toFixed(1)}s`;
      const note = f.note === undefined ? '' : ` (${f.note})`;
      return `  +${(f.at / 1000).toFixed(1)}s ${f.kind.padEnd(16)} ${f.targets}; ${healed}${note}`;
    })
    .join('\n');
}

const ids = (nodes: readonly ChaosNode[]) => nodes.map((n) => n.id).join(' ');

/** Cuts every link between a node of `a` and a node of `b`. */
function cutsBetween(a: readonly ChaosNode[], b: readonly ChaosNode[]): Cut[] {
  const cuts: Cut[] = [];
  for (const x of a) {
    for (const y of b) {
      cuts.push({ a: { host: x.host, port: x.raftPort }, b: { host: y.host, port: y.raftPort } });
    }
  }
  return cuts;
}

/** Applies and heals planned faults on a cluster. */
export class Nemesis {
  private active: { fault: AppliedFault; heal: () => Promise<void> } | null = null;
  readonly schedule: AppliedFault[] = [];

  constructor(
    private readonly cluster: ChaosCluster,
    private readonly filter: PacketFilter,
    private readonly disk: SlowDisk,
    private readonly now: () => number,
  ) {}

  /** Starts `p` (after healing whatever is still active). */
  async apply(p: PlannedFault): Promise<AppliedFault> {
    await this.heal();
    const startedAt = this.now();
    const c = this.cluster;
    const byOrder = p.order.map((i) => c.nodes[i] as ChaosNode);
    let note: string | undefined;
    const leaderOr = async (fallback: ChaosNode): Promise<ChaosNode> => {
      const leader = await c.leader();
      if (leader !== null) return leader;
      note = `no leader found, ${fallback.id} instead`;
      return fallback;
    };
    const first = byOrder[0] as ChaosNode;
    let targets: string;
    let heal: () => Promise<void>;
    switch (p.kind) {
      case 'kill':
      case 'kill-leader':
      case 'kill-minority': {
        const victims =
          p.kind === 'kill'
            ? [first]
            : p.kind === 'kill-leader'
              ? [await leaderOr(first)]
              : byOrder.slice(0, Math.floor((c.nodes.length - 1) / 2));
        targets = ids(victims);
        await Promise.all(victims.map((v) => c.kill(v)));
        heal = async () => {
          for (const v of victims) c.start(v);
        };
        break;
      }
      case 'pause':
      case 'pause-leader': {
        const victim = p.kind === 'pause' ? first : await leaderOr(first);
        targets = victim.id;
        c.pause(victim);
        heal = async () => c.resume(victim);
        break;
      }
      case 'isolate':
      case 'isolate-leader':
      case 'split':
      case 'bridge': {
        let cuts: Cut[];
        if (p.kind === 'bridge') {
          // Two groups that cannot talk to each other and one node that talks to both.
          const half = Math.floor((c.nodes.length - 1) / 2);
          const left = byOrder.slice(0, half);
          const bridge = byOrder[half] as ChaosNode;
          const right = byOrder.slice(half + 1);
          cuts = cutsBetween(left, right);
          targets = `${ids(left)} | ${bridge.id} (bridge) | ${ids(right)}`;
        } else {
          let minority: ChaosNode[];
          if (p.kind === 'isolate') minority = [first];
          else if (p.kind === 'isolate-leader') minority = [await leaderOr(first)];
          else {
            const size = Math.floor((c.nodes.length - 1) / 2);
            if (p.leaderInMinority) {
              const leader = await leaderOr(first);
              minority = [leader, ...byOrder.filter((n) => n !== leader)].slice(0, size);
            } else minority = byOrder.slice(0, size);
          }
          const majority = c.nodes.filter((n) => !minority.includes(n));
          cuts = cutsBetween(minority, majority);
          targets = `${ids(minority)} | ${ids(majority)}`;
        }
        await this.filter.setCuts(cuts);
        heal = () => this.filter.setCuts([]);
        break;
      }
      case 'slow-disk':
      case 'slow-disk-leader': {
        const victim = p.kind === 'slow-disk' ? first : await leaderOr(first);
        targets = `${victim.id} (${this.disk.throttle})`;
        const pid = victim.proc?.child.pid;
        if (pid === undefined) note = `${victim.id} is not running`;
        else await this.disk.slow(pid);
        heal = () => this.disk.heal();
        break;
      }
    }
    const fault: AppliedFault = { kind: p.kind, at: startedAt, healedAt: null, targets };
    if (note !== undefined) fault.note = note;
    this.schedule.push(fault);
    this.active = { fault, heal };
    return fault;
  }

  /** Heals the active fault, if any. */
  async heal(): Promise<void> {
    const active = this.active;
    if (active === null) return;
    this.active = null;
    try {
      await active.heal();
    } catch (err) {
      active.fault.note = `heal failed: ${(err as Error).message}`;
      throw err;
    } finally {
      active.fault.healedAt = this.now();
    }
  }

  /**
   * Heals everything whatever the schedule says: no cuts, no slowed disk, every node running and
   * not paused. For the end of a run.
   */
  async healAll(): Promise<void> {
    try {
      await this.heal();
    } finally {
      await this.filter.setCuts([]).catch(() => undefined);
      await this.disk.heal().catch(() => undefined);
      for (const n of this.cluster.nodes) {
        this.cluster.resume(n);
        this.cluster.start(n);
      }
    }
  }

  /**
   * Runs `plan` against the clock (`now()` ms since the workload started) until it is done or
   * `stopped()` says so; every fault healed at its end.
   */
  async run(plan: readonly PlannedFault[], stopped: () => boolean): Promise<void> {
    for (const p of plan) {
      if (!(await this.sleepUntil(p.at, stopped))) break;
      await this.apply(p);
      const ok = await this.sleepUntil(p.at + p.durationMs, stopped);
      await this.heal();
      if (!ok) break;
    }
  }

  private async sleepUntil(t: number, stopped: () => boolean): Promise<boolean> {
    while (this.now() < t) {
      if (stopped()) return false;
      await new Promise((r) => setTimeout(r, Math.min(100, Math.max(1, t - this.now()))));
    }
    return !stopped();
  }
}
