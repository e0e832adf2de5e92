/**
 * Bounded memory while a large snapshot streams: a leader sends a 100 MiB snapshot to a follower
 * that lags behind the compacted log, and neither holds it whole. Runs in a child process with
 * --expose-gc (snapshot-memory/install-large.ts), which samples the heap after full GCs and the
 * RSS during the install and prints the figures.
 *
 * Bounds: the heap (after GC) may grow by two chunks; the RSS by 40. RSS is the coarse one: V8
 * frees the backing stores of collected buffers on a concurrent sweeper and the allocator keeps
 * freed pages a while, so it rises by 9 to 19 chunks depending on the machine's load, whatever
 * the snapshot's size (the same at 20 MiB, 100 MiB and 300 MiB); a snapshot held whole would
 * add 100.
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { childEnv, killAll, run } from './child-process.js';

afterAll(killAll);

const MiB = 1024 * 1024;

describe('a 100 MiB snapshot streams in bounded memory', () => {
  it('the follower installs it and converges; heap and RSS stay within a few chunks', async () => {
    const dir = join(tmpdir(), `raft-install-large-${process.pid}`);
    const result = await run(
      process.execPath,
      [
        '--expose-gc',
        '--conditions=@raft/source',
        '--import',
        'tsx',
        'test/snapshot-memory/install-large.ts',
        '100',
        dir,
      ],
      {
        cwd: join(import.meta.dirname, '..'),
        timeoutMs: 240_000,
        env: childEnv(/^(VITEST|NODE_OPTIONS)/),
      },
    );
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const figures = JSON.parse(result.stdout.trim()) as Record<string, number | boolean>;
    console.log(`install of 100 MiB: ${JSON.stringify(figures)}`);
    expect(figures.hashMatches).toBe(true);
    expect(figures.restoredBytes).toBe(100 * MiB);
    expect(figures.followerSnapshotIndex).toBe(figures.snapshotIndex);
    expect(figures.followerApplied).toBe(figures.leaderApplied);
    expect(figures.samples as number).toBeGreaterThan(3);
    expect(figures.termUnchanged).toBe(true);
    expect(figures.leadershipChanges).toBe(0);
    expect(figures.heapGrowth as number).toBeLessThan(2 * MiB);
    expect(figures.rssGrowth as number).toBeLessThan(40 * MiB);
  }, 300_000);
});
