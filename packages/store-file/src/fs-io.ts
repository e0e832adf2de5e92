/**
 * The few file-system calls the stores make, as promises over raw file descriptors: the callback
 * API of `node:fs` costs less per call than `FileHandle`, and the log's hot path is one `write`
 * and one `fdatasync` per appended batch.
 */
import * as fs from 'node:fs';
import { dirname, resolve } from 'node:path';

/**
 * Flags to open a file for appends whose `write` returns only once the bytes are durable
 * (`O_DSYNC`: the data and what is needed to read it back, its size, as `fdatasync` would):
 * one system call, one trip to the thread pool per append instead of two. Null where the
 * platform has no `O_DSYNC` (Windows): the caller then fdatasyncs after each write.
 */
export function dsyncFlags(create: boolean): number | null {
  const c = fs.constants;
  if (c.O_DSYNC === undefined) return null;
  return c.O_RDWR | c.O_DSYNC | (create ? c.O_CREAT | c.O_TRUNC : 0);
}

export function openFd(path: string, flags: string | number, mode = 0o644): Promise<number> {
  return new Promise((resolve, reject) => {
    fs.open(path, flags, mode, (err, fd) => (err ? reject(err) : resolve(fd)));
  });
}

export function closeFd(fd: number): Promise<void> {
  return new Promise((resolve, reject) => {
    fs.close(fd, (err) => (err ? reject(err) : resolve()));
  });
}

/** Writes all of `data` at `position` (looping over short writes). */
export async function writeAll(fd: number, data: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const n = await new Promise<number>((resolve, reject) => {
      fs.write(fd, data, done, data.length - done, position + done, (err, written) =>
        err ? reject(err) : resolve(written),
      );
    });
    if (n <= 0) throw new Error(`write returned ${n}`);
    done += n;
  }
}

/** Reads exactly `length` bytes at `position` into a new buffer; fewer if the file ends first. */
export async function readAt(fd: number, position: number, length: number): Promise<Buffer> {
  const buffer = Buffer.allocUnsafeSlow(length);
  let done = 0;
  while (done < length) {
    const n = await new Promise<number>((resolve, reject) => {
      fs.read(fd, buffer, done, length - done, position + done, (err, read) =>
        err ? reject(err) : resolve(read),
      );
    });
    if (n === 0) return buffer.subarray(0, done);
    done += n;
  }
  return buffer;
}

export function fdatasync(fd: number): Promise<void> {
  return new Promise((resolve, reject) => {
    fs.fdatasync(fd, (err) => (err ? reject(err) : resolve()));
  });
}

export function fsyncFd(fd: number): Promise<void> {
  return new Promise((resolve, reject) => {
    fs.fsync(fd, (err) => (err ? reject(err) : resolve()));
  });
}

export function ftruncate(fd: number, length: number): Promise<void> {
  return new Promise((resolve, reject) => {
    fs.ftruncate(fd, length, (err) => (err ? reject(err) : resolve()));
  });
}

export function fileSize(fd: number): Promise<number> {
  return new Promise((resolve, reject) => {
    fs.fstat(fd, (err, stats) => (err ? reject(err) : resolve(stats.size)));
  });
}

/**
 * Makes the directory's entries durable (a created, renamed or deleted name): on Linux a
 * rename is durable only once its directory is fsynced.
 */
export async function fsyncDir(dir: string): Promise<void> {
  const fd = await openFd(dir, 'r');
  try {
    await fsyncFd(fd);
  } finally {
    await closeFd(fd);
  }
}

/**
 * Creates `dir` and any missing parents, durably. `mkdir` alone leaves a new directory's entry
 * in its parent to the kernel's writeback: a power cut can take the directory away, with every
 * file acknowledged inside it (fsyncing those files and the directory itself does not make its
 * name in the parent durable). So the parent of each directory created is fsynced, deepest
 * first. With `syncParent`, the parent of `dir` is fsynced even when `dir` existed already: an
 * earlier process may have died between its mkdir and that fsync.
 */
export async function mkdirDurable(dir: string, syncParent = false): Promise<void> {
  const target = resolve(dir);
  const created = await fs.promises.mkdir(target, { recursive: true });
  if (created === undefined) {
    if (syncParent) await fsyncDir(dirname(target));
    return;
  }
  const top = resolve(created);
  for (let d = target; ; d = dirname(d)) {
    await fsyncDir(dirname(d));
    // `top` is the outermost directory mkdir created; the length test stops at the root.
    if (d === top || d.length <= top.length || dirname(d) === d) break;
  }
}

/**
 * Replaces `path` atomically with `data`: write a temporary file beside it, fsync it, rename it
 * over `path`, fsync the directory. After a crash `path` holds the old bytes or the new ones.
 */
export async function writeFileAtomic(path: string, data: Uint8Array): Promise<void> {
  const tmp = `${path}.tmp`;
  const fd = await openFd(tmp, 'w');
  try {
    await writeAll(fd, data, 0);
    await fdatasync(fd);
  } finally {
    await closeFd(fd);
  }
  await fs.promises.rename(tmp, path);
  await fsyncDir(dirname(path));
}

/** Whether `err` is a Node system error with `code`. */
export function isErrno(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === code;
}
