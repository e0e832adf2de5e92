/**
 * Crash consistency with real processes: a child process opens the stores and appends batches
 * (with suffix replacements, truncations, compactions and hard-state saves mixed in) as fast as
 * it can, printing each operation before it starts and after it resolves; this process SIGKILLs
 * it at a random moment, reopens the same storage and checks what survived.
 *
 * ```
 *   child:  op 7 append 120 4 3   ─► logStore.append ─► stableStore.save ─► ack 7
 *           op 8 replace 118 5 2  ─► …                    (killed here)
 *   parent: the log after the last ack (L_old) and after the op in flight (L_new)
 *           reopen: the log MUST be L_old, L_new, or between them as the op allows
 *             append / replace from k: a prefix of L_new at least k - 1 long
 *             truncate(from):          a prefix of L_old at least from - 1 long
 *             compact(upTo):           L_old with its first index unchanged or upTo + 1
 *           every entry byte-exact; the hard state is the last acknowledged one or the one in
 *           flight, never older, never torn
 * ```
 *
 * SIGKILL tests what the process gets right (the order of its writes and syncs, whether it
 * resolves before its data reaches the kernel, what a half-done multi-step operation leaves);
 * it cannot tear a single write() the kernel accepted, which is what fault injection on files
 * (or a power cut) does.
 */
import { spawn } from 'node:child_process';
import { isAbsolute } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { HardState, LogEntry, LogStore, MaybePromise, StableStore } from '@raft/core';
import { Prng } from '../sim/prng.js';
import { describeDifference, fail, positiveOption, settle } from './support.js';

/** What a crash-consistency factory returns: the stores under test over one storage. */
export interface CrashStores {
  readonly logStore: LogStore;
  readonly stableStore: StableStore;
  close(): Promise<void>;
}

/** One storage for one iteration: the factory's argument, and how to delete it afterwards. */
export interface CrashStorage {
  /** JSON-serializable: passed to the factory in the child and, on reopen, in this process. */
  readonly config: unknown;
  cleanup(): MaybePromise<void>;
}

/** Options of {@link checkCrashConsistency}. */
export interface CrashConsistencyOptions {
  /** Names the store in reports. */
  readonly name: string;
  /**
   * The module both processes import (an absolute path or a `file:` URL). Its export
   * `exportName` is the factory: `(config) => CrashStores | Promise<CrashStores>`, for example
   * a package's `openFileStores`.
   */
  readonly module: string;
  /** The factory's export name. Default `'default'`. */
  readonly exportName?: string;
  /** A new, empty storage for iteration `i` (a temp directory, a key prefix, …). */
  storage(iteration: number): MaybePromise<CrashStorage>;
  /** Processes to start and kill. Default 20. */
  readonly iterations?: number;
  /** Seeds the child's operations and the kill times; printed in every failure. Default random. */
  readonly seed?: number;
  /**
   * Node options for the child, e.g. `['--conditions=@raft/source', '--import', 'tsx']` to
   * load TypeScript sources. Default none.
   */
  readonly execArgv?: readonly string[];
  /** Working directory of the child (where `--import` resolves). Default this process's. */
  readonly cwd?: string;
  /** The child is killed at a uniformly random time this long after it is ready. Default 250. */
  readonly maxKillDelayMs?: number;
  /** Bound on one iteration: start, run, kill, reopen, check. Default 30000. */
  readonly timeoutMs?: number;
}

/** What {@link checkCrashConsistency} saw. */
export interface CrashConsistencyReport {
  readonly name: string;
  readonly seed: number;
  readonly iterations: number;
  /** Operations acknowledged by the children, in all (their effects were checked). */
  readonly acknowledged: number;
  /** Iterations killed with an operation in flight (the others died between two). */
  readonly killedInFlight: number;
  /** Entries found on reopen, summed over the iterations. */
  readonly entriesRecovered: number;
}

/** An operation as the child announces it. */
type Op =
  | {
      readonly n: number;
      readonly kind: 'append' | 'replace';
      readonly from: number;
      readonly term: number;
      readonly count: number;
    }
  | { readonly n: number; readonly kind: 'truncate' | 'compact'; readonly index: number };

/** The log as a model: the term of each index from `first`. */
interface LogModel {
  readonly first: number;
  readonly terms: readonly number[];
}

/**
 * Runs `iterations` child processes against fresh storages, kills each at a random moment and
 * checks what reopening finds (see the module comment). Throws a `ConformanceError` naming the
 * seed, the iteration and what differed at the first violation; resolves with a report.
 *
 * @example
 * ```ts
 * await checkCrashConsistency({
 *   name: 'file store',
 *   module: require.resolve('@raft/store-file'),
 *   exportName: 'openFileStores',
 *   storage: () => {
 *     const dir = mkdtempSync(join(tmpdir(), 'crash-'));
 *     return { config: { dir }, cleanup: () => rmSync(dir, { recursive: true }) };
 *   },
 * });
 * ```
 */
