/**
 * Keeps this node's HTTP address in the replicated directory: while this node is a member, a
 * leader is known and the directory holds another address (or none) for it, it proposes its
 * own, at most once per `intervalMs`. So a node started with only `--peers` (Raft addresses)
 * still learns every other node's API address, and a node that moves its HTTP port corrects it.
 */
import type { Logger } from '@raft/core';
import type { ServiceNode } from './assemble-node.js';

/** Starts advertising; returns the function that stops it. */
export function advertiseHttpAddress(
  sn: ServiceNode<unknown, unknown, unknown>,
  http: string,
  logger: Logger,
  intervalMs = 1000,
): () => void {
  const { node, config, directory } = sn;
  let inFlight = false;
  let stopped = false;
  const check = () => {
    if (stopped || inFlight || node.state !== 'running') return;
    const status = node.status();
    if (status.leaderId === null || !status.members.some((m) => m.id === config.id)) return;
    if (directory.get(config.id) === http) return;
    inFlight = true;
    node
      .propose({ kind: 'advertise', id: config.id, http }, { timeoutMs: intervalMs * 3 })
      .then(
        () => logger.debug({ http }, `${config.id}: advertised its HTTP address ${http}`),
        (err: unknown) =>
          logger.debug(
            { error: (err as Error).message },
            `${config.id}: could not advertise its HTTP address yet; trying again`,
          ),
      )
      .finally(() => {
        inFlight = false;
      });
  };
  const unsubscribe = node.subscribe((e) => {
    if (e.type === 'leaderChanged' && e.leaderId !== null) queueMicrotask(check);
  });
  const timer = setInterval(check, intervalMs);
  timer.unref?.();
  check();
  return () => {
    stopped = true;
    clearInterval(timer);
    unsubscribe();
  };
}
