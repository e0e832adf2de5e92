/**
 * The load generator: C concurrent clients, each sending one request at a time (closed loop)
 * for a fixed duration, spread over the endpoints (client i talks to endpoint i mod n), over
 * keep-alive connections (undici pools, one connection per client). Latencies go into an HDR
 * histogram (microseconds); the generator's own CPU is measured beside the wall time.
 */
import { randomBytes } from 'node:crypto';
import * as hdr from 'hdr-histogram-js';
import { Pool } from 'undici';
import type { RequestSpec, Target } from './targets.js';

/** The operations mixes of the suite. */
export type Workload = 'put' | 'get' | 'mix' | 'cas';

export interface LoadOptions {
  readonly target: Target;
  /** Base URLs (`http://host:port`) of the nodes. */
  readonly endpoints: readonly string[];
  readonly clients: number;
  readonly workload: Workload;
  readonly valueBytes: number;
  readonly seconds: number;
  /** Keys the workload touches (preloaded by {@link preload} for reads and CAS). */
  readonly keys: number;
  /** Bound on one request. */
  readonly timeoutMs?: number;
}

export interface LoadResult {
  readonly ops: number;
  readonly errors: number;
  readonly opsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly p999Ms: number;
  /** The generator's CPU, in cores (1 = one core busy the whole time). */
  readonly clientCpu: number;
  readonly seconds: number;
  /** The first error answers seen (status and body), for the report. */
  readonly sampleErrors: readonly string[];
}

const keyName = (i: number) => `k${String(i).padStart(6, '0')}`;

function pools(endpoints: readonly string[], clients: number): Pool[] {
  const perEndpoint = Math.max(1, Math.ceil(clients / endpoints.length));
  return endpoints.map(
    (e) => new Pool(e, { connections: perEndpoint, pipelining: 1, keepAliveTimeout: 60_000 }),
  );
}

async function send(
  pool: Pool,
  spec: RequestSpec,
  timeoutMs: number,
): Promise<{ status: number; body: string }> {
  const res = await pool.request({
    method: spec.method,
    path: spec.path,
    ...(spec.body === undefined ? {} : { body: spec.body }),
    ...(spec.headers === undefined ? {} : { headers: spec.headers }),
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
  });
  const body = await res.body.text();
  return { status: res.statusCode, body };
}

/** Writes every key once, so reads and CAS find values (and the store is not empty). */
export async function preload(
  target: Target,
  endpoints: readonly string[],
  keys: number,
  valueBytes: number,
): Promise<void> {
  const [pool] = pools(endpoints.slice(0, 1), 32);
  const value = randomBytes(valueBytes);
  let next = 0;
  const worker = async () => {
    while (next < keys) {
      const i = next++;
      for (let attempt = 0; ; attempt++) {
        const r = await send(pool as Pool, target.put(keyName(i), value), 10_000).catch(
          (err: Error) => ({ status: 0, body: err.message }),
        );
        if (target.ok(r.status, 'put')) break;
        if (attempt > 50) throw new Error(`preload of ${keyName(i)} failed: ${r.status} ${r.body}`);
        await new Promise((done) => setTimeout(done, 100));
      }
    }
  };
  await Promise.all(Array.from({ length: 32 }, worker));
  await (pool as Pool).close();
}

/** Runs the load; resolves with its figures. */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const { target, clients, workload, seconds, keys } = options;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const all = pools(options.endpoints, clients);
  const histogram = hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 120_000_000,
    numberOfSignificantValueDigits: 3,
  });
  const values = Array.from({ length: 16 }, () => randomBytes(options.valueBytes));
  let ops = 0;
  let errors = 0;
  const sampleErrors: string[] = [];
  let stop = false;
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const worker = async (w: number) => {
    const pool = all[w % all.length] as Pool;
    let n = w * 7919;
    while (!stop) {
      n++;
      const key = keyName((n * 2654435761) % keys);
      const value = values[n % values.length] as Uint8Array;
      const op: 'put' | 'get' | 'cas' =
        workload === 'mix' ? (n % 10 === 0 ? 'put' : 'get') : workload;
      const spec =
        op === 'put'
          ? target.put(key, value)
          : op === 'get'
            ? target.get(key)
            : target.cas(key, values[(n + 1) % values.length] as Uint8Array, value);
      const t0 = performance.now();
      try {
        const r = await send(pool, spec, timeoutMs);
        if (target.ok(r.status, op)) {
          histogram.recordValue(Math.max(1, Math.round((performance.now() - t0) * 1000)));
          ops++;
        } else {
          errors++;
          if (sampleErrors.length < 3) sampleErrors.push(`${r.status} ${r.body.slice(0, 200)}`);
        }
      } catch (err) {
        errors++;
        if (sampleErrors.length < 3) sampleErrors.push((err as Error).message);
      }
    }
  };
  const timer = setTimeout(() => {
    stop = true;
  }, seconds * 1000);
  await Promise.all(Array.from({ length: clients }, (_, w) => worker(w)));
  clearTimeout(timer);
  const wall = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  await Promise.all(all.map((p) => p.close()));
  const result: LoadResult = {
    ops,
    errors,
    opsPerSecond: ops / wall,
    p50Ms: histogram.getValueAtPercentile(50) / 1000,
    p99Ms: histogram.getValueAtPercentile(99) / 1000,
    p999Ms: histogram.getValueAtPercentile(99.9) / 1000,
    clientCpu: (cpu.user + cpu.system) / 1e6 / wall,
    seconds: wall,
    sampleErrors,
  };
  histogram.destroy();
  return result;
}
