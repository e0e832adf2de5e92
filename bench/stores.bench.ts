/**
 * The stores against each other and against the disk: appended entries/s, syncs/s and append
 * latency with batches of 1, 64 and 1024 entries of 100 bytes, and the time to recover a
 * 1,000,000-entry log (open + read it all, as a node's start does).
 *
 * Beside them, the physical limit measured in the same run on the same disk: a bare loop of one
 * write and one fdatasync per batch (the bytes the file store would write for it), so every
 * figure is read as a ratio to what the disk does right now. Runs are interleaved (every store
 * once per round, rounds repeated) and each figure is the median over the rounds: the machine is
 * shared and noisy.
 *
 *   pnpm bench:stores [--seconds 3] [--rounds 3] [--stores bare,file,sqlite,redis]
 *                     [--batches 1,64,1024] [--recovery 1000000] [--dir <on the disk to test>]
 *
 * Redis is measured as configured (this machine's runs with `appendonly no`): its figures say
 * what the store costs in round trips, not what a durable Redis costs (see its README).
 */
import {
  closeSync,
  fdatasyncSync,
  constants as fsConstants,
  write as fsWrite,
  mkdtempSync,
  openSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { LogEntry, RaftStores } from '@raft/core';
import { deleteRedisKeys } from './redis-keys.js';

// `pnpm bench:stores -- --rounds 5` passes the `--` through: drop it.
const argv = process.argv.slice(2);
const { values } = parseArgs({
  args: argv[0] === '--' ? argv.slice(1) : argv,
  options: {
    seconds: { type: 'string', default: '3' },
    rounds: { type: 'string', default: '3' },
    stores: { type: 'string', default: 'bare,bare-async,file,sqlite,redis' },
    batches: { type: 'string', default: '1,64,1024' },
    recovery: { type: 'string', default: '1000000' },
    dir: { type: 'string', default: process.cwd() },
  },
});
const seconds = Number(values.seconds);
const rounds = Number(values.rounds);
const batches = values.batches.split(',').map(Number);
const storeNames = values.stores.split(',');
const recoveryEntries = Number(values.recovery);
const base = mkdtempSync(join(values.dir, '.bench-stores-'));

const ENTRY_BYTES = 100;
/** What the file store writes per entry: its 36-byte record header and the data. */
const RECORD_BYTES = 36 + ENTRY_BYTES;

interface Opened {
  readonly stores: RaftStores;
  /** Syncs so far, when the store counts them (the file store). */
  syncs?(): number;
}

type Factory = (label: string) => Promise<Opened>;

/** One Redis key prefix per store label (a reopen finds its log); deleted at the end. */
const redisPrefixes = new Map<string, string>();
const factories: Record<string, Factory> = {
  // Imported when used: a run of some stores needs nothing of the others.
  file: async (label) => {
    const { openFileStores } = await import('@raft/store-file');
    const stores = await openFileStores({ dir: join(base, label) });
    return { stores, syncs: () => stores.logStore.stats().syncs };
  },
  sqlite: async (label) => {
    const { openSqliteStores } = await import('@raft/store-sqlite');
    return { stores: await openSqliteStores({ path: join(base, `${label}.sqlite`) }) };
  },
  redis: async (label) => {
    const { openRedisStores } = await import('@raft/store-redis');
    let prefix = redisPrefixes.get(label);
    if (prefix === undefined) {
      prefix = `raft-bench:${process.pid}:${label}:`;
      redisPrefixes.set(label, prefix);
    }
    return { stores: await openRedisStores({ prefix }) };
  },
};

const payload = new Uint8Array(ENTRY_BYTES).fill(42);

function batchOf(from: number, count: number): LogEntry[] {
  const entries: LogEntry[] = new Array(count);
  for (let k = 0; k < count; k++) {
    entries[k] = { index: from + k, term: 1, kind: 'command', data: payload };
  }
  return entries;
}

interface Sample {
  readonly entriesPerSec: number;
  readonly syncsPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] as number;
}

