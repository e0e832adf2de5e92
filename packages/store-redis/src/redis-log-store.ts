/**
 * The LogStore of a prefix: entries in the `P log` hash (field = index), bounds in `P meta`.
 *
 * - `append` is one script call: it refuses a gap (or an append before the first index)
 *   before writing anything, then sets the new entries, moves `last` and deletes the replaced
 *   entries past the new end, all in one atomic step. A batch larger than
 *   `tuning.maxBatchBytes` is first pushed in pieces to the `P log:stage` list (invisible to
 *   reads), and the same script then applies the whole list at once: each command stays small
 *   while the append stays atomic.
 * - `compact` and `truncate` move the bounds atomically; the fields they drop are deleted in
 *   bounded steps (`P meta` `floor`/`ceiling`), the first inside the same script.
 * - Reads are checked against the bounds the last script returned (one owner writes the prefix,
 *   so they are exact) and fetched with pipelined HMGETs.
 */
import type { LogBounds, LogEntry, LogIndex, LogStore } from '@raft/core';
import { checkLogIndex, checkLogRead, RaftError, StorageError } from '@raft/core';
import { decodeEntry, encodeBatches } from './entry-codec.js';
import { APPEND, COMPACT, STAGE, SWEEP_LOG, TRUNCATE } from './lua-scripts.js';
import type { RedisArg, RedisLink } from './redis-link.js';
import { messageOf } from './redis-link.js';
import type { RedisStoreTuning } from './tuning.js';

interface Bounds {
  readonly first: LogIndex;
  readonly last: LogIndex;
}

/** Script refusals that stored nothing: the bounds known before are still right. */
const REFUSALS = /^RAFT_(GAP|COMPACTED|BATCH) /;

/** The log store of one prefix (see the module comment). */
export class RedisLogStore implements LogStore {
  private state: 'created' | 'open' | 'closed' = 'created';
  /**
   * The bounds the last script reported; null when a failed call may or may not have changed
   * them (a timeout), so the next call reads them again instead of trusting a guess.
   */
  private bounds: Bounds | null = null;

  constructor(
    private readonly link: RedisLink,
    private readonly tuning: RedisStoreTuning,
  ) {}

  async open(): Promise<LogBounds> {
    this.link.check('open()');
    // Finishes deleting whatever a crash left outside the bounds, and reads them.
    const bounds = await this.sweep('open()', await this.runSweepStep('open()'));
    this.state = 'open';
    this.link.storeOpened('log');
    return { firstIndex: bounds.first, lastIndex: bounds.last };
  }

  async read(from: LogIndex, to: LogIndex): Promise<LogEntry[]> {
    this.check('read()');
    const { first, last } = this.bounds ?? (await this.readBounds(`read(${from}, ${to})`));
    checkLogRead(from, to, first, last);
    if (from === to) return [];
    const what = `read(${from}, ${to})`;
    const step = this.tuning.readBatchEntries;
    const replies: Promise<unknown>[] = [];
    for (let start = from; start < to; start += step) {
      const end = Math.min(start + step, to);
      const args: RedisArg[] = [this.link.keys.log];
      for (let i = start; i < end; i++) args.push(String(i));
      replies.push(this.link.callBuffer(what, 'HMGET', args));
    }
    const values = await Promise.all(replies);
    const out: LogEntry[] = new Array(to - from);
    let index = from;
    for (const reply of values) {
      if (!Array.isArray(reply)) throw new StorageError(`${what}: HMGET answered ${typeof reply}`);
      for (const value of reply as (Buffer | null)[]) {
        out[index - from] = decodeEntry(index, value);
        index++;
      }
    }
    if (index !== to) throw new StorageError(`${what}: Redis returned ${index - from} entries`);
    return out;
  }

  async append(entries: readonly LogEntry[]): Promise<void> {
    this.check('append()');
    const head = entries[0];
    if (head === undefined) return;
    const tail = entries[entries.length - 1] as LogEntry;
    const what = `append([${head.index}..${tail.index}])`;
    const { maxBatchBytes, maxBatchEntries, sweepBudget } = this.tuning;
    const batches = encodeBatches(entries, maxBatchBytes, maxBatchEntries);
    const { keys, holder } = this.link;
    const scriptKeys = [keys.lock, keys.meta, keys.log, keys.logStage];
    let reply: unknown;
    try {
      if (batches.length === 1) {
        reply = await this.link.script(what, APPEND, scriptKeys, [
          holder,
          head.index,
          entries.length,
          sweepBudget,
          'inline',
          batches[0] as Buffer,
        ]);
      } else {
        const known = this.bounds;
        if (known !== null && head.index > known.last + 1) {
          throw new StorageError(
            `${what}: append at ${head.index} would leave a gap after the last index ${known.last}; nothing was stored`,
          );
        }
        // Pipelined on the one connection, so they arrive in order; the first clears the list.
        await Promise.all(
          batches.map((batch, i) =>
            this.link.script(
              what,
              STAGE,
              [keys.lock, keys.logStage],
              [holder, i === 0 ? '1' : '0', batch],
            ),
          ),
        );
        reply = await this.link.script(what, APPEND, scriptKeys, [
          holder,
          head.index,
          entries.length,
          sweepBudget,
          'staged',
        ]);
      }
    } catch (err) {
      this.failed(err);
      throw err;
    }
    await this.sweep(what, reply);
  }

