/**
 * Real node processes for the end-to-end tests: `raft-kv` (or another app's CLI, through
 * `launchCli`) run from its TypeScript sources through tsx (the same code tsup builds), its
 * output collected, every child killed by `killAll()`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { StatusBody } from '@raft/server';
import { freePort } from '@raft/server';

export const appDir = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const kvCli = join(appDir, 'src', 'cli.ts');

export { freePort };

const children = new Set<ChildProcess>();

/** A launched `raft-kv` process. */
export interface Proc {
  readonly child: ChildProcess;
  output: string;
  readonly exited: Promise<{ code: number | null; signal: string | null }>;
}

/** Runs `raft-kv <args>`; `env` is added to the environment (the chaos runs' libfaketime). */
export function launch(args: readonly string[], env?: Readonly<Record<string, string>>): Proc {
  return launchCli(kvCli, args, env);
}

/**
 * Runs the TypeScript program `cli` (an app's `src/cli.ts`) with `args`, in its app's folder, with
 * this process's environment (NODE_OPTIONS cleared) and `env`.
 */
export function launchCli(
  cli: string,
  args: readonly string[],
  env?: Readonly<Record<string, string>>,
): Proc {
  const child = spawn(
    process.execPath,
    ['--conditions=@raft/source', '--import', 'tsx', cli, ...args],
    {
      cwd: join(dirname(cli), '..'),
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NODE_OPTIONS: '', ...env },
    },
  );
  children.add(child);
  const proc: Proc = {
    child,
    output: '',
    exited: new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        children.delete(child);
        resolve({ code, signal });
      }),
    ),
  };
  child.stdout?.on('data', (d) => {
    proc.output += String(d);
  });
  child.stderr?.on('data', (d) => {
    proc.output += String(d);
  });
  return proc;
}

/** Runs a `raft-kv` client command to completion (killed after `timeoutMs`). */
export function client(
  args: readonly string[],
  timeoutMs = 20_000,
): Promise<{ code: number | null; output: string }> {
  return clientOf(kvCli, args, timeoutMs);
}

/** Runs a client command of the program `cli` to completion (killed after `timeoutMs`). */
export async function clientOf(
  cli: string,
  args: readonly string[],
  timeoutMs = 20_000,
): Promise<{ code: number | null; output: string }> {
  const p = launchCli(cli, args);
  const timer = setTimeout(() => p.child.kill('SIGKILL'), timeoutMs);
  const { code } = await p.exited;
  clearTimeout(timer);
  return { code, output: p.output };
}

/** Polls `check` every 100 ms until it holds; throws naming `what` after `timeoutMs`. */
export async function until(
  what: string,
  check: () => Promise<boolean> | boolean,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A node's GET /v1/status, or null when it does not answer (200) within `timeoutMs`. */
export async function statusOf(http: string, timeoutMs = 2000): Promise<StatusBody | null> {
  try {
    const res = await fetch(`http://${http}/v1/status`, { signal: AbortSignal.timeout(timeoutMs) });
    if (res.status !== 200) return null;
    return (await res.json()) as StatusBody;
  } catch {
    return null;
  }
}

/** SIGKILLs every process still running and waits (bounded) for them to go. */
export async function killAll(): Promise<void> {
  const waits = [...children].map(
    (c) =>
      new Promise<void>((r) =>
        c.exitCode !== null || c.signalCode !== null ? r() : c.once('exit', () => r()),
      ),
  );
  for (const child of children) child.kill('SIGKILL');
  await Promise.race([Promise.all(waits), new Promise((r) => setTimeout(r, 5000))]);
}

/** Three (or `size`) nodes on 127.0.0.1-N with free ports: their ids and addresses. */
export async function localNodes(size = 3): Promise<{ id: string; http: string; raft: string }[]> {
  const nodes: { id: string; http: string; raft: string }[] = [];
  for (let i = 1; i <= size; i++) {
    const host = `127.0.0.${i}`;
    nodes.push({
      id: `n${i}`,
      http: `${host}:${await freePort(host)}`,
      raft: `${host}:${await freePort(host)}`,
    });
  }
  return nodes;
}

/** The flags naming a node of `members`: `--id --http --raft --peers` (the bootstrap list). */
export function memberFlags(
  n: { readonly id: string; readonly http: string; readonly raft: string },
  members: readonly { readonly id: string; readonly raft: string }[],
): string[] {
  return [
    '--id',
    n.id,
    '--http',
    n.http,
    '--raft',
    n.raft,
    '--peers',
    members.map((m) => `${m.id}=${m.raft}`).join(','),
  ];
}
