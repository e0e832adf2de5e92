/**
 * Failover: SIGKILL the leader while writers keep trying every other member, and time from the
 * kill to the first acknowledged write (on whichever member took over), `kills` times; the
 * killed member is restarted and the cluster settles before the next kill.
 */
import { randomBytes } from 'node:crypto';
import type { Cluster } from './clusters.js';
import type { Target } from './targets.js';

export interface FailoverResult {
  readonly samplesMs: readonly number[];
  readonly medianMs: number;
  readonly maxMs: number;
}

/** Bound on one writer's request: short, so that a request stuck on the dead leader does not
 *  hold its writer back (with 500 ms, results came in 500 ms steps for both systems). */
const WRITE_TIMEOUT_MS = 100;

const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1
    ? (s[mid] as number)
    : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};

async function write(base: string, target: Target, key: string, timeoutMs: number) {
  const spec = target.put(key, randomBytes(16));
  const res = await fetch(`${base}${spec.path}`, {
    method: spec.method,
    ...(spec.body === undefined ? {} : { body: spec.body }),
    ...(spec.headers === undefined ? {} : { headers: spec.headers }),
    signal: AbortSignal.timeout(timeoutMs),
  });
  await res.arrayBuffer();
  return target.ok(res.status, 'put');
}

/** Measures `kills` failovers of `cluster`. */
export async function measureFailover(
  cluster: Cluster,
  target: Target,
  kills: number,
  log: (line: string) => void,
): Promise<FailoverResult> {
  const samples: number[] = [];
  for (let k = 0; k < kills; k++) {
    const leader = await cluster.leader();
    const others = cluster.endpoints.filter((_, i) => i !== leader);
    let acknowledged = -1;
    let stop = false;
    let killedAt = Number.POSITIVE_INFINITY;
    // Four writers per survivor, each retrying at once on any failure.
    const writers = others.flatMap((base, j) =>
      Array.from({ length: 4 }, async (_, w) => {
        for (let n = 0; !stop; n++) {
          const sentAt = performance.now();
          const ok = await write(
            base,
            target,
            `failover-${j}-${w}-${n % 8}`,
            WRITE_TIMEOUT_MS,
          ).catch(() => false);
          // A write that was sent before the kill proves nothing about the new leader.
          if (ok && sentAt > killedAt && acknowledged < 0) {
            acknowledged = performance.now();
            stop = true;
          }
          if (!ok) await new Promise((r) => setTimeout(r, 5));
        }
      }),
    );
    await new Promise((r) => setTimeout(r, 300));
    killedAt = performance.now();
    await cluster.kill(leader);
    const deadline = Date.now() + 30_000;
    while (acknowledged < 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    stop = true;
    await Promise.all(writers);
    if (acknowledged < 0)
      throw new Error(`${cluster.name}: no write acknowledged within 30 s of the kill`);
    const ms = acknowledged - killedAt;
    samples.push(ms);
    log(
      `  ${cluster.name} kill ${k + 1}/${kills}: member ${leader + 1} killed, first write after ${ms.toFixed(0)} ms`,
    );
    await cluster.restart(leader);
    await cluster.leader();
    await new Promise((r) => setTimeout(r, 500));
  }
  return { samplesMs: samples, medianMs: median(samples), maxMs: Math.max(...samples) };
}
