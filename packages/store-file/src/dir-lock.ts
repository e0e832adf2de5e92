/**
 * The data directory's lock: a `LOCK` file naming the holder (pid and host), created with
 * `link()` so that exactly one opener wins, and removed on close.
 *
 * ```
 *   write .LOCK.<pid>.<nonce> (fdatasynced: a LOCK that survives a power cut is never empty)
 *   link it to LOCK ──ok──► held
 *        │ EEXIST
 *        ▼
 *   read LOCK (its inode, pid, host) ─► live, or another host ─► DirectoryLockedError
 *        │ stale (that pid no longer runs here)
 *        ▼
 *   link our file to LOCK.takeover-<inode> ──EEXIST──► someone else is taking it over: wait, retry
 *        │ ok
 *        ▼
 *   LOCK still that inode, still stale? ─► unlink it ─► drop the marker ─► retry the link
 * ```
 *
 * Node has no `flock`, so a holder that died without closing leaves its file behind: an opener
 * that finds a lock whose pid no longer runs on this host takes it over (a pid reused by an
 * unrelated process keeps the directory locked until that process ends; the error says which
 * pid to check). A lock naming another host is never taken over: the directory may be on a
 * shared file system, and only a person can tell whether that holder is gone.
 *
 * Takeover is the racy part: two openers can both read the same stale lock, and if each simply
 * removed `LOCK` and linked its own, the slower one would remove the faster one's fresh lock and
 * both would hold the directory. So only the opener that claims the marker named after the stale
 * file's inode may remove it, and it removes it only if `LOCK` is still that inode (nothing else
 * replaces a stale lock while the marker is held). A taker that died holding a marker leaves it
 * stale in turn, and it is taken over by the same rule one level down.
 *
 * A lock naming this process's own pid is held by another open in this process (another copy
 * of this package, in a worker thread: each has its own registry) or was left by an earlier
 * process with this pid (the rule in containers, where the node often runs as pid 1). The holder
 * keeps `LOCK` open for as long as it holds it, so the two are told apart by looking for that
 * file among this process's descriptors (`/dev/fd`, process-wide); where `/dev/fd` cannot be
 * listed, the registry alone decides.
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp, readdirSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { DirectoryLockedError } from './errors.js';
import { closeFd, fdatasync, isErrno, openFd, writeAll } from './fs-io.js';

/** Directories this process holds (pids are per process, so this covers two opens in one). */
const held = new Set<string>();

const LOCK = 'LOCK';
const TEMP = /^\.LOCK\.(\d+)\./;
const MARKER = `${LOCK}.takeover-`;
/** How long an opener waits for another one's takeover in progress, in all. */
const TAKEOVER_WAIT_MS = 2000;
const RETRY_MS = 10;

/** A held lock. `release()` is idempotent. */
export interface DirLock {
  release(): Promise<void>;
}

/** What a lock (or takeover marker) file says, and which file it was. */
interface Holder {
  readonly dev: bigint;
  readonly ino: bigint;
  /** Null when the file does not name a pid. */
  readonly pid: number | null;
  readonly host: string;
}

export async function lockDirectory(dir: string): Promise<DirLock> {
  const key = await fsp.realpath(dir);
  if (held.has(key)) {
    throw new DirectoryLockedError(dir, process.pid, 'this process has it open already');
  }
  held.add(key);
  const path = join(dir, LOCK);
  const tmp = join(dir, `.LOCK.${process.pid}.${randomBytes(6).toString('hex')}`);
  let ino: bigint;
  let keep: number;
  try {
    ino = await writeOwnFile(tmp);
    await acquire(dir, path, tmp);
    // Held for as long as the lock is (see the module comment): other threads look for it.
    keep = await openFd(path, 'r');
  } catch (err) {
    held.delete(key);
    throw err;
  } finally {
    // LOCK is a second link to the same file. A leftover is harmless (the next open deletes it),
    // so failing to remove it must not fail the open and leave the directory held.
    await fsp.rm(tmp, { force: true }).catch(() => {});
  }
  await removeLeftovers(dir).catch(() => {});
  let released: Promise<void> | null = null;
  return {
    release() {
      released ??= (async () => {
        try {
          // Only our own file, never a lock someone else holds now. The inode alone is not
          // enough: once our file is gone its inode number can be reused at once.
          const now = await readHolder(path);
          if (
            now !== null &&
            now.ino === ino &&
            now.pid === process.pid &&
            now.host === hostname()
          ) {
            await fsp.rm(path, { force: true });
          }
        } finally {
          await closeFd(keep).catch(() => {});
          // Only once the file is gone, so that a reopen in this process cannot race the removal.
          held.delete(key);
        }
      })();
      return released;
    },
  };
}

