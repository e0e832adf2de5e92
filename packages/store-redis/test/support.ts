/**
 * Small helpers shared by the store-redis tests: a logger that records, bounded polling, and
 * bookkeeping that closes every store a test opened and deletes its prefixes.
 */
import type { LogEntry, Logger, RaftStores } from '@raft/core';
import { expect } from 'vitest';
import type { RedisStoresOptions } from '../src/index.js';
import { openRedisStores } from '../src/index.js';
import { deletePrefix, SHARED_URL } from './redis-server.js';

/** One call of a {@link RecordingLogger}. */
export interface LogLine {
  readonly level: 'debug' | 'info' | 'warn' | 'error';
  readonly fields: Record<string, unknown>;
  readonly msg: string;
}

/** A logger that keeps what it is given (children write to the same list). */
export class RecordingLogger implements Logger {
  readonly lines: LogLine[] = [];
  debug(fields: Record<string, unknown>, msg = ''): void {
    this.lines.push({ level: 'debug', fields, msg });
  }
  info(fields: Record<string, unknown>, msg = ''): void {
    this.lines.push({ level: 'info', fields, msg });
  }
  warn(fields: Record<string, unknown>, msg = ''): void {
    this.lines.push({ level: 'warn', fields, msg });
  }
  error(fields: Record<string, unknown>, msg = ''): void {
    this.lines.push({ level: 'error', fields, msg });
  }
  child(): Logger {
    return this;
  }
  /** The messages logged at `level`. */
  messages(level: LogLine['level']): string[] {
    return this.lines.filter((l) => l.level === level).map((l) => l.msg);
  }
}

/** Polls `condition` every 20 ms until it holds; throws after `timeoutMs`. */
export async function waitFor(
  what: string,
  condition: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await condition())) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Entries `[from, to)` of `term`, with data that differs per index. */
export function entries(from: number, to: number, term = 1, size = 5): LogEntry[] {
  const out: LogEntry[] = [];
  for (let index = from; index < to; index++) {
    const data = new Uint8Array(size);
    for (let i = 0; i < size; i++) data[i] = (index * 7 + i * 13) & 0xff;
    out.push({ index, term, kind: 'command', data });
  }
  return out;
}

/**
 * Opens stores and remembers them and their prefixes, so `cleanup()` (in afterEach) closes
 * every one and deletes every prefix's keys on the Redis at `url`.
 */
export class StoresTracker {
  private readonly opened: RaftStores[] = [];
  private readonly prefixes = new Set<string>();

  constructor(private readonly url: string = SHARED_URL) {}

  async open(options: RedisStoresOptions): Promise<RaftStores> {
    this.prefixes.add(options.prefix);
    const stores = await openRedisStores({
      ...(options.redis === undefined ? { url: this.url } : {}),
      ...options,
    });
    this.opened.push(stores);
    return stores;
  }

  /** Remembers a prefix written some other way, for deletion. */
  track(prefix: string): void {
    this.prefixes.add(prefix);
  }

  async cleanup(): Promise<void> {
    for (const stores of this.opened.splice(0)) await stores.close();
    for (const prefix of this.prefixes) await deletePrefix(prefix, this.url);
    this.prefixes.clear();
  }
}

/**
 * Requires `actual` to equal `expected` entry by entry, comparing data bytes with
 * Buffer.equals (deep equality walks big arrays element by element, far too slowly).
 */
export function expectSameEntries(
  actual: readonly LogEntry[],
  expected: readonly LogEntry[],
): void {
  expect(actual.map(({ index, term, kind }) => ({ index, term, kind }))).toEqual(
    expected.map(({ index, term, kind }) => ({ index, term, kind })),
  );
  for (const [i, e] of expected.entries()) {
    const got = (actual[i] as LogEntry).data;
    expect(got).toBeInstanceOf(Uint8Array);
    expect(
      Buffer.from(got.buffer, got.byteOffset, got.length).equals(e.data),
      `data of entry ${e.index}`,
    ).toBe(true);
  }
}
