#!/usr/bin/env node
/**
 * `raft-kv`: runs a node (the default command), a local dev cluster (`dev`), or talks to a
 * cluster as a client (`get`, `put`, `del`, `cas`, `status`, `members`, `transfer`,
 * `snapshot`), like etcdctl.
 *
 *   raft-kv --id n1 --http 127.0.0.1:8001 --raft 127.0.0.1:9001 \
 *     --peers n1=127.0.0.1:9001,n2=127.0.0.1:9002,n3=127.0.0.1:9003 --data-dir ./data/n1
 *   raft-kv put color blue --endpoints http://127.0.0.1:8001,http://127.0.0.1:8002
 */
import { randomUUID } from 'node:crypto';
import { type ClientOptions, runServiceCli, type ServiceDefinition } from '@raft/server';
import { kvService } from './kv-service.js';

const key = (k: string) => `/v1/kv/${encodeURIComponent(k)}`;

await runServiceCli(kvService as ServiceDefinition<unknown, unknown, unknown>, {
  tryHint: (endpoints) => `raft-kv put color blue ${endpoints}`,
  commands(program, client) {
    // Every write carries an idempotency key (a fresh one unless given), so the client may send
    // it to the next endpoint when one does not answer without applying it twice.
    const withIdempotency = (o: { idempotencyKey?: string }): Record<string, string> => ({
      'idempotency-key': o.idempotencyKey ?? randomUUID(),
    });
    const keyOption = '--idempotency-key <key>';
    const keyHelp = 'a retry with the same key applies once (default: a new key per command)';

    client
      .addClientOptions(
        program.command('put <key> <value>').description('write a key').option(keyOption, keyHelp),
      )
      .action(async (k: string, value: string, o: ClientOptions & { idempotencyKey?: string }) => {
        const answer = await client.request(o, 'PUT', key(k), value, withIdempotency(o));
        client.printAnswer(o, answer, (j) => `OK (revision ${String(j.revision)})`);
      });

    client
      .addClientOptions(
        program
          .command('get <key>')
          .description('read a key')
          .option('--consistency <c>', 'linearizable, lease or stale', 'linearizable'),
      )
      .action(async (k: string, o: ClientOptions & { consistency: string }) => {
        const answer = await client.request(
          o,
          'GET',
          `${key(k)}?consistency=${encodeURIComponent(o.consistency)}`,
        );
        if (answer.status === 404) client.fail(`${k}: not found`, 1);
        if (answer.status !== 200) client.printAnswer(o, answer, () => '');
        const value = new TextDecoder().decode(answer.bytes);
        process.stdout.write(
          o.json === true ? `${JSON.stringify({ key: k, value })}\n` : `${value}\n`,
        );
      });

    client
      .addClientOptions(
        program.command('del <key>').description('delete a key').option(keyOption, keyHelp),
      )
      .action(async (k: string, o: ClientOptions & { idempotencyKey?: string }) => {
        const answer = await client.request(o, 'DELETE', key(k), undefined, withIdempotency(o));
        client.printAnswer(o, answer, (j) =>
          j.deleted === true ? `deleted (revision ${String(j.revision)})` : 'not found',
        );
      });

    client
      .addClientOptions(
        program
          .command('cas <key> <expected> <value>')
          .description('write value only if the key holds expected (use --absent / --delete)')
          .option('--absent', 'expect the key to be absent (expected is ignored)')
          .option('--delete', 'delete the key instead of writing value (value is ignored)')
          .option(keyOption, keyHelp),
      )
      .action(
        async (
          k: string,
          expected: string,
          value: string,
          o: ClientOptions & { absent?: boolean; delete?: boolean; idempotencyKey?: string },
        ) => {
          const body = JSON.stringify({
            expected: o.absent === true ? null : expected,
            value: o.delete === true ? null : value,
          });
          const answer = await client.request(o, 'POST', `${key(k)}/cas`, body, {
            'content-type': 'application/json',
            ...withIdempotency(o),
          });
          if (answer.status === 409) {
            const j = JSON.parse(new TextDecoder().decode(answer.bytes)) as { current: unknown };
            if (o.json === true)
              process.stdout.write(`${new TextDecoder().decode(answer.bytes)}\n`);
            client.fail(
              `compare failed: ${k} holds ${j.current === null ? '(absent)' : JSON.stringify(j.current)}`,
              1,
            );
          }
          client.printAnswer(o, answer, (j) => `OK (revision ${String(j.revision)})`);
        },
      );
  },
});
