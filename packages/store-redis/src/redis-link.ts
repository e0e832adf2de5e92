/**
 * The one connection the three stores of a prefix share, and the single place where commands
 * are sent: every command is bounded by `commandTimeoutMs` and every failure becomes a
 * StorageError whose `cause` is the driver's error.
 *
 * Why a timer of our own on top of ioredis's `commandTimeout`: a client the user passes in may
 * have no timeout and may queue commands while it reconnects; the bound must hold for it too.
 */
import type { Logger } from '@raft/core';
import { RaftError, StorageError } from '@raft/core';
import type { Redis } from 'ioredis';
import type { KeyLayout } from './key-layout.js';
import type { LuaScript } from './lua-scripts.js';

/** An argument of a Redis command. */
export type RedisArg = string | Buffer | number;

/** The reason a call got no answer in time; the `cause` of the StorageError. */
export class RedisTimeoutError extends Error {
  constructor(what: string, ms: number) {
    super(`${what}: Redis did not answer within ${ms} ms`);
    this.name = 'RedisTimeoutError';
  }
}

/** The connection of one prefix's stores, with their shared state (closed, lock lost). */
/** The three stores that share one link. */
export type StoreName = 'log' | 'stable' | 'snapshot';

export class RedisLink {
  /** The value of the lock key this store wrote; every write script compares it. */
  holder = '';
  private closedFlag = false;
  private lockLost: string | null = null;
  /** The stores closed and not reopened since (of `log`, `stable`, `snapshot`). */
  private readonly closedStores = new Set<StoreName>();
  /** Called once all three stores are closed: the bundle then releases the prefix. */
  onAllStoresClosed: () => void = () => {};

  constructor(
    readonly client: Redis,
    /** Whether the stores created the client (and so configure and close it). */
    readonly ownsClient: boolean,
    readonly timeoutMs: number,
    readonly keys: KeyLayout,
    readonly logger: Logger,
  ) {}

  get closed(): boolean {
    return this.closedFlag;
  }

  /** Whether calls may still be made (not closed, lock not lost). */
  get usable(): boolean {
    return !this.closedFlag && this.lockLost === null;
  }

  /**
   * Bookkeeping of the three stores: closing all of them (what a node's stop() does when the
   * stores were given one by one, or spread from the bundle) releases the prefix, as the
   * bundle's close() does. A store reopened after its close (`open()`, `load()`) counts again.
   */
  storeClosed(name: StoreName): void {
    if (this.closedStores.has(name)) return; // closed again: nothing changes
    this.closedStores.add(name);
    if (this.closedStores.size === 3) this.onAllStoresClosed();
  }

  storeOpened(name: StoreName): void {
    this.closedStores.delete(name);
  }

  /** Refuses every call from now on: the stores are closed. */
  markClosed(): void {
    this.closedFlag = true;
  }

  /** Refuses every call from now on: another store may own the prefix. */
  markLockLost(description: string): void {
    if (this.lockLost !== null) return;
    this.lockLost = description;
    this.logger.error(
      { prefix: this.keys.prefix },
      `${description}; the stores refuse every call from now on`,
    );
  }

  /** Throws a StorageError when calls may no longer be made. */
  check(what: string): void {
    if (this.closedFlag) {
      throw new StorageError(
        `${what}: the Redis stores of prefix '${this.keys.prefix}' are closed`,
      );
    }
    if (this.lockLost !== null) throw new StorageError(`${what}: ${this.lockLost}`);
  }

  /** Sends one command (replies decoded as UTF-8 strings). */
  async call(what: string, command: string, args: readonly RedisArg[]): Promise<unknown> {
    this.check(what);
    return this.bounded(what, () => this.client.call(command, args as RedisArg[]));
  }

  /** Sends one command, bulk replies as Buffers. */
  async callBuffer(what: string, command: string, args: readonly RedisArg[]): Promise<unknown> {
    this.check(what);
    return this.bounded(what, () => this.client.callBuffer(command, args as RedisArg[]));
  }

  /**
   * Runs a script by its SHA1, and by its source when Redis does not have it cached (after a
   * restart, or a SCRIPT FLUSH). `buffers`: bulk replies as Buffers instead of strings.
   */
  async script(
    what: string,
    script: LuaScript,
    keys: readonly string[],
    args: readonly RedisArg[],
    buffers = false,
  ): Promise<unknown> {
    this.check(what);
    const send = (command: string, body: string): Promise<unknown> => {
      const argv: RedisArg[] = [body, keys.length, ...keys, ...args];
      return buffers ? this.client.callBuffer(command, argv) : this.client.call(command, argv);
    };
    try {
      return await this.raw(what, () => send('EVALSHA', script.sha));
    } catch (err) {
      if (!messageOf(err).startsWith('NOSCRIPT')) throw this.wrap(what, err);
    }
    try {
      return await this.raw(what, () => send('EVAL', script.lua));
    } catch (err) {
      throw this.wrap(what, err);
    }
  }

  /** Loads scripts into Redis's cache, so the first EVALSHA of each finds it. */
  async loadScripts(scripts: readonly LuaScript[]): Promise<void> {
    await Promise.all(
      scripts.map((s) => this.call(`loading the ${s.name} script`, 'SCRIPT', ['LOAD', s.lua])),
    );
  }

  /** `send()` bounded by the timeout, its failures wrapped in StorageErrors. */
  private async bounded<T>(what: string, send: () => Promise<T>): Promise<T> {
    try {
      return await this.raw(what, send);
    } catch (err) {
      throw this.wrap(what, err);
    }
  }

  /** `send()` bounded by the timeout; rejects with the driver's error or a RedisTimeoutError. */
  private raw<T>(what: string, send: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new RedisTimeoutError(what, this.timeoutMs)),
        this.timeoutMs,
      );
      let pending: Promise<T>;
      try {
        pending = send();
      } catch (err) {
        clearTimeout(timer);
        reject(err);
        return;
      }
      // A late settlement after the timer fired lands here too, so it is never unhandled.
      pending.then(
        (value) => {
          clearTimeout(timer);
          resolve(value);
        },
        (err: unknown) => {
          clearTimeout(timer);
          reject(err);
        },
      );
    });
  }

  /** The StorageError for a failed call; `RAFT_*` replies are the scripts' own refusals. */
  wrap(what: string, err: unknown): StorageError {
    if (RaftError.is(err, 'STORAGE')) return err;
    const message = messageOf(err);
    const refusal = /^RAFT_([A-Z]+) ?([\s\S]*)$/.exec(message);
    if (refusal === null) return new StorageError(`${what} failed: ${message}`, { cause: err });
    const [, code, detail = ''] = refusal;
    if (code === 'LOCK') {
      const lost = `the lock on the Redis key prefix '${this.keys.prefix}' was lost (${describeHolder(detail)}): another store may own the prefix now`;
      this.markLockLost(lost);
      return new StorageError(`${what}: ${lost}`, { cause: err });
    }
    return new StorageError(`${what}: ${detail}`, { cause: err });
  }
}

/** `err.message`, or the value as text. */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** A lock value as words: "now held by pid 12 on host h" or "nobody holds it now". */
export function describeHolder(value: string): string {
  if (value === '') return 'nobody holds it now';
  try {
    const holder = JSON.parse(value) as { pid?: unknown; host?: unknown };
    if (typeof holder.pid === 'number' && typeof holder.host === 'string') {
      return `now held by pid ${holder.pid} on host ${holder.host}`;
    }
  } catch {
    // Not ours: show it as it is.
  }
  return `now holding ${JSON.stringify(value.slice(0, 200))}`;
}
