import { describe, expect, it } from 'vitest';
import type { CommandCodec, RaftNodeOptions } from '../../src/index.js';
import {
  ConfigError,
  createRaftNode,
  DEFAULT_OPTIONS,
  MemoryLogStore,
  MemoryNetwork,
  MemoryStableStore,
  RaftError,
  validateOptions,
} from '../../src/index.js';
import type { TestNode } from './helpers.js';
import { Cluster, Counter, decimalCodec, track } from './helpers.js';

describe('rejected commands append nothing', () => {
  /** Log length of every node, to compare before and after. */
  const logLengths = (c: Cluster): number[] =>
    c.nodes.map((n) => n.logStore.inner.snapshotEntries().length);

  it('ENTRY_TOO_LARGE above maxCommandBytes, on the leader and on a follower', async () => {
    // Commands are decimal text: 1234 is 4 bytes, 12345 is 5.
    const c = await Cluster.create({ options: { maxCommandBytes: 4 } });
    const leader = await c.electLeader();
    const follower = c.followersOf(leader)[0] as TestNode;
    await c.run(3);
    const before = logLengths(c);

    for (const node of [leader, follower]) {
      const err = await node.node.propose(12345).catch((e: unknown) => e);
      expect(RaftError.is(err, 'ENTRY_TOO_LARGE')).toBe(true);
      expect(err).toMatchObject({ code: 'ENTRY_TOO_LARGE', retryable: false });
      expect((err as Error).message).toContain('5 bytes');
    }
    await c.run(5);
    expect(logLengths(c)).toEqual(before);

    // Exactly at the limit is fine.
    const r = await c.settle(leader.node.propose(1234));
    expect(r.result).toBe(1234);
    await c.stopAll();
  });

  it('INVALID_ARGUMENT when the codec throws, with the codec error as cause', async () => {
    const c = await Cluster.create();
    const leader = await c.electLeader();
    const follower = c.followersOf(leader)[0] as TestNode;
    await c.run(3);
    const before = logLengths(c);

    for (const node of [leader, follower]) {
      const err = await node.node.propose(Number.NaN).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'INVALID_ARGUMENT' });
      expect((err as Error).cause).toBeInstanceOf(RangeError);
    }
    await c.run(5);
    expect(logLengths(c)).toEqual(before);
    expect(leader.node.state).toBe('running');
    await c.stopAll();
  });

  it('INVALID_ARGUMENT when the codec returns something other than a Uint8Array', async () => {
    const badCodec: CommandCodec<number> = {
      encode: (n) => (n < 0 ? ([1, 2, 3] as unknown as Uint8Array) : decimalCodec.encode(n)),
      decode: decimalCodec.decode,
    };
    const c = await Cluster.create({ ids: ['solo'], options: { codec: badCodec } });
    const solo = await c.electLeader();
    const last = solo.node.status().lastLogIndex;
    await expect(solo.node.propose(-1)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await c.run(3);
    expect(solo.node.status().lastLogIndex).toBe(last);
    expect((await c.settle(solo.node.propose(1))).result).toBe(1);
    await c.stopAll();
  });

  it('a rejected command in a batch does not affect its neighbours', async () => {
    const c = await Cluster.create({ ids: ['solo'], options: { maxCommandBytes: 2 } });
    const solo = await c.electLeader();
    const ps = [1, 999, Number.NaN, 2].map((n) => track(solo.node.propose(n)));
    await c.runUntil(() => ps.every((p) => p.settled), 20, 'batch settled');
    expect(ps.map((p) => (p.error as RaftError | undefined)?.code ?? p.value?.result)).toEqual([
      1,
      'ENTRY_TOO_LARGE',
      'INVALID_ARGUMENT',
      3,
    ]);
    expect(solo.sm.commands).toEqual([1, 2]);
    await c.stopAll();
  });
});

