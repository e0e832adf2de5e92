import {
  createRaftNode,
  MemoryLogStore,
  MemoryNetwork,
  MemorySnapshotStore,
  MemoryStableStore,
  type RaftNode,
} from '@raft/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type KvCommand, type KvResult, kvCommandCodec, MAX_KEY_BYTES } from '../src/kv-command.js';
import { createKvStateMachine, type KvProposal, kvProposalCodec } from '../src/kv-state-machine.js';

const text = (s: string) => new TextEncoder().encode(s);
const at = (index: number) => ({ index, term: 1 });

async function* chunksOf(image: Iterable<Uint8Array> | AsyncIterable<Uint8Array>) {
  for await (const c of image) yield c;
}

describe('the KV store', () => {
  it('puts, deletes and compares-and-sets, counting one revision per change', () => {
    const { stateMachine: sm, store } = createKvStateMachine();
    const apply = (command: KvCommand, i: number) =>
      sm.apply({ kind: 'plain', command }, at(i)) as KvResult;
    expect(apply({ op: 'put', key: 'a', value: text('1') }, 1)).toEqual({ op: 'put', revision: 1 });
    expect(apply({ op: 'delete', key: 'missing' }, 2)).toEqual({
      op: 'delete',
      revision: 1,
      deleted: false,
    });
    expect(apply({ op: 'cas', key: 'a', expected: text('2'), value: text('3') }, 3)).toEqual({
      op: 'cas',
      ok: false,
      revision: 1,
      current: '1',
    });
    expect(apply({ op: 'cas', key: 'a', expected: text('1'), value: text('3') }, 4)).toEqual({
      op: 'cas',
      ok: true,
      revision: 2,
    });
    expect(apply({ op: 'cas', key: 'b', expected: null, value: text('new') }, 5)).toEqual({
      op: 'cas',
      ok: true,
      revision: 3,
    });
    expect(apply({ op: 'cas', key: 'b', expected: null, value: text('x') }, 6)).toMatchObject({
      ok: false,
      current: 'new',
    });
    expect(apply({ op: 'cas', key: 'b', expected: text('new'), value: null }, 7)).toEqual({
      op: 'cas',
      ok: true,
      revision: 4,
    });
    expect(apply({ op: 'delete', key: 'a' }, 8)).toEqual({
      op: 'delete',
      revision: 5,
      deleted: true,
    });
    expect(store.size).toBe(0);
    expect(store.revision).toBe(5);
  });

  it('lists keys by prefix, sorted, up to a limit', () => {
    const { stateMachine: sm, store } = createKvStateMachine();
    for (const [i, key] of ['b/2', 'a/1', 'b/1', 'b/3', 'c'].entries()) {
      sm.apply({ kind: 'plain', command: { op: 'put', key, value: text(key) } }, at(i + 1));
    }
    expect(store.keys('b/', 10)).toEqual(['b/1', 'b/2', 'b/3']);
    expect(store.keys('b/', 2)).toEqual(['b/1', 'b/2']);
    expect(store.keys('', 100)).toEqual(['a/1', 'b/1', 'b/2', 'b/3', 'c']);
    expect(store.get('b/2')).toEqual({ value: text('b/2'), modRevision: 1 });
  });

  it('a write with an idempotency key applies once; a retry gets the first result', () => {
    const { stateMachine: sm, store } = createKvStateMachine();
    const first = sm.apply(
      { kind: 'idempotent', key: 'req-1', command: { op: 'put', key: 'k', value: text('v1') } },
      at(1),
    );
    const retry = sm.apply(
      { kind: 'idempotent', key: 'req-1', command: { op: 'put', key: 'k', value: text('v1') } },
      at(2),
    );
    expect(first).toEqual({ op: 'put', revision: 1 });
    expect(retry).toEqual(first);
    expect(store.revision).toBe(1);
    // Another key is another write.
    sm.apply(
      { kind: 'idempotent', key: 'req-2', command: { op: 'put', key: 'k', value: text('v2') } },
      at(3),
    );
    expect(store.revision).toBe(2);
  });

  it('a snapshot carries the data, the revision and the idempotency table', async () => {
    const a = createKvStateMachine();
    a.stateMachine.apply(
      { kind: 'plain', command: { op: 'put', key: 'x', value: text('1') } },
      at(1),
    );
    a.stateMachine.apply(
      {
        kind: 'idempotent',
        key: 'once',
        command: { op: 'put', key: 'y', value: new Uint8Array(3000) },
      },
      at(2),
    );
    const image = await a.stateMachine.snapshot?.();
    const b = createKvStateMachine();
    const meta = { index: 2, term: 1, membership: { members: [] } };
    await b.stateMachine.restore?.(chunksOf(image as AsyncIterable<Uint8Array>), meta);
    expect(b.store.revision).toBe(2);
    expect(b.store.get('x')).toEqual({ value: text('1'), modRevision: 1 });
    expect(b.store.get('y')?.value.length).toBe(3000);
    // The retry is answered from the restored table, not applied again.
    const retry = b.stateMachine.apply(
      { kind: 'idempotent', key: 'once', command: { op: 'put', key: 'y', value: text('other') } },
      at(3),
    );
    expect(retry).toEqual({ op: 'put', revision: 2 });
    expect(b.store.get('y')?.value.length).toBe(3000);
  });

  it('a large store snapshots in chunks and restores whole', async () => {
    const a = createKvStateMachine();
    for (let i = 0; i < 3000; i++) {
      a.stateMachine.apply(
        {
          kind: 'plain',
          command: { op: 'put', key: `key-${i}`, value: new Uint8Array(1000).fill(i) },
        },
        at(i + 1),
      );
    }
    const chunks: Uint8Array[] = [];
    const snapshot = a.stateMachine.snapshot as NonNullable<typeof a.stateMachine.snapshot>;
    for await (const c of (await snapshot()) as AsyncIterable<Uint8Array>) {
      chunks.push(c);
    }
    expect(chunks.length).toBeGreaterThan(1);
    const b = createKvStateMachine();
    await b.stateMachine.restore?.(chunksOf(chunks), {
      index: 3000,
      term: 1,
      membership: { members: [] },
    });
    expect(b.store.size).toBe(3000);
    expect(b.store.get('key-2999')?.value[0]).toBe(2999 & 0xff);
  });
});

