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
 * guarded: only the opener that claims a takeover marker named after the stale file's inode may
 * remove it, and only while the lock is still that file, so a process that took the lock in
 * between is never robbed of it. (A first version renamed the lock aside, re-read it and linked
 * it back when it turned out to be live: between the rename and the link a third opener could
 * take the free name, and two processes held the database; the stampede test caught it in CI.) A lock that holds this process's own pid is either this process's (another
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
/** How long an opener waits, in all, for other openers' takeovers of a stale lock. */
const TAKEOVER_WAIT_MS = 2000;
const RETRY_MS = 10;

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
  const deadline = Date.now() + TAKEOVER_WAIT_MS;
  for (let attempt = 0; attempt < MAX_ATTEMPTS || Date.now() < deadline; attempt++) {
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
    if (!isStale(holder, held.has(lockPath))) {
      const who = pid === process.pid ? `this process (pid ${pid})` : `process ${pid}`;
      throw new StorageError(
        `the database ${dbPath} is in use by ${who}: its lock file ${lockPath} is held. Close the other stores first (one database belongs to one node); if process ${pid} is not a node using it, delete the lock file`,
      );
    }
    if (removeStale(lockPath, holder, logger, 0)) continue;
    // Another opener is taking this stale lock over: give it a moment, then look again.
    sleepSync(RETRY_MS);
  }
  throw new StorageError(
    `could not take the lock file ${lockPath} within ${TAKEOVER_WAIT_MS} ms: other processes keep taking it`,
  );
}

/** Whether `holder`'s process is gone (for this pid: no handle of this process holds it). */
function isStale(holder: PidHolder, heldHere: boolean): boolean {
  if (holder.pid === process.pid) return !heldHere && !openByThisProcess(holder);
  return !isRunning(holder.pid);
}

/** Blocks this thread for `ms` (lock acquisition is synchronous and rare). */
function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
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
function openByThisProcess(holder: PidHolder): boolean {
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
    if (st.dev === holder.dev && st.ino === holder.ino) return true;
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

/** A lock file naming a pid, and which file it was (its inode: the content came from it). */
interface PidHolder {
  readonly kind: 'pid';
  readonly pid: number;
  readonly dev: number;
  readonly ino: number;
}

type Holder =
  | PidHolder
  | { readonly kind: 'gone' }
  | { readonly kind: 'unreadable'; readonly text: string };

function readHolder(lockPath: string): Holder {
  let fd: number;
  try {
    fd = openSync(lockPath, 'r');
  } catch (err) {
    if (errorCode(err) === 'ENOENT') return { kind: 'gone' };
    throw new StorageError(`cannot read the lock file ${lockPath}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  let text: string;
  let st: Stats;
  try {
    st = fstatSync(fd);
    text = readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
  const match = /^\s*(\d{1,10})\s*$/.exec(text);
  const pid = match === null ? Number.NaN : Number(match[1]);
  // pid 0 and negative pids mean process groups to kill(): never probe them.
  return Number.isSafeInteger(pid) && pid > 0
    ? { kind: 'pid', pid, dev: st.dev, ino: st.ino }
    : { kind: 'unreadable', text };
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
 * Removes the stale file `path` (the lock, or a dead taker's marker) if it is still the file
 * `judged`. True when it was removed or had changed meanwhile; false when another opener is
 * taking it over (the caller waits and looks again).
 *
 * Two openers can judge the same lock stale at once; if each simply removed it and created its
 * own, the slower one would remove the faster one's fresh lock and both would hold the
 * database. So only the opener that claims the marker named after the stale file's inode may
 * remove it, and only if the lock is still that inode and still stale (nothing else replaces a
 * stale lock while its marker is held). A taker that died holding a marker leaves it stale in
 * turn, and it is removed by the same rule one level down.
 */
function removeStale(path: string, judged: PidHolder, logger: Logger, depth: number): boolean {
  const marker = `${path}.takeover-${judged.ino}`;
  const temp = `${marker}.${process.pid}.${tempSeq++}.tmp`;
  try {
    writeDurably(temp, `${process.pid}\n`, 'w');
    linkSync(temp, marker);
  } catch (err) {
    if (errorCode(err) !== 'EEXIST') {
      throw new StorageError(
        `cannot take over the stale lock file ${path}: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
    // Someone claimed this takeover. If that taker died, its marker is stale in turn.
    const taker = readHolder(marker);
    if (taker.kind === 'pid' && depth < 4 && isStale(taker, false)) {
      removeStale(marker, taker, logger, depth + 1);
    }
    return false;
  } finally {
    removeQuietly(temp);
  }
  try {
    const now = readHolder(path);
    if (
      now.kind === 'pid' &&
      now.ino === judged.ino &&
      now.dev === judged.dev &&
      now.pid === judged.pid &&
      isStale(now, false)
    ) {
      if (depth === 0) {
        logger.warn(
          { lockPath: path, pid: judged.pid },
          `removing the stale lock file of process ${judged.pid}, which no longer runs`,
        );
      }
      removeQuietly(path);
    }
  } finally {
    removeQuietly(marker);
  }
  return true;
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
