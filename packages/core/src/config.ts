/**
 * Options of `createRaftNode`, their defaults, and up-front validation (hashicorp
 * `ValidateConfig`, etcd `Config.validate()`): a bad option fails `createRaftNode` with a
 * ConfigError naming the field and the allowed range, before anything starts.
 */
import { ConfigError } from './errors.js';
import type { Clock, Random } from './interfaces/clock.js';
import type { LogStore } from './interfaces/log-store.js';
import type { SnapshotStore } from './interfaces/snapshot-store.js';
import type { StableStore } from './interfaces/stable-store.js';
import type { CommandCodec, StateMachine } from './interfaces/state-machine.js';
import type { RaftStores } from './interfaces/stores.js';
import type { Transport } from './interfaces/transport.js';
import type { Logger } from './logger.js';
import type { NodeId } from './types.js';

/** What a follower does with `propose()`. */
export type FollowerProposals = 'forward' | 'reject';

/** Options of {@link createRaftNode}. Every optional field documents its default. */
export interface RaftNodeOptions<Cmd, Res> {
  /** This node's id: unique for the cluster's lifetime. */
  readonly id: NodeId;
  readonly stateMachine: StateMachine<Cmd, Res>;
  readonly codec: CommandCodec<Cmd>;
  /**
   * The node's durable storage in one piece, as a storage adapter's `open…Stores()` returns it
   * (`openFileStores`, `openSqliteStores`, `openRedisStores`): the three stores, and a
   * `close()` that `stop()` calls after closing them (releasing the adapter's lock, files or
   * connections). Give either `stores` or `logStore` and `stableStore` (with an optional
   * `snapshotStore`), not both.
   */
  readonly stores?: RaftStores;
  /** Required unless `stores` is given. */
  readonly logStore?: LogStore;
  /** Required unless `stores` is given. */
  readonly stableStore?: StableStore;
  /**
   * Where snapshots go (not with `stores`, which brings its own). With a state machine that implements `snapshot()` and `restore()`, the
   * node takes snapshots as the log grows, compacts the log behind them, and streams them to
   * followers that fall behind the compacted log. Without one (the default) nothing is
   * compacted: the log grows for ever and a restart replays it whole.
   */
  readonly snapshotStore?: SnapshotStore;
  readonly transport: Transport;
  /** Default: the host's monotonic clock and timers. */
  readonly clock?: Clock;
  /** Default: Math.random. Inject a seeded one for deterministic tests. */
  readonly random?: Random;
  /** Default: a no-op logger. Pass a pino logger directly. */
  readonly logger?: Logger;
  /** Granularity of the engine's logical clock. Default 10 ms. */
  readonly tickMs?: number;
  /** Base election timeout; each term draws from [t, 2t). Default 300 ms. */
  readonly electionTimeoutMs?: number;
  /** Leader heartbeat interval; must be less than the election timeout. Default 50 ms. */
  readonly heartbeatMs?: number;
  /** Bound on every wait (`propose`, `stop`) unless a call passes its own. Default 5000 ms. */
  readonly requestTimeoutMs?: number;
  /** `forward` (default): a follower forwards proposals to its leader and resolves with the
   *  result once the entry is applied locally (etcd). `reject`: NotLeaderError with a hint. */
  readonly followerProposals?: FollowerProposals;
  /** PreVote (thesis §9.6). Default true. */
  readonly preVote?: boolean;
  /** CheckQuorum (thesis §6.2). Default true. */
  readonly checkQuorum?: boolean;
  /** Largest encoded command accepted by `propose()`. Default 1 MiB. */
  readonly maxCommandBytes?: number;
  /** Most entries per AppendEntries. Default 4096. */
  readonly maxEntriesPerAppend?: number;
  /** Most payload bytes per AppendEntries. Default 1 MiB. */
  readonly maxBytesPerAppend?: number;
  /** Most unacknowledged AppendEntries per follower (pipelining window). Default 64. */
  readonly maxInflightAppends?: number;
  /**
   * Back-pressure: most entries the leader holds that its state machine has not applied yet
   * (uncommitted, or committed and waiting to apply). Past it, the leader refuses proposals, its
   * own and forwarded ones, with PROPOSAL_DROPPED (retryable; nothing appended). On every node,
   * at most this many committed entries wait in the apply queue. Heartbeats, votes and
   * acknowledgements are never held back, and a state machine that takes long to apply yields to
   * the event loop between entries, so a slow state machine costs throughput, never leadership.
   * Default 65536.
   */
  readonly maxPendingEntries?: number;
  /**
   * Decode every command once on the node where `propose()` is called, before it enters the
   * log: a command the codec cannot read back is refused with INVALID_ARGUMENT instead of
   * reaching every state machine. Costs one `decode` per proposal; default true.
   */
  readonly validateCommands?: boolean;
  /**
   * Take a snapshot once this many entries have been applied since the last one (0: never
   * automatically; `takeSnapshot()` still works). Default 10000.
   */
  readonly snapshotThreshold?: number;
  /**
   * Take a snapshot once this many payload bytes have been applied since the last one, whichever
   * of the two thresholds comes first (0: no byte threshold). Default 64 MiB.
   */
  readonly snapshotThresholdBytes?: number;
  /**
   * Entries kept in the log behind each snapshot, so a follower that lags by fewer catches up
   * from the log instead of receiving a whole snapshot. Default 5000.
   */
  readonly trailingEntries?: number;
  /** Size of the chunks a snapshot travels in to a follower (each one message). Default 1 MiB. */
  readonly snapshotChunkBytes?: number;
  /**
   * A snapshot transfer to a follower that makes no progress for this long is abandoned (and
   * started again when the follower is found still behind); an unanswered chunk is resent after
   * one election timeout. On the receiving side, a transfer silent for this long is discarded.
   * At least twice `electionTimeoutMs` (so a lost chunk is resent before the transfer is given
   * up). Default 30000 ms.
   */
  readonly snapshotTransferTimeoutMs?: number;
  /**
   * Lets a learner be promoted only once its log lags the leader's last index by at most this
   * many entries (`promote(id, { force: true })` skips the check): a voter that must first catch
   * up slows every commit of a small cluster. Default 1000.
   */
  readonly maxPromotionLag?: number;
  /**
   * Serve `read({ consistency: 'lease' })` on the leader without a heartbeat round while its
   * lease holds (thesis §6.4.1). Safe only if clocks drift by at most `maxClockDrift`: see
   * `node.read()`. Set it on every node (each then ignores vote requests for an election
   * timeout after it starts). Needs `checkQuorum`. Default false.
   */
  readonly leaseReads?: boolean;
  /**
   * The bound on clock drift that lease reads rely on, as a fraction of elapsed time: the lease
   * lasts `(round(electionTimeoutMs / tickMs) - 1) * tickMs * (1 - maxClockDrift)` after the heartbeat round that
   * confirmed it left. In [0, 0.5]. Default 0.1.
   */
  readonly maxClockDrift?: number;
}

