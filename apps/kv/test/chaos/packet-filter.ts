/**
 * Network partitions between local raft-kv nodes with the kernel's packet filter.
 *
 * Each node listens for Raft on its own loopback address (127.0.0.x) and its TCP transport binds
 * its outgoing connections to that host (DESIGN.md, "Network transports"), so a packet's source
 * and destination addresses name the two nodes it travels between. To cut the link between A and
 * B, every packet from one to the other on a Raft connection is dropped: those to the other's Raft
 * port (the connection it dialed) and those from its own Raft port (answers on the connection the
 * other dialed), both ways. Rules name the nodes' ports too, so the HTTP API (the clients) and
 * anything else on those loopback addresses (other tests, other people's work) is untouched.
 *
 * Backends, probed in this order: nftables (a table of its own, `inet raft_chaos_<pid>`, one
 * output chain, replaced atomically by `nft -f -`), iptables (a chain of its own,
 * `RAFT_CHAOS_<pid>`, jumped to from OUTPUT), else none, with the reason. The probe checks that a
 * rule really drops a connection, not only that the command runs. Whatever is installed is
 * removed by `close()`, and by a process 'exit' hook (synchronously) when a run dies without
 * calling it; tables and chains left by earlier processes that no longer run are removed at the
 * next probe.
 */
import { execFile, execFileSync } from 'node:child_process';
import { connect, createServer, type Server } from 'node:net';
import { closeAtExit } from './close-at-exit.js';

/** Which packet filter cuts links: `none` when neither works here (kill/pause only). */
export type FilterBackend = 'nft' | 'iptables' | 'none';

/** A node's Raft listen address: the host (127.0.0.x) identifies it, the port its listener. */
export interface RaftEndpoint {
  readonly host: string;
  readonly port: number;
}

/** A cut link: no Raft packet passes between `a` and `b`, either way. */
export interface Cut {
  readonly a: RaftEndpoint;
  readonly b: RaftEndpoint;
}

/** Partitions through the packet filter, or a stand-in that cannot partition (`backend: 'none'`). */
export interface PacketFilter {
  readonly backend: FilterBackend;
  /** What the probe found (for `none`: why neither backend works). */
  readonly detail: string;
  /** Replaces every cut with `cuts` (an empty list heals the network). */
  setCuts(cuts: readonly Cut[]): Promise<void>;
  /** Removes every rule and the table/chain itself. Idempotent. */
  close(): Promise<void>;
}

const pid = process.pid;
const NFT_TABLE = `raft_chaos_${pid}`;
const IPT_CHAIN = `RAFT_CHAOS_${pid}`;
const TABLE_RE = /^table inet raft_chaos_(\d+)$/;
const CHAIN_RE = /^-N RAFT_CHAOS_(\d+)$/;

function run(cmd: string, args: readonly string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { timeout: 10_000 }, (err, stdout, stderr) =>
      err
        ? reject(new Error(`${cmd} ${args.join(' ')}: ${stderr.trim() || err.message}`))
        : resolve(stdout),
    );
    if (input !== undefined) child.stdin?.end(input);
  });
}

function runSync(cmd: string, args: readonly string[]): void {
  try {
    execFileSync(cmd, args, { timeout: 10_000, stdio: 'ignore' });
  } catch {
    // Best effort: the exit hook must not throw.
  }
}

