/**
 * The chaos clients: concurrent loops that read, write, compare-and-set and (rarely) delete a
 * few keys through random nodes, and the history of what they saw, for `checkLinearizability`.
 *
 * Every write's value is unique (`<client>.<n>`), so the checker can tell writes apart, and
 * carries an Idempotency-Key of its own. Answers are classified as the API documents them:
 *
 * | answer                                    | in the history                                 |
 * | ----------------------------------------- | ---------------------------------------------- |
 * | 200 (a 404 for a read, a 409 {ok:false})  | a completed operation with its output          |
 * | 503, or the connection refused            | nothing: definitely not applied (dropped)      |
 * | 504, a timeout, a connection lost         | a write without a return: indeterminate        |
 * | anything else                             | indeterminate, and an `unexpected` finding     |
 *
 * Reads are linearizable or, by default half of them, lease reads (`mixed`): both must be
 * linearizable, the lease ones as long as the clocks drift within the core's bound (the chaos
 * runs skew them: clock-skew.ts). Reads that fail are dropped (an unanswered read constrains
 * nothing). Times are ms on the
 * run's monotonic clock, a call taken before the request is sent and a return after the whole
 * answer arrived.
 */
import type { KvInput, KvOutput, Operation, Prng } from '@raft/testing';

export type Consistency = 'linearizable' | 'lease' | 'stale';
/** The clients' reads: one consistency, or `mixed` (each read linearizable or lease, 50/50). */
export type ReadMode = Consistency | 'mixed';

export interface WorkloadOptions {
  /** The nodes' HTTP addresses (`host:port`). */
  readonly endpoints: readonly string[];
  readonly keys: readonly string[];
  readonly clients: number;
  readonly prng: Prng;
  /** The run's clock, in ms. */
  readonly now: () => number;
  /** Client-side bound on each request (above the servers' --request-timeout-ms). */
  readonly opTimeoutMs: number;
  /**
   * Read consistency of the clients' reads (`stale` only to show that the checker catches it).
   * Default `mixed`.
   */
  readonly readConsistency?: ReadMode;
  /** Prefix of the idempotency keys (unique per run). */
  readonly tag: string;
}

type Kind = 'get' | 'put' | 'cas' | 'delete';

/** Counts per kind of operation and outcome. */
export interface WorkloadStats {
  ok: number;
  /** Definite failures (503, refused): not in the history. */
  failed: number;
  /** Writes with an unknown outcome: in the history without a return. */
  indeterminate: number;
  /** Reads that got no answer: not in the history. */
  readsLost: number;
  readonly byKind: Record<Kind, { ok: number; failed: number; unknown: number }>;
  /** Answered reads by consistency (the final reads included). */
  readonly readsBy: Record<Consistency, number>;
  /** Answers the API does not document for the request (each one a finding). */
  readonly unexpected: string[];
}

type Reply =
  | { readonly kind: 'answer'; readonly status: number; readonly text: string }
  | { readonly kind: 'refused' }
  | { readonly kind: 'lost'; readonly reason: string };

/** Times to 0.1 ms, widening the interval (lenient: it never makes a history less linearizable). */
const down = (t: number) => Math.floor(t * 10) / 10;
const up = (t: number) => Math.ceil(t * 10) / 10;

