import { describe, expect, it } from 'vitest';
import type { RaftMessage } from '../messages.js';
import { hostNextTurn } from '../platform.js';
import { MemoryNetwork } from './memory-network.js';

const turn = (): Promise<void> => new Promise((r) => hostNextTurn(r));
const hb = (from: string, to: string): RaftMessage => ({
  type: 'heartbeatResponse',
  from,
  to,
  term: 1,
  round: 1,
});

describe('MemoryNetwork', () => {
  it('delivers in order on a later turn, never inside send()', async () => {
    const net = new MemoryNetwork();
    const got: RaftMessage[] = [];
    await net.transport('b').start({ onMessage: (m) => got.push(m) });
    const a = net.transport('a');
    await a.start({ onMessage: () => {} });
    const m1 = hb('a', 'b');
    const m2 = { ...hb('a', 'b'), term: 2 };
    a.send([m1, m2]);
    expect(got).toEqual([]);
    await turn();
    expect(got).toEqual([m1, m2]);
  });

  it('disconnect and one-way cuts drop messages until restored', async () => {
    const net = new MemoryNetwork();
    const atA: RaftMessage[] = [];
    const atB: RaftMessage[] = [];
    const a = net.transport('a');
    const b = net.transport('b');
    await a.start({ onMessage: (m) => atA.push(m) });
    await b.start({ onMessage: (m) => atB.push(m) });
    net.cut('a', 'b');
    a.send([hb('a', 'b')]);
    b.send([hb('b', 'a')]);
    await turn();
    expect([atA.length, atB.length]).toEqual([1, 0]);
    net.uncut('a', 'b');
    net.disconnect('b');
    a.send([hb('a', 'b')]);
    b.send([hb('b', 'a')]);
    await turn();
    expect([atA.length, atB.length]).toEqual([1, 0]);
    net.connect('b');
    a.send([hb('a', 'b')]);
    await turn();
    expect(atB.length).toBe(1);
  });

  it('closing an old incarnation does not silence a restarted node', async () => {
    const net = new MemoryNetwork();
    const old = net.transport('b');
    await old.start({ onMessage: () => {} });
    const got: RaftMessage[] = [];
    const restarted = net.transport('b');
    await restarted.start({ onMessage: (m) => got.push(m) });
    await old.close();
    const a = net.transport('a');
    a.send([hb('a', 'b')]);
    await turn();
    expect(got.length).toBe(1);
  });
});