/** The numeric and mode options with their defaults applied. */
export interface ResolvedOptions {
  readonly tickMs: number;
  readonly electionTimeoutMs: number;
  readonly heartbeatMs: number;
  readonly requestTimeoutMs: number;
  readonly followerProposals: FollowerProposals;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  readonly maxCommandBytes: number;
  readonly maxEntriesPerAppend: number;
  readonly maxBytesPerAppend: number;
  readonly maxInflightAppends: number;
  readonly maxPendingEntries: number;
  readonly validateCommands: boolean;
  readonly snapshotThreshold: number;
  readonly snapshotThresholdBytes: number;
  readonly trailingEntries: number;
  readonly snapshotChunkBytes: number;
  readonly snapshotTransferTimeoutMs: number;
  readonly maxPromotionLag: number;
  readonly leaseReads: boolean;
  readonly maxClockDrift: number;
}

/** The defaults, in one place (documented on {@link RaftNodeOptions}). */
export const DEFAULT_OPTIONS: ResolvedOptions = {
  tickMs: 10,
  electionTimeoutMs: 300,
  heartbeatMs: 50,
  requestTimeoutMs: 5000,
  followerProposals: 'forward',
  preVote: true,
  checkQuorum: true,
  maxCommandBytes: 1024 * 1024,
  maxEntriesPerAppend: 4096,
  maxBytesPerAppend: 1024 * 1024,
  maxInflightAppends: 64,
  maxPendingEntries: 65_536,
  validateCommands: true,
  snapshotThreshold: 10_000,
  snapshotThresholdBytes: 64 * 1024 * 1024,
  trailingEntries: 5_000,
  snapshotChunkBytes: 1024 * 1024,
  snapshotTransferTimeoutMs: 30_000,
  maxPromotionLag: 1000,
  leaseReads: false,
  maxClockDrift: 0.1,
};

