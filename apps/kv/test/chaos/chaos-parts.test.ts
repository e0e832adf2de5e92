/**
 * The chaos harness's parts on their own (chaos.test.ts runs them together): the schedule's
 * kinds, the block device under a data directory, cgroup lookups, the slow disk on a real process
 * (where this machine has a cgroup controller for it), the clock rates and libfaketime (where it
 * is installed).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Prng } from '@raft/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { drawClockRates, faketimeEnv, findLibfaketime, openClockSkew } from './clock-skew.js';
import { DISK_KINDS, PARTITION_KINDS, planSchedule } from './nemesis.js';
import {
  cgroupPathOf,
  closeAllSlowDisksSync,
  openSlowDisk,
  parseCgroupMounts,
  resolveBlockDevice,
  splitDev,
} from './slow-disk.js';

const dirs: string[] = [];
const tmp = (prefix: string) => {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
};
afterAll(() => {
  closeAllSlowDisksSync();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('the schedule', () => {
  const kindsOf = (partitions: boolean, slowDisk: boolean, seed = 7) =>
    new Set(
      planSchedule(new Prng(seed), {
        size: 5,
        startMs: 0,
        endMs: 3_600_000,
        partitions,
        slowDisk,
      }).map((f) => f.kind),
    );

  it('has the slow-disk kinds exactly when disks can be slowed', () => {
    const all = kindsOf(true, true);
    for (const k of [...DISK_KINDS, ...PARTITION_KINDS]) expect(all.has(k)).toBe(true);
    const noDisk = kindsOf(true, false);
    for (const k of DISK_KINDS) expect(noDisk.has(k)).toBe(false);
    const nothing = kindsOf(false, false);
    for (const k of [...DISK_KINDS, ...PARTITION_KINDS]) expect(nothing.has(k)).toBe(false);
  });

  it('is the same for the same seed', () => {
    const plan = (seed: number) =>
      planSchedule(new Prng(seed), {
        size: 3,
        startMs: 1000,
        endMs: 57_000,
        partitions: true,
        slowDisk: true,
      });
    expect(plan(42)).toEqual(plan(42));
    expect(plan(42)).not.toEqual(plan(43));
  });
});

describe('the block device of a data directory', () => {
  it('splits st_dev into major:minor as glibc does', () => {
    expect(splitDev(0xfe00n)).toEqual({ major: 254, minor: 0 });
    expect(splitDev(0x10301n)).toEqual({ major: 259, minor: 1 });
    // minor 300 and major 4100 need the high bits
    const dev = 0x2cn | (0x4n << 8n) | (0x100n << 12n) | (0x1000n << 32n);
    expect(splitDev(dev)).toEqual({ major: 4100, minor: 300 });
  });

  it('resolves a partition to its disk, keeps a disk, and says why for anything else', () => {
    const sys = tmp('kv-sysfs-');
    const disk = join(sys, 'devices', 'pci0', 'block', 'nvme0n1');
    mkdirSync(join(disk, 'nvme0n1p2'), { recursive: true });
    writeFileSync(join(disk, 'dev'), '259:0\n');
    writeFileSync(join(disk, 'nvme0n1p2', 'dev'), '259:2\n');
    writeFileSync(join(disk, 'nvme0n1p2', 'partition'), '2\n');
    mkdirSync(join(sys, 'dev', 'block'), { recursive: true });
    symlinkSync('../../devices/pci0/block/nvme0n1', join(sys, 'dev', 'block', '259:0'));
    symlinkSync('../../devices/pci0/block/nvme0n1/nvme0n1p2', join(sys, 'dev', 'block', '259:2'));

    expect(resolveBlockDevice({ major: 259, minor: 2 }, sys)).toEqual({
      major: 259,
      minor: 0,
      name: 'nvme0n1',
    });
    expect(resolveBlockDevice({ major: 259, minor: 0 }, sys)).toEqual({
      major: 259,
      minor: 0,
      name: 'nvme0n1',
    });
    expect(resolveBlockDevice({ major: 0, minor: 45 }, sys)).toMatch(/0:45 is not a block device/);
  });

  it('reads cgroup mounts and a process cgroup', () => {
    const mounts = parseCgroupMounts(
      [
        '24 18 0:22 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755',
        '31 24 0:29 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio',
        '32 24 0:30 /docker/abc /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu,cpuacct',
        '35 24 0:33 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw',
      ].join('\n'),
    );
    expect(mounts).toEqual([
      { version: 1, root: '/', mountPoint: '/sys/fs/cgroup/blkio', controllers: ['rw', 'blkio'] },
      {
        version: 1,
        root: '/docker/abc',
        mountPoint: '/sys/fs/cgroup/cpu',
        controllers: ['rw', 'cpu', 'cpuacct'],
      },
      { version: 2, root: '/', mountPoint: '/sys/fs/cgroup/unified', controllers: [] },
    ]);
    const self = '9:name=systemd:/\n7:blkio:/user/1\n2:cpu,cpuacct:/x\n0::/init.scope\n';
    expect(cgroupPathOf(self, 'blkio')).toBe('/user/1');
    expect(cgroupPathOf(self, 'cpuacct')).toBe('/x');
    expect(cgroupPathOf(self, null)).toBe('/init.scope');
    expect(cgroupPathOf(self, 'io')).toBeNull();
  });
});

describe('the slow disk on a real process', () => {
  it('throttles a process, heals after it was killed, removes its cgroup', async (ctx) => {
    const dir = tmp('kv-slow-disk-');
    const disk = await openSlowDisk(dir);
    if (disk.backend === 'none') {
      console.warn(`no slow disk on this machine, test skipped: ${disk.detail}`);
      ctx.skip();
      return;
    }
    const cgroup = disk.cgroup as string;
    expect(existsSync(cgroup)).toBe(true);
    expect(disk.detail).toMatch(/probe: 8 O_DSYNC writes/);
    const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], {
      stdio: 'ignore',
    });
    await new Promise((r) => child.once('spawn', r));
    await disk.slow(child.pid as number);
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
    // The process it throttled is gone (a node killed and restarted is a new pid): healing
    // still works, and so does the next fault.
    await disk.heal();
    const other = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], {
      stdio: 'ignore',
    });
    await new Promise((r) => other.once('spawn', r));
    await disk.slow(other.pid as number);
    await disk.heal();
    other.kill('SIGKILL');
    await disk.close();
    expect(existsSync(cgroup)).toBe(false);
  }, 30_000);
});

describe('clock rates', () => {
  it('are drawn from the seed, within ±4%', () => {
    const rates = drawClockRates(new Prng(1234).fork('clocks'), 5);
    expect(drawClockRates(new Prng(1234).fork('clocks'), 5)).toEqual(rates);
    expect(drawClockRates(new Prng(1235).fork('clocks'), 5)).not.toEqual(rates);
    for (let seed = 0; seed < 200; seed++) {
      for (const r of drawClockRates(new Prng(seed), 5)) {
        expect(r).toBeGreaterThanOrEqual(0.96);
        expect(r).toBeLessThanOrEqual(1.04);
      }
    }
  });

  it('reach Node through libfaketime, with no wall-clock offset', async (ctx) => {
    const lib = findLibfaketime();
    if (lib === null) {
      console.warn('no libfaketime on this machine, test skipped (apt-get install faketime)');
      ctx.skip();
      return;
    }
    const env = faketimeEnv(lib, 1.03);
    expect(env.FAKETIME).toBe('+0 x1.03');
    expect(env.DONT_FAKE_MONOTONIC).not.toBe('1');
    const skew = await openClockSkew([0.97, 1.03]);
    expect(skew.backend, skew.detail).toBe('libfaketime');
    expect(skew.rates).toEqual([0.97, 1.03]);
    expect(Math.abs((skew.measured?.[0] ?? 0) - 0.97)).toBeLessThanOrEqual(0.01);
    expect(Math.abs((skew.measured?.[1] ?? 0) - 1.03)).toBeLessThanOrEqual(0.01);
    expect(skew.envOf(1).FAKETIME).toBe('+0 x1.03');
  }, 30_000);
});