  async compact(upTo: LogIndex): Promise<void> {
    this.check('compact()');
    checkLogIndex('compact', upTo);
    await this.write(`compact(${upTo})`, COMPACT, upTo);
  }

  async truncate(from: LogIndex): Promise<void> {
    this.check('truncate()');
    checkLogIndex('truncate', from);
    await this.write(`truncate(${from})`, TRUNCATE, from);
  }

  async close(): Promise<void> {
    this.state = 'closed';
    this.link.storeClosed('log');
  }

  private async write(what: string, script: typeof COMPACT, index: LogIndex): Promise<void> {
    const { keys, holder } = this.link;
    let reply: unknown;
    try {
      reply = await this.link.script(
        what,
        script,
        [keys.lock, keys.meta, keys.log],
        [holder, index, this.tuning.sweepBudget],
      );
    } catch (err) {
      this.failed(err);
      throw err;
    }
    await this.sweep(what, reply);
  }

  /**
   * Takes the bounds of a script's `{ first, last, more }` reply and, while `more`, runs further
   * sweep steps. The write itself is durable by then: a failing sweep is logged, not thrown
   * (the garbage is invisible, and the next write or open resumes the sweep).
   */
  private async sweep(what: string, reply: unknown): Promise<Bounds> {
    let step = parseStep(what, reply);
    this.bounds = step.bounds;
    try {
      while (step.more) {
        step = parseStep(what, await this.runSweepStep(what));
        this.bounds = step.bounds;
      }
    } catch (err) {
      this.link.logger.warn(
        { prefix: this.link.keys.prefix, err: messageOf(err) },
        `${what}: deleting dropped entries failed; the next write or open resumes it`,
      );
    }
    return step.bounds;
  }

  private runSweepStep(what: string): Promise<unknown> {
    const { keys, holder } = this.link;
    return this.link.script(
      what,
      SWEEP_LOG,
      [keys.lock, keys.meta, keys.log],
      [holder, this.tuning.sweepBudget],
    );
  }

  private async readBounds(what: string): Promise<Bounds> {
    const reply = await this.link.call(what, 'HMGET', [this.link.keys.meta, 'first', 'last']);
    const [first, last] = Array.isArray(reply) ? reply : [];
    const bounds = {
      first: first === null || first === undefined ? 1 : Number(first),
      last: last === null || last === undefined ? 0 : Number(last),
    };
    if (!(Number.isSafeInteger(bounds.first) && Number.isSafeInteger(bounds.last))) {
      throw new StorageError(
        `${what}: the log bounds in Redis are corrupt (${String(first)}, ${String(last)})`,
      );
    }
    this.bounds = bounds;
    return bounds;
  }

  /** After a failed write: forget the bounds unless the script refused before writing. */
  private failed(err: unknown): void {
    const cause = (err as { cause?: unknown }).cause;
    if (!(RaftError.is(err, 'STORAGE') && cause !== undefined && REFUSALS.test(messageOf(cause)))) {
      this.bounds = null;
    }
  }

  private check(what: string): void {
    if (this.state !== 'open') {
      throw new StorageError(
        `${what}: the log store is ${this.state === 'closed' ? 'closed' : 'not open yet (call open() first)'}`,
      );
    }
    this.link.check(what);
  }
}

/** A `{ first, last, more }` script reply. */
function parseStep(what: string, reply: unknown): { bounds: Bounds; more: boolean } {
  if (Array.isArray(reply) && reply.length === 3) {
    const [first, last, more] = reply as unknown[];
    if (Number.isSafeInteger(first) && Number.isSafeInteger(last)) {
      return { bounds: { first: first as number, last: last as number }, more: more === 1 };
    }
  }
  throw new StorageError(`${what}: unexpected reply from the log script: ${String(reply)}`);
}