/** Every key of {@link RaftNodeOptions}: anything else is a typo. */
const OPTION_KEYS = [
  'id',
  'stateMachine',
  'codec',
  'stores',
  'logStore',
  'stableStore',
  'snapshotStore',
  'transport',
  'clock',
  'random',
  'logger',
  'tickMs',
  'electionTimeoutMs',
  'heartbeatMs',
  'requestTimeoutMs',
  'followerProposals',
  'preVote',
  'checkQuorum',
  'maxCommandBytes',
  'maxEntriesPerAppend',
  'maxBytesPerAppend',
  'maxInflightAppends',
  'maxPendingEntries',
  'validateCommands',
  'snapshotThreshold',
  'snapshotThresholdBytes',
  'trailingEntries',
  'snapshotChunkBytes',
  'snapshotTransferTimeoutMs',
  'maxPromotionLag',
  'leaseReads',
  'maxClockDrift',
] as const satisfies readonly (keyof RaftNodeOptions<unknown, unknown>)[];

// Compile-time check that OPTION_KEYS lists every option.
type Unlisted = Exclude<keyof RaftNodeOptions<unknown, unknown>, (typeof OPTION_KEYS)[number]>;
const everyOptionListed: [Unlisted] extends [never] ? true : Unlisted = true;
void everyOptionListed;

/** Edit distance, for "did you mean" hints (option keys are short). */
function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0] as number;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j] as number;
      const cost = a[i - 1]?.toLowerCase() === b[j - 1]?.toLowerCase() ? 0 : 1;
      row[j] = Math.min(above + 1, (row[j - 1] as number) + 1, diagonal + cost);
      diagonal = above;
    }
  }
  return row[b.length] as number;
}

/** The valid key closest to `key`, if any is close enough to be a likely typo. */
export function closestKey(key: string, keys: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(key.length / 3)) + 1;
  for (const k of keys) {
    const d = editDistance(key, k);
    if (d < bestDistance) {
      best = k;
      bestDistance = d;
    }
  }
  return best;
}

function int(field: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(field, `must be an integer in [${min}, ${max}], got ${String(value)}`);
  }
  return value;
}

function bool(field: string, value: unknown): boolean {
  if (typeof value !== 'boolean')
    throw new ConfigError(field, `must be a boolean, got ${String(value)}`);
  return value;
}

/**
 * Validates `options` and applies defaults. Throws a ConfigError naming the first bad field.
 */
