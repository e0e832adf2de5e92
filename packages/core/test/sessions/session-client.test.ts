/**
 * createSessionClient over a fake proposer that applies to a withSessions state machine directly
 * (one log index per proposal), with failures injected per attempt.
 */
import { describe, expect, it } from 'vitest';
import type {
  CallOptions,
  ProposeResult,
  SessionClientOptions,
  SessionCommand,
  SessionProposer,
} from '../../src/index.js';
import {
  ApplyError,
  ConfigError,
  createSessionClient,
  LeadershipLostError,
  NotLeaderError,
  RaftError,
  TimeoutError,
  withSessions,
} from '../../src/index.js';
import { seededRandom } from '../runtime/helpers.js';

type Fault = 'timeoutBefore' | 'timeoutAfter' | 'lost' | 'noLeader' | 'invalid' | 'aborted';

/**
 * A proposer in front of a one-node "log": each proposal either applies (at the next index) and
 * resolves, or fails as the next queued fault says. `timeoutAfter` applies the command and then
 * reports a timeout (the answer was lost): the retry must be answered from the table.
 */
class FakeNode implements SessionProposer<number, number> {
  readonly innerCalls: number[] = [];
  readonly sent: SessionCommand<number>[] = [];
  readonly faults: Fault[] = [];
  waits = 0;
  index = 0;
  /** Proposals in flight are held until `release()` when set. */
  hold = false;
  private held: (() => void)[] = [];
  readonly sm = withSessions<number, number>({
    apply: (n) => {
      this.innerCalls.push(n);
      if (n < 0) throw new Error('negative');
      return n * 2;
    },
  });

  async propose(command: SessionCommand<number>): Promise<ProposeResult<number>> {
    this.sent.push(command);
    if (this.hold) await new Promise<void>((r) => this.held.push(r));
    const fault = this.faults.shift();
    if (fault === 'timeoutBefore') throw new TimeoutError('no answer');
    if (fault === 'lost') throw new LeadershipLostError();
    if (fault === 'noLeader') throw new NotLeaderError(null);
    if (fault === 'invalid')
      throw new RaftError('INVALID_ARGUMENT', 'refused', { outcome: 'notApplied' });
    if (fault === 'aborted') throw new RaftError('ABORTED', 'aborted', { outcome: 'unknown' });
    const index = ++this.index;
    let result: number;
    try {
      result = this.sm.apply(command, { index, term: 1 }) as number;
    } catch (cause) {
      throw new ApplyError(index, 1, { cause });
    }
    if (fault === 'timeoutAfter') throw new TimeoutError('the answer was lost');
    return { index, term: 1, result };
  }

  async waitForLeader(_options?: CallOptions): Promise<void> {
    this.waits++;
  }

  release(): void {
    const held = this.held;
    this.held = [];
    for (const r of held) r();
  }
}

async function flush(): Promise<void> {
  for (let i = 0; i < 50; i++) await Promise.resolve();
}

describe('numbering and acknowledgements', () => {
  it('numbers commands 1, 2, 3 and acknowledges the settled prefix', async () => {
    const node = new FakeNode();
    const client = createSessionClient(node, { clientId: 'c' });
    expect(client.nextSeq).toBe(1);
    expect((await client.propose(1)).result).toBe(2);
    expect((await client.propose(2)).result).toBe(4);
    await client.propose(3);
    expect(node.sent.map((c) => [c.seq, c.ack])).toEqual([
      [1, 0],
      [2, 1],
      [3, 2],
    ]);
    expect(client.ack).toBe(3);
    expect(client.nextSeq).toBe(4);
    expect(node.sm.session('c')).toMatchObject({ ackedThrough: 2, keptSeqs: [3] });
  });

  it('sends the first command alone: the others wait until the session is open', async () => {
    const node = new FakeNode();
    node.hold = true;
    const client = createSessionClient(node, { clientId: 'c' });
    const first = client.propose(1);
    const second = client.propose(2);
    const third = client.propose(3);
    await flush();
    expect(node.sent.map((c) => c.seq)).toEqual([1]);
    node.release();
    await flush();
    expect(node.sent.map((c) => c.seq)).toEqual([1, 2, 3]); // then together
    node.release();
    expect((await Promise.all([first, second, third])).map((r) => r.result)).toEqual([2, 4, 6]);
    // seq 2 and 3 were in flight together: both carried ack 1.
    expect(node.sent.map((c) => c.ack)).toEqual([0, 1, 1]);
  });

  it('acknowledges only a contiguous prefix: a slow seq holds the ack back', async () => {
    const node = new FakeNode();
    const client = createSessionClient(node, { clientId: 'c' });
    await client.propose(1);
    node.hold = true;
    const slow = client.propose(2);
    await flush();
    node.hold = false;
    await client.propose(3);
    expect(client.ack).toBe(1); // 3 settled, 2 has not
    node.release();
    await slow;
    expect(client.ack).toBe(3);
  });
});

