#!/usr/bin/env node
/**
 * `raft-kv`: runs a node (the default command), or talks to a cluster as a client (`get`,
 * `put`, `del`, `status`), like etcdctl.
 *
 *   raft-kv --id n1 --http 127.0.0.1:8001 --raft 127.0.0.1:9001 \
 *     --peers n1=127.0.0.1:9001,n2=127.0.0.1:9002,n3=127.0.0.1:9003 --data-dir ./data/n1
 *   raft-kv put color blue --endpoints http://127.0.0.1:8001,http://127.0.0.1:8002
 */
import { readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { pino } from 'pino';
import { NodeConfigError, type NodeFlags, resolveNodeConfig } from './config/node-config.js';
import { runDevCluster } from './dev-cluster.js';
import { NodeStartError } from './node/assemble-node.js';
import { SHUTDOWN_BOUND_MS, startServer } from './server.js';

const program = new Command();
program
  .name('raft-kv')
  .description('A replicated key-value store on Raft: a node, or a client of a cluster.')
  .showHelpAfterError();

program
  .command('serve', { isDefault: true })
  .description('run a node')
  .option('--id <id>', 'this node id (unique for the cluster lifetime)')
  .option('--http <host:port>', 'address of the HTTP API')
  .option('--raft <host:port>', 'address of the Raft transport (the member address)')
  .option('--peers <list>', 'bootstrap membership of a brand-new cluster: n1=host:port,...')
  .option('--data-dir <dir>', 'where the node keeps its log and snapshots')
  .addOption(new Option('--store <kind>', 'storage').choices(['file', 'sqlite', 'redis', 'memory']))
  .addOption(new Option('--transport <kind>', 'transport').choices(['tcp', 'ws']))
  .option('--redis-url <url>', 'Redis for --store redis (default redis://127.0.0.1:6379)')
  .option('--cluster-id <id>', 'nodes of other clusters are refused (default raft-kv)')
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
      config = resolveNodeConfig(nodeFlags, file);
    } catch (err) {
      if (err instanceof NodeConfigError) fail(err.message, 2);
      throw err;
    }
    const logger = pino({ level: config.logLevel, base: { node: config.id } });
    let server: Awaited<ReturnType<typeof startServer>>;
    try {
      server = await startServer(config, logger);
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
  .action(
    async (options: {
      nodes: string;
      basePort: string;
      dataDir: string;
      store: string;
      transport: string;
    }) => {
      const nodes = Number(options.nodes);
      const basePort = Number(options.basePort);
      if (!Number.isInteger(nodes) || nodes < 1 || nodes > 9) fail('--nodes: must be 1 to 9', 2);
      if (!Number.isInteger(basePort) || basePort < 1 || basePort + 100 + nodes > 65_535) {
        fail('--base-port: must leave room for base+100+nodes below 65536', 2);
      }
      const code = await runDevCluster({
        nodes,
        basePort,
        dataDir: options.dataDir,
        store: options.store,
        transport: options.transport,
        nodeArgs: ['--log-level', 'warn'],
        log: (line) => process.stdout.write(`${line}\n`),
      });
      process.exit(code);
    },
  );

// ------------------------------------------------------------------------------ the client

interface ClientOptions {
  readonly endpoints: string;
  readonly json?: boolean;
  readonly timeoutMs: string;
}

function addClientOptions(command: Command): Command {
  return command
    .option(
      '--endpoints <urls>',
      'comma-separated node URLs, tried in order',
      'http://127.0.0.1:8001,http://127.0.0.1:8002,http://127.0.0.1:8003',
    )
    .option('--json', 'print the JSON answer')
    .option('--timeout-ms <ms>', 'bound on the request', '5000');
}

/** Sends the request to the first endpoint that answers (any HTTP answer counts). */
async function request(
  options: ClientOptions,
  method: string,
  path: string,
  body?: Uint8Array | string,
  headers: Record<string, string> = {},
): Promise<{ status: number; bytes: Uint8Array; endpoint: string }> {
  const endpoints = options.endpoints.split(',').map((e) => e.trim().replace(/\/$/, ''));
  const errors: string[] = [];
  for (const endpoint of endpoints) {
    try {
      const res = await fetch(`${endpoint}${path}`, {
        method,
        headers,
        ...(body === undefined ? {} : { body }),
        signal: AbortSignal.timeout(Number(options.timeoutMs)),
      });
      return { status: res.status, bytes: new Uint8Array(await res.arrayBuffer()), endpoint };
    } catch (err) {
      errors.push(
        `${endpoint}: ${(err as Error & { cause?: Error }).cause?.message ?? (err as Error).message}`,
      );
    }
  }
  fail(`no endpoint answered:\n  ${errors.join('\n  ')}`, 1);
}

function printAnswer(
  options: ClientOptions,
  answer: { status: number; bytes: Uint8Array },
  human: (json: Record<string, unknown>) => string,
): void {
  const text = new TextDecoder().decode(answer.bytes);
  if (answer.status >= 400) {
    let message = text;
    try {
      const json = JSON.parse(text) as { error?: string; message?: string };
      message = `${json.error}: ${json.message}`;
    } catch {}
    if (options.json === true) process.stdout.write(`${text}\n`);
    fail(`error ${answer.status}: ${message}`, 1);
  }
  const json = JSON.parse(text) as Record<string, unknown>;
  process.stdout.write(`${options.json === true ? text : human(json)}\n`);
}

const key = (k: string) => `/v1/kv/${encodeURIComponent(k)}`;

addClientOptions(program.command('put <key> <value>').description('write a key')).action(
  async (k: string, value: string, options: ClientOptions) => {
    const answer = await request(options, 'PUT', key(k), value);
    printAnswer(options, answer, (j) => `OK (revision ${String(j.revision)})`);
  },
);

addClientOptions(program.command('get <key>').description('read a key (linearizable)')).action(
  async (k: string, options: ClientOptions) => {
    const answer = await request(options, 'GET', key(k));
    if (answer.status === 404) fail(`${k}: not found`, 1);
    if (answer.status !== 200) printAnswer(options, answer, () => '');
    const value = new TextDecoder().decode(answer.bytes);
    process.stdout.write(
      options.json === true ? `${JSON.stringify({ key: k, value })}\n` : `${value}\n`,
    );
  },
);

addClientOptions(program.command('del <key>').description('delete a key')).action(
  async (k: string, options: ClientOptions) => {
    const answer = await request(options, 'DELETE', key(k));
    printAnswer(options, answer, (j) =>
      j.deleted === true ? `deleted (revision ${String(j.revision)})` : 'not found',
    );
  },
);

addClientOptions(program.command('status').description("a node's view of the cluster")).action(
  async (options: ClientOptions) => {
    const answer = await request(options, 'GET', '/v1/status');
    printAnswer(options, answer, (s) => {
      const members = (s.members as { id: string; address: string; voter: boolean }[])
        .map(
          (m) =>
            `  ${m.id}  ${m.address}${m.voter ? '' : '  (learner)'}${m.id === s.leaderId ? '  leader' : ''}`,
        )
        .join('\n');
      return `${String(s.id)}: ${String(s.role)}, term ${String(s.term)}, commit ${String(s.commitIndex)}, applied ${String(s.appliedIndex)}\nmembers:\n${members}`;
    });
  },
);

function fail(message: string, code: number): never {
  process.stderr.write(`raft-kv: ${message}\n`);
  process.exit(code);
}

await program.parseAsync(process.argv);