/**
 * Runs `step` (one batch) for 0.3 s of warm-up, then for `seconds`, timing each call. `syncs`
 * counts the syncs made, when the subject counts them (else one per step). A synchronous step is
 * awaited too: one microtask per batch, nothing next to a disk sync.
 */
async function measure(
  batch: number,
  step: () => void | Promise<void>,
  syncs?: () => number,
): Promise<Sample> {
  const warmUntil = performance.now() + 300;
  while (performance.now() < warmUntil) await step();
  const syncsBefore = syncs?.() ?? 0;
  const latencies: number[] = [];
  let steps = 0;
  const start = performance.now();
  const end = start + seconds * 1000;
  let now = start;
  while (now < end) {
    await step();
    steps++;
    const t = performance.now();
    latencies.push(t - now);
    now = t;
  }
  const elapsed = (now - start) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    entriesPerSec: (steps * batch) / elapsed,
    syncsPerSec: (syncs === undefined ? steps : syncs() - syncsBefore) / elapsed,
    p50Ms: percentile(latencies, 0.5),
    p99Ms: percentile(latencies, 0.99),
  };
}

/** The disk's limit: write the batch's bytes at the end of a file, fdatasync, repeat. */
async function bareLoop(batch: number): Promise<Sample> {
  const path = join(base, `bare-${batch}-${Date.now()}`);
  const fd = openSync(path, 'w');
  const buf = Buffer.alloc(RECORD_BYTES * batch, 7);
  let position = 0;
  try {
    return await measure(batch, () => {
      writeSync(fd, buf, 0, buf.length, position);
      position += buf.length;
      fdatasyncSync(fd);
    });
  } finally {
    closeSync(fd);
    rmSync(path, { force: true });
  }
}

/**
 * The same loop through Node's asynchronous API, as a store that never blocks the event loop
 * must do it: one `fs.write` on an O_DSYNC descriptor per batch (one trip to libuv's thread
 * pool, about 35 µs on this machine even on tmpfs). The limit for the file store.
 */
async function bareAsyncLoop(batch: number): Promise<Sample> {
  const path = join(base, `bare-async-${batch}-${Date.now()}`);
  const c = fsConstants;
  const fd = openSync(path, c.O_RDWR | c.O_CREAT | c.O_TRUNC | (c.O_DSYNC ?? 0));
  const buf = Buffer.alloc(RECORD_BYTES * batch, 7);
  let position = 0;
  try {
    return await measure(
      batch,
      () =>
        new Promise<void>((resolve, reject) => {
          fsWrite(fd, buf, 0, buf.length, position, (err) => (err ? reject(err) : resolve()));
          position += buf.length;
        }),
    );
  } finally {
    closeSync(fd);
    rmSync(path, { force: true });
  }
}

async function storeLoop(name: string, batch: number, round: number): Promise<Sample> {
  const opened = await (factories[name] as Factory)(`${name}-${batch}-${round}`);
  const log = opened.stores.logStore;
  let next = (await log.open()).lastIndex + 1;
  try {
    return await measure(
      batch,
      async () => {
        await log.append(batchOf(next, batch));
        next += batch;
      },
      opened.syncs,
    );
  } finally {
    await opened.stores.close();
  }
}

