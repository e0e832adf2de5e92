/**
 * A slowed disk for one raft-kv node: its process's writes to the block device under the data
 * directories throttled by a cgroup, so that each `O_DSYNC` write (the file store's appends) and
 * fsync takes tens of milliseconds instead of well under one, without stopping.
 *
 * Backends, probed in this order: cgroup v1's blkio controller (`blkio.throttle.write_iops_device`
 * in a cgroup of its own, `<blkio mount>/raft_chaos_<pid>_<n>`), cgroup v2's io controller
 * (`io.max` with `wiops=`, in a child of the unified hierarchy's root, used only where the root
 * already enables `io` for its children), else none, with the reason (the slow-disk kinds then
 * leave the schedule and the run warns). The probe throttles a child process that makes
 * `O_DSYNC` writes in the data directory and checks that they really crawl, not only that the
 * files can be written.
 *
 * A fault moves the node's current process into the cgroup (after setting the limit); the heal
 * lifts the limit first (so writes already queued go at full speed) and moves every process of
 * the cgroup back where this process runs. A node restarted after a kill is a new process that
 * starts outside the cgroup. `close()` heals and removes the cgroup (rmdir), and a process 'exit'
 * hook does it synchronously when a run dies without calling it; cgroups left by earlier processes
 * that no longer run are removed at the next probe.
 */
import { spawn } from 'node:child_process';
import {
  existsSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmdirSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { mkdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import { basename, dirname, join, relative } from 'node:path';
import { performance } from 'node:perf_hooks';
import { closeAtExit } from './close-at-exit.js';

/** Which mechanism slows a node's disk: `none` when neither cgroup controller works here. */
export type DiskBackend = 'blkio' | 'io' | 'none';

/** Write IOPS a slowed node gets (an O_DSYNC append is about three writes: ~60 ms each). */
export const SLOW_DISK_WRITE_IOPS = 50;

export interface BlockDevice {
  readonly major: number;
  readonly minor: number;
  /** The kernel's name (`vda`, `nvme0n1`), when sysfs says. */
  readonly name: string;
}

/** Throttles processes' writes, or a stand-in that cannot (`backend: 'none'`). */
export interface SlowDisk {
  readonly backend: DiskBackend;
  /** What the probe found (for `none`: why no backend works). */
  readonly detail: string;
  /** The throttle, for schedules: `254:0 (vda) at 50 write iops`; '' for none. */
  readonly throttle: string;
  /** The cgroup's directory (null for none). */
  readonly cgroup: string | null;
  /** Throttles the writes of process `pid` (until `heal()`). */
  slow(pid: number): Promise<void>;
  /** Lifts the throttle and moves every throttled process back. Idempotent. */
  heal(): Promise<void>;
  /** Heals and removes the cgroup. Idempotent. */
  close(): Promise<void>;
}

// ------------------------------------------------------------------ the device

/** Linux's `major:minor` of a `st_dev` (glibc's gnu_dev_major/minor). */
export function splitDev(dev: bigint): { major: number; minor: number } {
  return {
    major: Number(((dev >> 8n) & 0xfffn) | ((dev >> 32n) & 0xfffff000n)),
    minor: Number((dev & 0xffn) | ((dev >> 12n) & 0xffffff00n)),
  };
}

/**
 * The whole disk that holds device `major:minor` (a filesystem's `st_dev`): itself when it is a
 * disk, its parent when it is a partition (`/sys/dev/block/M:m/partition` exists; the parent is
 * the directory above in sysfs). A string saying why not when sysfs has no such block device
 * (tmpfs, overlayfs, btrfs subvolumes, network filesystems: anonymous devices).
 */
export function resolveBlockDevice(
  dev: { major: number; minor: number },
  sys = '/sys',
): BlockDevice | string {
  const id = `${dev.major}:${dev.minor}`;
  const link = join(sys, 'dev', 'block', id);
  if (!existsSync(link)) {
    return `device ${id} is not a block device (no ${link}: tmpfs, overlayfs or another filesystem without a disk of its own)`;
  }
  let node = realpathSync(link);
  if (existsSync(join(node, 'partition'))) node = dirname(node);
  let whole: string;
  try {
    whole = readFileSync(join(node, 'dev'), 'utf8').trim();
  } catch {
    return `no ${join(node, 'dev')} for the disk of ${id}`;
  }
  const m = /^(\d+):(\d+)$/.exec(whole);
  if (m === null) return `${join(node, 'dev')} says ${JSON.stringify(whole)}, not major:minor`;
  return { major: Number(m[1]), minor: Number(m[2]), name: basename(node) };
}

/** The disk under `path` (stat, then {@link resolveBlockDevice}), or why not. */
export function blockDeviceOf(path: string, sys = '/sys'): BlockDevice | string {
  return resolveBlockDevice(splitDev(statSync(path, { bigint: true }).dev), sys);
}

// ------------------------------------------------------------------ cgroup hierarchies

/** A cgroup mount of /proc/self/mountinfo. */
export interface CgroupMount {
  readonly version: 1 | 2;
  /** The cgroup path (of the hierarchy) mounted there. */
  readonly root: string;
  readonly mountPoint: string;
  /** v1: the controllers of the hierarchy (super options); v2: empty. */
  readonly controllers: readonly string[];
}

const unescapeOctal = (s: string) =>
  s.replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8)));