export function validateOptions<Cmd, Res>(options: RaftNodeOptions<Cmd, Res>): ResolvedOptions {
  if (typeof options !== 'object' || options === null)
    throw new ConfigError('options', 'must be an object');
  for (const key of Object.keys(options)) {
    if (!(OPTION_KEYS as readonly string[]).includes(key)) {
      const hint = closestKey(key, OPTION_KEYS);
      throw new ConfigError(
        key,
        `unknown option${hint === undefined ? '' : `; did you mean '${hint}'?`} (valid options: ${OPTION_KEYS.join(', ')})`,
      );
    }
  }
  if (typeof options.id !== 'string' || options.id.length === 0 || options.id.length > 255) {
    throw new ConfigError('id', 'must be a non-empty string of at most 255 characters');
  }
  if (typeof options.stateMachine !== 'object' || options.stateMachine === null) {
    // Every function has an `apply` method (Function.prototype.apply): refuse it explicitly.
    throw new ConfigError(
      'stateMachine',
      typeof options.stateMachine === 'function'
        ? 'must be an object with an apply(command, at) method, not a function: pass { apply: yourFunction }'
        : 'must be an object with an apply(command, at) method',
    );
  }
  const requireMethods = (field: string, value: unknown, methods: readonly string[]): void => {
    for (const m of methods) {
      if (typeof (value as Record<string, unknown> | undefined)?.[m] !== 'function') {
        throw new ConfigError(field, `must implement ${m}()`);
      }
    }
  };
  requireMethods('stateMachine', options.stateMachine, ['apply']);
  requireMethods('codec', options.codec, ['encode', 'decode']);
  if (options.stores !== undefined) {
    requireMethods('stores', options.stores, ['close']);
    for (const field of ['logStore', 'stableStore', 'snapshotStore'] as const) {
      if (options[field] !== undefined) {
        throw new ConfigError(field, 'give either `stores` or the separate stores, not both');
      }
    }
  }
  const logStore = options.stores?.logStore ?? options.logStore;
  const stableStore = options.stores?.stableStore ?? options.stableStore;
  const snapshotStore = options.stores?.snapshotStore ?? options.snapshotStore;
  const storeField = (field: string): string =>
    options.stores !== undefined ? `stores.${field}` : field;
  requireMethods(storeField('logStore'), logStore, [
    'open',
    'read',
    'append',
    'compact',
    'truncate',
    'close',
  ]);
  if (snapshotStore !== undefined)
    requireMethods(storeField('snapshotStore'), snapshotStore, ['create', 'open', 'close']);
  const sm = options.stateMachine as { snapshot?: unknown; restore?: unknown };
  if ((sm.snapshot === undefined) !== (sm.restore === undefined)) {
    throw new ConfigError(
      'stateMachine',
      `implements ${sm.snapshot === undefined ? 'restore()' : 'snapshot()'} without ${sm.snapshot === undefined ? 'snapshot()' : 'restore()'}: implement both, or neither`,
    );
  }
  for (const m of ['snapshot', 'restore'] as const) {
    if (sm[m] !== undefined && typeof sm[m] !== 'function')
      throw new ConfigError('stateMachine', `${m} must be a method`);
  }
  requireMethods(storeField('stableStore'), stableStore, ['load', 'save', 'close']);
  requireMethods('transport', options.transport, ['start', 'send', 'setPeers', 'close']);
  if (options.clock !== undefined) requireMethods('clock', options.clock, ['now', 'setTimer']);
  if (options.random !== undefined && typeof options.random !== 'function') {
    throw new ConfigError('random', 'must be a function returning a number in [0, 1)');
  }
  if (options.logger !== undefined)
    requireMethods('logger', options.logger, ['debug', 'info', 'warn', 'error']);

  const d = DEFAULT_OPTIONS;
  const tickMs = int('tickMs', options.tickMs ?? d.tickMs, 1, 60_000);
  const heartbeatMs = int('heartbeatMs', options.heartbeatMs ?? d.heartbeatMs, tickMs, 600_000);
  const electionTimeoutMs = int(
    'electionTimeoutMs',
    options.electionTimeoutMs ?? d.electionTimeoutMs,
    heartbeatMs + 1,
    3_600_000,
  );
  if (Math.round(electionTimeoutMs / tickMs) <= Math.round(heartbeatMs / tickMs)) {
    throw new ConfigError(
      'electionTimeoutMs',
      `must exceed heartbeatMs by at least one tick (${tickMs} ms)`,
    );
  }
  const followerProposals = options.followerProposals ?? d.followerProposals;
  if (followerProposals !== 'forward' && followerProposals !== 'reject') {
    throw new ConfigError(
      'followerProposals',
      `must be 'forward' or 'reject', got ${String(followerProposals)}`,
    );
  }
  const snapshotTransferTimeoutMs = int(
    'snapshotTransferTimeoutMs',
    options.snapshotTransferTimeoutMs ?? d.snapshotTransferTimeoutMs,
    2 * electionTimeoutMs,
    3_600_000,
  );
  const checkQuorum = bool('checkQuorum', options.checkQuorum ?? d.checkQuorum);
  const leaseReads = bool('leaseReads', options.leaseReads ?? d.leaseReads);
  if (leaseReads && !checkQuorum) {
    throw new ConfigError(
      'leaseReads',
      'needs checkQuorum: a lease rests on voters ignoring elections while they hear the leader',
    );
  }
  const maxClockDrift = options.maxClockDrift ?? d.maxClockDrift;
  if (
    typeof maxClockDrift !== 'number' ||
    !Number.isFinite(maxClockDrift) ||
    maxClockDrift < 0 ||
    maxClockDrift > 0.5
  ) {
    throw new ConfigError(
      'maxClockDrift',
      `must be a number in [0, 0.5], got ${String(maxClockDrift)}`,
    );
  }
  return {
    tickMs,
    heartbeatMs,
    electionTimeoutMs,
    requestTimeoutMs: int(
      'requestTimeoutMs',
      options.requestTimeoutMs ?? d.requestTimeoutMs,
      1,
      3_600_000,
    ),
    followerProposals,
    preVote: bool('preVote', options.preVote ?? d.preVote),
    checkQuorum,
    maxCommandBytes: int(
      'maxCommandBytes',
      options.maxCommandBytes ?? d.maxCommandBytes,
      1,
      64 * 1024 * 1024,
    ),
    maxEntriesPerAppend: int(
      'maxEntriesPerAppend',
      options.maxEntriesPerAppend ?? d.maxEntriesPerAppend,
      1,
      1_000_000,
    ),
    maxBytesPerAppend: int(
      'maxBytesPerAppend',
      options.maxBytesPerAppend ?? d.maxBytesPerAppend,
      1,
      64 * 1024 * 1024,
    ),
    maxInflightAppends: int(
      'maxInflightAppends',
      options.maxInflightAppends ?? d.maxInflightAppends,
      1,
      65_536,
    ),
    maxPendingEntries: int(
      'maxPendingEntries',
      options.maxPendingEntries ?? d.maxPendingEntries,
      1,
      16_777_216,
    ),
    validateCommands: bool('validateCommands', options.validateCommands ?? d.validateCommands),
    snapshotThreshold: int(
      'snapshotThreshold',
      options.snapshotThreshold ?? d.snapshotThreshold,
      0,
      Number.MAX_SAFE_INTEGER,
    ),
    snapshotThresholdBytes: int(
      'snapshotThresholdBytes',
      options.snapshotThresholdBytes ?? d.snapshotThresholdBytes,
      0,
      Number.MAX_SAFE_INTEGER,
    ),
    trailingEntries: int(
      'trailingEntries',
      options.trailingEntries ?? d.trailingEntries,
      0,
      Number.MAX_SAFE_INTEGER,
    ),
    snapshotChunkBytes: int(
      'snapshotChunkBytes',
      options.snapshotChunkBytes ?? d.snapshotChunkBytes,
      1,
      16 * 1024 * 1024,
    ),
    snapshotTransferTimeoutMs,
    maxPromotionLag: int(
      'maxPromotionLag',
      options.maxPromotionLag ?? d.maxPromotionLag,
      0,
      Number.MAX_SAFE_INTEGER,
    ),
    leaseReads,
    maxClockDrift,
  };
}
