/**
 * The command line of a service (`raft-kv`, `raft-calculator`): `serve` (the default) runs a
 * node from flags or a config file; `dev` runs a local cluster; `status`, `members`,
 * `transfer` and `snapshot` talk to a cluster as a client; the service adds its own client
 * commands (`get`, `put`, ...) through `commands`.
 */
import { readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { pino } from 'pino';
import { NodeConfigError, type NodeFlags, resolveNodeConfig } from '../config/node-config.js';
import { NodeStartError } from '../node/assemble-node.js';
import { SHUTDOWN_BOUND_MS, startServer } from '../server.js';
import type { ServiceDefinition } from '../service.js';
import { type CliClient, type ClientOptions, createCliClient } from './client.js';
import { runDevCluster } from './dev-cluster.js';

/** Options of {@link createServiceCli}. */
export interface ServiceCliOptions {
  /** Adds the service's own client commands to `program`. */
  readonly commands?: (program: Command, client: CliClient) => void;
  /** A first command to try, printed by `dev` (given the endpoints flag). */
  readonly tryHint?: (endpointsFlag: string) => string;
}

interface MemberJson {
  readonly id: string;
  readonly address: string;
  readonly voter: boolean;
  readonly http?: string | null;
}

function membersTable(members: readonly MemberJson[], leaderId: unknown): string {
  return members
    .map(
      (m) =>
        `  ${m.id}  raft ${m.address}${m.http ? `  http ${m.http}` : ''}${m.voter ? '' : '  (learner)'}${m.id === leaderId ? '  leader' : ''}`,
    )
    .join('\n');
}

/** Builds the program (parse it with `parseAsync`). */
export function createServiceCli(
  service: ServiceDefinition<unknown, unknown, unknown>,
  options: ServiceCliOptions = {},
): Command {
  const name = service.name;
  const client = createCliClient(
    name,
    'http://127.0.0.1:8001,http://127.0.0.1:8002,http://127.0.0.1:8003',
  );
  const { fail } = client;
  const program = new Command();
  program.name(name).description(service.description).showHelpAfterError();

  program
    .command('serve', { isDefault: true })
    .description('run a node')
    .option('--id <id>', 'this node id (unique for the cluster lifetime)')
    .option('--http <host:port>', 'address of the HTTP API and the dashboard')
    .option(
      '--advertise-http <host:port>',
      'the HTTP address other nodes reach this one at (default --http; with 0.0.0.0, the --raft host)',
    )
    .option('--raft <host:port>', 'address of the Raft transport (the member address)')
    .option('--peers <list>', 'bootstrap membership of a brand-new cluster: n1=host:port,...')
    .option('--data-dir <dir>', 'where the node keeps its log and snapshots')
    .addOption(
      new Option('--store <kind>', 'storage (default file)').choices([
        'file',
        'sqlite',
        'redis',
        'memory',
      ]),
    )
    .addOption(new Option('--transport <kind>', 'transport (default tcp)').choices(['tcp', 'ws']))
    .option('--redis-url <url>', 'Redis for --store redis (default redis://127.0.0.1:6379)')
    .option('--cluster-id <id>', `nodes of other clusters are refused (default ${name})`)
    .option('--cluster-secret-file <file>', 'a shared secret peers must prove they hold')
    .option('--election-timeout-ms <ms>', 'base election timeout (default 300)')
    .option('--heartbeat-ms <ms>', 'leader heartbeat interval (default 50)')
    .option('--snapshot-threshold <entries>', 'entries between snapshots (default 10000)')
    .option('--request-timeout-ms <ms>', 'bound on every request (default 5000)')
    .addOption(
      new Option('--log-level <level>', 'log level (default info)').choices([
        'debug',
        'info',
        'warn',
        'error',
      ]),
    )
    .option('--config <file>', 'a JSON config file (flags override it)')
    .action(async (flags: NodeFlags & { config?: string }) => {
      let file: unknown = null;
      if (flags.config !== undefined) {
        try {
          file = JSON.parse(readFileSync(flags.config, 'utf8'));
        } catch (err) {
          fail(`--config: cannot read ${flags.config} as JSON: ${(err as Error).message}`, 2);
        }
      }
      const { config: _c, ...nodeFlags } = flags;
      let config: ReturnType<typeof resolveNodeConfig>;
      try {
        config = resolveNodeConfig(nodeFlags, file, name);
      } catch (err) {
        if (err instanceof NodeConfigError) fail(err.message, 2);
        throw err;
      }
      const logger = pino({ level: config.logLevel, base: { service: name, node: config.id } });
      let server: Awaited<ReturnType<typeof startServer>>;
      try {
        server = await startServer(service, config, logger);
      } catch (err) {
        if (err instanceof NodeStartError) fail(err.message, 1);
        throw err;
      }
      for (const signal of ['SIGTERM', 'SIGINT'] as const) {
        process.once(signal, () => {
          const bound = setTimeout(() => {
            logger.error({}, `shutdown took longer than ${SHUTDOWN_BOUND_MS} ms; exiting`);
            process.exit(1);
          }, SHUTDOWN_BOUND_MS);
          bound.unref();
          server.shutdown(signal).then(
            () => process.exit(0),
            (err: unknown) => {
              logger.error({ error: (err as Error).message }, 'shutdown failed');
              process.exit(1);
            },
          );
        });
      }
    });

  program
    .command('dev')
    .description('run a local cluster as child processes (Ctrl-C stops them all)')
    .option('--nodes <n>', 'how many nodes', '3')
    .option('--base-port <port>', 'node i serves HTTP on base+i and Raft on base+100+i', '8000')
    .option('--data-dir <dir>', 'parent directory of the nodes data directories', './data/dev')
    .addOption(
      new Option('--store <kind>', 'storage')
        .choices(['file', 'sqlite', 'redis', 'memory'])
        .default('file'),
    )
    .addOption(new Option('--transport <kind>', 'transport').choices(['tcp', 'ws']).default('tcp'))
    .option('--log-level <level>', "the nodes' log level", 'warn')
    .action(
      async (o: {
        nodes: string;
        basePort: string;
        dataDir: string;
        store: string;
        transport: string;
        logLevel: string;
      }) => {
        const nodes = Number(o.nodes);
        const basePort = Number(o.basePort);
        if (!Number.isInteger(nodes) || nodes < 1 || nodes > 9) fail('--nodes: must be 1 to 9', 2);
        if (!Number.isInteger(basePort) || basePort < 1 || basePort + 100 + nodes > 65_535) {
          fail('--base-port: must leave room for base+100+nodes below 65536', 2);
        }
        const code = await runDevCluster({
          program: name,
          nodes,
          basePort,
          dataDir: o.dataDir,
          store: o.store,
          transport: o.transport,
          nodeArgs: ['--log-level', o.logLevel],
          log: (line) => process.stdout.write(`${line}\n`),
          ...(options.tryHint === undefined ? {} : { tryHint: options.tryHint }),
        });
        process.exit(code);
      },
    );

  client
    .addClientOptions(program.command('status').description("a node's view of the cluster"))
    .action(async (o: ClientOptions) => {
      const answer = await client.request(o, 'GET', '/v1/status');
      client.printAnswer(o, answer, (s) =>
        [
          `${String(s.id)}: ${String(s.role)}, term ${String(s.term)}, leader ${String(s.leaderId ?? 'none')}`,
          `commit ${String(s.commitIndex)}, applied ${String(s.appliedIndex)}, last log ${String(s.lastLogIndex)}, snapshot ${String(s.snapshotIndex)}`,
          'members:',
          membersTable(s.members as MemberJson[], s.leaderId),
        ].join('\n'),
      );
    });

  const members = program.command('members').description('list, add or remove members');
  client
    .addClientOptions(members.command('list', { isDefault: true }).description('list members'))
    .action(async (o: ClientOptions) => {
      const answer = await client.request(o, 'GET', '/v1/members');
      client.printAnswer(o, answer, (j) => membersTable(j.members as MemberJson[], null));
    });
  client
    .addClientOptions(
      members
        .command('add <id> <raftAddress>')
        .description('add a node (started without --peers): as a voter once it caught up')
        .option('--learner', 'add it as a learner (a non-voting member)'),
    )
    .action(async (id: string, address: string, o: ClientOptions & { learner?: boolean }) => {
      const body = JSON.stringify({ id, address, voter: o.learner !== true });
      const answer = await client.request(o, 'POST', '/v1/members', body, {
        'content-type': 'application/json',
      });
      client.printAnswer(
        o,
        answer,
        (j) => `added ${id}\n${membersTable(j.members as MemberJson[], null)}`,
      );
    });
  client
    .addClientOptions(members.command('remove <id>').description('remove a member'))
    .action(async (id: string, o: ClientOptions) => {
      const answer = await client.request(o, 'DELETE', `/v1/members/${encodeURIComponent(id)}`);
      client.printAnswer(
        o,
        answer,
        (j) => `removed ${id}\n${membersTable(j.members as MemberJson[], null)}`,
      );
    });

  client
    .addClientOptions(
      program
        .command('transfer [to]')
        .description('hand leadership to a voter (default: the most up-to-date one)'),
    )
    .action(async (to: string | undefined, o: ClientOptions) => {
      const answer = await client.request(
        o,
        'POST',
        '/v1/leader/transfer',
        JSON.stringify(to === undefined ? {} : { to }),
        { 'content-type': 'application/json' },
      );
      client.printAnswer(
        o,
        answer,
        (j) => `leader is now ${String(j.leaderId)} (term ${String(j.term)})`,
      );
    });

  client
    .addClientOptions(
      program.command('snapshot').description('take a snapshot on the first endpoint that answers'),
    )
    .action(async (o: ClientOptions) => {
      const answer = await client.request(o, 'POST', '/v1/snapshot');
      client.printAnswer(
        o,
        answer,
        (j) => `snapshot at index ${String(j.index)} on ${answer.endpoint}`,
      );
    });

  options.commands?.(program, client);
  return program;
}

/** Builds the program and runs it on `process.argv`. */
export async function runServiceCli(
  service: ServiceDefinition<unknown, unknown, unknown>,
  options: ServiceCliOptions = {},
): Promise<void> {
  await createServiceCli(service, options).parseAsync(process.argv);
}
