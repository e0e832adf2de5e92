/**
 * Raft safety properties, checked incrementally as the simulation runs (openraft's invariant
 * table; Raft paper Figure 3). Each hook costs O(entries it reports), except the check of a new
 * leader, which reads that leader's log once per election; so the checker can run after every
 * simulator event.
 *
 * | property                | how it is observed                                             |
 * | ----------------------- | -------------------------------------------------------------- |
 * | Election Safety         | `roleChanged` events: at most one leader per term              |
 * | Leader Append-Only      | appends a leader issues never start at or below an index it   |
 * |                         | wrote itself during its term                                   |
 * | Log Matching            | chained hashes of every durable log: equal (index, term) must |
 * |                         | mean an equal prefix                                           |
 * | Leader Completeness     | when a leader issues its term's first entry (the no-op), its  |
 * |                         | log holds every entry applied anywhere so far (those were     |
 * |                         | committed in an earlier term: a leader commits nothing before |
 * |                         | its no-op)                                                     |
 * | State Machine Safety    | no two applies at one index differ, and the committed prefix  |
 * |                         | (no-ops and configuration entries too) is identical            |
 * | monotonic state         | durable term never decreases; a durable vote never changes    |
 * |                         | within its term; applied indexes increase per incarnation     |
 * | durability              | every acknowledged proposal is applied at its position        |
 */
import type { HardState, LogEntry, LogIndex, NodeId, Role, Term } from '@raft/core';

/** A broken property: what, where, and the details to debug it. */
export interface Violation {
  readonly property: string;
  readonly message: string;
}

/** Thrown (and caught by the scenario runner) as soon as a property breaks. */
export class SafetyViolation extends Error {
  readonly violation: Violation;
  constructor(violation: Violation) {
    super(`${violation.property}: ${violation.message}`);
    this.name = 'SafetyViolation';
    this.violation = violation;
  }
}

