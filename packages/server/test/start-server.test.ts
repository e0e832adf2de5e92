/**
 * startServer's order of things: it listens before it starts the node, so a busy port fails
 * with nothing written (a brand-new node's storage is not bootstrapped, its lock is released);
 * and a node whose stored membership lists it elsewhere than --raft says so.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '@raft/core';
import { afterEach, describe, expect, it } from 'vitest';
import {
  freePort,
  NodeStartError,
  type RunningServer,
  resolveNodeConfig,
  startServer,
} from '../src/index.js';
import { registerService } from './fixtures/register-service.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function recordingLogger(lines: string[]): Logger {
  const log = (_fields: unknown, message: string) => lines.push(message);
  return { debug: () => {}, info: () => {}, warn: log, error: log } as unknown as Logger;
}

describe('startServer', () => {
  it('a busy HTTP port fails before the node touches its storage, and releases the data directory', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'server-start-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const blocker = createServer();
    const busy = await freePort('127.0.0.1');
    await new Promise<void>((r) => blocker.listen(busy, '127.0.0.1', r));
    cleanups.push(() => new Promise((r) => blocker.close(r)));
    const raft = `127.0.0.1:${await freePort('127.0.0.1')}`;
    const config = (http: string, peers: string) =>
      resolveNodeConfig(
        { id: 'n1', http, raft, peers, dataDir: dir, electionTimeoutMs: 150, heartbeatMs: 30 },
        null,
      );
    const err = await startServer(
      registerService,
      config(`127.0.0.1:${busy}`, `n1=${raft}`),
      recordingLogger([]),
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NodeStartError);
    expect((err as Error).message).toContain('the address is in use');
    // The directory is free again, and still brand-new: a different bootstrap membership is
    // taken (a bootstrapped store would ignore it and keep the first).
    const other = `127.0.0.1:${await freePort('127.0.0.1')}`;
    const server: RunningServer = (await startServer(
      registerService,
      config(`127.0.0.1:${await freePort('127.0.0.1')}`, `n1=${raft},n2=${other}`),
      recordingLogger([]),
    )) as unknown as RunningServer;
    cleanups.push(() => server.shutdown('test'));
    expect(server.node.node.status().members.map((m) => m.id)).toEqual(['n1', 'n2']);
  });

  it('warns when the stored membership lists this node at another address than --raft', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'server-moved-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const first = `127.0.0.1:${await freePort('127.0.0.1')}`;
    const start = async (raft: string, peers: boolean, lines: string[]) =>
      startServer(
        registerService,
        resolveNodeConfig(
          {
            id: 'n1',
            http: `127.0.0.1:${await freePort('127.0.0.1')}`,
            raft,
            dataDir: dir,
            electionTimeoutMs: 150,
            heartbeatMs: 30,
            ...(peers ? { peers: `n1=${raft}` } : {}),
          },
          null,
        ),
        recordingLogger(lines),
      );
    const quiet: string[] = [];
    const a = await start(first, true, quiet);
    await a.shutdown('test');
    expect(quiet.filter((l) => l.includes('the cluster knows this node'))).toEqual([]);
    const moved = `127.0.0.1:${await freePort('127.0.0.1')}`;
    const lines: string[] = [];
    const b = await start(moved, false, lines);
    cleanups.push(() => b.shutdown('test'));
    expect(lines).toContainEqual(
      expect.stringContaining(
        `n1: the cluster knows this node at ${first}, but --raft is ${moved}`,
      ),
    );
  });
});
