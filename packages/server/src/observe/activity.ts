/**
 * What the dashboard charts: one sample per second of this node's commit index, the writes it
 * answered and their latency (p50, p99), for the last `keepSeconds`; and the leader changes
 * this node saw. In memory only, bounded.
 */
import type { RaftNode } from '@raft/core';

/** One second of activity on this node. */
export interface ActivitySample {
  /** End of the second, ms since the epoch. */
  readonly t: number;
  readonly commitIndex: number;
  /** Entries committed in that second (commit index delta): the cluster's write rate. */
  readonly commits: number;
  /** Proposals this node answered in that second. */
  readonly writes: number;
  /** Latency percentiles of those proposals, ms (null: none). */
  readonly p50Ms: number | null;
  readonly p99Ms: number | null;
}

/** A leader change this node saw. */
export interface ElectionRecord {
  readonly at: number;
  readonly term: number;
  readonly leaderId: string | null;
}

/** Most latencies kept per second (beyond it, a uniform sample is kept). */
const MAX_LATENCIES_PER_SECOND = 10_000;

function percentile(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] as number;
}

/** Samples a node's activity once per second. */
export class Activity {
  private readonly samples: ActivitySample[] = [];
  private readonly elections: ElectionRecord[] = [];
  private latencies: number[] = [];
  private seen = 0;
  private lastCommit: number;
  private readonly timer: ReturnType<typeof setInterval>;
  private readonly unsubscribe: () => void;

  constructor(
    private readonly node: RaftNode<unknown, unknown>,
    private readonly keepSeconds = 300,
    private readonly keepElections = 20,
  ) {
    this.lastCommit = node.status().commitIndex;
    this.timer = setInterval(() => this.sample(), 1000);
    this.timer.unref?.();
    this.unsubscribe = node.subscribe((e) => {
      if (e.type !== 'leaderChanged') return;
      this.elections.push({ at: Date.now(), term: e.term, leaderId: e.leaderId });
      if (this.elections.length > this.keepElections) this.elections.shift();
    });
  }

  /** Records one answered proposal. */
  recordWrite(latencyMs: number): void {
    this.seen += 1;
    if (this.latencies.length < MAX_LATENCIES_PER_SECOND) this.latencies.push(latencyMs);
    else {
      const slot = Math.floor(Math.random() * this.seen);
      if (slot < MAX_LATENCIES_PER_SECOND) this.latencies[slot] = latencyMs;
    }
  }

  history(): readonly ActivitySample[] {
    return this.samples.slice();
  }

  recentElections(): readonly ElectionRecord[] {
    return this.elections.slice();
  }

  close(): void {
    clearInterval(this.timer);
    this.unsubscribe();
  }

  private sample(): void {
    const commitIndex = this.node.status().commitIndex;
    const sorted = this.latencies.sort((a, b) => a - b);
    this.samples.push({
      t: Date.now(),
      commitIndex,
      commits: Math.max(0, commitIndex - this.lastCommit),
      writes: this.seen,
      p50Ms: percentile(sorted, 0.5),
      p99Ms: percentile(sorted, 0.99),
    });
    if (this.samples.length > this.keepSeconds) this.samples.shift();
    this.lastCommit = commitIndex;
    this.latencies = [];
    this.seen = 0;
  }
}