/** Links `tmp` to `path`, taking over a stale lock; throws DirectoryLockedError when held. */
async function acquire(dir: string, path: string, tmp: string): Promise<void> {
  const deadline = Date.now() + TAKEOVER_WAIT_MS;
  for (;;) {
    try {
      await fsp.link(tmp, path);
      return;
    } catch (err) {
      if (!isErrno(err, 'EEXIST')) throw err;
    }
    const holder = await readHolder(path);
    if (holder !== null) {
      refuseUnlessStale(dir, path, holder);
      if (await removeStale(path, holder, tmp, 0)) continue;
    }
    // Removed or replaced while we looked, or another opener is taking it over: look again.
    if (Date.now() > deadline) {
      throw new DirectoryLockedError(
        dir,
        holder?.pid ?? null,
        `another process kept taking over the stale lock ${path}; try again`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
  }
}

function refuseUnlessStale(dir: string, path: string, holder: Holder): void {
  if (holder.pid === null) {
    throw new DirectoryLockedError(
      dir,
      null,
      `${path} does not name its holder; if no process has the directory open, delete it`,
    );
  }
  if (holder.host !== hostname()) {
    throw new DirectoryLockedError(
      dir,
      holder.pid,
      `locked by pid ${holder.pid} on host ${holder.host}; if that process is gone, delete ${path}`,
    );
  }
  if (!isStale(holder)) {
    throw new DirectoryLockedError(
      dir,
      holder.pid,
      `locked by process ${holder.pid} (still running); stop it, or open another directory`,
    );
  }
}

/**
 * Removes the stale file `path` (the lock, or a dead taker's marker) if it is still the file
 * `judged`. True when `path` was removed or had changed meanwhile; false when another opener is
 * taking it over (the caller waits and looks again).
 */
async function removeStale(
  path: string,
  judged: Holder,
  tmp: string,
  depth: number,
): Promise<boolean> {
  const marker = `${path}.takeover-${judged.ino}`;
  try {
    await fsp.link(tmp, marker);
  } catch (err) {
    if (!isErrno(err, 'EEXIST')) throw err;
    // Someone claimed this takeover. If that taker died, its marker is stale in turn.
    const taker = await readHolder(marker);
    if (taker !== null && taker.pid !== null && isStale(taker) && depth < 4) {
      await removeStale(marker, taker, tmp, depth + 1);
    }
    return false;
  }
  try {
    // While we hold the marker nobody else removes this inode, so if `path` is still it and
    // its holder is still gone, the unlink below removes exactly the file we judged (or, had
    // the inode number been reused meanwhile, another stale one: the content is checked too).
    const now = await readHolder(path);
    if (now !== null && now.ino === judged.ino && isStale(now)) await fsp.rm(path, { force: true });
  } finally {
    await fsp.rm(marker, { force: true });
  }
  return true;
}

/**
 * Whether the holder named is gone: its pid no longer runs on this host, or it is this pid and
 * no descriptor of this process is open on the file (an earlier life of this pid, as after a
 * container restart; an open in this thread is refused earlier, by `held`).
 */
function isStale(holder: Holder): boolean {
  if (holder.pid === null || holder.host !== hostname()) return false;
  if (holder.pid === process.pid) return !openInThisProcess(holder);
  return !alive(holder.pid);
}

/** Whether any descriptor of this process, in any thread, is open on the file `holder` read. */
function openInThisProcess(holder: Holder): boolean {
  let names: string[];
  try {
    names = readdirSync('/dev/fd');
  } catch {
    return false; // no /dev/fd (Windows): the registry alone decides
  }
  for (const name of names) {
    try {
      const st = statSync(`/dev/fd/${name}`, { bigint: true });
      if (st.ino === holder.ino && st.dev === holder.dev) return true;
    } catch {
      // closed meanwhile (the listing's own descriptor, for one)
    }
  }
  return false;
}

/**
 * The file at `path` (inode and what it says), or null when it is missing or was replaced while
 * it was read (the inode tells which file the content came from).
 */
async function readHolder(path: string): Promise<Holder | null> {
  try {
    const before = await fsp.stat(path, { bigint: true });
    const text = await fsp.readFile(path, 'utf8');
    const after = await fsp.stat(path, { bigint: true });
    if (before.ino !== after.ino) return null;
    const [pid, host] = text.trim().split(' ');
    const n = Number(pid);
    return {
      dev: after.dev,
      ino: after.ino,
      pid: Number.isSafeInteger(n) && n > 0 ? n : null,
      host: host ?? '',
    };
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return null;
    throw err;
  }
}

/** Writes "<pid> <host>" to a new file `path`, durably; returns its inode. */
async function writeOwnFile(path: string): Promise<bigint> {
  const fd = await openFd(path, 'wx');
  try {
    await writeAll(fd, Buffer.from(`${process.pid} ${hostname()}\n`), 0);
    await fdatasync(fd);
  } finally {
    await closeFd(fd);
  }
  return (await fsp.stat(path, { bigint: true })).ino;
}

/**
 * Deletes what openers that died left: their temporary files and takeover markers. Once we hold
 * the lock no takeover is needed, and a taker still running re-checks the lock's inode before
 * it removes anything, so deleting its marker cannot make it remove ours.
 */
async function removeLeftovers(dir: string): Promise<void> {
  for (const name of await fsp.readdir(dir)) {
    const temp = TEMP.exec(name);
    if (temp !== null) {
      const pid = Number(temp[1]);
      if (pid === process.pid || !alive(pid)) await fsp.rm(join(dir, name), { force: true });
    } else if (name.startsWith(MARKER)) {
      const taker = await readHolder(join(dir, name));
      if (taker !== null && isStale(taker)) await fsp.rm(join(dir, name), { force: true });
    }
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return isErrno(err, 'EPERM'); // it exists, owned by someone else
  }
}