describe('the command codecs', () => {
  const bytes = fc.uint8Array({ maxLength: 64 });
  const key = fc
    .string({ minLength: 1, maxLength: 40, unit: 'grapheme' })
    .filter((k) => new TextEncoder().encode(k).length <= MAX_KEY_BYTES);
  const command: fc.Arbitrary<KvCommand> = fc.oneof(
    fc.record({ op: fc.constant('put' as const), key, value: bytes }),
    fc.record({ op: fc.constant('delete' as const), key }),
    fc.record({
      op: fc.constant('cas' as const),
      key,
      expected: fc.option(bytes, { nil: null }),
      value: fc.option(bytes, { nil: null }),
    }),
  );
  const proposal: fc.Arbitrary<KvProposal> = fc.oneof(
    fc.record({ kind: fc.constant('plain' as const), command }),
    fc.record({
      kind: fc.constant('idempotent' as const),
      key: fc.string({ minLength: 1, maxLength: 30 }).filter((k) => !/[\uD800-\uDFFF]/.test(k)),
      command,
    }),
  );

  it('round-trip every command and proposal', () => {
    fc.assert(
      fc.property(proposal, (p) => {
        expect(kvProposalCodec.decode(kvProposalCodec.encode(p))).toEqual(p);
      }),
      { seed: 1717, numRuns: 500 },
    );
  });

  it('refuse bad keys when encoding and malformed bytes when decoding', () => {
    expect(() => kvCommandCodec.encode({ op: 'delete', key: '' })).toThrow(/non-empty/);
    expect(() =>
      kvCommandCodec.encode({ op: 'delete', key: 'x'.repeat(MAX_KEY_BYTES + 1) }),
    ).toThrow(/at most 1024 bytes/);
    expect(() => kvCommandCodec.encode({ op: 'delete', key: '\uD800' })).toThrow(/surrogate/);
    const good = kvCommandCodec.encode({ op: 'cas', key: 'k', expected: text('ab'), value: null });
    for (let n = 0; n < good.length; n++) {
      expect(() => kvCommandCodec.decode(good.subarray(0, n)), `truncated to ${n}`).toThrow();
    }
    expect(() => kvCommandCodec.decode(Uint8Array.from([...good, 1]))).toThrow(/trailing/);
    expect(() => kvProposalCodec.decode(Uint8Array.from([7, ...good]))).toThrow(/unknown proposal/);
  });
});

describe('on a 3-node cluster', () => {
  it('a retry with the same idempotency key on another node gets the first result', async () => {
    const network = new MemoryNetwork();
    const ids = ['n1', 'n2', 'n3'];
    const machines = ids.map(() => createKvStateMachine());
    const nodes: RaftNode<KvProposal, KvResult>[] = ids.map((id, i) =>
      createRaftNode<KvProposal, KvResult>({
        id,
        stateMachine: (machines[i] as ReturnType<typeof createKvStateMachine>).stateMachine,
        codec: kvProposalCodec,
        logStore: new MemoryLogStore(),
        stableStore: new MemoryStableStore(),
        snapshotStore: new MemorySnapshotStore(),
        transport: network.transport(id),
        electionTimeoutMs: 150,
        heartbeatMs: 30,
      }),
    );
    const members = ids.map((id) => ({ id, address: id, voter: true }));
    try {
      await Promise.all(nodes.map((n) => n.start({ bootstrap: { members } })));
      await Promise.all(nodes.map((n) => n.waitForLeader({ timeoutMs: 5000 })));
      const write: KvProposal = {
        kind: 'idempotent',
        key: 'client-42:7',
        command: { op: 'put', key: 'color', value: text('blue') },
      };
      const first = await (nodes[0] as RaftNode<KvProposal, KvResult>).propose(write);
      const retry = await (nodes[2] as RaftNode<KvProposal, KvResult>).propose(write);
      expect(retry.result).toEqual(first.result);
      expect(retry.index).toBeGreaterThan(first.index);
      await (nodes[1] as RaftNode<KvProposal, KvResult>).read({ consistency: 'linearizable' });
      for (const m of machines) {
        await expect.poll(() => m.store.revision).toBe(1);
        expect(m.store.get('color')?.value).toEqual(text('blue'));
      }
    } finally {
      await Promise.all(nodes.map((n) => n.stop()));
    }
  });
});
