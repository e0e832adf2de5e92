/**
 * A raft-kv cluster of real processes for the chaos runs: n1..nN on 127.0.0.1..N (file store,
 * TCP, fast elections), each with its flags and environment fixed once so a restart reuses its
 * data directory and keeps its clock rate (clock-skew.ts).
 * Nodes are SIGKILLed, restarted, SIGSTOPped and SIGCONTed; a node that exits without being
 * killed is recorded (a crash is a finding, not noise). Every process is SIGKILLed by
 * `destroy()`, and by a process 'exit' hook when a run dies without calling it (a SIGSTOPped
 * child would otherwise wait forever).
 */
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { StatusBody } from '@raft/server';
import { launch, localNodes, memberFlags, type Proc, statusOf } from '../e2e/processes.js';

/** One node: its addresses, its process (null while killed), whether it is SIGSTOPped. */
export interface ChaosNode {
  readonly id: string;
  readonly host: string;
  readonly http: string;
  readonly raft: string;
  readonly raftPort: number;
  readonly dataDir: string;
  /** Added to the environment of each of its processes (a skewed clock: clock-skew.ts). */
  readonly env: Readonly<Record<string, string>>;
  proc: Proc | null;
  paused: boolean;
  /** Output of the node's earlier processes (the current one's is `proc.output`). */
  log: string;
}

/** The settings every node gets. */
export interface ClusterTimings {
  readonly electionTimeoutMs: number;
  readonly heartbeatMs: number;
  readonly requestTimeoutMs: number;
}

const live = new Set<ChaosCluster>();
let exitHook = false;

/** SIGKILLs every chaos node of this process, synchronously (exit and signal paths). */
export function killAllNodesSync(): void {
  for (const c of live) {
    for (const n of c.nodes) n.proc?.child.kill('SIGKILL');
  }
}

export class ChaosCluster {
  readonly clusterId = `chaos-${randomUUID().slice(0, 8)}`;
  /** Nodes that exited without being killed: `id: code/signal` (each a failure of the run). */
  readonly crashes: string[] = [];

  private constructor(
    readonly root: string,
    readonly nodes: ChaosNode[],
    readonly timings: ClusterTimings,
  ) {}

  /**
   * `size` nodes with free ports, data under `root`, node `i`'s processes run with `envOf(i)` in
   * their environment (every restart too); nothing started yet.
   */
  static async create(
    size: number,
    root: string,
    timings: ClusterTimings,
    envOf: (i: number) => Readonly<Record<string, string>> = () => ({}),
  ): Promise<ChaosCluster> {
    const specs = await localNodes(size);
    const nodes = specs.map((s, i): ChaosNode => {
      const [host, port] = s.raft.split(':') as [string, string];
      return {
        ...s,
        host,
        raftPort: Number(port),
        dataDir: join(root, s.id),
        env: envOf(i),
        proc: null,
        paused: false,
        log: '',
      };
    });
    const c = new ChaosCluster(root, nodes, timings);
    live.add(c);
    if (!exitHook) {
      exitHook = true;
      process.once('exit', killAllNodesSync);
    }
    return c;
  }

  node(id: string): ChaosNode {
    const n = this.nodes.find((m) => m.id === id);
    if (n === undefined) throw new Error(`no node ${id}`);
    return n;
  }

  private args(n: ChaosNode): string[] {
    const t = this.timings;
    return [
      ...memberFlags(n, this.nodes),
      '--store',
      'file',
      '--transport',
      'tcp',
      '--data-dir',
      n.dataDir,
      '--cluster-id',
      this.clusterId,
      '--election-timeout-ms',
      String(t.electionTimeoutMs),
      '--heartbeat-ms',
      String(t.heartbeatMs),
      '--request-timeout-ms',
      String(t.requestTimeoutMs),
      '--log-level',
      'warn',
    ];
  }

  /** Starts `n` (no-op while it runs). */
  start(n: ChaosNode): void {
    if (n.proc !== null) return;
    const proc = launch(this.args(n), n.env);
    n.proc = proc;
    n.paused = false;
    void proc.exited.then(({ code, signal }) => {
      if (n.proc !== proc) return; // killed on purpose: kill() cleared it first
      n.log += proc.output;
      n.proc = null;
      n.paused = false;
      this.crashes.push(`${n.id} exited by itself (code ${code}, signal ${signal})`);
    });
  }

  startAll(): void {
    for (const n of this.nodes) this.start(n);
  }

  /** SIGKILLs `n` (paused or not) and waits for it to go. */
  async kill(n: ChaosNode): Promise<void> {
    const proc = n.proc;
    if (proc === null) return;
    n.proc = null;
    n.paused = false;
    proc.child.kill('SIGKILL');
    await proc.exited;
    n.log += `${proc.output}\n--- SIGKILL\n`;
  }

  pause(n: ChaosNode): void {
    if (n.proc === null || n.paused) return;
    n.proc.child.kill('SIGSTOP');
    n.paused = true;
  }

  resume(n: ChaosNode): void {
    if (n.proc === null || !n.paused) return;
    n.proc.child.kill('SIGCONT');
    n.paused = false;
  }

  /** The nodes running and not paused. */
  up(): ChaosNode[] {
    return this.nodes.filter((n) => n.proc !== null && !n.paused);
  }

  /** Statuses of every node (null: down, paused or not answering). */
  async statuses(timeoutMs = 1000): Promise<(StatusBody | null)[]> {
    return Promise.all(
      this.nodes.map((n) =>
        n.proc !== null && !n.paused ? statusOf(n.http, timeoutMs) : Promise.resolve(null),
      ),
    );
  }

  /** The node that says it leads, with the highest term, among those that answer; or null. */
  async leader(): Promise<ChaosNode | null> {
    const statuses = await this.statuses();
    let best: StatusBody | null = null;
    for (const s of statuses) {
      if (s?.role === 'leader' && (best === null || s.term > best.term)) best = s;
    }
    return best === null ? null : this.node(best.id);
  }

  /** Every node's output so far (earlier processes included). */
  output(n: ChaosNode): string {
    return n.log + (n.proc?.output ?? '');
  }

  /** Writes each node's output to `<root>/<id>.log`; the paths. */
  saveLogs(): string[] {
    return this.nodes.map((n) => {
      const path = join(this.root, `${n.id}.log`);
      writeFileSync(path, this.output(n));
      return path;
    });
  }

  /** SIGKILLs every node. */
  async destroy(): Promise<void> {
    await Promise.all(this.nodes.map((n) => this.kill(n)));
    live.delete(this);
  }
}
