/**
 * The lock that gives one database to one owner: a file `<path>.lock` beside the database,
 * holding the owner's pid, created atomically so that at most one handle holds it.
 *
 * Why a lock file, and not SQLite's own locks:
 * - `PRAGMA locking_mode = EXCLUSIVE` would keep every other connection out, including a
 *   read-only `sqlite3` shell used to inspect a node, and in WAL mode it also stops using the
 *   shared-memory index. It does not say who holds the database either.
 * - A transaction held open (`BEGIN IMMEDIATE`) would lock out other writers, but it is the
 *   connection's only transaction: every append would have to commit inside it.
 * - A lock row in the database needs a write, under SQLite's lock, before we know whether we may
 *   write at all, and a crashed owner leaves the row behind just as it leaves a file.
 *
 * The file is written in full under a temporary name, then hard-linked to `<path>.lock`: `link`
 * fails if the name exists, so taking the lock is atomic and a lock file is never seen half
 * written. (Where the file system has no hard links, an exclusive create is the fallback.)
 *
 * A lock whose pid no longer runs was left by a crash and is removed. Removing it is itself
 * guarded: it is first renamed aside and re-read, so a process that took the lock in between is
 * not robbed of it. A lock that holds this process's own pid is either this process's (another
 * handle, maybe in another worker thread) or was left by an earlier process that had the same
 * pid, which is the rule in containers (the node often runs as pid 1 at every start). The
 * holder keeps the lock file open for as long as it holds it, so the two are told apart by
 * looking for the file among this process's open descriptors (`/dev/fd`, process-wide, unlike
 * the in-memory registry, which each worker thread has its own copy of); where `/dev/fd` cannot
 * be listed, the registry alone decides.
 */
import {
  closeSync,
  fstatSync,
  fsyncSync,
  linkSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  type Stats,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { type Logger, StorageError } from '@raft/core';

/** A lock this process holds. */
export interface HeldLock {
  /** The lock file. */
  readonly path: string;
  /** Deletes the lock file (if it is still ours). Idempotent; never throws. */
  release(): void;
}

/**
 * Lock files held by this thread, shared by every copy of this package loaded into it. Worker
 * threads have their own: {@link openByThisProcess} is what sees across them.
 */
function heldLocks(): Set<string> {
  const key = Symbol.for('@raft/store-sqlite/held-locks');
  const registry = globalThis as unknown as Record<symbol, Set<string> | undefined>;
  let set = registry[key];
  if (set === undefined) {
    set = new Set();
    registry[key] = set;
  }
  return set;
}

/** Attempts before giving up when other processes keep taking and dropping the lock. */
const MAX_ATTEMPTS = 5;

/** Error codes of `link` on file systems without hard links (FAT, some network mounts). */
const NO_HARD_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EINVAL', 'EXDEV']);

let tempSeq = 0;

/**
 * Takes the lock of the database at `dbPath` (an absolute path), or throws a StorageError
 * naming the pid of the process that holds it.
 */
export function acquireLockFile(dbPath: string, logger: Logger): HeldLock {
  const lockPath = `${dbPath}.lock`;
  const held = heldLocks();
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const fd = tryCreate(lockPath);
    if (fd !== undefined) {
      held.add(lockPath);
      return new LockFile(lockPath, fd, logger);
    }
    const holder = readHolder(lockPath);
    if (holder.kind === 'gone') continue; // released meanwhile: try again
    if (holder.kind === 'unreadable') {
      throw new StorageError(
        `the database ${dbPath} has a lock file ${lockPath} that names no process (it holds ${JSON.stringify(holder.text.slice(0, 40))}): if no process uses the database, delete the lock file`,
      );
    }
    const { pid } = holder;
    const isHeld =
      pid === process.pid ? held.has(lockPath) || openByThisProcess(lockPath) : isRunning(pid);
    if (isHeld) {
      const who = pid === process.pid ? `this process (pid ${pid})` : `process ${pid}`;
      throw new StorageError(
        `the database ${dbPath} is in use by ${who}: its lock file ${lockPath} is held. Close the other stores first (one database belongs to one node); if process ${pid} is not a node using it, delete the lock file`,
      );
    }
    logger.warn(
      { lockPath, pid },
      `removing the stale lock file of process ${pid}, which no longer runs`,
    );
    removeStale(lockPath, pid);
  }
  throw new StorageError(
    `could not take the lock file ${lockPath} in ${MAX_ATTEMPTS} attempts: other processes keep taking it`,
  );
}

class LockFile implements HeldLock {
  private released = false;

  /** `fd` is the lock file, open for as long as it is held: see {@link openByThisProcess}. */
  constructor(
    readonly path: string,
    private readonly fd: number,
    private readonly logger: Logger,
  ) {}

  release(): void {
    if (this.released) return;
    this.released = true;
    heldLocks().delete(this.path);
    try {
      // Only ever delete our own lock: someone may have removed ours by hand and taken it, even
      // another handle of this process (same pid), so the file itself is compared, not its pid.
      const ours = fstatSync(this.fd);
      closeSync(this.fd);
      if (sameFile(ours, statOrUndefined(this.path))) unlinkSync(this.path);
    } catch (err) {
      this.logger.warn(
        { lockPath: this.path, err },
        'could not delete the lock file; the next open will find it stale and remove it',
      );
    }
  }
}

