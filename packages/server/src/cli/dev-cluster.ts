/**
 * `<program> dev --nodes 3`: a local cluster as child processes of this one, each a node of the
 * same program on its own loopback address (127.0.0.1, .2, .3, ...) on the file store, so a person can
 * start, use, break (kill one) and watch a cluster with one command. Ctrl-C stops them all.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** Options of {@link runDevCluster}. */
export interface DevClusterOptions {
  /** The program's name, for the hints it prints. */
  readonly program: string;
  readonly nodes: number;
  /** Node i gets HTTP port basePort + i and Raft port basePort + 100 + i. */
  readonly basePort: number;
  readonly dataDir: string;
  readonly store: string;
  readonly transport: string;
  /** Extra flags passed to every node. */
  readonly nodeArgs: readonly string[];
  readonly log: (line: string) => void;
  /** A first command to try, given the `--endpoints` flag. */
  readonly tryHint?: (endpointsFlag: string) => string;
}

/** How long the children get to stop after Ctrl-C before they are killed. */
const STOP_BOUND_MS = 12_000;

/** Starts the cluster and resolves once it has stopped (after SIGINT/SIGTERM). */
export async function runDevCluster(options: DevClusterOptions): Promise<number> {
  const members = Array.from({ length: options.nodes }, (_, k) => {
    const i = k + 1;
    // Linux routes all of 127/8 to loopback, so each node gets an address of its own (which
    // packet filters can tell apart); elsewhere only 127.0.0.1 exists, and the ports differ.
    const host = process.platform === 'linux' ? `127.0.0.${i}` : '127.0.0.1';
    return {
      id: `n${i}`,
      http: `${host}:${options.basePort + i}`,
      raft: `${host}:${options.basePort + 100 + i}`,
    };
  });
  const peers = members.map((m) => `${m.id}=${m.raft}`).join(',');
  const root = resolve(options.dataDir);
  const children: ChildProcess[] = [];
  let stopping = false;
  const exited = members.map((m) => {
    const dir = join(root, m.id);
    mkdirSync(dir, { recursive: true });
    // What the restart hint prints, too: the node's own flags.
    const serve = [
      'serve',
      '--id',
      m.id,
      '--http',
      m.http,
      '--raft',
      m.raft,
      '--peers',
      peers,
      '--data-dir',
      dir,
      '--store',
      options.store,
      '--transport',
      options.transport,
    ];
    // The same program (and loader, when run from source) as this process.
    const child = spawn(
      process.execPath,
      [...process.execArgv, process.argv[1] as string, ...serve, ...options.nodeArgs],
      { stdio: ['ignore', 'inherit', 'inherit'] },
    );
    children.push(child);
    return new Promise<number>((done) =>
      child.once('exit', (code, signal) => {
        if (!stopping) {
          options.log(
            `${m.id} exited (${signal ?? `code ${code}`}); the others go on. Restart it with: ${options.program} ${serve.join(' ')}`,
          );
        }
        done(code ?? 1);
      }),
    );
  });
  options.log(
    `started ${members.length} nodes (data in ${root}, ${options.store} store, ${options.transport}):`,
  );
  for (const m of members) options.log(`  ${m.id}  http://${m.http}  (raft ${m.raft})`);
  const first = members[0];
  if (first !== undefined) {
    options.log(`dashboard: http://${first.http}/ (every node serves one)`);
  }
  const endpoints = `--endpoints ${members.map((m) => `http://${m.http}`).join(',')}`;
  options.log(`try: ${options.tryHint?.(endpoints) ?? `${options.program} status ${endpoints}`}`);
  options.log('Ctrl-C stops them all.');
  const stop = () => {
    if (stopping) return;
    stopping = true;
    options.log('stopping the nodes...');
    for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
    setTimeout(() => {
      for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    }, STOP_BOUND_MS).unref();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const codes = await Promise.all(exited);
  options.log('all nodes stopped.');
  return codes.every((c) => c === 0) ? 0 : 1;
}