describe('config validation', () => {
  function baseOptions(): RaftNodeOptions<number, number> {
    return {
      id: 'n1',
      stateMachine: new Counter(),
      codec: decimalCodec,
      logStore: new MemoryLogStore(),
      stableStore: new MemoryStableStore(),
      transport: new MemoryNetwork().transport('n1'),
    };
  }

  function configErrorOf(overrides: Record<string, unknown>): ConfigError {
    const options = { ...baseOptions(), ...overrides } as unknown as RaftNodeOptions<
      number,
      number
    >;
    try {
      createRaftNode(options);
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return err as ConfigError;
    }
    throw new Error(`createRaftNode accepted ${JSON.stringify(overrides)}`);
  }

  const noop = (): void => {};
  const cases: [string, Record<string, unknown>, string][] = [
    ['empty id', { id: '' }, 'id'],
    ['non-string id', { id: 7 }, 'id'],
    ['id over 255 characters', { id: 'x'.repeat(256) }, 'id'],
    ['state machine without apply', { stateMachine: {} }, 'stateMachine'],
    ['codec without decode', { codec: { encode: noop } }, 'codec'],
    ['log store without append', { logStore: { open: noop, read: noop, close: noop } }, 'logStore'],
    ['missing stable store', { stableStore: undefined }, 'stableStore'],
    [
      'transport without setPeers',
      { transport: { start: noop, send: noop, close: noop } },
      'transport',
    ],
    ['empty transport', { transport: {} }, 'transport'],
    ['clock without setTimer', { clock: { now: () => 0 } }, 'clock'],
    ['random that is a number', { random: 0.5 }, 'random'],
    ['logger without error', { logger: { debug: noop, info: noop, warn: noop } }, 'logger'],
    ['tickMs 0', { tickMs: 0 }, 'tickMs'],
    ['fractional tickMs', { tickMs: 1.5 }, 'tickMs'],
    ['NaN tickMs', { tickMs: Number.NaN }, 'tickMs'],
    ['string tickMs', { tickMs: '10' }, 'tickMs'],
    ['heartbeatMs below one tick', { tickMs: 10, heartbeatMs: 5 }, 'heartbeatMs'],
    [
      'heartbeatMs equal to electionTimeoutMs',
      { heartbeatMs: 300, electionTimeoutMs: 300 },
      'electionTimeoutMs',
    ],
    ['heartbeatMs above electionTimeoutMs', { heartbeatMs: 400 }, 'electionTimeoutMs'],
    [
      'timeouts that round to the same tick',
      { tickMs: 10, heartbeatMs: 50, electionTimeoutMs: 54 },
      'electionTimeoutMs',
    ],
    ['requestTimeoutMs 0', { requestTimeoutMs: 0 }, 'requestTimeoutMs'],
    ["followerProposals 'x'", { followerProposals: 'x' }, 'followerProposals'],
    ["preVote 'yes'", { preVote: 'yes' }, 'preVote'],
    ['checkQuorum 1', { checkQuorum: 1 }, 'checkQuorum'],
    ['maxCommandBytes 0', { maxCommandBytes: 0 }, 'maxCommandBytes'],
    ['maxEntriesPerAppend 0', { maxEntriesPerAppend: 0 }, 'maxEntriesPerAppend'],
    ['negative maxBytesPerAppend', { maxBytesPerAppend: -1 }, 'maxBytesPerAppend'],
    ['fractional maxInflightAppends', { maxInflightAppends: 1.5 }, 'maxInflightAppends'],
  ];

  it.each(cases.map(([name, overrides, field]) => [name, field, overrides] as const))(
    '%s -> ConfigError naming %s',
    (_name, field, overrides) => {
      const err = configErrorOf(overrides);
      expect(err.field).toBe(field);
      expect(err).toMatchObject({ code: 'INVALID_CONFIG', name: 'ConfigError', retryable: false });
      expect(err.message.startsWith(`${field}:`)).toBe(true);
      expect(RaftError.is(err, 'INVALID_CONFIG')).toBe(true);
    },
  );

  it('names the allowed range in the message', () => {
    expect(configErrorOf({ tickMs: 0 }).message).toBe(
      'tickMs: must be an integer in [1, 60000], got 0',
    );
    expect(configErrorOf({ heartbeatMs: 300, electionTimeoutMs: 300 }).message).toContain(
      '[301, 3600000]',
    );
  });

  it('rejects a non-object', () => {
    expect(() => createRaftNode(null as unknown as RaftNodeOptions<number, number>)).toThrow(
      ConfigError,
    );
  });

  it('accepts the minimal options and applies the documented defaults', () => {
    const node = createRaftNode(baseOptions());
    expect(node.state).toBe('created');
    expect(validateOptions(baseOptions())).toEqual(DEFAULT_OPTIONS);
    expect(DEFAULT_OPTIONS).toMatchObject({
      tickMs: 10,
      electionTimeoutMs: 300,
      heartbeatMs: 50,
      requestTimeoutMs: 5000,
      followerProposals: 'forward',
      preVote: true,
      checkQuorum: true,
      maxCommandBytes: 1024 * 1024,
    });
  });

  it('accepts timeouts that are not multiples of the tick when they round apart', () => {
    expect(() =>
      createRaftNode({ ...baseOptions(), tickMs: 10, heartbeatMs: 14, electionTimeoutMs: 16 }),
    ).not.toThrow();
  });
});