/**
 * Creates the lock file holding this process's pid and returns a descriptor open on it;
 * undefined if it exists already.
 */
function tryCreate(lockPath: string): number | undefined {
  const content = `${process.pid}\n`;
  const temp = `${lockPath}.${process.pid}.${tempSeq++}.tmp`;
  try {
    writeDurably(temp, content, 'w');
  } catch (err) {
    throw new StorageError(
      `cannot create the lock file ${lockPath} (does the directory exist, and may this process write to it?): ${(err as Error).message}`,
      { cause: err },
    );
  }
  try {
    linkSync(temp, lockPath);
    // Opened through the temporary name, which is the same file: nobody else can have replaced
    // it there, as they could the lock's name between the link and an open of `lockPath`.
    return openSync(temp, 'r');
  } catch (err) {
    const code = errorCode(err);
    if (code === 'EEXIST') return undefined;
    if (code !== undefined && NO_HARD_LINKS.has(code)) return createExclusive(lockPath, content);
    throw new StorageError(`cannot create the lock file ${lockPath}: ${(err as Error).message}`, {
      cause: err,
    });
  } finally {
    removeQuietly(temp);
  }
}

/** The fallback without hard links: an exclusive create, then the pid written into it. */
function createExclusive(lockPath: string, content: string): number | undefined {
  try {
    return writeDurably(lockPath, content, 'wx');
  } catch (err) {
    if (errorCode(err) === 'EEXIST') return undefined;
    throw new StorageError(`cannot create the lock file ${lockPath}: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

/** Writes and fsyncs `content`; with 'wx', returns the descriptor still open (the caller's). */
function writeDurably(path: string, content: string, flag: 'w'): undefined;
function writeDurably(path: string, content: string, flag: 'wx'): number;
function writeDurably(path: string, content: string, flag: 'w' | 'wx'): number | undefined {
  const fd = openSync(path, flag, 0o644);
  try {
    writeSync(fd, content);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    throw err;
  }
  if (flag === 'wx') return fd;
  closeSync(fd);
  return undefined;
}

/**
 * Whether a descriptor of this process, in any thread, is open on the lock file, as each holder
 * keeps one: true means another handle of this process holds the lock, false that it was left
 * by an earlier process with this pid, or that this process's descriptors cannot be listed (no
 * `/dev/fd`, as on Windows; the registry then decides alone).
 */
function openByThisProcess(lockPath: string): boolean {
  const lock = statOrUndefined(lockPath);
  if (lock === undefined) return false;
  let names: string[];
  try {
    names = readdirSync('/dev/fd');
  } catch {
    return false;
  }
  for (const name of names) {
    let st: Stats;
    try {
      st = statSync(`/dev/fd/${name}`);
    } catch {
      continue; // closed meanwhile (the listing's own descriptor, for one)
    }
    if (sameFile(st, lock)) return true;
  }
  return false;
}

function statOrUndefined(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

function sameFile(a: Stats, b: Stats | undefined): boolean {
  return b !== undefined && a.dev === b.dev && a.ino === b.ino;
}

type Holder =
  | { readonly kind: 'pid'; readonly pid: number }
  | { readonly kind: 'gone' }
  | { readonly kind: 'unreadable'; readonly text: string };

function readHolder(lockPath: string): Holder {
  let text: string;
  try {
    text = readFileSync(lockPath, 'utf8');
  } catch (err) {
    if (errorCode(err) === 'ENOENT') return { kind: 'gone' };
    throw new StorageError(`cannot read the lock file ${lockPath}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  const match = /^\s*(\d{1,10})\s*$/.exec(text);
  const pid = match === null ? Number.NaN : Number(match[1]);
  // pid 0 and negative pids mean process groups to kill(): never probe them.
  return Number.isSafeInteger(pid) && pid > 0 ? { kind: 'pid', pid } : { kind: 'unreadable', text };
}

/** Whether a process with this pid runs (on this host). */
function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0); // signal 0: only checks that the process exists
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to another user. Anything but ESRCH: assume it runs.
    return errorCode(err) !== 'ESRCH';
  }
}

/**
 * Removes the lock file left by the dead process `stalePid`, unless another process replaced
 * it in the meantime (two processes finding the same stale lock at once): the file is renamed
 * aside first (atomic), and put back if it turns out to be someone else's.
 */
function removeStale(lockPath: string, stalePid: number): void {
  const aside = `${lockPath}.${process.pid}.${tempSeq++}.stale`;
  try {
    renameSync(lockPath, aside);
  } catch (err) {
    if (errorCode(err) === 'ENOENT') return; // someone else removed it
    throw new StorageError(
      `cannot remove the stale lock file ${lockPath}: ${(err as Error).message}`,
      { cause: err },
    );
  }
  try {
    const moved = readHolder(aside);
    if (moved.kind === 'pid' && moved.pid === stalePid) return;
    // A live process took the lock between our read and the rename: give it back.
    try {
      linkSync(aside, lockPath);
    } catch (err) {
      const code = errorCode(err);
      if (code !== 'EEXIST' && code !== undefined && NO_HARD_LINKS.has(code)) {
        renameSync(aside, lockPath);
      }
    }
  } finally {
    removeQuietly(aside);
  }
}

function removeQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // Already gone, or not ours to remove: nothing depends on it.
  }
}

function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}
