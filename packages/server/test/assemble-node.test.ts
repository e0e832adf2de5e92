import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { noopLogger } from '@raft/core';
import { afterEach, describe, expect, it } from 'vitest';
import { type NodeFlags, resolveNodeConfig } from '../src/config/node-config.js';
import { assembleNode, NodeStartError, type ServiceNode } from '../src/node/assemble-node.js';
import { freePort } from '../src/testing/local-cluster.js';
import { type Register, registerService } from './fixtures/register-service.js';

type KvNode = ServiceNode<string, number, Register>;

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function scratch(): string {
  const dir = mkdtempSync(join(tmpdir(), 'kv-assemble-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function cluster(count: number, extra: Partial<NodeFlags>, root: string) {
  const addresses: string[] = [];
  for (let i = 1; i <= count; i++) addresses.push(`127.0.0.${i}:${await freePort(`127.0.0.${i}`)}`);
  const peers = addresses.map((a, i) => `n${i + 1}=${a}`).join(',');
  return addresses.map((raft, i) =>
    resolveNodeConfig(
      {
        id: `n${i + 1}`,
        raft,
        http: `127.0.0.${i + 1}:1`,
        peers,
        dataDir: join(root, `n${i + 1}`),
        electionTimeoutMs: 150,
        heartbeatMs: 30,
        ...extra,
      },
      null,
    ),
  );
}

async function startAll(configs: ReturnType<typeof resolveNodeConfig>[]): Promise<KvNode[]> {
  const nodes = await Promise.all(configs.map((c) => assembleNode(registerService, c, noopLogger)));
  cleanups.push(() => Promise.all(nodes.map((n) => n.node.stop())));
  await Promise.all(nodes.map((n) => n.node.start(n.bootstrap ? { bootstrap: n.bootstrap } : {})));
  return nodes;
}

describe('assembleNode', () => {
  it('a 3-node cluster on the file store over TCP replicates, and a node restarts from disk', async () => {
    const root = scratch();
    const configs = await cluster(3, {}, root);
    const nodes = await startAll(configs);
    const first = nodes[0] as KvNode;
    await first.node.waitForLeader({ timeoutMs: 5000 });
    const { result } = await first.node.propose({ kind: 'service', command: 'v' });
    expect(result).toEqual({ kind: 'service', result: 1 });
    await Promise.all(nodes.map((n) => n.node.stop()));
    // n2 alone, from its directory: the write is in its log (bootstrap ignored on a used store).
    const again = await assembleNode(
      registerService,
      configs[1] as ReturnType<typeof resolveNodeConfig>,
      noopLogger,
    );
    cleanups.push(() => again.node.stop());
    const rest = await Promise.all(
      configs.filter((_, i) => i !== 1).map((c) => assembleNode(registerService, c, noopLogger)),
    );
    cleanups.push(() => Promise.all(rest.map((n) => n.node.stop())));
    await Promise.all([again, ...rest].map((n) => n.node.start({})));
    await again.node.waitForLeader({ timeoutMs: 5000 });
    await again.node.read({ consistency: 'linearizable' });
    expect(again.state).toEqual({ value: 'v', version: 1 });
  }, 30_000);

  it('runs on SQLite over WebSockets too', async () => {
    const root = scratch();
    const nodes = await startAll(await cluster(3, { store: 'sqlite', transport: 'ws' }, root));
    const leader = await (nodes[1] as KvNode).node.waitForLeader({ timeoutMs: 5000 });
    expect(leader.leaderId).toMatch(/^n[123]$/);
    await (nodes[2] as KvNode).node.waitForLeader({ timeoutMs: 5000 });
    const { result } = await (nodes[2] as KvNode).node.propose({ kind: 'service', command: 'b' });
    expect(result).toEqual({ kind: 'service', result: 1 });
  }, 30_000);

  it('a data directory in use says so and what to do', async () => {
    const root = scratch();
    const [config] = await cluster(1, {}, root);
    const held = await assembleNode(
      registerService,
      config as ReturnType<typeof resolveNodeConfig>,
      noopLogger,
    );
    cleanups.push(() => held.node.stop());
    await held.node.start(held.bootstrap ? { bootstrap: held.bootstrap } : {});
    const err = await assembleNode(
      registerService,
      config as ReturnType<typeof resolveNodeConfig>,
      noopLogger,
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NodeStartError);
    expect((err as Error).message).toMatch(
      /^the file store of n1 is in use by another process \(.*\); stop it, or give this node another --data-dir$/,
    );
  });

  it('an unreadable or short secret file says so', async () => {
    const root = scratch();
    const short = join(root, 'short');
    writeFileSync(short, 'abc\n');
    const [config] = await cluster(1, { store: 'memory', clusterSecretFile: short }, root);
    await expect(
      assembleNode(registerService, config as ReturnType<typeof resolveNodeConfig>, noopLogger),
    ).rejects.toThrow(
      /--cluster-secret-file: .*short holds 3 characters; a secret needs at least 16/,
    );
    const [missing] = await cluster(
      1,
      { store: 'memory', clusterSecretFile: join(root, 'nope') },
      root,
    );
    await expect(
      assembleNode(registerService, missing as ReturnType<typeof resolveNodeConfig>, noopLogger),
    ).rejects.toThrow(/--cluster-secret-file: cannot read .*nope/);
  });

  it('a Redis that does not answer says so', async () => {
    const root = scratch();
    const port = await freePort('127.0.0.1');
    const [config] = await cluster(
      1,
      { store: 'redis', redisUrl: `redis://127.0.0.1:${port}` },
      root,
    );
    await expect(
      assembleNode(registerService, config as ReturnType<typeof resolveNodeConfig>, noopLogger),
    ).rejects.toThrow(
      new RegExp(
        `^cannot open the Redis store at redis://127\\.0\\.0\\.1:${port}: .*\\(is Redis running\\? check --redis-url\\)$`,
      ),
    );
  });
});