/** The cgroup mounts of a mountinfo text. */
export function parseCgroupMounts(mountinfo: string): CgroupMount[] {
  const out: CgroupMount[] = [];
  for (const line of mountinfo.split('\n')) {
    const [left, right] = line.split(' - ');
    if (left === undefined || right === undefined) continue;
    const f = left.split(' ');
    const [fstype, , superOptions = ''] = right.split(' ');
    const root = f[3];
    const mountPoint = f[4];
    if (root === undefined || mountPoint === undefined) continue;
    if (fstype === 'cgroup2') {
      out.push({
        version: 2,
        root: unescapeOctal(root),
        mountPoint: unescapeOctal(mountPoint),
        controllers: [],
      });
    } else if (fstype === 'cgroup') {
      out.push({
        version: 1,
        root: unescapeOctal(root),
        mountPoint: unescapeOctal(mountPoint),
        controllers: superOptions.split(','),
      });
    }
  }
  return out;
}

/** The cgroup path of a process in a hierarchy (`/proc/<pid>/cgroup`): v1 by controller, v2 `0::`. */
export function cgroupPathOf(procCgroup: string, controller: string | null): string | null {
  for (const line of procCgroup.split('\n')) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line.trim());
    if (m === null) continue;
    if (
      controller === null
        ? m[1] === '0' && m[2] === ''
        : (m[2] ?? '').split(',').includes(controller)
    ) {
      return m[3] ?? null;
    }
  }
  return null;
}

/** The directory of cgroup `path` under `mount` (null when the mount does not show it). */
function dirOf(mount: CgroupMount, path: string): string | null {
  const rel = relative(mount.root, path);
  if (rel.startsWith('..')) return null;
  return join(mount.mountPoint, rel);
}

// ------------------------------------------------------------------ the cgroup backend

const pid = process.pid;
const PREFIX = 'raft_chaos_';
const NAME_RE = /^raft_chaos_(\d+)_\d+$/;
let created = 0;

interface Flavor {
  readonly backend: 'blkio' | 'io';
  /** The directory new cgroups go in. */
  readonly parent: string;
  /** The cgroup directory processes go back to. */
  readonly home: string;
  readonly limitFile: string;
  limitOn(d: BlockDevice, iops: number): string;
  limitOff(d: BlockDevice): string;
  readonly describe: string;
}

