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
 * | durable before send     | a vote request or grant, and an append acknowledgement, leave |
 * |                         | only once the sender's DURABLE state backs them               |
 * | commit durability       | whatever is committed (a leader's commit index as it leaves,  |
 * |                         | an entry as it applies) is durable on a majority of voters    |
 * | leader progress         | a leader's recorded match never exceeds what the follower     |
 * |                         | durably holds (while the follower is in the leader's term)    |
 * | apply gaps              | a node applies every command of its durable log, in order,   |
 * |                         | from the start of each incarnation                            |
 * | replica agreement       | every replica's state machine returns the same result at an  |
 * |                         | index                                                          |
 * | at-most-once            | a client command (unique id) applies at one index only        |
 * | durable acknowledgement | a node never drops (truncates) entries it acknowledged in the  |
 * |                         | same term                                                      |
 * | compaction safety       | a log is compacted only as far as a durable snapshot covers   |
 * | snapshot agreement      | a snapshot at (index, term) follows the same log prefix on    |
 * |                         | every node that holds it, and every restore of a state yields |
 * |                         | the digest replicas had at that index                          |
 * | outcome honesty         | a command rejected as not applied never applies              |
 * | result integrity        | what propose() returns is what the state machine produced     |
 *
 * The checks that read durable state (the last four rows above the apply rows) need the
 * `durable` and `voters` options; without them they are skipped.
 */
import type { HardState, LogEntry, LogIndex, NodeId, RaftMessage, Role, Term } from '@raft/core';

/** What a node's disk durably holds. */
export interface DurableView {
  /** The durable log: the entry with index i at position i - firstIndex. */
  readonly entries: readonly LogEntry[];
  /** Index of `entries[0]` (entries before it are compacted). Default 1. */
  readonly firstIndex?: LogIndex;
  /** Highest index a durable snapshot covers (0: none). Entries up to it are committed state. */
  readonly snapshotIndex?: LogIndex;
  readonly hardState: HardState | null;
}

/** The durable entry at `index`, if the log holds it. */
function durableAt(view: DurableView | undefined, index: LogIndex): LogEntry | undefined {
  return view?.entries[index - (view.firstIndex ?? 1)];
}

/** True when a durable snapshot of `view` covers `index`. */
function snapshotCovers(view: DurableView | undefined, index: LogIndex): boolean {
  return (view?.snapshotIndex ?? 0) >= index;
}

/** Options of a {@link SafetyChecker}. */
export interface SafetyCheckerOptions {
  /**
   * The voting members: enables the majority checks. A list for a static membership, or, when
   * the membership changes, a function giving every voter set that may have committed the entry
   * at `index` with `term`: the configuration in force at it and every later one (with
   * single-server changes the committing leader used one of them). The check passes if a
   * majority of any of them holds the entry.
   */
  readonly voters?:
    | readonly NodeId[]
    | ((index: LogIndex, term: Term) => readonly (readonly NodeId[])[]);
  /** Each node's durable state (its disk): enables the checks of what messages promise. */
  readonly durable?: (node: NodeId) => DurableView | undefined;
}

/** What the simulator knows about an applied or acknowledged client command. */
export interface CommandInfo {
  /** The client command's unique id. */
  readonly id: string;
  /** A deterministic fingerprint of the state machine's result for it. */
  readonly result: string;
}

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
  readonly counts = { leaders: 0, applies: 0, durableAppends: 0, acked: 0, messagesChecked: 0 };
  private readonly voters:
    | readonly NodeId[]
    | ((index: LogIndex, term: Term) => readonly (readonly NodeId[])[])
    | undefined;
  private readonly durableOf: ((node: NodeId) => DurableView | undefined) | undefined;
  /** Client command id → the index it applied at. */
  private readonly appliedCommands = new Map<string, LogIndex>();
  /** Client commands a client was told were not applied. */
  private readonly notApplied = new Set<string>();
  /** index → fingerprint of the state machine's result there, as first seen. */
  private readonly results = new Map<LogIndex, { result: string; node: NodeId }>();
  /** index → digest of a state machine after applying up to it, as first seen. */
  private readonly digests = new Map<LogIndex, { digest: string; node: NodeId }>();
  /** Per node: its log up to here is covered by a snapshot (compaction issued, or restart). */
  private readonly issuedCovered = new Map<NodeId, LogIndex>();
  /** Per node: the last append acknowledgement it sent (index, term). */
  private readonly lastAcks = new Map<
    NodeId,
    { index: LogIndex; term: Term; entryTerm: Term | undefined }
  >();
  /** Per node: the term it reported last (onNodeState). */
  private readonly nodeTerms = new Map<NodeId, Term>();
  /** Counters of snapshot events for the report. */
  readonly snapshotCounts = { taken: 0, restored: 0 };

  constructor(options: SafetyCheckerOptions = {}) {
    this.voters = options.voters;
    this.durableOf = options.durable;
  }

  private fail(property: string, message: string): never {
    throw new SafetyViolation({ property, message });
  }

  /**
   * A node incarnation (re)started from `durable` entries (the first at index `firstIndex`): its
   * volatile view starts over.
   */
  onStart(node: NodeId, durable: readonly LogEntry[], firstIndex: LogIndex = 1): void {
    this.roles.set(node, { role: 'follower', term: 0, maxIssuedAsLeader: 0 });
    this.lastApplied.set(node, 0);
    const log: LogEntry[] = [];
    log.length = firstIndex - 1;
    for (const e of durable) log.push(e);
    this.issuedLogs.set(node, log);
    this.issuedCovered.set(node, firstIndex - 1);
  }

  /**
   * The runtime issued `compact(upTo)` or `truncate(from)` to the node's log store. The issued
   * view keeps compacted entries it knows (they are still the node's log, covered by a
   * snapshot); a compaction past its end leaves a hole up to `upTo` (a snapshot from the leader
   * covers it).
   */
  onCutIssued(node: NodeId, kind: 'compact' | 'truncate', index: LogIndex): void {
    const log = this.issuedLogs.get(node) ?? [];
    this.issuedLogs.set(node, log);
    if (kind === 'truncate') {
      if (log.length > index - 1) log.length = Math.max(0, index - 1);
    } else {
      if (log.length < index) log.length = index;
      // What the view holds up to here may predate a snapshot installed from the leader (stale
      // entries the snapshot replaced): a snapshot covers it now.
      if (index > (this.issuedCovered.get(node) ?? 0)) this.issuedCovered.set(node, index);
    }
  }

  /**
   * A snapshot at (index, term) became durable on `node`'s disk. A node's own snapshot records
   * the chained hash of the prefix it covers; a received one must cover the same prefix, and
   * seeds the disk's chain so the entries after it chain on.
   */
  onDurableSnapshot(node: NodeId, index: LogIndex, term: Term): void {
    const hashes = this.chains.get(node) ?? [];
    this.chains.set(node, hashes);
    // The snapshot names the entry (index, term): some durable log must have held it, and its
    // chained hash there is the hash of the prefix the snapshot covers.
    const prefix = this.chainByEntry.get(`${index}:${term}`);
    if (prefix === undefined) {
      this.fail(
        'snapshot agreement',
        `${node} holds a snapshot at ${index} labelled term ${term}, but no log ever held entry ${index} of term ${term}`,
      );
    }
    const applied = this.applied.get(index);
    if (applied !== undefined && applied.term !== term) {
      this.fail(
        'snapshot agreement',
        `${node} holds a snapshot at ${index} of term ${term}, but the committed entry there is of term ${applied.term}`,
      );
    }
    if (hashes.length < index) hashes.length = index;
    hashes[index - 1] = prefix;
    // The durable log after the snapshot must chain on from its prefix (Log Matching): entries
    // that followed another entry at `index` (a suffix the snapshot contradicts) do not.
    const view = this.durableOf?.(node);
    if (view === undefined) return;
    const last = (view.firstIndex ?? 1) + view.entries.length - 1;
    let prev = prefix;
    for (let i = index + 1; i <= last; i++) {
      const e = durableAt(view, i);
      if (e === undefined) break;
      prev = chain(prev, e.term, e.kind, hashBytes(e.data));
      const seen = this.chainByEntry.get(`${i}:${e.term}`);
      if (seen !== undefined && seen !== prev) {
        this.fail(
          'Log Matching',
          `${node} keeps entry ${i} of term ${e.term} after a snapshot at ${index} (term ${term}) that it does not follow`,
        );
      }
      hashes[i - 1] = prev;
    }
  }

  /**
   * The durable log of `node` now starts at `firstIndex`: a durable snapshot must cover every
   * entry it dropped (else a restart finds a hole between its snapshot and its log).
   */
  onDurableCompact(node: NodeId, firstIndex: LogIndex): void {
    const covered = this.durableOf?.(node)?.snapshotIndex;
    if (covered !== undefined && firstIndex - 1 > covered) {
      this.fail(
        'compaction safety',
        `${node} compacted its log up to ${firstIndex - 1}, but its latest durable snapshot ends at ${covered}`,
      );
    }
  }

  /** The durable log of `node` dropped every entry from `from` on. */
  onDurableTruncate(node: NodeId, from: LogIndex): void {
    // An acknowledgement promises the entry stays durable: only a later term's leader may undo
    // it (by overwriting an uncommitted entry), never the node itself within the same term.
    const ack = this.lastAcks.get(node);
    if (ack !== undefined && from <= ack.index && this.nodeTerms.get(node) === ack.term) {
      this.fail(
        'durable acknowledgement',
        `${node} dropped its log from ${from} in term ${ack.term}, after acknowledging index ${ack.index} in that term`,
      );
    }
    const hashes = this.chains.get(node);
    if (hashes !== undefined && hashes.length > from - 1) hashes.length = Math.max(0, from - 1);
  }

  /**
   * `node`'s state machine was restored from the snapshot at `index` (at start-up or from the
   * leader); `digest` fingerprints its state afterwards. Applies go on after `index`.
   */
  onRestore(node: NodeId, index: LogIndex, digest?: string): void {
    this.snapshotCounts.restored++;
    const last = this.lastApplied.get(node) ?? 0;
    if (index < last) {
      this.fail('apply order', `${node} restored a snapshot at ${index} after applying ${last}`);
    }
    this.lastApplied.set(node, index);
    if (digest !== undefined) this.onStateDigest(node, index, digest);
  }

  /** `node`'s state machine, having applied up to `index`, has state `digest`. */
  onStateDigest(node: NodeId, index: LogIndex, digest: string): void {
    const seen = this.digests.get(index);
    if (seen === undefined) this.digests.set(index, { digest, node });
    else if (seen.digest !== digest) {
      this.fail(
        'replica agreement',
        `${node}'s state machine holds ${digest} after index ${index}, ${seen.node}'s held ${seen.digest}`,
      );
    }
  }

  /**
   * Election Safety from every node's own state (not only from the role changes it reported):
   * call after each event with what each running node says of itself.
   */
  onNodeState(node: NodeId, role: Role, term: Term): void {
    this.nodeTerms.set(node, term);
    if (role !== 'leader') return;
    const other = this.leaders.get(term);
    if (other === undefined) this.leaders.set(term, node);
    else if (other !== node) {
      this.fail('Election Safety', `${other} and ${node} were both leader at term ${term}`);
    }
  }

  /** How many of `voters` hold the entry at `index` with `term` durably. */
  private durableCopies(voters: readonly NodeId[], index: LogIndex, term: Term): number {
    const durableOf = this.durableOf as (node: NodeId) => DurableView | undefined;
    let copies = 0;
    for (const id of voters) {
      const view = durableOf(id);
      // A snapshot covers only committed entries, which are the same on every node.
      if (durableAt(view, index)?.term === term || snapshotCovers(view, index)) copies++;
    }
    return copies;
  }

  private checkCommitDurable(what: string, node: NodeId, index: LogIndex, term: Term): void {
    const voters = this.voters;
    if (voters === undefined || this.durableOf === undefined) return;
    const sets = typeof voters === 'function' ? voters(index, term) : [voters];
    let best = '';
    for (const set of sets) {
      const copies = this.durableCopies(set, index, term);
      if (copies >= Math.floor(set.length / 2) + 1) return;
      best += `${best === '' ? '' : '; '}${copies} of ${set.length} in {${set.join(',')}}`;
    }
    this.fail(
      'commit durability',
      `${what} on ${node}: entry ${index} (term ${term}) is durable on no majority of voters: ${best}`,
    );
  }

  /**
   * `from` sent `m`. What the message promises must already be durable on `from` (§5.1: persist
   * before responding), and a commit index it carries must be durable on a majority.
   */
  onMessageSent(from: NodeId, m: RaftMessage): void {
    const durableOf = this.durableOf;
    if (durableOf === undefined) return;
    this.counts.messagesChecked++;
    switch (m.type) {
      case 'vote':
      case 'voteResponse': {
        if (m.preVote || (m.type === 'voteResponse' && !m.granted)) return;
        const candidate = m.type === 'vote' ? from : m.to;
        const hs = durableOf(from)?.hardState;
        if (hs?.term !== m.term || hs.votedFor !== candidate) {
          this.fail(
            'durable before send',
            `${from} sent a ${m.type === 'vote' ? 'vote request' : 'vote grant'} for ${candidate} at term ${m.term}, but its durable hard state is ${hs ? `term ${hs.term} vote ${hs.votedFor}` : 'empty'}`,
          );
        }
        return;
      }
      case 'appendResponse': {
        if (!m.success || m.matchIndex === 0) return;
        const prevAck = this.lastAcks.get(from);
        if (prevAck === undefined || prevAck.term !== m.term || prevAck.index < m.matchIndex)
          this.lastAcks.set(from, {
            index: m.matchIndex,
            term: m.term,
            entryTerm: this.issuedLogs.get(from)?.[m.matchIndex - 1]?.term,
          });
        const own = durableOf(from);
        if (snapshotCovers(own, m.matchIndex)) return;
        const durable = durableAt(own, m.matchIndex);
        const view = this.issuedLogs.get(from)?.[m.matchIndex - 1];
        if (durable === undefined || view === undefined || durable.term !== view.term) {
          this.fail(
            'durable before send',
            `${from} acknowledged index ${m.matchIndex} to ${m.to} at term ${m.term}, but its durable log ${durable === undefined ? `ends at ${(own?.firstIndex ?? 1) + (own?.entries.length ?? 0) - 1}` : `holds term ${durable.term} there, not ${view?.term}`}`,
          );
        }
        return;
      }
      case 'append':
      case 'heartbeat': {
        if (m.commit === 0) return;
        const entry = this.issuedLogs.get(from)?.[m.commit - 1];
        if (entry !== undefined)
          this.checkCommitDurable(
            `commit index ${m.commit} sent to ${m.to}`,
            from,
            m.commit,
            entry.term,
          );
        return;
      }
      default:
        return;
    }
  }

  /**
   * A leader's replication progress: its recorded match for each follower must be durable on
   * that follower, unless the follower has moved on to a later term (a later leader may have
   * rewritten what this one matched). `termOf(f)` is the follower's current term.
   */
  onLeaderProgress(
    leader: NodeId,
    term: Term,
    matches: Iterable<readonly [NodeId, LogIndex]>,
    termOf: (node: NodeId) => Term,
  ): void {
    const durableOf = this.durableOf;
    if (durableOf === undefined) return;
    const leaderLog = this.issuedLogs.get(leader);
    for (const [follower, match] of matches) {
      if (match === 0 || termOf(follower) > term) continue;
      const view = durableOf(follower);
      if (snapshotCovers(view, match)) continue;
      const durable = durableAt(view, match);
      const expected = leaderLog?.[match - 1];
      if (durable === undefined || (expected !== undefined && durable.term !== expected.term)) {
        this.fail(
          'leader progress',
          `leader ${leader} of term ${term} records ${follower} as matching up to ${match}, but ${follower}'s durable log ${durable === undefined ? `ends at ${(view?.firstIndex ?? 1) + (view?.entries.length ?? 0) - 1}` : `holds term ${durable.term} there`}`,
        );
      }
    }
  }

  /** A client was told its command `id` was not applied (and never will be). */
  onNotApplied(id: string, code: string): void {
    const at = this.appliedCommands.get(id);
    if (at !== undefined) {
      this.fail(
        'outcome honesty',
        `command ${id} was rejected with ${code} (not applied), but it applied at ${at}`,
      );
    }
    this.notApplied.add(id);
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
    // -1: a snapshot covers it (committed state, so complete).
    const covered = Math.min(this.issuedCovered.get(node) ?? 0, noop.index - 1);
    for (let i = 0; i < noop.index - 1; i++) terms[i] = i < covered ? -1 : (log[i]?.term ?? -1);
    const leaderLog: LeaderLog = { term: noop.term, noopIndex: noop.index, terms };
    // Leader Completeness (§5.4): everything committed so far must be in the new leader's log.
    for (const [index, a] of this.applied) this.checkLeaderHas(node, leaderLog, index, a.term);
    this.leadersChecked++;
  }

  private checkLeaderHas(node: NodeId, leader: LeaderLog, index: LogIndex, term: Term): void {
    if (term >= leader.term) return;
    if (leader.terms[index - 1] === -1 && index < leader.noopIndex) return;
    if (index >= leader.noopIndex || leader.terms[index - 1] !== term) {
      this.fail(
        'Leader Completeness',
        `leader ${node} of term ${leader.term} lacks committed entry ${index} (term ${term}); its log has ${leader.terms[index - 1] ?? 'nothing'} there`,
      );
    }
  }

  /** An append became durable on `node`'s disk (the log now ends with `entries`). */
  onDurableAppend(
    node: NodeId,
    entries: readonly LogEntry[],
    truncatedFrom: LogIndex | null = null,
  ): void {
    const first = entries[0];
    if (first === undefined) return;
    if (truncatedFrom !== null) {
      // A replaced suffix: an entry acknowledged in the node's current term must still be there.
      const ack = this.lastAcks.get(node);
      if (
        ack !== undefined &&
        truncatedFrom <= ack.index &&
        this.nodeTerms.get(node) === ack.term
      ) {
        const now = durableAt(this.durableOf?.(node), ack.index);
        if (now === undefined || now.term !== ack.entryTerm) {
          this.fail(
            'durable acknowledgement',
            `${node} replaced its log from ${truncatedFrom} in term ${ack.term}, losing entry ${ack.index} it acknowledged in that term`,
          );
        }
      }
    }
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

  /** The state machine of `node` applied a command (`info` for client commands). */
  onApply(node: NodeId, index: LogIndex, term: Term, data: Uint8Array, info?: CommandInfo): void {
    this.counts.applies++;
    const last = this.lastApplied.get(node) ?? 0;
    if (index <= last) this.fail('apply order', `${node} applied ${index} after ${last}`);
    this.lastApplied.set(node, index);
    const durable = this.durableOf?.(node);
    if (durable !== undefined) {
      // Every command between the previous apply and this one was skipped: only no-ops and
      // configuration entries may lie there.
      for (let i = last + 1; i < index; i++) {
        const e = durableAt(durable, i);
        if (e?.kind === 'command')
          this.fail('apply gaps', `${node} applied ${index} after ${last}, skipping command ${i}`);
      }
    }
    this.checkCommitDurable('applied', node, index, term);
    if (info !== undefined) {
      const at = this.appliedCommands.get(info.id);
      if (at === undefined) this.appliedCommands.set(info.id, index);
      else if (at !== index) {
        this.fail(
          'at-most-once',
          `command ${info.id} applied at ${at} and again at ${index} (on ${node})`,
        );
      }
      if (this.notApplied.has(info.id)) {
        this.fail(
          'outcome honesty',
          `command ${info.id} applied at ${index} on ${node}, but a client was told it was not applied`,
        );
      }
      const seen = this.results.get(index);
      if (seen === undefined) this.results.set(index, { result: info.result, node });
      else if (seen.result !== info.result) {
        this.fail(
          'replica agreement',
          `${node}'s state machine returned ${info.result} at ${index}, ${seen.node}'s returned ${seen.result}`,
        );
      }
    }
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
  onAcked(index: LogIndex, term: Term, data: Uint8Array, info?: CommandInfo): void {
    this.counts.acked++;
    if (info !== undefined) {
      const seen = this.results.get(index);
      if (seen !== undefined && seen.result !== info.result) {
        this.fail(
          'result integrity',
          `propose() of ${info.id} returned ${info.result} for index ${index}, but the state machine produced ${seen.result} there`,
        );
      }
    }
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