function alive(p: number): boolean {
  try {
    process.kill(p, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The rules (as [saddr, daddr, 'dport'|'sport', port]) that drop one direction of a cut. */
function directions(cuts: readonly Cut[]): [string, string, 'dport' | 'sport', number][] {
  const out: [string, string, 'dport' | 'sport', number][] = [];
  for (const { a, b } of cuts) {
    for (const [from, to] of [
      [a, b],
      [b, a],
    ] as const) {
      out.push([from.host, to.host, 'dport', to.port]);
      out.push([from.host, to.host, 'sport', from.port]);
    }
  }
  return out;
}

// ------------------------------------------------------------------ nftables

class NftFilter implements PacketFilter {
  readonly backend = 'nft';
  private open = true;
  constructor(readonly detail: string) {}

  static async create(): Promise<NftFilter> {
    await run('nft', ['-f', '-'], nftScript([], true));
    return new NftFilter(`nftables, table inet ${NFT_TABLE}`);
  }

  async setCuts(cuts: readonly Cut[]): Promise<void> {
    if (!this.open) throw new Error('the packet filter is closed');
    await run('nft', ['-f', '-'], nftScript(cuts, false));
  }

  async close(): Promise<void> {
    if (!this.open) return;
    this.open = false;
    opened.untrack(this);
    await run('nft', ['delete', 'table', 'inet', NFT_TABLE]).catch(() => undefined);
  }

  closeSync(): void {
    if (!this.open) return;
    this.open = false;
    runSync('nft', ['delete', 'table', 'inet', NFT_TABLE]);
  }
}

function nftScript(cuts: readonly Cut[], create: boolean): string {
  const lines = create
    ? [
        `add table inet ${NFT_TABLE}`,
        `add chain inet ${NFT_TABLE} output { type filter hook output priority 0; policy accept; }`,
      ]
    : [];
  lines.push(`flush chain inet ${NFT_TABLE} output`);
  for (const [from, to, dir, port] of directions(cuts)) {
    lines.push(
      `add rule inet ${NFT_TABLE} output ip saddr ${from} ip daddr ${to} tcp ${dir} ${port} drop`,
    );
  }
  return `${lines.join('\n')}\n`;
}

async function removeStaleNftTables(): Promise<void> {
  const tables = await run('nft', ['list', 'tables']);
  for (const line of tables.split('\n')) {
    const m = TABLE_RE.exec(line.trim());
    if (m !== null && Number(m[1]) !== pid && !alive(Number(m[1]))) {
      await run('nft', ['delete', 'table', 'inet', `raft_chaos_${m[1]}`]).catch(() => undefined);
    }
  }
}

// ------------------------------------------------------------------ iptables

class IptablesFilter implements PacketFilter {
  readonly backend = 'iptables';
  private open = true;
  constructor(readonly detail: string) {}

  static async create(): Promise<IptablesFilter> {
    await run('iptables', ['-w', '-N', IPT_CHAIN]);
    try {
      await run('iptables', ['-w', '-I', 'OUTPUT', '-j', IPT_CHAIN]);
    } catch (err) {
      await run('iptables', ['-w', '-X', IPT_CHAIN]).catch(() => undefined);
      throw err;
    }
    return new IptablesFilter(`iptables, chain ${IPT_CHAIN} (filter table, from OUTPUT)`);
  }

  async setCuts(cuts: readonly Cut[]): Promise<void> {
    if (!this.open) throw new Error('the packet filter is closed');
    await run('iptables', ['-w', '-F', IPT_CHAIN]);
    for (const [from, to, dir, port] of directions(cuts)) {
      await run('iptables', [
        '-w',
        '-A',
        IPT_CHAIN,
        '-s',
        from,
        '-d',
        to,
        '-p',
        'tcp',
        `--${dir}`,
        String(port),
        '-j',
        'DROP',
      ]);
    }
  }

  async close(): Promise<void> {
    if (!this.open) return;
    this.open = false;
    opened.untrack(this);
    await run('iptables', ['-w', '-D', 'OUTPUT', '-j', IPT_CHAIN]).catch(() => undefined);
    await run('iptables', ['-w', '-F', IPT_CHAIN]).catch(() => undefined);
    await run('iptables', ['-w', '-X', IPT_CHAIN]).catch(() => undefined);
  }

  closeSync(): void {
    if (!this.open) return;
    this.open = false;
    runSync('iptables', ['-w', '-D', 'OUTPUT', '-j', IPT_CHAIN]);
    runSync('iptables', ['-w', '-F', IPT_CHAIN]);
    runSync('iptables', ['-w', '-X', IPT_CHAIN]);
  }
}

async function removeStaleIptablesChains(): Promise<void> {
  const rules = await run('iptables', ['-w', '-S']);
  for (const line of rules.split('\n')) {
    const m = CHAIN_RE.exec(line.trim());
    if (m !== null && Number(m[1]) !== pid && !alive(Number(m[1]))) {
      const chain = `RAFT_CHAOS_${m[1]}`;
      await run('iptables', ['-w', '-D', 'OUTPUT', '-j', chain]).catch(() => undefined);
      await run('iptables', ['-w', '-F', chain]).catch(() => undefined);
      await run('iptables', ['-w', '-X', chain]).catch(() => undefined);
    }
  }
}

// ------------------------------------------------------------------ none

class NoFilter implements PacketFilter {
  readonly backend = 'none';
  constructor(readonly detail: string) {}
  async setCuts(cuts: readonly Cut[]): Promise<void> {
    if (cuts.length > 0) throw new Error(`no packet filter to cut links with: ${this.detail}`);
  }
  async close(): Promise<void> {}
}

// ------------------------------------------------------------------ probe

/** Whether a TCP connection from `from` to the listener of `server` completes within `ms`. */
function connects(from: string, server: Server, ms: number): Promise<boolean> {
  const address = server.address();
  if (address === null || typeof address === 'string') return Promise.resolve(false);
  return new Promise((resolve) => {
    const socket = connect({ host: address.address, port: address.port, localAddress: from });
    const done = (ok: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), ms);
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** Checks that `filter` drops a connection between two loopback addresses, and heals it again. */
async function verify(filter: PacketFilter): Promise<void> {
  const server = createServer((s) => s.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  try {
    const port = (server.address() as { port: number }).port;
    const from = '127.0.0.2';
    if (!(await connects(from, server, 2000))) {
      throw new Error(`${from} cannot connect to 127.0.0.1 even without rules`);
    }
    await filter.setCuts([{ a: { host: from, port: 1 }, b: { host: '127.0.0.1', port } }]);
    if (await connects(from, server, 500)) throw new Error('a rule was installed but did not drop');
    await filter.setCuts([]);
    if (!(await connects(from, server, 2000))) throw new Error('healing did not restore the link');
  } finally {
    await new Promise<void>((r) => server.close(() => r()));
  }
}

const opened = closeAtExit<NftFilter | IptablesFilter>();
const track = opened.track;

/** Removes every table/chain this process installed (synchronous: for exit and signal paths). */
export function closeAllFiltersSync(): void {
  opened.closeAllSync();
}

/**
 * The first packet filter that works here: nftables, else iptables, else none (with why).
 * `RAFT_CHAOS_PACKET_FILTER=nft|iptables|none` forces one (none: kill/pause only).
 */
export async function openPacketFilter(
  force = process.env.RAFT_CHAOS_PACKET_FILTER,
): Promise<PacketFilter> {
  const problems: string[] = [];
  if (force === 'none') return new NoFilter('RAFT_CHAOS_PACKET_FILTER=none');
  const kinds = [
    { name: 'nft', removeStale: removeStaleNftTables, create: () => NftFilter.create() },
    {
      name: 'iptables',
      removeStale: removeStaleIptablesChains,
      create: () => IptablesFilter.create(),
    },
  ] as const;
  for (const kind of kinds) {
    if (force !== undefined && force !== '' && force !== kind.name) continue;
    try {
      await kind.removeStale();
      const filter: NftFilter | IptablesFilter = await kind.create();
      track(filter);
      try {
        await verify(filter);
        return filter;
      } catch (err) {
        await filter.close();
        throw err;
      }
    } catch (err) {
      problems.push(`${kind.name}: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  if (problems.length === 0) problems.push(`unknown RAFT_CHAOS_PACKET_FILTER=${force}`);
  return new NoFilter(problems.join('; '));
}