const keyPath = (k: string) => `/v1/kv/${encodeURIComponent(k)}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One HTTP request, classified: an answer, a refused connection (never sent), or lost. */
export async function send(
  url: string,
  init: { method: string; body?: string; headers?: Record<string, string> },
  timeoutMs: number,
): Promise<Reply> {
  try {
    const res = await fetch(url, {
      method: init.method,
      headers: init.headers ?? {},
      ...(init.body === undefined ? {} : { body: init.body }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    return { kind: 'answer', status: res.status, text: await res.text() };
  } catch (err) {
    const cause = (err as { cause?: { code?: unknown } }).cause;
    if (cause?.code === 'ECONNREFUSED') return { kind: 'refused' };
    const name = (err as Error).name;
    return {
      kind: 'lost',
      reason: name === 'TimeoutError' ? 'timeout' : String(cause?.code ?? name),
    };
  }
}

function parse(text: string): Record<string, unknown> | null {
  try {
    const v = JSON.parse(text) as unknown;
    return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

export class Workload {
  readonly history: Operation<KvInput, KvOutput>[] = [];
  readonly stats: WorkloadStats = {
    ok: 0,
    failed: 0,
    indeterminate: 0,
    readsLost: 0,
    byKind: {
      get: { ok: 0, failed: 0, unknown: 0 },
      put: { ok: 0, failed: 0, unknown: 0 },
      cas: { ok: 0, failed: 0, unknown: 0 },
      delete: { ok: 0, failed: 0, unknown: 0 },
    },
    readsBy: { linearizable: 0, lease: 0, stale: 0 },
    unexpected: [],
  };
  /** The last value some client saw per key: what a CAS usually expects. */
  private readonly lastSeen = new Map<string, string | null>();
  private stopping = false;
  private loops: Promise<void>[] = [];

  constructor(private readonly o: WorkloadOptions) {}

  /** Starts the client loops. */
  start(): void {
    this.loops = Array.from({ length: this.o.clients }, (_, i) =>
      this.client(i, this.o.prng.fork(`client-${i}`)),
    );
  }

  /** Stops the loops and waits for the operations in flight (bounded by the op timeout). */
  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.loops);
  }

  private async client(i: number, prng: Prng): Promise<void> {
    const clientId = `c${i}`;
    for (let n = 0; !this.stopping; n++) {
      const key = prng.pick(this.o.keys);
      const endpoint = prng.pick(this.o.endpoints);
      const r = prng.next();
      const kind: Kind = r < 0.4 ? 'get' : r < 0.7 ? 'put' : r < 0.95 ? 'cas' : 'delete';
      const value = `${clientId}.${n}`;
      const idem = `${this.o.tag}-${clientId}-${n}`;
      let definite: boolean;
      if (kind === 'get') {
        const mode = this.o.readConsistency ?? 'mixed';
        const consistency = mode !== 'mixed' ? mode : prng.chance(0.5) ? 'lease' : 'linearizable';
        definite = await this.get(clientId, endpoint, key, consistency);
      } else if (kind === 'put') {
        definite = await this.write(clientId, endpoint, { type: 'put', key, value }, idem);
      } else if (kind === 'delete') {
        definite = await this.write(clientId, endpoint, { type: 'delete', key }, idem);
      } else {
        const seen = this.lastSeen.get(key) ?? null;
        const expected = prng.chance(0.85) ? seen : null;
        definite = await this.write(
          clientId,
          endpoint,
          { type: 'cas', key, expected, value },
          idem,
        );
      }
      // Do not spin against a node that refuses or has no leader; otherwise a short think time.
      await sleep(definite ? prng.range(5, 30) : prng.range(50, 150));
    }
  }

  /** A read through `endpoint`, recorded when answered; whether it was (false: dropped). */
  async get(
    clientId: string,
    endpoint: string,
    key: string,
    consistency: Consistency,
  ): Promise<boolean> {
    const call = down(this.o.now());
    const reply = await send(
      `http://${endpoint}${keyPath(key)}?consistency=${consistency}`,
      { method: 'GET' },
      this.o.opTimeoutMs,
    );
    const ret = up(this.o.now());
    const counts = this.stats.byKind.get;
    if (reply.kind === 'answer' && (reply.status === 200 || reply.status === 404)) {
      if (reply.status === 404 && parse(reply.text)?.error !== 'not_found') {
        this.stats.unexpected.push(`get ${key} via ${endpoint}: 404 ${reply.text}`);
        return false;
      }
      const value = reply.status === 200 ? reply.text : null;
      this.history.push({
        clientId,
        input: { type: 'get', key },
        call,
        return: ret,
        output: { value },
      });
      this.lastSeen.set(key, value);
      this.stats.ok++;
      this.stats.readsBy[consistency]++;
      counts.ok++;
      return true;
    }
    if (reply.kind === 'answer' && reply.status !== 503 && reply.status !== 504) {
      this.stats.unexpected.push(`get ${key} via ${endpoint}: ${reply.status} ${reply.text}`);
    }
    if (reply.kind === 'lost') {
      this.stats.readsLost++;
      counts.unknown++;
    } else {
      this.stats.failed++;
      counts.failed++;
    }
    return false;
  }

  /** A put, cas or delete through `endpoint`, recorded as its answer says. Whether it was definite. */
  private async write(
    clientId: string,
    endpoint: string,
    input: Exclude<KvInput, { type: 'get' }>,
    idempotencyKey: string,
  ): Promise<boolean> {
    const base = `http://${endpoint}${keyPath(input.key)}`;
    const headers: Record<string, string> = { 'idempotency-key': idempotencyKey };
    const call = down(this.o.now());
    let reply: Reply;
    if (input.type === 'put') {
      reply = await send(base, { method: 'PUT', body: input.value, headers }, this.o.opTimeoutMs);
    } else if (input.type === 'delete') {
      reply = await send(base, { method: 'DELETE', headers }, this.o.opTimeoutMs);
    } else {
      headers['content-type'] = 'application/json';
      const body = JSON.stringify({ expected: input.expected, value: input.value });
      reply = await send(`${base}/cas`, { method: 'POST', body, headers }, this.o.opTimeoutMs);
    }
    const ret = up(this.o.now());
    const counts = this.stats.byKind[input.type];
    const what = () =>
      `${input.type} ${input.key} via ${endpoint}: ${reply.kind === 'answer' ? `${reply.status} ${reply.text}` : reply.kind}`;

    if (reply.kind === 'refused' || (reply.kind === 'answer' && reply.status === 503)) {
      this.stats.failed++;
      counts.failed++;
      return false;
    }
    if (reply.kind === 'answer' && reply.status === 200) {
      const body = parse(reply.text);
      if (input.type !== 'cas' || body?.ok === true) {
        this.history.push({
          clientId,
          input,
          call,
          return: ret,
          output: input.type === 'cas' ? { ok: true } : {},
        });
        this.lastSeen.set(input.key, input.type === 'delete' ? null : input.value);
        this.stats.ok++;
        counts.ok++;
        return true;
      }
    }
    if (input.type === 'cas' && reply.kind === 'answer' && reply.status === 409) {
      const body = parse(reply.text);
      if (body?.ok === false) {
        this.history.push({ clientId, input, call, return: ret, output: { ok: false } });
        const current = body.current;
        if (typeof current === 'string' || current === null) this.lastSeen.set(input.key, current);
        this.stats.ok++;
        counts.ok++;
        return true;
      }
    }
    // Unknown outcome: it may apply at any time after its call, or never.
    if (reply.kind === 'answer' && reply.status !== 504) this.stats.unexpected.push(what());
    this.history.push({ clientId, input, call });
    this.stats.indeterminate++;
    counts.unknown++;
    return reply.kind === 'answer' && reply.status === 504;
  }
}