export async function checkCrashConsistency(
  options: CrashConsistencyOptions,
): Promise<CrashConsistencyReport> {
  const iterations = positiveOption(options.iterations, 'iterations', 20);
  const maxKillDelayMs = positiveOption(options.maxKillDelayMs, 'maxKillDelayMs', 250);
  const timeoutMs = positiveOption(options.timeoutMs, 'timeoutMs', 30_000);
  const seed = options.seed ?? Math.floor(Math.random() * 2 ** 31);
  const exportName = options.exportName ?? 'default';
  const moduleUrl = isAbsolute(options.module)
    ? pathToFileURL(options.module).href
    : options.module;
  const factory = await loadFactory(moduleUrl, exportName);
  const prng = new Prng(seed);
  let acknowledged = 0;
  let killedInFlight = 0;
  let entriesRecovered = 0;
  for (let i = 0; i < iterations; i++) {
    const where = `${options.name}: seed=${seed} iteration=${i}`;
    const storage = await options.storage(i);
    try {
      const childSeed = prng.int(2 ** 31);
      const killAfterMs = prng.range(0, maxKillDelayMs);
      const lines = await runAndKill(
        moduleUrl,
        exportName,
        storage.config,
        childSeed,
        killAfterMs,
        {
          execArgv: options.execArgv ?? [],
          cwd: options.cwd ?? process.cwd(),
          timeoutMs,
          where,
        },
      );
      const history = parseHistory(lines, where);
      acknowledged += history.acked.length;
      if (history.pending !== null) killedInFlight++;
      entriesRecovered += await checkRecovered(factory, storage.config, history, timeoutMs, where);
    } finally {
      await storage.cleanup();
    }
  }
  return { name: options.name, seed, iterations, acknowledged, killedInFlight, entriesRecovered };
}

type Factory = (config: unknown) => MaybePromise<CrashStores>;

async function loadFactory(moduleUrl: string, exportName: string): Promise<Factory> {
  const mod = (await import(moduleUrl)) as Record<string, unknown>;
  const factory = mod[exportName];
  if (typeof factory !== 'function') {
    fail(`${moduleUrl} has no function export "${exportName}"`);
  }
  return factory as Factory;
}

/**
 * The deterministic content of entry `index` written at `term`: both processes compute it, so
 * the child prints only operations, never data. Self-contained (it is sent to the child as
 * source text).
 */
function entryData(index: number, term: number): Uint8Array {
  let h = (Math.imul(index, 0x9e3779b1) ^ Math.imul(term, 0x85ebca77)) >>> 0;
  const next = (): number => {
    h ^= h << 13;
    h ^= h >>> 17;
    h ^= h << 5;
    h >>>= 0;
    return h;
  };
  const size = next() % 16 === 0 ? next() % 8192 : next() % 300;
  const data = new Uint8Array(size);
  for (let k = 0; k < size; k++) data[k] = next() & 0xff;
  return data;
}

/** The child: opens the stores and runs operations until it is killed (bounded all the same). */
const CHILD_SOURCE = `
const [moduleUrl, exportName, configJson, seedText] = process.argv.slice(1);
${entryData.toString()}
let s = Number(seedText) >>> 0 || 1;
const rand = (n) => { s ^= s << 13; s ^= s >>> 17; s ^= s << 5; s >>>= 0; return s % n; };
const out = (line) => process.stdout.write(line + '\\n');
const mod = await import(moduleUrl);
const stores = await mod[exportName](JSON.parse(configJson));
let { firstIndex: first, lastIndex: last } = await stores.logStore.open();
if (first !== 1 || last !== 0) throw new Error('the storage is not empty: [' + first + ', ' + last + ']');
let term = 1;
const entries = (from, t, count) => {
  const list = [];
  for (let i = from; i < from + count; i++)
    list.push({ index: i, term: t, kind: i % 50 === 0 ? 'noop' : 'command', data: entryData(i, t) });
  return list;
};
out('ready');
for (let n = 1; n <= 200000; n++) {
  const r = rand(100);
  const count = r % 10 === 0 ? 65 + rand(448) : r % 3 === 0 ? 5 + rand(60) : 1 + rand(4);
  if (r < 8 && last >= first) {
    const from = Math.max(first, last - rand(20));
    term++;
    out('op ' + n + ' replace ' + from + ' ' + term + ' ' + count);
    await stores.logStore.append(entries(from, term, count));
    last = from + count - 1;
  } else if (r < 12 && last > first) {
    const from = last - rand(Math.min(20, last - first));
    out('op ' + n + ' truncate ' + from);
    await stores.logStore.truncate(from);
    last = from - 1;
  } else if (r < 16 && last > first + 10) {
    const upTo = first + rand(Math.min(last - first, 200)) + (rand(20) === 0 ? last : 0);
    out('op ' + n + ' compact ' + upTo);
    await stores.logStore.compact(upTo);
    first = upTo + 1;
    if (last < upTo) last = upTo;
  } else {
    out('op ' + n + ' append ' + (last + 1) + ' ' + term + ' ' + count);
    await stores.logStore.append(entries(last + 1, term, count));
    last += count;
  }
  await stores.stableStore.save({ term: n, votedFor: 'n' + (n % 7), commit: n });
  out('ack ' + n);
}
out('done');
setInterval(() => {}, 60000);
`;

