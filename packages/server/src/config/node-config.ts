/**
 * A service node's configuration: flags over an optional JSON config file, validated in one place
 * (zod), with errors that name the flag or the file's field and say what is allowed.
 *
 * The config file takes the same settings as the flags, in camelCase, plus a cluster map:
 *
 * ```json
 * { "clusterId": "prod", "store": "file",
 *   "cluster": { "n1": { "raft": "10.0.0.1:9001", "http": "10.0.0.1:8001" }, "n2": { ... } } }
 * ```
 *
 * A node finds its own addresses in the map by its id unless `--raft` / `--http` say otherwise,
 * and the map's members are the bootstrap membership unless `--peers` says otherwise. The
 * membership counts only for a brand-new cluster (empty storage): a restarted node recovers
 * it from its own storage.
 */
import { parseHostPort } from '@raft/core/wire';
import { z } from 'zod';

/** Where a node runs and what it runs on, every default applied. */
export interface NodeConfig {
  readonly id: string;
  /** The HTTP API's `host:port` (where it listens). */
  readonly http: string;
  /**
   * The HTTP address the other nodes and the dashboard reach this node at, kept in the
   * replicated directory. Default: `--http`, or, when that binds every interface (0.0.0.0 or
   * ::), the host of `--raft` with the port of `--http`.
   */
  readonly advertiseHttp: string;
  /** The Raft transport's `host:port` (the member address peers dial). */
  readonly raft: string;
  /** The bootstrap membership (a brand-new cluster only), by id, with raft and HTTP addresses. */
  readonly peers: Readonly<Record<string, { readonly raft: string; readonly http: string | null }>>;
  /** Required for the file and SQLite stores. */
  readonly dataDir: string | null;
  readonly store: 'file' | 'sqlite' | 'redis' | 'memory';
  readonly transport: 'tcp' | 'ws';
  readonly redisUrl: string;
  readonly clusterId: string;
  readonly clusterSecretFile: string | null;
  readonly electionTimeoutMs: number;
  readonly heartbeatMs: number;
  readonly snapshotThreshold: number;
  readonly requestTimeoutMs: number;
  readonly logLevel: 'debug' | 'info' | 'warn' | 'error';
}

/** The flags, as a CLI parser gives them (camelCase; absent ones undefined). */
export interface NodeFlags {
  readonly id?: string | undefined;
  readonly http?: string | undefined;
  readonly advertiseHttp?: string | undefined;
  readonly raft?: string | undefined;
  /** `n1=host:port,n2=host:port,…` */
  readonly peers?: string | undefined;
  readonly dataDir?: string | undefined;
  readonly store?: string | undefined;
  readonly transport?: string | undefined;
  readonly redisUrl?: string | undefined;
  readonly clusterId?: string | undefined;
  readonly clusterSecretFile?: string | undefined;
  readonly electionTimeoutMs?: string | number | undefined;
  readonly heartbeatMs?: string | number | undefined;
  readonly snapshotThreshold?: string | number | undefined;
  readonly requestTimeoutMs?: string | number | undefined;
  readonly logLevel?: string | undefined;
}

/** A bad flag or config file: every problem, each naming where it came from. */
export class NodeConfigError extends Error {
  override readonly name = 'NodeConfigError';
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  ${p}`).join('\n')}`);
  }
}

const FLAG_OF: Record<string, string> = {
  id: '--id',
  http: '--http',
  advertiseHttp: '--advertise-http',
  raft: '--raft',
  peers: '--peers',
  dataDir: '--data-dir',
  store: '--store',
  transport: '--transport',
  redisUrl: '--redis-url',
  clusterId: '--cluster-id',
  clusterSecretFile: '--cluster-secret-file',
  electionTimeoutMs: '--election-timeout-ms',
  heartbeatMs: '--heartbeat-ms',
  snapshotThreshold: '--snapshot-threshold',
  requestTimeoutMs: '--request-timeout-ms',
  logLevel: '--log-level',
};

const nodeId = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'must be 1-64 letters, digits, ".", "_" or "-"');
const hostPort = z
  .string()
  .refine(
    (s) => (parseHostPort(s)?.port ?? 0) > 0,
    'must be host:port with a port, e.g. 127.0.0.1:9001',
  );
const integer = (min: number, max: number) =>
  z.coerce
    .number({ error: 'must be a number' })
    .int('must be an integer')
    .min(min, `must be at least ${min}`)
    .max(max, `must be at most ${max}`);

const settings = {
  id: nodeId,
  http: hostPort,
  advertiseHttp: hostPort,
  raft: hostPort,
  dataDir: z.string().min(1, 'must be a directory path'),
  store: z.enum(['file', 'sqlite', 'redis', 'memory'], 'must be file, sqlite, redis or memory'),
  transport: z.enum(['tcp', 'ws'], 'must be tcp or ws'),
  redisUrl: z.string().regex(/^rediss?:\/\/\S+$/, 'must be a redis:// or rediss:// URL'),
  clusterId: z.string().min(1).max(200),
  clusterSecretFile: z.string().min(1, 'must be a file path'),
  electionTimeoutMs: integer(20, 60_000),
  heartbeatMs: integer(5, 30_000),
  snapshotThreshold: integer(1, 100_000_000),
  requestTimeoutMs: integer(10, 600_000),
  logLevel: z.enum(['debug', 'info', 'warn', 'error'], 'must be debug, info, warn or error'),
};

const fileSchema = z
  .object({
    ...Object.fromEntries(Object.entries(settings).map(([k, v]) => [k, v.optional()])),
    cluster: z
      .record(nodeId, z.object({ raft: hostPort, http: hostPort.optional() }).strict())
      .optional(),
  })
  .strict();