/** Writes `count` entries in batches of 1024, closes, then times open() + read(all) 3 times. */
async function recovery(
  name: string,
  count: number,
): Promise<{ writeSec: number; recoverMs: number[] }> {
  const label = `${name}-recovery`;
  let opened = await (factories[name] as Factory)(label);
  await opened.stores.logStore.open();
  const writeStart = performance.now();
  for (let from = 1; from <= count; from += 1024) {
    await opened.stores.logStore.append(batchOf(from, Math.min(1024, count - from + 1)));
  }
  const writeSec = (performance.now() - writeStart) / 1000;
  await opened.stores.close();
  const recoverMs: number[] = [];
  for (let k = 0; k < 3; k++) {
    const t0 = performance.now();
    opened = await (factories[name] as Factory)(label);
    const bounds = await opened.stores.logStore.open();
    const entries = await opened.stores.logStore.read(bounds.firstIndex, bounds.lastIndex + 1);
    recoverMs.push(performance.now() - t0);
    if (entries.length !== count)
      throw new Error(`${name} recovered ${entries.length} of ${count}`);
    await opened.stores.close();
  }
  return { writeSec, recoverMs };
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
};
const fmt = (n: number): string =>
  n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e4 ? `${(n / 1e3).toFixed(0)}k` : n.toFixed(0);

async function main(): Promise<void> {
  console.log(
    `stores: ${storeNames.join(', ')}; batches ${batches.join(', ')} of ${ENTRY_BYTES}-byte entries; ` +
      `${rounds} rounds of ${seconds} s each, interleaved; disk under ${base}`,
  );
  const results = new Map<string, Sample[]>();
  for (let round = 0; round < rounds; round++) {
    for (const batch of batches) {
      // Rotate the order each round so no store always runs first (or right after another).
      const order = storeNames.map((_, k) => storeNames[(k + round) % storeNames.length] as string);
      for (const name of order) {
        const sample =
          name === 'bare'
            ? await bareLoop(batch)
            : name === 'bare-async'
              ? await bareAsyncLoop(batch)
              : await storeLoop(name, batch, round);
        const key = `${name}@${batch}`;
        results.set(key, [...(results.get(key) ?? []), sample]);
        console.log(
          `  round ${round + 1} batch ${batch} ${name}: ${fmt(sample.entriesPerSec)} entries/s, ` +
            `${fmt(sample.syncsPerSec)} syncs/s, p50 ${sample.p50Ms.toFixed(3)} ms, p99 ${sample.p99Ms.toFixed(3)} ms`,
        );
      }
    }
  }
  console.log(
    '\n| store | batch | entries/s | syncs/s | p50 ms | p99 ms | vs bare loop | vs bare async loop |',
  );
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const batch of batches) {
    const rateOf = (name: string): number => {
      const samples = results.get(`${name}@${batch}`);
      return samples === undefined ? Number.NaN : median(samples.map((s) => s.entriesPerSec));
    };
    const bareRate = rateOf('bare');
    const asyncRate = rateOf('bare-async');
    for (const name of storeNames) {
      const samples = results.get(`${name}@${batch}`) as Sample[];
      const rate = median(samples.map((s) => s.entriesPerSec));
      const ratio = (to: number, self: string): string =>
        name === self || Number.isNaN(to) ? '' : `${((rate / to) * 100).toFixed(0)}%`;
      console.log(
        `| ${name} | ${batch} | ${fmt(rate)} | ${fmt(median(samples.map((s) => s.syncsPerSec)))} | ` +
          `${median(samples.map((s) => s.p50Ms)).toFixed(3)} | ${median(samples.map((s) => s.p99Ms)).toFixed(3)} | ` +
          `${ratio(bareRate, 'bare')} | ${ratio(asyncRate, 'bare-async')} |`,
      );
    }
  }
  if (recoveryEntries > 0) {
    console.log(`\nrecovery of ${fmt(recoveryEntries)} entries (open + read all), 3 reopens each:`);
    for (const name of storeNames) {
      if (name === 'bare' || name === 'bare-async') continue;
      const r = await recovery(name, recoveryEntries);
      console.log(
        `| ${name} | written in ${r.writeSec.toFixed(1)} s | recovered in ${r.recoverMs.map((m) => `${m.toFixed(0)} ms`).join(', ')} (median ${median(r.recoverMs).toFixed(0)} ms) |`,
      );
    }
  }
}

try {
  await main();
} finally {
  rmSync(base, { recursive: true, force: true });
  await deleteRedisKeys(redisPrefixes.values());
}