/** 32-bit FNV-1a of a byte array. */
export function hashBytes(data: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < data.length; i++) {
    h ^= data[i] as number;
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

const KIND_CODES: Readonly<Record<LogEntry['kind'], number>> = {
  command: 0,
  noop: 1,
  membership: 2,
};

function chain(prev: number, term: Term, kind: LogEntry['kind'], dataHash: number): number {
  let h = Math.imul(prev ^ term ^ (KIND_CODES[kind] << 29), 0x9e3779b1);
  h = Math.imul(h ^ dataHash, 0x85ebca6b);
  return (h ^ (h >>> 15)) >>> 0;
}

interface Applied {
  readonly term: Term;
  readonly hash: number;
  readonly node: NodeId;
}

interface LeaderLog {
  readonly term: Term;
  readonly noopIndex: LogIndex;
  /** terms[i] = term of entry i + 1 in the leader's log when it started its term. */
  readonly terms: readonly Term[];
}

/** See the module comment. One instance per scenario. */
export class SafetyChecker {
  private readonly leaders = new Map<Term, NodeId>();
  /** Per disk: chained hash of the durable log prefix (position i - 1 for index i). */
  private readonly chains = new Map<NodeId, number[]>();
  /** (index, term) → chained hash seen first. */
  private readonly chainByEntry = new Map<string, number>();
  /** Per node: what it has issued to its log store (its log, minus the unissued tail). */
  private readonly issuedLogs = new Map<NodeId, LogEntry[]>();
  /** Per node: current role and term, from events of the live incarnation. */
  private readonly roles = new Map<
    NodeId,
    { role: Role; term: Term; maxIssuedAsLeader: LogIndex }
  >();
  private readonly applied = new Map<LogIndex, Applied>();
  /** index → chained hash of the committed prefix ending there, as first seen at an apply. */
  private readonly committedChains = new Map<LogIndex, { hash: number; node: NodeId }>();
  private readonly lastApplied = new Map<NodeId, LogIndex>();
  private leadersChecked = 0;
  private readonly durableHard = new Map<NodeId, HardState>();
  /** Acknowledged proposals: index → (term, hash). */
  readonly acked = new Map<LogIndex, { term: Term; hash: number }>();
  /** Counters for the report. */
  readonly counts = { leaders: 0, applies: 0, durableAppends: 0, acked: 0 };

  private fail(property: string, message: string): never {
    throw new SafetyViolation({ property, message });
  }

  /** A node incarnation (re)started from `durable` entries: its volatile view starts over. */
  onStart(node: NodeId, durable: readonly LogEntry[]): void {
    this.roles.set(node, { role: 'follower', term: 0, maxIssuedAsLeader: 0 });
    this.lastApplied.set(node, 0);
    this.issuedLogs.set(node, durable.slice());
  }

  onRoleChanged(node: NodeId, role: Role, term: Term): void {
    const prev = this.roles.get(node);
    if (prev && term < prev.term) {
      this.fail('monotonic term', `${node} went from term ${prev.term} to ${term}`);
    }
    if (role === 'leader') {
      this.counts.leaders++;
      const other = this.leaders.get(term);
      if (other !== undefined && other !== node) {
        this.fail('Election Safety', `${other} and ${node} were both leader at term ${term}`);
      }
      this.leaders.set(term, node);
    }
    this.roles.set(node, { role, term, maxIssuedAsLeader: 0 });
  }

  /** The runtime issued an append to the node's log store. */
  onAppendIssued(node: NodeId, entries: readonly LogEntry[]): void {
    const first = entries[0];
    if (first === undefined) return;
    const log = this.issuedLogs.get(node) ?? [];
    this.issuedLogs.set(node, log);
    const r = this.roles.get(node);
    if (r?.role === 'leader') {
      if (first.index <= r.maxIssuedAsLeader) {
        this.fail(
          'Leader Append-Only',
          `${node}, leader at term ${r.term}, rewrote its log from index ${first.index} (it had written up to ${r.maxIssuedAsLeader})`,
        );
      }
      r.maxIssuedAsLeader = (entries[entries.length - 1] as LogEntry).index;
    }
    if (first.index > log.length + 1) {
      this.fail(
        'log continuity',
        `${node} appended at ${first.index} past its issued log end ${log.length}`,
      );
    }
    log.length = first.index - 1;
    for (const e of entries) log.push(e);
    for (const e of entries) {
      if (e.kind === 'noop' && r?.role === 'leader' && e.term === r.term)
        this.recordLeaderLog(node, e, log);
    }
  }

  private recordLeaderLog(node: NodeId, noop: LogEntry, log: readonly LogEntry[]): void {
    const terms = new Array<Term>(noop.index - 1);
    for (let i = 0; i < noop.index - 1; i++) terms[i] = (log[i] as LogEntry).term;
    const leaderLog: LeaderLog = { term: noop.term, noopIndex: noop.index, terms };
    // Leader Completeness (§5.4): everything committed so far must be in the new leader's log.
    for (const [index, a] of this.applied) this.checkLeaderHas(node, leaderLog, index, a.term);
    this.leadersChecked++;
  }

  private checkLeaderHas(node: NodeId, leader: LeaderLog, index: LogIndex, term: Term): void {
    if (term >= leader.term) return;
    if (index >= leader.noopIndex || leader.terms[index - 1] !== term) {
      this.fail(
        'Leader Completeness',
        `leader ${node} of term ${leader.term} lacks committed entry ${index} (term ${term}); its log has ${leader.terms[index - 1] ?? 'nothing'} there`,
      );
    }
  }

  /** An append became durable on `node`'s disk (the log now ends with `entries`). */
  onDurableAppend(node: NodeId, entries: readonly LogEntry[]): void {
    const first = entries[0];
    if (first === undefined) return;
    this.counts.durableAppends++;
    const hashes = this.chains.get(node) ?? [];
    this.chains.set(node, hashes);
    hashes.length = first.index - 1;
    let prev = first.index === 1 ? 0 : (hashes[first.index - 2] as number);
    for (const e of entries) {
      prev = chain(prev, e.term, e.kind, hashBytes(e.data));
      hashes.push(prev);
      const key = `${e.index}:${e.term}`;
      const seen = this.chainByEntry.get(key);
      if (seen === undefined) this.chainByEntry.set(key, prev);
      else if (seen !== prev) {
        this.fail(
          'Log Matching',
          `${node} holds entry ${e.index} of term ${e.term} with a prefix that differs from another node's`,
        );
      }
    }
  }

  /** A hard state became durable on `node`'s disk. */
  onDurableSave(node: NodeId, hs: HardState): void {
    const prev = this.durableHard.get(node);
    if (prev) {
      if (hs.term < prev.term)
        this.fail('monotonic term', `${node} persisted term ${hs.term} after ${prev.term}`);
      if (hs.term === prev.term && prev.votedFor !== null && hs.votedFor !== prev.votedFor) {
        this.fail(
          'vote safety',
          `${node} changed its durable vote in term ${hs.term} from ${prev.votedFor} to ${hs.votedFor}`,
        );
      }
    }
    this.durableHard.set(node, hs);
  }

  /** The state machine of `node` applied a command. */
  onApply(node: NodeId, index: LogIndex, term: Term, data: Uint8Array): void {
    this.counts.applies++;
    const last = this.lastApplied.get(node) ?? 0;
    if (index <= last) this.fail('apply order', `${node} applied ${index} after ${last}`);
    this.lastApplied.set(node, index);
    const hash = hashBytes(data);
    const prev = this.applied.get(index);
    if (prev === undefined) {
      this.applied.set(index, { term, hash, node });
    } else if (prev.term !== term || prev.hash !== hash) {
      this.fail(
        'State Machine Safety',
        `${node} applied (term ${term}) at index ${index}, but ${prev.node} applied (term ${prev.term}) there`,
      );
    }
    if (this.chains.get(node)?.[index - 1] === undefined) {
      this.fail('apply durability', `${node} applied ${index}, which is not in its durable log`);
    }
    this.onCommitted(node, index);
    const ack = this.acked.get(index);
    if (ack && (ack.term !== term || ack.hash !== hash)) {
      this.fail(
        'durability',
        `acknowledged entry ${index} (term ${ack.term}) was replaced by term ${term} on ${node}`,
      );
    }
  }

  /**
   * `node` has applied entries up to `index` (no-ops and configuration entries included). The
   * applied prefix must be identical everywhere: compare the chained hash of the node's durable
   * log at `index`. (Use the applied index, not the commit index: a follower may know a commit
   * index whose entries' rewrite is still on its way to disk.)
   */
  onCommitted(node: NodeId, index: LogIndex): void {
    if (index < 1) return;
    const hashes = this.chains.get(node);
    if (hashes === undefined || index > hashes.length) {
      this.fail(
        'apply durability',
        `${node} applied up to ${index}, past its durable log (${hashes?.length ?? 0})`,
      );
    }
    const at = index;
    const chainHash = hashes[at - 1] as number;
    const seen = this.committedChains.get(at);
    if (seen === undefined) this.committedChains.set(at, { hash: chainHash, node });
    else if (seen.hash !== chainHash) {
      this.fail(
        'State Machine Safety',
        `${node} has committed entries up to ${at} that differ from ${seen.node}'s`,
      );
    }
  }

  /** A client got a successful answer for the command `data` at (index, term). */
  onAcked(index: LogIndex, term: Term, data: Uint8Array): void {
    this.counts.acked++;
    const hash = hashBytes(data);
    const a = this.applied.get(index);
    if (a === undefined || a.term !== term || a.hash !== hash) {
      this.fail(
        'durability',
        `a client was told entry ${index} (term ${term}) applied, but ${a ? `term ${a.term}` : 'nothing'} applied there`,
      );
    }
    this.acked.set(index, { term, hash });
  }

  /** How many new leaders were checked for completeness. */
  get leaderCompletenessChecks(): number {
    return this.leadersChecked;
  }

  /** A node hit a fatal error: in a simulation without injected storage faults, a bug. */
  onFatal(node: NodeId, message: string): void {
    this.fail('no fatal errors', `${node}: ${message}`);
  }

  /** The runtime logged an error (the engine refused a message, a listener threw...). */
  onEngineError(node: NodeId, message: string): void {
    this.fail('no engine errors', `${node}: ${message}`);
  }

  /** Highest index applied anywhere. */
  maxApplied(): LogIndex {
    let max = 0;
    for (const i of this.applied.keys()) if (i > max) max = i;
    return max;
  }
}