/** Parses `--peers n1=host:port,…` into a membership map; problems are pushed. */
function parsePeers(
  text: string,
  problems: string[],
): Record<string, { raft: string; http: null }> {
  const out: Record<string, { raft: string; http: null }> = {};
  for (const part of text.split(',')) {
    const m = /^\s*([^=\s]+)=(\S+)\s*$/.exec(part);
    const id = m?.[1];
    const address = m?.[2];
    if (id === undefined || address === undefined) {
      problems.push(`--peers: "${part}" is not id=host:port`);
      continue;
    }
    if (!nodeId.safeParse(id).success) problems.push(`--peers: "${id}" is not a valid node id`);
    if (!hostPort.safeParse(address).success) {
      problems.push(`--peers: ${id}'s address "${address}" is not host:port`);
    }
    if (out[id] !== undefined) problems.push(`--peers: ${id} is listed twice`);
    out[id] = { raft: address, http: null };
  }
  return out;
}

function isWildcard(address: string): boolean {
  const host = parseHostPort(address)?.host;
  return host === '0.0.0.0' || host === '::' || host === '[::]';
}

/** `--http`, or with a wildcard host, the host of `--raft` and the port of `--http`. */
function defaultAdvertisedHttp(http: string, raft: string): string {
  if (!isWildcard(http)) return http;
  const port = parseHostPort(http)?.port as number;
  const host = parseHostPort(raft)?.host as string;
  return host.includes(':') && !host.startsWith('[') ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * Resolves a node's configuration from its flags and the parsed JSON of its config file (or
 * null). `defaultClusterId` is the cluster id when neither sets one (the service's name).
 * Throws a {@link NodeConfigError} listing every problem.
 */
export function resolveNodeConfig(
  flags: NodeFlags,
  file: unknown,
  defaultClusterId = 'raft',
): NodeConfig {
  const problems: string[] = [];
  let fromFile: Record<string, unknown> & {
    cluster?: Record<string, { raft: string; http?: string }>;
  } = {};
  if (file !== null && file !== undefined) {
    const parsed = fileSchema.safeParse(file);
    if (parsed.success) fromFile = parsed.data as typeof fromFile;
    else {
      for (const issue of parsed.error.issues) {
        const where =
          issue.path.length === 0 ? 'the config file' : `config file ${issue.path.join('.')}`;
        problems.push(`${where}: ${issue.message}`);
      }
    }
  }
  const merged: Record<string, unknown> = { ...fromFile };
  for (const [key, value] of Object.entries(flags)) {
    if (value !== undefined && key !== 'peers') merged[key] = value;
  }
  const id = merged.id;
  const own = typeof id === 'string' ? fromFile.cluster?.[id] : undefined;
  merged.raft ??= own?.raft;
  merged.http ??= own?.http;
  const defaults = {
    store: 'file',
    transport: 'tcp',
    redisUrl: 'redis://127.0.0.1:6379',
    clusterId: defaultClusterId,
    electionTimeoutMs: 300,
    heartbeatMs: 50,
    snapshotThreshold: 10_000,
    requestTimeoutMs: 5000,
    logLevel: 'info',
  };
  const out: Record<string, unknown> = {};
  for (const [key, schema] of Object.entries(settings)) {
    const value = merged[key] ?? defaults[key as keyof typeof defaults];
    if (value === undefined) {
      if (key === 'dataDir' || key === 'clusterSecretFile' || key === 'advertiseHttp') {
        out[key] = null;
        continue;
      }
      problems.push(
        `${FLAG_OF[key]}: is required${key === 'http' || key === 'raft' ? " (or an entry for this id in the config file's cluster map)" : ''}`,
      );
      continue;
    }
    const parsed = schema.safeParse(value);
    if (parsed.success) out[key] = parsed.data;
    else
      problems.push(
        `${FLAG_OF[key]}: ${parsed.error.issues[0]?.message ?? 'is invalid'} (got ${JSON.stringify(value)})`,
      );
  }
  let peers: Record<string, { raft: string; http: string | null }> = {};
  if (flags.peers !== undefined) peers = parsePeers(flags.peers, problems);
  else if (fromFile.cluster !== undefined) {
    for (const [peer, a] of Object.entries(fromFile.cluster))
      peers[peer] = { raft: a.raft, http: a.http ?? null };
  }
  if (problems.length === 0) {
    if ((out.store === 'file' || out.store === 'sqlite') && out.dataDir === null) {
      problems.push(`--data-dir: is required with --store ${String(out.store)}`);
    }
    if ((out.heartbeatMs as number) >= (out.electionTimeoutMs as number)) {
      problems.push(
        `--heartbeat-ms: must be less than --election-timeout-ms (${String(out.heartbeatMs)} >= ${String(out.electionTimeoutMs)})`,
      );
    }
    const mine = peers[out.id as string];
    if (Object.keys(peers).length > 0 && mine === undefined) {
      problems.push(`--peers: must include this node (${String(out.id)})`);
    } else if (mine !== undefined && mine.raft !== out.raft) {
      problems.push(
        `--peers: lists ${String(out.id)} at ${mine.raft}, but --raft is ${String(out.raft)}`,
      );
    }
  }
  if (problems.length === 0 && out.advertiseHttp === null) {
    out.advertiseHttp = defaultAdvertisedHttp(out.http as string, out.raft as string);
  }
  if (problems.length === 0 && isWildcard(out.advertiseHttp as string)) {
    problems.push(
      `--advertise-http: ${String(out.advertiseHttp)} is not an address others can reach; give the host they should use`,
    );
  }
  if (problems.length > 0) throw new NodeConfigError(problems);
  return { ...(out as Omit<NodeConfig, 'peers'>), peers };
}
