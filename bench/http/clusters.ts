/**
 * The systems under test, as real processes on this machine: a raft-kv cluster (the built
 * `apps/kv/dist/cli.js`, one process per node on 127.0.0.1, .2, ...), an etcd cluster (Debian's
 * etcd 3.4, one member per process on the same addresses, fsync on as always), and the bare
 * Map server. Each reports its processes' CPU and can kill and restart a member.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deleteRedisKeys } from '../redis-keys.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const KV_CLI = join(root, 'apps', 'kv', 'dist', 'cli.js');

/** Timing shared by both systems, so neither gets an easier election. */
export interface Timing {
  readonly heartbeatMs: number;
  readonly electionTimeoutMs: number;
}

/** A running cluster. */
export interface Cluster {
  readonly name: string;
  readonly size: number;
  /** Base URLs of the client APIs, by member. */
  readonly endpoints: readonly string[];
  /** Index of the member that leads now (polls until one does; bounded). */
  leader(timeoutMs?: number): Promise<number>;
  kill(i: number): Promise<void>;
  restart(i: number): Promise<void>;
  /** CPU seconds used so far by the members' processes (user + system). */
  cpuSeconds(): number;
  stop(): Promise<void>;
}

const TICKS_PER_SECOND = 100; // Linux USER_HZ

/** User + system CPU seconds of `pid` so far (0 when it is gone). */
function cpuOf(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
  } catch {
    return 0;
  }
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
}

async function stopAll(children: readonly (ChildProcess | null)[]): Promise<void> {
  for (const c of children) c?.kill('SIGKILL');
  await Promise.all(children.map((c) => (c === null ? undefined : exited(c))));
}

/**
 * What both clusters do alike with their member processes: find the leader by asking each
 * running member, kill one, start it again and wait for it to answer, and sum their CPU.
 */
function memberControl(
  what: string,
  children: (ChildProcess | null)[],
  isLeader: (i: number) => Promise<boolean>,
  answers: (i: number) => Promise<unknown>,
  start: (i: number) => void,
): Pick<Cluster, 'leader' | 'kill' | 'restart' | 'cpuSeconds'> {
  return {
    async leader(timeoutMs = 30_000) {
      let found = -1;
      await until(
        `a ${what} leader`,
        async () => {
          for (let i = 0; i < children.length; i++) {
            if (children[i] === null) continue;
            if (await isLeader(i).catch(() => false)) {
              found = i;
              return true;
            }
          }
          return false;
        },
        timeoutMs,
      );
      return found;
    },
    async kill(i) {
      const c = children[i];
      children[i] = null;
      if (c !== null && c !== undefined) {
        c.kill('SIGKILL');
        await exited(c);
      }
    },
    async restart(i) {
      start(i);
      await until(`the ${what} member back`, async () => (await answers(i)) !== null, 30_000);
    },
    cpuSeconds: () => children.reduce((sum, c) => sum + cpuOf(c?.pid), 0),
  };
}

/** Options of {@link startRaftKv}. */
export interface RaftKvOptions {
  readonly size: number;
  readonly store: 'file' | 'sqlite' | 'redis';
  readonly transport: 'tcp' | 'ws';
  readonly timing: Timing;
  /** Scratch directory for the nodes' data. */
  readonly dir: string;
  readonly basePort: number;
  /** Write a V8 CPU profile of each node into this directory (`node --cpu-prof`). */
  readonly profileDir?: string;
}

export async function startRaftKv(options: RaftKvOptions): Promise<Cluster> {
  if (!existsSync(KV_CLI)) {
    throw new Error(`${KV_CLI} is missing: run pnpm build (pnpm bench:cluster builds it)`);
  }
  const clusterId = `bench-${process.pid}-${options.basePort}`;
  const members = Array.from({ length: options.size }, (_, k) => ({
    id: `n${k + 1}`,
    host: `127.0.0.${k + 1}`,
    http: options.basePort + k + 1,
    raft: options.basePort + 100 + k + 1,
  }));
  const peers = members.map((m) => `${m.id}=${m.host}:${m.raft}`).join(',');
  const dataRoot = join(options.dir, clusterId);
  const children: (ChildProcess | null)[] = members.map(() => null);
  const start = (i: number) => {
    const m = members[i] as (typeof members)[number];
    const dataDir = join(dataRoot, m.id);
    mkdirSync(dataDir, { recursive: true });
    children[i] = spawn(
      process.execPath,
      [
        ...(options.profileDir === undefined
          ? []
          : [
              '--cpu-prof',
              '--cpu-prof-dir',
              options.profileDir,
              '--cpu-prof-name',
              `${m.id}.cpuprofile`,
            ]),
        ...(process.env.RAFT_BENCH_NODE_FLAGS ?? '').split(' ').filter(Boolean),
        KV_CLI,
        '--id',
        m.id,
        '--http',
        `${m.host}:${m.http}`,
        '--raft',
        `${m.host}:${m.raft}`,
        '--peers',
        peers,
        '--data-dir',
        dataDir,
        '--store',
        options.store,
        '--transport',
        options.transport,
        '--cluster-id',
        clusterId,
        '--heartbeat-ms',
        String(options.timing.heartbeatMs),
        '--election-timeout-ms',
        String(options.timing.electionTimeoutMs),
        '--log-level',
        'error',
      ],
      { stdio: ['ignore', 'ignore', 'inherit'] },
    );
  };
  for (let i = 0; i < members.length; i++) start(i);
  const endpoints = members.map((m) => `http://${m.host}:${m.http}`);
  const statusOf = async (i: number) => {
    const res = await fetch(`${endpoints[i]}/v1/status`, { signal: AbortSignal.timeout(1000) });
    return (await res.json()) as { role: string; leaderId: string | null };
  };
  const cluster: Cluster = {
    name: `raft-kv (${options.store}, ${options.transport})`,
    size: options.size,
    endpoints,
    ...memberControl(
      'raft-kv',
      children,
      async (i) => (await statusOf(i)).role === 'leader',
      statusOf,
      start,
    ),
    async stop() {
      if (options.profileDir !== undefined) {
        // A graceful exit writes the profiles; SIGKILL would lose them.
        for (const c of children) c?.kill('SIGTERM');
        await Promise.race([
          Promise.all(children.map((c) => (c === null ? undefined : exited(c)))),
          new Promise((r) => setTimeout(r, 15_000)),
        ]);
      }
      await stopAll(children);
      rmSync(dataRoot, { recursive: true, force: true });
      if (options.store === 'redis') await deleteRedisKeys([`raft-kv:${clusterId}:`]);
    },
  };
  await cluster.leader();
  return cluster;
}

