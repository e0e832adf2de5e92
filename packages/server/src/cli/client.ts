/**
 * The client side of a service's CLI (like etcdctl): a request goes to the first of
 * `--endpoints` that answers, bounded by `--timeout-ms`, and the answer is printed readably or,
 * with `--json`, as the API's JSON.
 */
import type { Command } from 'commander';

/** The options every client command takes. */
export interface ClientOptions {
  readonly endpoints: string;
  readonly json?: boolean;
  readonly timeoutMs: string;
}

/** An HTTP answer, and which endpoint gave it. */
export interface ClientAnswer {
  readonly status: number;
  readonly bytes: Uint8Array;
  readonly endpoint: string;
}

/** What a service's own client commands are written with. */
export interface CliClient {
  /** Adds `--endpoints`, `--json` and `--timeout-ms` to `command`. */
  addClientOptions(command: Command): Command;
  /** Sends the request to the first endpoint that answers (any HTTP answer counts); exits 1
   *  saying why each failed when none answers. */
  request(
    options: ClientOptions,
    method: string,
    path: string,
    body?: Uint8Array | string,
    headers?: Record<string, string>,
  ): Promise<ClientAnswer>;
  /** Prints the answer: an error (status >= 400) as `error N: code: message` on stderr and
   *  exit 1; otherwise `human(json)`, or the JSON itself with `--json`. */
  printAnswer(
    options: ClientOptions,
    answer: ClientAnswer,
    human: (json: Record<string, unknown>) => string,
  ): void;
  /** Prints `message` on stderr and exits with `code`. */
  fail(message: string, code: number): never;
}

/** Connection errors that mean the request never left: any endpoint may be tried next. */
const NOT_SENT = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
]);

const hasIdempotencyKey = (headers: Record<string, string>): boolean =>
  Object.keys(headers).some((h) => h.toLowerCase() === 'idempotency-key');

/** The client of the program `name` (used in messages). */
export function createCliClient(name: string, defaultEndpoints: string): CliClient {
  const fail = (message: string, code: number): never => {
    process.stderr.write(`${name}: ${message}\n`);
    process.exit(code);
  };
  return {
    fail,
    addClientOptions(command) {
      return command
        .option('--endpoints <urls>', 'comma-separated node URLs, tried in order', defaultEndpoints)
        .option('--json', 'print the JSON answer')
        .option('--timeout-ms <ms>', 'bound on the request (above the servers own 5 s)', '10000');
    },
    async request(options, method, path, body, headers = {}) {
      const timeoutMs = Number(options.timeoutMs);
      if (!Number.isFinite(timeoutMs) || timeoutMs <= 0)
        fail('--timeout-ms: must be a positive number', 2);
      const endpoints = options.endpoints
        .split(',')
        .map((e) => e.trim().replace(/\/$/, ''))
        .filter((e) => e.length > 0)
        .map((e) => (/^https?:\/\//.test(e) ? e : `http://${e}`));
      if (endpoints.length === 0) fail('--endpoints: give at least one URL', 2);
      const errors: string[] = [];
      for (const endpoint of endpoints) {
        try {
          const res = await fetch(`${endpoint}${path}`, {
            method,
            headers,
            ...(body === undefined ? {} : { body }),
            signal: AbortSignal.timeout(timeoutMs),
          });
          return { status: res.status, bytes: new Uint8Array(await res.arrayBuffer()), endpoint };
        } catch (err) {
          const e = err as Error & { cause?: Error & { code?: string } };
          errors.push(`${endpoint}: ${e.cause?.message ?? e.message}`);
          // A write that may have reached this node is not sent to the next one unless it
          // carries an idempotency key: it could apply twice.
          const unsent = NOT_SENT.has(e.cause?.code ?? '');
          const safe = method === 'GET' || hasIdempotencyKey(headers);
          if (!unsent && !safe) {
            return fail(
              `${endpoint} did not answer (${e.cause?.message ?? e.message}); the ${method} may have applied there, so it is not sent to another endpoint (an Idempotency-Key makes that safe)`,
              1,
            );
          }
        }
      }
      return fail(`no endpoint answered:\n  ${errors.join('\n  ')}`, 1);
    },
    printAnswer(options, answer, human) {
      const text = new TextDecoder().decode(answer.bytes);
      if (answer.status >= 400) {
        let message = text;
        try {
          const json = JSON.parse(text) as { error?: string; message?: string };
          message = `${json.error}: ${json.message}`;
        } catch {}
        if (options.json === true) process.stdout.write(`${text}\n`);
        fail(`error ${answer.status}: ${message}`, 1);
      }
      const json = JSON.parse(text) as Record<string, unknown>;
      process.stdout.write(`${options.json === true ? text : human(json)}\n`);
    },
  };
}