describe('retries', () => {
  it('retries a command whose answer was lost under the same seq: applied once, first result', async () => {
    const node = new FakeNode();
    const client = createSessionClient(node, { clientId: 'c' });
    await client.propose(1);
    node.faults.push('timeoutAfter');
    const r = await client.propose(5);
    expect(r.result).toBe(10);
    expect(node.sent.map((c) => c.seq)).toEqual([1, 2, 2]);
    expect(node.innerCalls).toEqual([1, 5]);
    expect(node.waits).toBe(1); // waited for a leader before the retry
  });

  it('retries retryable refusals (no leader, leadership lost), up to maxAttempts', async () => {
    const node = new FakeNode();
    const client = createSessionClient(node, { clientId: 'c', maxAttempts: 3 });
    node.faults.push('noLeader', 'lost');
    expect((await client.propose(1)).result).toBe(2);
    node.faults.push('noLeader', 'noLeader', 'noLeader', 'noLeader');
    const err = await client.propose(2).catch((e: unknown) => e);
    expect(RaftError.is(err, 'NO_LEADER')).toBe(true);
    expect(node.sent.filter((c) => c.seq === 2)).toHaveLength(3);
  });

  it('a command that may have applied is reported with outcome unknown, even if the last attempt was refused', async () => {
    const node = new FakeNode();
    const client = createSessionClient(node, { clientId: 'c', maxAttempts: 2 });
    await client.propose(1);
    node.faults.push('timeoutBefore', 'invalid');
    const err = await client.propose(2).catch((e: unknown) => e);
    expect(RaftError.is(err, 'TIMEOUT')).toBe(true);
    expect((err as RaftError).outcome).toBe('unknown');
    expect(client.ack).toBe(2); // given up on: never asked for again
  });

  it('does not retry an ApplyError (that is the result) or ABORTED', async () => {
    const node = new FakeNode();
    const client = createSessionClient(node, { clientId: 'c' });
    const failed = await client.propose(-1).catch((e: unknown) => e);
    expect(RaftError.is(failed, 'APPLY_FAILED')).toBe(true);
    expect(((failed as ApplyError).cause as Error).message).toBe('negative');
    node.faults.push('aborted');
    const aborted = await client.propose(2).catch((e: unknown) => e);
    expect(RaftError.is(aborted, 'ABORTED')).toBe(true);
    expect(node.sent.map((c) => c.seq)).toEqual([1, 2]);
    // The session opened with the failed seq 1: later commands go on.
    expect((await client.propose(3)).result).toBe(6);
  });

  it('stops retrying once the caller aborted', async () => {
    const node = new FakeNode();
    const client = createSessionClient(node, { clientId: 'c', maxAttempts: 5 });
    await client.propose(1);
    node.faults.push('noLeader', 'noLeader');
    const signal = {
      aborted: true,
      addEventListener() {},
      removeEventListener() {},
    };
    const err = await client.propose(2, { signal }).catch((e: unknown) => e);
    expect(RaftError.is(err, 'NO_LEADER')).toBe(true);
    expect(node.sent.filter((c) => c.seq === 2)).toHaveLength(1);
  });

  it('numbers the next command 1 again when seq 1 was certainly not applied', async () => {
    const node = new FakeNode();
    const client = createSessionClient(node, { clientId: 'c' });
    node.faults.push('invalid');
    const err = await client.propose(1).catch((e: unknown) => e);
    expect(RaftError.is(err, 'INVALID_ARGUMENT')).toBe(true);
    expect(client.nextSeq).toBe(1);
    expect(client.ack).toBe(0);
    expect((await client.propose(7)).result).toBe(14);
    expect(node.sent.map((c) => c.seq)).toEqual([1, 1]);
  });

  it('a SESSION_EXPIRED answer arrives as an ApplyError cause', async () => {
    const node = new FakeNode();
    const client = createSessionClient(node, { clientId: 'c' });
    await client.propose(1);
    // Another client with the same id, or a table that lost the session: seq 1 is now acked and
    // forgotten, so a command claiming to be a new seq 1 is refused.
    const other = createSessionClient(node, { clientId: 'c' });
    await client.propose(2);
    const err = await other.propose(1).catch((e: unknown) => e);
    expect(RaftError.is(err, 'APPLY_FAILED')).toBe(true);
    expect(RaftError.is((err as ApplyError).cause, 'SESSION_EXPIRED')).toBe(true);
  });
});

describe('client ids', () => {
  it('draws 128 random bits as 32 hex digits, from the injected random when given', () => {
    const a = createSessionClient(new FakeNode(), { random: seededRandom(5) });
    const b = createSessionClient(new FakeNode(), { random: seededRandom(5) });
    expect(a.clientId).toMatch(/^[0-9a-f]{32}$/);
    expect(a.clientId).toBe(b.clientId);
    const c = createSessionClient(new FakeNode(), { random: seededRandom(6) });
    expect(c.clientId).not.toBe(a.clientId);
  });

  it("uses the host's crypto.getRandomValues by default", () => {
    const ids = new Set(
      Array.from({ length: 20 }, () => createSessionClient(new FakeNode()).clientId),
    );
    expect(ids.size).toBe(20);
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{32}$/);
  });

  it('refuses a bad clientId or maxAttempts with a ConfigError', () => {
    const node = new FakeNode();
    const bad: [Record<string, unknown>, string][] = [
      [{ clientId: '' }, 'clientId'],
      [{ clientId: 'x'.repeat(257) }, 'clientId'],
      [{ maxAttempts: 0 }, 'maxAttempts'],
      [{ maxAttempts: 1.5 }, 'maxAttempts'],
    ];
    for (const [options, field] of bad) {
      let thrown: unknown;
      try {
        createSessionClient(node, options as SessionClientOptions);
      } catch (err) {
        thrown = err;
      }
      expect(thrown).toBeInstanceOf(ConfigError);
      expect((thrown as ConfigError).field).toBe(field);
    }
  });
});
