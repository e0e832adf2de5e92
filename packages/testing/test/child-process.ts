/**
 * Child processes for the tests that run real programs (the packed-package consumer, the README
 * examples): bounded by a timeout, killed with their whole process group, never left behind.
 */
import { type ChildProcess, spawn } from 'node:child_process';

/** How a child ended, with everything it printed. */
export interface RunResult {
  readonly code: number | null;
  readonly signal: string | null;
  readonly timedOut: boolean;
  readonly stdout: string;
  readonly stderr: string;
}

const running = new Set<ChildProcess>();

function kill(child: ChildProcess): void {
  try {
    // The child leads its own process group (detached): take whatever it started down with it
    // (npx's pnpm, tsc's workers, ...).
    if (child.pid !== undefined && process.platform !== 'win32')
      process.kill(-child.pid, 'SIGKILL');
    else child.kill('SIGKILL');
  } catch {
    // already gone
  }
}

/** Kills every child still running (for afterAll). */
export function killAll(): void {
  for (const child of running) kill(child);
}

/** Our environment minus the variables matching `drop`, plus `extra`. */
export function childEnv(
  drop: RegExp,
  extra: Readonly<Record<string, string>> = {},
): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value === undefined || drop.test(key)) continue;
    env[key] = value;
  }
  return { ...env, ...extra };
}

/** Runs `command` to completion, or kills it after `timeoutMs`. Rejects only if it cannot start. */
export function run(
  command: string,
  args: readonly string[],
  options: { readonly cwd: string; readonly timeoutMs: number; readonly env: NodeJS.ProcessEnv },
): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: process.platform !== 'win32',
    });
    running.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      kill(child);
    }, options.timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      running.delete(child);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      running.delete(child);
      resolvePromise({ code, signal, timedOut, stdout, stderr });
    });
  });
}

/** A failure report: how the child ended, the command line, and its output. */
export function describeRun(
  what: string,
  commandLine: string,
  r: RunResult,
  timedOut = 'was killed after its timeout',
): string {
  const status = r.timedOut
    ? timedOut
    : r.signal !== null
      ? `died of ${r.signal}`
      : `exited with ${r.code}`;
  return [
    `${what} ${status}`,
    `$ ${commandLine}`,
    '--- stdout ---',
    r.stdout.trimEnd(),
    '--- stderr ---',
    r.stderr.trimEnd(),
  ].join('\n');
}
