/**
 * Skewed clocks for the chaos runs: every node's clock runs at a rate of its own for the whole
 * run, drawn from the seed in [0.96, 1.04], through Debian's libfaketime (LD_PRELOAD with
 * `FAKETIME="+0 x<rate>"`): clock_gettime (CLOCK_MONOTONIC included, so Node's performance.now()
 * and process.hrtime, which the core's timers and leases read), and the waits of epoll and poll
 * (libuv's timers), run at that rate; the wall clock starts at the real time and runs at the same
 * rate. A restarted node gets the same rate again.
 *
 * Lease reads rely on clocks that drift apart by at most the core's `maxClockDrift` (0.1 by
 * default): rates within ±4% drift apart by at most 0.08/0.96 ≈ 8.3%, inside the bound, so the
 * history must stay linearizable with lease reads in it. Faster drift would be a bug of the
 * harness, not of the lease.
 *
 * The probe runs a Node child at every rate of the run (and one at 1.25, which libfaketime cannot
 * be mistaken for not applying) and compares its performance.now() with this process's over a
 * second of real time; a timer must fire at the skewed pace too. Without libfaketime, or when the
 * probe sees no skew, the run warns and its clocks are not skewed.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Prng } from '@raft/testing';

/** Rates are drawn in [1 - MAX_SKEW, 1 + MAX_SKEW]. */
export const MAX_SKEW = 0.04;

/** One rate per node, from `prng` alone (rounded to 0.001). */
export function drawClockRates(prng: Prng, size: number): number[] {
  return Array.from(
    { length: size },
    () => Math.round(prng.range(1 - MAX_SKEW, 1 + MAX_SKEW) * 1000) / 1000,
  );
}

export type ClockBackend = 'libfaketime' | 'none';

/** The clocks of a run: each node's rate, and what makes a process run at it. */
export interface ClockSkew {
  readonly backend: ClockBackend;
  /** What the probe found, or why the clocks are not skewed. */
  readonly detail: string;
  /** Each node's rate (all 1 for `none`). */
  readonly rates: readonly number[];
  /** The rate the probe measured at each node's rate (null for `none`). */
  readonly measured: readonly number[] | null;
  /** The environment that runs node `i`'s processes at its rate (empty for `none`). */
  envOf(i: number): Readonly<Record<string, string>>;
}

/** Where Debian (and others) put libfaketime. */
export function findLibfaketime(): string | null {
  const dirs = ['/usr/lib/faketime', '/usr/local/lib/faketime', '/usr/lib64/faketime'];
  try {
    for (const d of readdirSync('/usr/lib')) {
      if (d.endsWith('-linux-gnu')) dirs.unshift(join('/usr/lib', d, 'faketime'));
    }
  } catch {
    // no /usr/lib
  }
  for (const d of dirs) {
    const lib = join(d, 'libfaketime.so.1');
    if (existsSync(lib)) return lib;
  }
  return null;
}

/** The environment that runs a process with its clocks at `rate` through `lib`. */
export function faketimeEnv(lib: string, rate: number): Record<string, string> {
  const preload = process.env.LD_PRELOAD;
  return {
    LD_PRELOAD: preload === undefined || preload === '' ? lib : `${lib}:${preload}`,
    // No offset: the clocks start where they are and run at `rate`.
    FAKETIME: `+0 x${rate}`,
    // The monotonic clock is what matters (performance.now, hrtime, libuv's timers).
    DONT_FAKE_MONOTONIC: '0',
    FAKETIME_DONT_FAKE_MONOTONIC: '0',
    // File times (the stores' files, lock files) stay real.
    NO_FAKE_STAT: '1',
  };
}

/**
 * A Node child that answers each line on stdin with its performance.now() and hrtime (ms); a
 * line `t` instead arms a 200 ms timer and answers when it fires.
 */
const CLOCK_ECHO = `
let buffer = '';
process.stdin.on('data', (d) => {
  buffer += String(d);
  for (let i; (i = buffer.indexOf('\\n')) >= 0; ) {
    const line = buffer.slice(0, i);
    buffer = buffer.slice(i + 1);
    if (line === 't') setTimeout(() => process.stdout.write('fired\\n'), 200);
    else process.stdout.write(performance.now() + ' ' + Number(process.hrtime.bigint()) / 1e6 + '\\n');
  }
});
process.stdout.write('ready\\n');`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What the probe of one rate saw. */
interface Probe {
  readonly perfRate: number;
  readonly hrtimeRate: number;
  /** Real ms a 200 ms timer of the child took. */
  readonly timerMs: number;
}

