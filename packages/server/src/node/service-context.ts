/**
 * The context a service's routes get: proposals bounded by the request timeout (and retried
 * once a leader is known when none was), and reads through the core's `read()`.
 */
import { RaftError, type ReadConsistency } from '@raft/core';
import type { Activity } from '../observe/activity.js';
import type { NodeMetrics } from '../observe/metrics.js';
import type { ServiceContext } from '../service.js';
import type { ServiceNode } from './assemble-node.js';
import type { ServiceCommand } from './service-command.js';

const outcomeOf = (err: unknown): string => (RaftError.is(err) ? err.code : 'error');

/**
 * The {@link ServiceContext} of `sn`, bounding every wait by `requestTimeoutMs`, recording
 * every proposal and read into `metrics` and `activity`.
 */
export function serviceContext<Cmd, Res, State>(
  sn: ServiceNode<Cmd, Res, State>,
  requestTimeoutMs: number,
  observe: { readonly metrics: NodeMetrics; readonly activity: Activity },
): ServiceContext<Cmd, Res, State> {
  const { node } = sn;
  const unwrap = (r: { result: { kind: string; result?: Res } }): { result: Res } => {
    if (r.result.kind !== 'service') throw new Error('a service command applied as another kind');
    return { result: r.result.result as Res };
  };
  return {
    config: sn.config,
    node,
    state: sn.state,
    directory: sn.directory,
    requestTimeoutMs,
    propose(command, options = {}) {
      const started = performance.now();
      return propose(
        command,
        options.timeoutMs ?? requestTimeoutMs,
        options.idempotencyKey ?? null,
      ).then(
        (answer) => {
          const ms = performance.now() - started;
          observe.metrics.observeProposal(ms / 1000, 'ok');
          observe.activity.recordWrite(ms);
          return answer;
        },
        (err: unknown) => {
          observe.metrics.observeProposal((performance.now() - started) / 1000, outcomeOf(err));
          throw err;
        },
      );
    },
    read(consistency: ReadConsistency = 'linearizable') {
      const started = performance.now();
      return node.read({ consistency, timeoutMs: requestTimeoutMs }).then(
        () => {
          observe.metrics.observeRead((performance.now() - started) / 1000, consistency, 'ok');
        },
        (err: unknown) => {
          observe.metrics.observeRead(
            (performance.now() - started) / 1000,
            consistency,
            outcomeOf(err),
          );
          throw err;
        },
      );
    },
  };

  function propose(command: Cmd, timeoutMs: number, key: string | null): Promise<{ result: Res }> {
    const deadline = Date.now() + timeoutMs;
    const proposal: ServiceCommand<Cmd> =
      key === null ? { kind: 'service', command } : { kind: 'once', key, command };
    // One promise chain, no async frames: this runs for every write the node takes.
    return node.propose(proposal, { timeoutMs }).then(unwrap, async (err: unknown) => {
      // No leader known yet (an election is on): nothing was appended, so wait for one within
      // the request's time and propose once more, instead of answering 503 at once.
      if (!RaftError.is(err, 'NO_LEADER')) throw err;
      // Still no leader within the bound: nothing was appended, so the answer is the 503 of
      // NO_LEADER, not the 504 (outcome unknown) of the wait's timeout.
      await node
        .waitForLeader({ timeoutMs: Math.max(1, deadline - Date.now()) })
        .catch((waitError: unknown) => {
          throw RaftError.is(waitError, 'TIMEOUT') ? err : waitError;
        });
      return unwrap(
        await node.propose(proposal, { timeoutMs: Math.max(1, deadline - Date.now()) }),
      );
    });
  }
}