function flavors(): { flavors: Flavor[]; problems: string[] } {
  const problems: string[] = [];
  const found: Flavor[] = [];
  let mounts: CgroupMount[];
  let self: string;
  try {
    mounts = parseCgroupMounts(readFileSync('/proc/self/mountinfo', 'utf8'));
    self = readFileSync('/proc/self/cgroup', 'utf8');
  } catch (err) {
    return {
      flavors: [],
      problems: [`no /proc/self/mountinfo or cgroup: ${(err as Error).message}`],
    };
  }
  const v1 = mounts.find((m) => m.version === 1 && m.controllers.includes('blkio'));
  const v1Path = cgroupPathOf(self, 'blkio');
  const v1Home = v1 === undefined || v1Path === null ? null : dirOf(v1, v1Path);
  if (v1 === undefined) problems.push('blkio: no cgroup v1 blkio hierarchy mounted');
  else if (v1Home === null)
    problems.push(`blkio: this process's blkio cgroup ${v1Path} is not under ${v1.mountPoint}`);
  else if (!existsSync(join(v1.mountPoint, 'blkio.throttle.write_iops_device'))) {
    problems.push(`blkio: no blkio.throttle.write_iops_device in ${v1.mountPoint}`);
  } else {
    found.push({
      backend: 'blkio',
      parent: v1.mountPoint,
      home: v1Home,
      limitFile: 'blkio.throttle.write_iops_device',
      limitOn: (d, iops) => `${d.major}:${d.minor} ${iops}`,
      limitOff: (d) => `${d.major}:${d.minor} 0`,
      describe: `cgroup v1 blkio, ${v1.mountPoint}`,
    });
  }
  const v2 = mounts.find((m) => m.version === 2);
  const v2Path = cgroupPathOf(self, null);
  const v2Home = v2 === undefined || v2Path === null ? null : dirOf(v2, v2Path);
  if (v2 === undefined) problems.push('io: no cgroup v2 hierarchy mounted');
  else if (v2Home === null)
    problems.push(`io: this process's cgroup ${v2Path} is not under ${v2.mountPoint}`);
  else {
    let subtree = '';
    try {
      subtree = readFileSync(join(v2.mountPoint, 'cgroup.subtree_control'), 'utf8');
    } catch {
      // reported below
    }
    if (!subtree.split(/\s+/).includes('io')) {
      problems.push(
        `io: the cgroup v2 root ${v2.mountPoint} does not enable the io controller for its children`,
      );
    } else {
      found.push({
        backend: 'io',
        parent: v2.mountPoint,
        home: v2Home,
        limitFile: 'io.max',
        limitOn: (d, iops) => `${d.major}:${d.minor} wiops=${iops}`,
        limitOff: (d) => `${d.major}:${d.minor} wiops=max`,
        describe: `cgroup v2 io, ${v2.mountPoint}`,
      });
    }
  }
  return { flavors: found, problems };
}

const errCode = (err: unknown) => (err as NodeJS.ErrnoException).code;

function alive(p: number): boolean {
  try {
    process.kill(p, 0);
    return true;
  } catch (err) {
    return errCode(err) === 'EPERM';
  }
}