/** Runs the clock echo under `env` for about `spanMs` of real time; what its clocks did. */
function probeRate(env: Record<string, string>, spanMs: number): Promise<Probe> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', CLOCK_ECHO], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, NODE_OPTIONS: '', ...env },
    });
    let err = '';
    let buffer = '';
    const waiting: ((line: string) => void)[] = [];
    child.stderr.on('data', (d) => {
      err += String(d);
    });
    child.stdout.on('data', (d) => {
      buffer += String(d);
      for (let i = buffer.indexOf('\n'); i >= 0; i = buffer.indexOf('\n')) {
        const line = buffer.slice(0, i);
        buffer = buffer.slice(i + 1);
        waiting.shift()?.(line);
      }
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(`the clock probe did not answer within ${spanMs + 10_000} ms: ${err.trim()}`),
      );
    }, spanMs + 10_000);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`the clock probe exited (${code ?? signal}): ${err.trim()}`));
    });
    const next = () => new Promise<string>((r) => waiting.push(r));
    /** The child's clocks, and this process's at the middle of the round trip. */
    const ask = async (): Promise<[number, number, number]> => {
      const before = performance.now();
      const answer = next();
      child.stdin.write('x\n');
      const [perf, hr] = (await answer).split(' ').map(Number) as [number, number];
      return [(before + performance.now()) / 2, perf, hr];
    };
    void (async () => {
      await next(); // ready
      await ask(); // warm up
      const a = await ask();
      await sleep(spanMs);
      const b = await ask();
      const t = performance.now();
      const fired = next();
      child.stdin.write('t\n');
      await fired;
      const timerMs = performance.now() - t;
      const real = b[0] - a[0];
      child.removeAllListeners('exit');
      clearTimeout(timer);
      child.kill('SIGKILL');
      resolve({ perfRate: (b[1] - a[1]) / real, hrtimeRate: (b[2] - a[2]) / real, timerMs });
    })().catch((e: unknown) => {
      child.kill('SIGKILL');
      reject(e);
    });
  });
}

/** Whether a probe shows clocks at `rate`: both clocks within `tolerance`, the timer at its pace. */
function matches(p: Probe, rate: number, tolerance: number): boolean {
  const expectedTimer = 200 / rate;
  return (
    Math.abs(p.perfRate - rate) <= tolerance &&
    Math.abs(p.hrtimeRate - rate) <= tolerance &&
    p.timerMs >= expectedTimer * 0.97 &&
    p.timerMs <= expectedTimer + 100
  );
}

const unskewed = (size: number, detail: string): ClockSkew => ({
  backend: 'none',
  detail,
  rates: Array.from({ length: size }, () => 1),
  measured: null,
  envOf: () => ({}),
});

/**
 * The clocks for a run of `rates.length` nodes: libfaketime at `rates` when it is there and the
 * probe sees it work, else unskewed (with why). `RAFT_CHAOS_CLOCK_SKEW=none` turns it off.
 */
export async function openClockSkew(
  rates: readonly number[],
  force = process.env.RAFT_CHAOS_CLOCK_SKEW,
): Promise<ClockSkew> {
  if (force === 'none') return unskewed(rates.length, 'RAFT_CHAOS_CLOCK_SKEW=none');
  const lib = findLibfaketime();
  if (lib === null)
    return unskewed(rates.length, 'no libfaketime.so.1 (Debian: apt-get install faketime)');
  const CONTROL = 1.25;
  let probes: Probe[];
  try {
    probes = await Promise.all(
      [CONTROL, ...rates].map((r) => probeRate(faketimeEnv(lib, r), 1000)),
    );
  } catch (err) {
    return unskewed(rates.length, `${lib}: ${(err as Error).message.split('\n')[0]}`);
  }
  const [control, ...each] = probes as [Probe, ...Probe[]];
  const show = (p: Probe) =>
    `performance.now x${p.perfRate.toFixed(3)}, hrtime x${p.hrtimeRate.toFixed(3)}, a 200 ms timer in ${p.timerMs.toFixed(0)} ms`;
  if (!matches(control, CONTROL, 0.02)) {
    return unskewed(
      rates.length,
      `${lib} does not skew Node's clocks: at x${CONTROL} the probe saw ${show(control)}`,
    );
  }
  const off = each.findIndex((p, i) => !matches(p, rates[i] as number, 0.01));
  if (off >= 0) {
    return unskewed(
      rates.length,
      `${lib}: at x${rates[off]} the probe saw ${show(each[off] as Probe)}`,
    );
  }
  return {
    backend: 'libfaketime',
    detail: `${lib}, FAKETIME="+0 x<rate>"; probe at x${CONTROL}: ${show(control)}`,
    rates,
    measured: each.map((p) => p.perfRate),
    envOf: (i) => faketimeEnv(lib, rates[i] ?? 1),
  };
}

/** `n1 x1.012 (measured 1.012), ...` for reports. */
export function describeClocks(ids: readonly string[], skew: ClockSkew): string {
  if (skew.backend === 'none') return 'not skewed';
  return ids
    .map((id, i) => {
      const m = skew.measured?.[i];
      return `${id} x${skew.rates[i]?.toFixed(3)}${m === undefined ? '' : ` (measured ${m.toFixed(3)})`}`;
    })
    .join(', ');
}
