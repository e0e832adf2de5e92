/**
 * A follower n2 for the issue #13 review regressions: the runtime's own RawNode, ReadyLoop and
 * SnapshotReceiver over a log store whose appends can be held (a slow fsync), so a snapshot can
 * complete while a Ready's write is in flight, and a crash can be modelled at each store call.
 */
import { RawNode } from '../../src/engine/index.js';
import type {
  HardState,
  LogBounds,
  LogEntry,
  LogIndex,
  LogStore,
  RaftMessage,
  SnapshotMeta,
  SnapshotSource,
  StableStore,
  Transport,
} from '../../src/index.js';
import { MemoryLogStore, MemorySnapshotStore, noopLogger } from '../../src/index.js';
import { ReadyLoop } from '../../src/runtime/ready-loop.js';
import { SnapshotReceiver } from '../../src/runtime/snapshot-receiver.js';
import { bootstrapState, DEFAULT_CONFIG, membershipEntry } from '../engine/harness.js';
import { flushTurns, ManualClock, seededRandom } from '../runtime/helpers.js';

/** A MemoryLogStore whose appends can be held (a slow fsync), recording every call. */
export class GatedLogStore implements LogStore {
  readonly inner = new MemoryLogStore();
  readonly calls: string[] = [];
  private gate: Promise<void> | null = null;
  private release: (() => void) | null = null;
  /** Called after each compact / truncate resolves (a crash could happen right there). */
  onCut: ((kind: 'compact' | 'truncate', index: LogIndex) => Promise<void>) | null = null;

  hold(): void {
    this.gate = new Promise((resolve) => {
      this.release = resolve;
    });
  }
  open(): Promise<LogBounds> {
    return this.inner.open();
  }
  read(from: LogIndex, to: LogIndex): Promise<LogEntry[]> {
    return this.inner.read(from, to);
  }
  async append(entries: readonly LogEntry[]): Promise<void> {
    this.calls.push(`append ${entries[0]?.index}..${entries[entries.length - 1]?.index}`);
    await this.inner.append(entries);
    // Durable now; the promise resolves when the gate opens (the fsync returns late).
    if (this.gate !== null) await this.gate;
  }
  unhold(): void {
    this.gate = null;
    this.release?.();
  }
  async compact(upTo: LogIndex): Promise<void> {
    this.calls.push(`compact ${upTo}`);
    await this.inner.compact(upTo);
    await this.onCut?.('compact', upTo);
  }
  async truncate(from: LogIndex): Promise<void> {
    this.calls.push(`truncate ${from}`);
    await this.inner.truncate(from);
    await this.onCut?.('truncate', from);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

class NullStableStore implements StableStore {
  state: HardState | null = null;
  async load(): Promise<HardState | null> {
    return this.state;
  }
  async save(s: HardState): Promise<void> {
    this.state = s;
  }
  async close(): Promise<void> {}
}

/** A follower n2 driven by the runtime's ReadyLoop and SnapshotReceiver. */
export async function follower(ids: readonly string[]) {
  const engine = new RawNode(
    { ...DEFAULT_CONFIG, id: 'n2', random: seededRandom(3) },
    bootstrapState(ids),
  );
  const logStore = new GatedLogStore();
  await logStore.inner.append([membershipEntry(ids)]);
  const snapshotStore = new MemorySnapshotStore();
  const sent: RaftMessage[] = [];
  const transport: Transport = {
    start: async () => {},
    send: (ms) => {
      sent.push(...ms);
    },
    setPeers: () => {},
    close: async () => {},
  };
  const clock = new ManualClock();
  const installed: SnapshotMeta[] = [];
  let loop: ReadyLoop | null = null;
  const receiver = new SnapshotReceiver('n2', snapshotStore, transport, clock, noopLogger, 30_000, {
    isRunning: () => true,
    engine: () => engine,
    schedule: () => loop?.schedule(),
    restore: async (_source: SnapshotSource) => {},
    installed: (meta) => {
      installed.push(meta);
    },
  });
  const stableStore = new NullStableStore();
  loop = new ReadyLoop(engine, logStore, stableStore, transport, {
    isRunning: () => true,
    observe: () => {},
    sending: () => {},
    apply: () => {},
    advanced: () => {},
    sendSnapshots: () => {},
    installSnapshot: (install) => receiver.install(install, logStore),
    fail: (err) => {
      throw err;
    },
  });
  const deliver = async (m: RaftMessage): Promise<void> => {
    // As RaftNodeImpl.onMessage: the engine first, then the receiver.
    engine.step(m);
    if (m.type === 'installSnapshot') receiver.onChunk(m);
    loop?.schedule();
    await flushTurns(4);
  };
  /** Highest index n2 acknowledged as stored (success appendResponses it sent). */
  const maxAcked = (): LogIndex =>
    Math.max(0, ...sent.map((m) => (m.type === 'appendResponse' && m.success ? m.matchIndex : 0)));
  return {
    engine,
    logStore,
    snapshotStore,
    stableStore,
    loop,
    receiver,
    sent,
    installed,
    deliver,
    maxAcked,
  };
}