/** The pids in cgroup directory `dir` (none when it is gone). */
function procsSync(dir: string): number[] {
  try {
    return readFileSync(join(dir, 'cgroup.procs'), 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map(Number);
  } catch {
    return [];
  }
}

/**
 * Moves every process of `dir` to `home` and removes `dir`; best effort, synchronous. A process
 * SIGKILLed just before (a signal path kills the nodes first) cannot be moved while it exits but
 * still holds the cgroup: retried for up to two seconds.
 */
function dissolveSync(dir: string, home: string, limitFile: string, off: string | null): void {
  if (off !== null) {
    try {
      writeFileSync(join(dir, limitFile), off);
    } catch {
      // best effort
    }
  }
  for (let attempt = 0; attempt < 100; attempt++) {
    for (const p of procsSync(dir)) {
      try {
        writeFileSync(join(home, 'cgroup.procs'), String(p));
      } catch {
        // exiting, or gone
      }
    }
    try {
      rmdirSync(dir);
      return;
    } catch (err) {
      if (errCode(err) !== 'EBUSY') return;
    }
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
  }
}

/** Removes cgroups that earlier processes (no longer running) left under `f.parent`. */
function removeStale(f: Flavor): void {
  let names: string[];
  try {
    names = readdirSync(f.parent);
  } catch {
    return;
  }
  for (const name of names) {
    const m = NAME_RE.exec(name);
    if (m === null || Number(m[1]) === pid || alive(Number(m[1]))) continue;
    dissolveSync(join(f.parent, name), f.home, f.limitFile, null);
  }
}

class CgroupSlowDisk implements SlowDisk {
  readonly backend: 'blkio' | 'io';
  readonly throttle: string;
  detail: string;
  private open = true;
  private limited = false;

  constructor(
    private readonly f: Flavor,
    readonly cgroup: string,
    private readonly device: BlockDevice,
    private readonly iops: number,
  ) {
    this.backend = f.backend;
    this.throttle = `${device.major}:${device.minor} (${device.name}) at ${iops} write iops`;
    this.detail = `${f.describe}/${basename(cgroup)}, ${this.throttle}`;
  }

  static async create(f: Flavor, device: BlockDevice, iops: number): Promise<CgroupSlowDisk> {
    let dir: string;
    for (;;) {
      dir = join(f.parent, `${PREFIX}${pid}_${++created}`);
      try {
        await mkdir(dir);
        break;
      } catch (err) {
        // Another copy of this module in this process (a worker thread) took the name.
        if (errCode(err) !== 'EEXIST') throw err;
      }
    }
    const disk = new CgroupSlowDisk(f, dir, device, iops);
    track(disk);
    try {
      // The limit file must take this device's rule (and drop it again).
      await writeFile(join(dir, f.limitFile), f.limitOn(device, iops));
      await writeFile(join(dir, f.limitFile), f.limitOff(device));
    } catch (err) {
      await disk.close();
      throw err;
    }
    return disk;
  }

  async slow(p: number): Promise<void> {
    if (!this.open) throw new Error('the slow disk is closed');
    await writeFile(join(this.cgroup, this.f.limitFile), this.f.limitOn(this.device, this.iops));
    this.limited = true;
    await writeFile(join(this.cgroup, 'cgroup.procs'), String(p));
  }

  async heal(): Promise<void> {
    if (this.limited) {
      await writeFile(join(this.cgroup, this.f.limitFile), this.f.limitOff(this.device));
      this.limited = false;
    }
    let procs: number[] = [];
    try {
      procs = (await readFile(join(this.cgroup, 'cgroup.procs'), 'utf8'))
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map(Number);
    } catch (err) {
      if (errCode(err) !== 'ENOENT') throw err;
    }
    for (const p of procs) {
      try {
        await writeFile(join(this.f.home, 'cgroup.procs'), String(p));
      } catch (err) {
        if (errCode(err) !== 'ESRCH') throw err; // exited meanwhile: nothing to move
      }
    }
  }

  async close(): Promise<void> {
    if (!this.open) return;
    this.open = false;
    opened.untrack(this);
    await this.heal().catch(() => undefined);
    for (let i = 0; ; i++) {
      try {
        await rmdir(this.cgroup);
        return;
      } catch (err) {
        if (errCode(err) === 'ENOENT') return;
        if (i >= 20) throw err;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  closeSync(): void {
    if (!this.open) return;
    this.open = false;
    dissolveSync(this.cgroup, this.f.home, this.f.limitFile, this.f.limitOff(this.device));
  }
}

// ------------------------------------------------------------------ none

class NoSlowDisk implements SlowDisk {
  readonly backend = 'none';
  readonly throttle = '';
  readonly cgroup = null;
  constructor(readonly detail: string) {}
  async slow(): Promise<void> {
    throw new Error(`no way to slow a disk here: ${this.detail}`);
  }
  async heal(): Promise<void> {}
  async close(): Promise<void> {}
}

// ------------------------------------------------------------------ probe

/** A child that makes `count` O_DSYNC 4 KiB writes to `file` once told, and prints their ms. */
const WRITER = `
const fs = require('node:fs');
const [file, count] = [process.argv[1], Number(process.argv[2])];
process.stdout.write('ready\\n');
process.stdin.once('data', () => {
  const c = fs.constants;
  const fd = fs.openSync(file, c.O_RDWR | c.O_CREAT | c.O_TRUNC | c.O_DSYNC);
  const buf = Buffer.alloc(4096, 7);
  const t = performance.now();
  for (let i = 0; i < count; i++) fs.writeSync(fd, buf);
  const ms = performance.now() - t;
  fs.closeSync(fd);
  fs.unlinkSync(file);
  process.stdout.write(ms + '\\n');
  process.exit(0);
});`;

/** How long `count` O_DSYNC writes in `dir` take in a child process, `before` it writes. */
function timedWrites(
  dir: string,
  count: number,
  before: (childPid: number) => Promise<void>,
): Promise<number> {
  return new Promise((resolve, reject) => {
    const file = join(dir, `.slow-disk-probe-${pid}-${performance.now().toFixed(0)}`);
    const child = spawn(process.execPath, ['-e', WRITER, file, String(count)], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, NODE_OPTIONS: '' },
    });
    let out = '';
    let err = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the probe's ${count} writes did not finish within 20 s`));
    }, 20_000);
    child.stderr.on('data', (d) => {
      err += String(d);
    });
    child.stdout.on('data', (d) => {
      out += String(d);
      if (out === 'ready\n') {
        before(child.pid as number).then(
          () => child.stdin.write('go\n'),
          (e: unknown) => {
            child.kill('SIGKILL');
            reject(e);
          },
        );
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      const ms = Number(out.split('\n')[1]);
      if (code === 0 && Number.isFinite(ms)) resolve(ms);
      else reject(new Error(`the probe writer exited with ${code}: ${err.trim()}`));
    });
  });
}

/** Checks that `disk` makes a process's O_DSYNC writes in `dir` crawl; the numbers measured. */
async function verify(disk: CgroupSlowDisk, dir: string, iops: number): Promise<string> {
  const count = 8;
  const free = await timedWrites(dir, count, async () => undefined);
  const slowed = await timedWrites(dir, count, (p) => disk.slow(p)).finally(() => disk.heal());
  // `count` writes of at least one I/O each, less a slice's allowance, at `iops`.
  const floor = Math.max(100, ((count - iops / 10) * 1000) / iops / 2);
  if (slowed < floor || slowed < 2 * free) {
    throw new Error(
      `the throttle did not slow writes: ${count} O_DSYNC writes took ${free.toFixed(0)} ms free, ${slowed.toFixed(0)} ms throttled`,
    );
  }
  return `probe: ${count} O_DSYNC writes of 4 KiB in ${free.toFixed(0)} ms, throttled ${slowed.toFixed(0)} ms`;
}

const opened = closeAtExit<CgroupSlowDisk>();
const track = opened.track;

/** Heals and removes every cgroup this process made (synchronous: for exit and signal paths). */
export function closeAllSlowDisksSync(): void {
  opened.closeAllSync();
}

/**
 * The first way to slow a node's disk that works here, for data under `dataDir`: cgroup v1 blkio,
 * else cgroup v2 io, else none (with why). `RAFT_CHAOS_SLOW_DISK=blkio|io|none` forces one.
 */
export async function openSlowDisk(
  dataDir: string,
  force = process.env.RAFT_CHAOS_SLOW_DISK,
  iops = SLOW_DISK_WRITE_IOPS,
): Promise<SlowDisk> {
  if (force === 'none') return new NoSlowDisk('RAFT_CHAOS_SLOW_DISK=none');
  if (process.platform !== 'linux')
    return new NoSlowDisk(`cgroups are Linux's; this is ${process.platform}`);
  let device: BlockDevice | string;
  try {
    device = blockDeviceOf(dataDir);
  } catch (err) {
    device = `cannot stat ${dataDir}: ${(err as Error).message}`;
  }
  if (typeof device === 'string') return new NoSlowDisk(device);
  const { flavors: found, problems } = flavors();
  for (const f of found) {
    if (force !== undefined && force !== '' && force !== f.backend) continue;
    try {
      removeStale(f);
      const disk = await CgroupSlowDisk.create(f, device, iops);
      try {
        disk.detail += `; ${await verify(disk, dataDir, iops)}`;
        return disk;
      } catch (err) {
        await disk.close();
        throw err;
      }
    } catch (err) {
      problems.push(`${f.backend}: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  if (force !== undefined && force !== '' && force !== 'blkio' && force !== 'io') {
    problems.push(`unknown RAFT_CHAOS_SLOW_DISK=${force}`);
  }
  return new NoSlowDisk(problems.join('; '));
}