interface RunOptions {
  readonly execArgv: readonly string[];
  readonly cwd: string;
  readonly timeoutMs: number;
  readonly where: string;
}

/** Starts the child, SIGKILLs it `killAfterMs` after it is ready; resolves with its lines. */
function runAndKill(
  moduleUrl: string,
  exportName: string,
  config: unknown,
  seed: number,
  killAfterMs: number,
  options: RunOptions,
): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [
        ...options.execArgv,
        '--input-type=module',
        '-e',
        CHILD_SOURCE,
        moduleUrl,
        exportName,
        JSON.stringify(config),
        String(seed),
      ],
      { cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    let killed = false;
    let killTimer: NodeJS.Timeout | undefined;
    const kill = (): void => {
      killed = true;
      child.kill('SIGKILL');
    };
    const bound = setTimeout(() => {
      kill();
      reject(
        new Error(
          `${options.where}: the child did not start within ${options.timeoutMs} ms\n${stderr}`,
        ),
      );
    }, options.timeoutMs);
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      const wasReady = stdout.startsWith('ready\n');
      stdout += chunk;
      if (!wasReady && stdout.startsWith('ready\n')) killTimer = setTimeout(kill, killAfterMs);
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.on('error', (err) => {
      clearTimeout(bound);
      clearTimeout(killTimer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(bound);
      clearTimeout(killTimer);
      if (!killed || signal !== 'SIGKILL') {
        reject(
          new Error(
            `${options.where}: the child exited by itself (code ${code}, signal ${signal}) ` +
              `before it was killed:\n${stderr.slice(-4000)}`,
          ),
        );
        return;
      }
      // Only complete lines: the kill may cut the last one.
      const complete = stdout.slice(0, stdout.lastIndexOf('\n') + 1);
      resolve(complete.split('\n').filter((l) => l.length > 0));
    });
  });
}

interface History {
  /** Operations acknowledged, in order. */
  readonly acked: readonly Op[];
  /** The operation announced and not acknowledged, if any. */
  readonly pending: Op | null;
}

function parseHistory(lines: readonly string[], where: string): History {
  const acked: Op[] = [];
  let pending: Op | null = null;
  for (const line of lines) {
    const [word, ...rest] = line.split(' ');
    if (word === 'ready' || word === 'done') continue;
    const nums = rest.slice(word === 'op' ? 2 : 0).map(Number);
    if (word === 'op') {
      const n = Number(rest[0]);
      const kind = rest[1];
      if (kind === 'append' || kind === 'replace') {
        pending = {
          n,
          kind,
          from: nums[0] as number,
          term: nums[1] as number,
          count: nums[2] as number,
        };
      } else if (kind === 'truncate' || kind === 'compact') {
        pending = { n, kind, index: nums[0] as number };
      } else fail(`${where}: unexpected line from the child: ${line}`);
    } else if (word === 'ack') {
      if (pending === null || pending.n !== nums[0]) fail(`${where}: ack without its op: ${line}`);
      acked.push(pending);
      pending = null;
    } else fail(`${where}: unexpected line from the child: ${line}`);
  }
  return { acked, pending };
}

function applyOp(log: LogModel, op: Op): LogModel {
  const last = log.first + log.terms.length - 1;
  switch (op.kind) {
    case 'append':
    case 'replace': {
      const kept = log.terms.slice(0, op.from - log.first);
      for (let k = 0; k < op.count; k++) kept.push(op.term);
      return { first: log.first, terms: kept };
    }
    case 'truncate':
      return { first: log.first, terms: log.terms.slice(0, Math.max(0, op.index - log.first)) };
    case 'compact':
      if (op.index < log.first) return log;
      if (op.index >= last) return { first: op.index + 1, terms: [] };
      return { first: op.index + 1, terms: log.terms.slice(op.index + 1 - log.first) };
  }
}