/** Whether Debian's etcd is installed. */
export function etcdAvailable(): string | null {
  try {
    return execFileSync('etcd', ['--version'], { encoding: 'utf8' }).split('\n')[0] ?? null;
  } catch {
    return null;
  }
}

export interface EtcdOptions {
  readonly size: number;
  readonly timing: Timing;
  readonly dir: string;
  readonly basePort: number;
}

export async function startEtcd(options: EtcdOptions): Promise<Cluster> {
  const members = Array.from({ length: options.size }, (_, k) => ({
    name: `e${k + 1}`,
    host: `127.0.0.${k + 1}`,
    client: options.basePort + k + 1,
    peer: options.basePort + 100 + k + 1,
  }));
  const initial = members.map((m) => `${m.name}=http://${m.host}:${m.peer}`).join(',');
  const dataRoot = join(options.dir, `etcd-${process.pid}-${options.basePort}`);
  const children: (ChildProcess | null)[] = members.map(() => null);
  const start = (i: number, state: 'new' | 'existing') => {
    const m = members[i] as (typeof members)[number];
    children[i] = spawn(
      'etcd',
      [
        '--name',
        m.name,
        '--data-dir',
        join(dataRoot, m.name),
        '--listen-client-urls',
        `http://${m.host}:${m.client}`,
        '--advertise-client-urls',
        `http://${m.host}:${m.client}`,
        '--listen-peer-urls',
        `http://${m.host}:${m.peer}`,
        '--initial-advertise-peer-urls',
        `http://${m.host}:${m.peer}`,
        '--initial-cluster',
        initial,
        '--initial-cluster-state',
        state,
        '--initial-cluster-token',
        `bench-${process.pid}`,
        '--heartbeat-interval',
        String(options.timing.heartbeatMs),
        '--election-timeout',
        String(options.timing.electionTimeoutMs),
        '--log-level',
        'error',
        '--logger',
        'zap',
      ],
      { stdio: ['ignore', 'ignore', 'ignore'] },
    );
  };
  for (let i = 0; i < members.length; i++) start(i, 'new');
  const endpoints = members.map((m) => `http://${m.host}:${m.client}`);
  const statusOf = async (i: number) => {
    const res = await fetch(`${endpoints[i]}/v3/maintenance/status`, {
      method: 'POST',
      body: '{}',
      signal: AbortSignal.timeout(1000),
    });
    const s = (await res.json()) as { header?: { member_id?: string }; leader?: string };
    return { isLeader: s.leader !== undefined && s.leader === s.header?.member_id, ...s };
  };
  const cluster: Cluster = {
    name: 'etcd',
    size: options.size,
    endpoints,
    ...memberControl(
      'etcd',
      children,
      async (i) => (await statusOf(i)).isLeader,
      statusOf,
      (i) => start(i, 'existing'),
    ),
    async stop() {
      await stopAll(children);
      rmSync(dataRoot, { recursive: true, force: true });
    },
  };
  await cluster.leader();
  return cluster;
}

/** The bare Map server, as a one-member "cluster". */
export async function startMapServer(port: number): Promise<Cluster> {
  const script = join(dirname(fileURLToPath(import.meta.url)), 'map-server.ts');
  const child = spawn(
    process.execPath,
    ['--conditions=@raft/source', '--import', 'tsx', script, String(port)],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  await new Promise<void>((resolve, reject) => {
    child.stdout?.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`the map server exited (${code})`)));
  });
  return {
    name: 'node:http + Map',
    size: 1,
    endpoints: [`http://127.0.0.1:${port}`],
    leader: async () => 0,
    kill: async () => {},
    restart: async () => {},
    cpuSeconds: () => cpuOf(child.pid),
    async stop() {
      await stopAll([child]);
    },
  };
}
