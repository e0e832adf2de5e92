/**
 * When Redis goes away, calls must fail promptly with a StorageError (fatal to the node), never
 * wait in a queue and "succeed later". Each test runs a private redis-server it can kill
 * (SIGKILL: the connection drops) or pause (SIGSTOP: the connection stays up, nothing answers).
 */
import type { LogEntry, RaftEvent, RaftNode, RaftStores } from '@raft/core';
import { createRaftNode, jsonCodec, MemoryNetwork, RaftError } from '@raft/core';
import { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openRedisStores } from '../src/index.js';
import { type PrivateRedis, startPrivateRedis, uniquePrefix } from './redis-server.js';

const TIMEOUT_MS = 400;
/** Slack for a loaded machine on top of the bound under test. */
const SLACK_MS = 1500;

let server: PrivateRedis;
const stores: RaftStores[] = [];
const nodes: RaftNode<number, number>[] = [];
const clients: Redis[] = [];

beforeEach(async () => {
  server = await startPrivateRedis();
}, 60_000);

afterEach(async () => {
  for (const node of nodes.splice(0)) await node.stop().catch(() => {});
  for (const s of stores.splice(0)) await s.close();
  for (const c of clients.splice(0)) c.disconnect();
  await server.stop();
});

async function open(extra: { redis?: Redis } = {}): Promise<RaftStores> {
  const opened = await openRedisStores({
    prefix: uniquePrefix('loss'),
    ...(extra.redis === undefined ? { url: server.url } : { redis: extra.redis }),
    commandTimeoutMs: TIMEOUT_MS,
  });
  stores.push(opened);
  return opened;
}

function entry(index: number): LogEntry {
  return { index, term: 1, kind: 'command', data: new Uint8Array([index & 0xff, 1, 2]) };
}

/**
 * Runs `call`, requires a StorageError (with the driver's error as `cause` unless `driverCause`
 * is false), returns the time it took.
 */
async function expectStorageFailure(
  call: () => Promise<unknown>,
  driverCause = true,
): Promise<number> {
  const started = performance.now();
  const outcome = await call().then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
  const elapsed = performance.now() - started;
  expect(outcome.ok, 'the call resolved although Redis is gone').toBe(false);
  if (outcome.ok) return elapsed;
  expect(RaftError.is(outcome.error, 'STORAGE')).toBe(true);
  if (driverCause) expect((outcome.error as Error).cause).toBeInstanceOf(Error);
  return elapsed;
}

describe('a killed Redis', () => {
  it('append, save, read and snapshot calls reject with StorageError within the bound', async () => {
    const s = await open();
    await s.logStore.open();
    await s.logStore.append([entry(1), entry(2)]);
    await s.stableStore.save({ term: 1, votedFor: 'n1', commit: 1 });
    await server.stop();
    const bound = TIMEOUT_MS + SLACK_MS;
    expect(await expectStorageFailure(() => s.logStore.append([entry(3)]))).toBeLessThan(bound);
    expect(
      await expectStorageFailure(() => s.stableStore.save({ term: 2, votedFor: null, commit: 1 })),
    ).toBeLessThan(bound);
    expect(await expectStorageFailure(() => s.logStore.truncate(2))).toBeLessThan(bound);
    expect(
      await expectStorageFailure(() =>
        s.snapshotStore.create({ index: 2, term: 1, membership: { members: [] } }),
      ),
    ).toBeLessThan(bound);
    expect(await expectStorageFailure(() => s.snapshotStore.open())).toBeLessThan(bound);
  });

  it('a write in flight when Redis dies rejects instead of being resent on reconnect', async () => {
    const s = await open();
    await s.logStore.open();
    server.pause();
    const started = performance.now();
    const pending = s.logStore.append([entry(1)]);
    const settled = expectStorageFailure(() => pending);
    // The connection drops while the append waits for its answer.
    await server.stop();
    await settled;
    expect(performance.now() - started).toBeLessThan(TIMEOUT_MS + SLACK_MS);
  });

  it('a sink being written rejects, and abort() still resolves', async () => {
    const s = await open();
    const sink = await s.snapshotStore.create({ index: 1, term: 1, membership: { members: [] } });
    await sink.write(new Uint8Array(10));
    await server.stop();
    await expectStorageFailure(() => sink.write(new Uint8Array(600 * 1024)));
    // Refused by the sink itself: it failed, so it can never commit.
    await expectStorageFailure(() => sink.commit(), false);
    await expect(sink.abort()).resolves.toBeUndefined();
  });
});

describe('a paused Redis (connection up, no answers)', () => {
  it('calls reject with StorageError after commandTimeoutMs, not later', async () => {
    const s = await open();
    await s.logStore.open();
    server.pause();
    try {
      const elapsed = await expectStorageFailure(() => s.logStore.append([entry(1)]));
      expect(elapsed).toBeGreaterThanOrEqual(TIMEOUT_MS - 50);
      expect(elapsed).toBeLessThan(TIMEOUT_MS + SLACK_MS);
      const load = await expectStorageFailure(() => s.stableStore.load());
      expect(load).toBeLessThan(TIMEOUT_MS + SLACK_MS);
    } finally {
      server.resume();
    }
  });

  it('a client passed as `redis` (offline queue on) is bounded by commandTimeoutMs too', async () => {
    // ioredis's defaults: commands queue while disconnected, no command timeout.
    const client = new Redis(server.url, { lazyConnect: true });
    client.on('error', () => {});
    clients.push(client);
    await client.connect();
    const s = await open({ redis: client });
    await s.logStore.open();
    await server.stop();
    const elapsed = await expectStorageFailure(() => s.logStore.append([entry(1)]));
    expect(elapsed).toBeLessThan(TIMEOUT_MS + SLACK_MS);
  });
});

describe('a RaftNode on a Redis that dies', () => {
  it('fails with a fatal StorageError event instead of hanging; proposals reject', async () => {
    const s = await open();
    const network = new MemoryNetwork();
    let total = 0;
    const node = createRaftNode<number, number>({
      id: 'n1',
      stateMachine: {
        apply: (n) => {
          total += n;
          return total;
        },
      },
      codec: jsonCodec<number>(),
      logStore: s.logStore,
      stableStore: s.stableStore,
      snapshotStore: s.snapshotStore,
      transport: network.transport('n1'),
      requestTimeoutMs: 5000,
    });
    nodes.push(node);
    const events: RaftEvent[] = [];
    node.subscribe((e) => events.push(e));
    await node.start({ bootstrap: { members: [{ id: 'n1', address: 'n1', voter: true }] } });
    await node.waitForLeader({ timeoutMs: 5000 });
    expect((await node.propose(5)).result).toBe(5);
    await server.stop();
    const started = performance.now();
    const failed = await node.propose(7).then(
      () => null,
      (err: unknown) => err,
    );
    expect(RaftError.is(failed, 'STORAGE')).toBe(true);
    expect(performance.now() - started).toBeLessThan(TIMEOUT_MS + SLACK_MS);
    const fatal = events.find((e) => e.type === 'fatal');
    expect(fatal?.type).toBe('fatal');
    if (fatal?.type === 'fatal') expect(RaftError.is(fatal.error, 'STORAGE')).toBe(true);
    expect(node.state).toBe('failed');
    expect(total).toBe(5);
  });
});