/** Why `found` is not an outcome the history allows, or null when it is. */
function judge(found: LogModel, history: History): string | null {
  let old: LogModel = { first: 1, terms: [] };
  for (const op of history.acked) old = applyOp(old, op);
  const same = (a: LogModel, b: LogModel): boolean =>
    a.first === b.first &&
    a.terms.length === b.terms.length &&
    a.terms.every((t, k) => t === b.terms[k]);
  const prefixOf = (a: LogModel, b: LogModel, atLeast: number): boolean =>
    a.first === b.first &&
    a.terms.length <= b.terms.length &&
    a.terms.length >= atLeast &&
    a.terms.every((t, k) => t === b.terms[k]);
  if (same(found, old)) return null;
  const op = history.pending;
  if (op !== null) {
    const next = applyOp(old, op);
    if (same(found, next)) return null;
    if (
      (op.kind === 'append' || op.kind === 'replace') &&
      prefixOf(found, next, op.from - next.first)
    )
      return null;
    if (op.kind === 'truncate' && prefixOf(found, old, op.index - old.first)) return null;
  }
  const show = (m: LogModel): string =>
    `[${m.first}, ${m.first + m.terms.length - 1}] terms ${summarize(m.terms)}`;
  const inFlight = op === null ? 'nothing in flight' : `in flight: ${JSON.stringify(op)}`;
  const last = history.acked[history.acked.length - 1];
  return (
    `reopened log ${show(found)}; after the last acknowledged operation ` +
    `(${last === undefined ? 'none' : JSON.stringify(last)}) it was ${show(old)}; ${inFlight}`
  );
}

/** Runs of equal terms, as `1x40 2x3`. */
function summarize(terms: readonly number[]): string {
  const parts: string[] = [];
  let k = 0;
  while (k < terms.length) {
    let j = k;
    while (j < terms.length && terms[j] === terms[k]) j++;
    parts.push(`${terms[k]}x${j - k}`);
    k = j;
  }
  return parts.length === 0 ? '(none)' : parts.join(' ');
}

async function checkRecovered(
  factory: Factory,
  config: unknown,
  history: History,
  timeoutMs: number,
  where: string,
): Promise<number> {
  const stores = await settle(`${where}: reopen`, timeoutMs, () => factory(config));
  try {
    const bounds = await settle(`${where}: logStore.open()`, timeoutMs, () =>
      stores.logStore.open(),
    );
    const entries: LogEntry[] =
      bounds.lastIndex >= bounds.firstIndex
        ? await settle(`${where}: logStore.read()`, timeoutMs, () =>
            stores.logStore.read(bounds.firstIndex, bounds.lastIndex + 1),
          )
        : [];
    const found: LogModel = { first: bounds.firstIndex, terms: entries.map((e) => e.term) };
    const verdict = judge(found, history);
    if (verdict !== null) fail(`${where}: ${verdict}`);
    for (const e of entries) {
      const d = describeDifference(entryData(e.index, e.term), e.data);
      if (d !== null) fail(`${where}: entry ${e.index} (term ${e.term}) data differs: ${d}`);
      const kind = e.index % 50 === 0 ? 'noop' : 'command';
      if (e.kind !== kind) fail(`${where}: entry ${e.index} has kind ${e.kind}, expected ${kind}`);
    }
    const hard = await settle(`${where}: stableStore.load()`, timeoutMs, () =>
      stores.stableStore.load(),
    );
    checkHardState(hard, history, where);
    return entries.length;
  } finally {
    await stores.close().catch(() => {});
  }
}

function checkHardState(hard: HardState | null, history: History, where: string): void {
  const lastAcked = history.acked[history.acked.length - 1]?.n ?? 0;
  const inFlight = history.pending?.n ?? lastAcked;
  if (hard === null) {
    if (lastAcked > 0)
      fail(`${where}: the hard state is gone; operation ${lastAcked} had saved it`);
    return;
  }
  const expected: HardState = { term: hard.term, votedFor: `n${hard.term % 7}`, commit: hard.term };
  const d = describeDifference(expected, hard);
  if (d !== null) fail(`${where}: the hard state is torn: ${d}`);
  if (hard.term < lastAcked || hard.term > inFlight) {
    fail(
      `${where}: the hard state is from operation ${hard.term}; the last acknowledged save ` +
        `was operation ${lastAcked}${inFlight > lastAcked ? `, ${inFlight} was in flight` : ''}`,
    );
  }
}
