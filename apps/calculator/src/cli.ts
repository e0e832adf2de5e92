#!/usr/bin/env node
/**
 * `raft-calculator`: runs a node (the default command), a local dev cluster (`dev`), or talks
 * to a cluster as a client (`value`, `add`, `subtract`, `multiply`, `divide`, `status`,
 * `members`, `transfer`, `snapshot`).
 *
 *   raft-calculator dev
 *   raft-calculator add 5 --endpoints http://127.0.0.1:8001
 */
import { randomUUID } from 'node:crypto';
import { type ClientOptions, runServiceCli, type ServiceDefinition } from '@raft/server';
import { OPERATIONS } from './calculator.js';
import { calculatorService } from './calculator-service.js';

await runServiceCli(calculatorService as ServiceDefinition<unknown, unknown, unknown>, {
  tryHint: (endpoints) => `raft-calculator add 5 ${endpoints}`,
  commands(program, client) {
    client
      .addClientOptions(
        program
          .command('value')
          .description('read the value')
          .option('--consistency <c>', 'linearizable, lease or stale', 'linearizable'),
      )
      .action(async (o: ClientOptions & { consistency: string }) => {
        const answer = await client.request(
          o,
          'GET',
          `/v1/value?consistency=${encodeURIComponent(o.consistency)}`,
        );
        client.printAnswer(o, answer, (j) => `${String(j.value)} (revision ${String(j.revision)})`);
      });
    for (const op of OPERATIONS) {
      client
        .addClientOptions(
          program
            .command(`${op} <operand>`)
            .description(`${op} the operand`)
            .option(
              '--idempotency-key <key>',
              'a retry with the same key applies once (default: a new key per command)',
            ),
        )
        .action(async (operand: string, o: ClientOptions & { idempotencyKey?: string }) => {
          const n = Number(operand);
          if (operand.trim() === '' || Number.isNaN(n))
            client.fail(`${operand} is not a number`, 2);
          const answer = await client.request(
            o,
            'POST',
            `/v1/${op}`,
            JSON.stringify({ operand: n }),
            // A key per command: sending it to the next endpoint cannot apply it twice.
            {
              'content-type': 'application/json',
              'idempotency-key': o.idempotencyKey ?? randomUUID(),
            },
          );
          client.printAnswer(
            o,
            answer,
            (j) => `${String(j.value)} (revision ${String(j.revision)})`,
          );
        });
    }
  },
});
