/**
 * The data directory's lock: a `LOCK` file naming the holder (pid and host), created with
 * `link()` so that exactly one opener wins, and removed on close.
 *
 * Node has no `flock`, so a holder that died without closing leaves its file behind: an opener
 * that finds a lock whose pid no longer runs on this host takes it over (a pid reused by an
 * unrelated process keeps the directory locked until that process ends; the error says which
 * pid to check). A lock naming another host is never taken over: the directory may be on a
 * shared file system, and only a person can tell whether that holder is gone.
 */
import { promises as fsp } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { DirectoryLockedError } from './errors.js';
import { isErrno } from './fs-io.js';

/** Directories this process holds (pids are per process, so this covers two opens in one). */
const held = new Set<string>();

/** A held lock. `release()` is idempotent. */
export interface DirLock {
  release(): Promise<void>;
}

export async function lockDirectory(dir: string): Promise<DirLock> {
  const key = await fsp.realpath(dir);
  if (held.has(key)) {
    throw new DirectoryLockedError(dir, process.pid, 'this process has it open already');
  }
  held.add(key);
  const path = join(dir, 'LOCK');
  const me = `${process.pid} ${hostname()}\n`;
  const tmp = join(dir, `.LOCK.${process.pid}.${Date.now()}`);
  try {
    await fsp.writeFile(tmp, me);
    for (let attempt = 0; ; attempt++) {
      try {
        await fsp.link(tmp, path);
        break;
      } catch (err) {
        if (!isErrno(err, 'EEXIST') || attempt >= 3) throw err;
      }
      const holder = await readHolder(path);
      if (holder === null) continue; // removed meanwhile
      if (holder.host !== hostname()) {
        throw new DirectoryLockedError(
          dir,
          holder.pid,
          `locked by pid ${holder.pid} on host ${holder.host}; if that process is gone, delete ${path}`,
        );
      }
      if (holder.pid !== process.pid && alive(holder.pid)) {
        throw new DirectoryLockedError(
          dir,
          holder.pid,
          `locked by process ${holder.pid} (still running); stop it, or open another directory`,
        );
      }
      // The holder is gone (or is an earlier life of this pid, as in a container restart).
      await fsp.rm(path, { force: true });
    }
  } catch (err) {
    held.delete(key);
    await fsp.rm(tmp, { force: true }).catch(() => {});
    throw err;
  }
  await fsp.rm(tmp, { force: true });
  let released = false;
  return {
    async release() {
      if (released) return;
      released = true;
      held.delete(key);
      await fsp.rm(path, { force: true });
    },
  };
}

async function readHolder(path: string): Promise<{ pid: number | null; host: string } | null> {
  let text: string;
  try {
    text = await fsp.readFile(path, 'utf8');
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return null;
    throw err;
  }
  const [pid, host] = text.trim().split(' ');
  const n = Number(pid);
  return { pid: Number.isSafeInteger(n) && n > 0 ? n : null, host: host ?? '' };
}

function alive(pid: number | null): boolean {
  if (pid === null) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return isErrno(err, 'EPERM'); // it exists, owned by someone else
  }
}
