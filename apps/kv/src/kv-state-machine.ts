/**
 * The state machine and codec a KV node runs: the store, with idempotent writes through the
 * core's client sessions (the dedup table lives in the replicated state and in snapshots,
 * DESIGN.md §8).
 *
 * A write with an `Idempotency-Key` is a session command whose client id is the key and whose
 * seq is 1: its first apply records the result, and every retry with the same key (after a
 * timeout, on another node, after a failover or a restart from a snapshot) gets that result
 * back without applying again. A write without a key goes to the store directly. The table
 * keeps the most recent `maxSessions` keys (10,000 by default) for `expireAfterEntries` log
 * entries (1,000,000): that is how long a key protects a retry.
 *
 * ```text
 * log bytes: 0x00 ‖ kvCommandCodec(command)                        a plain write
 *            0x01 ‖ sessionCodec(kvCommandCodec)({ clientId: key, seq: 1, command })
 * ```
 */
import {
  type ApplyContext,
  type CommandCodec,
  type SessionOptions,
  type StateMachine,
  sessionCodec,
  withSessions,
} from '@raft/core';
import { type KvCommand, type KvResult, kvCommandCodec } from './kv-command.js';
import { KvStore } from './kv-store.js';

/** Longest idempotency key, in UTF-8 bytes (a session client id may have 256). */
export const MAX_IDEMPOTENCY_KEY_BYTES = 200;

/** What a KV node proposes: a write, with the idempotency key it came with, if any. */
export type KvProposal =
  | { readonly kind: 'plain'; readonly command: KvCommand }
  | { readonly kind: 'idempotent'; readonly key: string; readonly command: KvCommand };

/** The store, its state machine and its codec, made together. */
export interface KvStateMachine {
  /** Read it (after `node.read()`) to answer GETs and lists. */
  readonly store: KvStore;
  readonly stateMachine: StateMachine<KvProposal, KvResult>;
  readonly codec: CommandCodec<KvProposal>;
}

const PLAIN = 0;
const IDEMPOTENT = 1;
const sessions = sessionCodec(kvCommandCodec);

/** The codec of {@link KvProposal}s. */
export const kvProposalCodec: CommandCodec<KvProposal> = {
  encode(proposal: KvProposal): Uint8Array {
    const body =
      proposal.kind === 'plain'
        ? kvCommandCodec.encode(proposal.command)
        : sessions.encode({ clientId: proposal.key, seq: 1, command: proposal.command });
    const out = new Uint8Array(body.length + 1);
    out[0] = proposal.kind === 'plain' ? PLAIN : IDEMPOTENT;
    out.set(body, 1);
    return out;
  },
  decode(bytes: Uint8Array): KvProposal {
    const body = bytes.subarray(1);
    if (bytes[0] === PLAIN) return { kind: 'plain', command: kvCommandCodec.decode(body) };
    if (bytes[0] === IDEMPOTENT) {
      const { clientId, command } = sessions.decode(body);
      return { kind: 'idempotent', key: clientId, command };
    }
    throw new Error(`unknown proposal kind ${String(bytes[0])}`);
  },
};

/** Creates a KV state machine. `sessionOptions` MUST be the same on every node. */
export function createKvStateMachine(
  sessionOptions: SessionOptions<KvResult> = {},
): KvStateMachine {
  const store = new KvStore();
  const withDedup = withSessions<KvCommand, KvResult>(store, sessionOptions);
  const stateMachine: StateMachine<KvProposal, KvResult> = {
    apply(proposal: KvProposal, at: ApplyContext) {
      return proposal.kind === 'plain'
        ? store.apply(proposal.command, at)
        : withDedup.apply({ clientId: proposal.key, seq: 1, command: proposal.command }, at);
    },
    // The session table's image frames the store's: one snapshot holds both.
    snapshot: () => (withDedup.snapshot as NonNullable<typeof withDedup.snapshot>)(),
    restore: (chunks, meta) =>
      (withDedup.restore as NonNullable<typeof withDedup.restore>)(chunks, meta),
  };
  return { store, stateMachine, codec: kvProposalCodec };
}
