import { describe, expect, it } from 'vitest';
import { NodeConfigError, resolveNodeConfig } from '../src/config/node-config.js';

const flags = {
  id: 'n1',
  http: '127.0.0.1:8001',
  raft: '127.0.0.1:9001',
  peers: 'n1=127.0.0.1:9001,n2=127.0.0.1:9002,n3=127.0.0.1:9003',
  dataDir: './data/n1',
};

function problemsOf(f: Parameters<typeof resolveNodeConfig>[0], file: unknown = null): string[] {
  try {
    resolveNodeConfig(f, file);
  } catch (err) {
    if (err instanceof NodeConfigError) return [...err.problems];
    throw err;
  }
  return [];
}

describe('resolveNodeConfig', () => {
  it('takes the flags, with the documented defaults', () => {
    expect(resolveNodeConfig(flags, null)).toEqual({
      id: 'n1',
      http: '127.0.0.1:8001',
      advertiseHttp: '127.0.0.1:8001',
      raft: '127.0.0.1:9001',
      peers: {
        n1: { raft: '127.0.0.1:9001', http: null },
        n2: { raft: '127.0.0.1:9002', http: null },
        n3: { raft: '127.0.0.1:9003', http: null },
      },
      dataDir: './data/n1',
      store: 'file',
      transport: 'tcp',
      redisUrl: 'redis://127.0.0.1:6379',
      clusterId: 'raft',
      clusterSecretFile: null,
      electionTimeoutMs: 300,
      heartbeatMs: 50,
      snapshotThreshold: 10_000,
      requestTimeoutMs: 5000,
      logLevel: 'info',
    });
  });

  it('advertises --http, or the --raft host when --http binds every interface', () => {
    expect(resolveNodeConfig({ ...flags, http: '0.0.0.0:8001' }, null).advertiseHttp).toBe(
      '127.0.0.1:8001',
    );
    expect(
      resolveNodeConfig(
        { ...flags, http: '[::]:8001', raft: '[fd00::1]:9001', peers: 'n1=[fd00::1]:9001' },
        null,
      ).advertiseHttp,
    ).toBe('[fd00::1]:8001');
    expect(
      resolveNodeConfig(
        { ...flags, http: '0.0.0.0:8001', advertiseHttp: 'kv-1.internal:8001' },
        null,
      ).advertiseHttp,
    ).toBe('kv-1.internal:8001');
    expect(problemsOf({ ...flags, advertiseHttp: '0.0.0.0:8001' })).toEqual([
      '--advertise-http: 0.0.0.0:8001 is not an address others can reach; give the host they should use',
    ]);
    expect(problemsOf({ ...flags, advertiseHttp: 'nope' })[0]).toMatch(
      /^--advertise-http: must be host:port/,
    );
  });

  it('takes a config file with a cluster map; flags override it', () => {
    const file = {
      clusterId: 'prod',
      store: 'sqlite',
      dataDir: '/var/lib/kv',
      heartbeatMs: 40,
      cluster: {
        n1: { raft: '10.0.0.1:9001', http: '10.0.0.1:8001' },
        n2: { raft: '10.0.0.2:9001', http: '10.0.0.2:8001' },
      },
    };
    const config = resolveNodeConfig({ id: 'n2', heartbeatMs: '60' }, file);
    expect(config).toMatchObject({
      id: 'n2',
      raft: '10.0.0.2:9001',
      http: '10.0.0.2:8001',
      clusterId: 'prod',
      store: 'sqlite',
      heartbeatMs: 60,
      peers: {
        n1: { raft: '10.0.0.1:9001', http: '10.0.0.1:8001' },
        n2: { raft: '10.0.0.2:9001', http: '10.0.0.2:8001' },
      },
    });
  });

  it('lists every problem, each naming its flag or field and what is allowed', () => {
    expect(
      problemsOf({
        ...flags,
        store: 'mongo',
        heartbeatMs: 'fast',
        electionTimeoutMs: '10',
        http: 'localhost',
        peers: 'n1=127.0.0.1:9001,garbage,n2=nowhere',
      }),
    ).toEqual([
      '--http: must be host:port with a port, e.g. 127.0.0.1:9001 (got "localhost")',
      '--store: must be file, sqlite, redis or memory (got "mongo")',
      '--election-timeout-ms: must be at least 20 (got "10")',
      '--heartbeat-ms: must be a number (got "fast")',
      '--peers: "garbage" is not id=host:port',
      `--peers: n2's address "nowhere" is not host:port`,
    ]);
    expect(problemsOf({ id: 'n1' })).toEqual([
      "--http: is required (or an entry for this id in the config file's cluster map)",
      "--raft: is required (or an entry for this id in the config file's cluster map)",
    ]);
    expect(problemsOf({ ...flags, dataDir: undefined })).toEqual([
      '--data-dir: is required with --store file',
    ]);
    expect(problemsOf({ ...flags, heartbeatMs: 300 })).toEqual([
      '--heartbeat-ms: must be less than --election-timeout-ms (300 >= 300)',
    ]);
    expect(problemsOf({ ...flags, peers: 'n2=127.0.0.1:9002' })).toEqual([
      '--peers: must include this node (n1)',
    ]);
    expect(
      problemsOf(flags, { store: 'file', colour: 'blue', cluster: { n1: { raft: 'x' } } }),
    ).toEqual([
      'config file cluster.n1.raft: must be host:port with a port, e.g. 127.0.0.1:9001',
      'the config file: Unrecognized key: "colour"',
    ]);
  });

  it('the memory and Redis stores need no data directory', () => {
    expect(resolveNodeConfig({ ...flags, dataDir: undefined, store: 'memory' }, null).dataDir).toBe(
      null,
    );
    expect(resolveNodeConfig({ ...flags, dataDir: undefined, store: 'redis' }, null).redisUrl).toBe(
      'redis://127.0.0.1:6379',
    );
  });
});
