/**
 * What a service node proposes: a command of the service's own state machine (applied as it
 * comes, or once per idempotency key), or an update of the cluster's directory (a member's
 * HTTP address, so that any node can show and reach every other node's API, as rqlite keeps its
 * nodes' API addresses in the log).
 *
 * ```text
 * log bytes: 0x00 ‖ the service codec's bytes                      a service command
 *            0x01 ‖ UTF-8 JSON {"id","http"}                         a member advertises its HTTP address
 *            0x02 ‖ sessionCodec(service codec)({clientId: key,     a service command applied once
 *                                  seq: 1, command})                 per idempotency key
 * ```
 */
import { type CommandCodec, sessionCodec } from '@raft/core';

/** Longest idempotency key, in UTF-8 bytes (a core session's client id may have 256). */
export const MAX_IDEMPOTENCY_KEY_BYTES = 200;

/** A command of the service, or a directory update. */
export type ServiceCommand<Cmd> =
  | { readonly kind: 'service'; readonly command: Cmd }
  /** Applied once: a retry with the same key gets the first result back (the core's client
   *  sessions, with the key as the client id and seq 1). */
  | { readonly kind: 'once'; readonly key: string; readonly command: Cmd }
  | { readonly kind: 'advertise'; readonly id: string; readonly http: string };

/** What applying a {@link ServiceCommand} returns: the service's result, or nothing. */
export type ServiceResult<Res> =
  | { readonly kind: 'service'; readonly result: Res }
  | { readonly kind: 'advertise' };

const SERVICE = 0;
const ADVERTISE = 1;
const ONCE = 2;
const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/** The codec of {@link ServiceCommand}s around the service's own codec. */
export function serviceCommandCodec<Cmd>(
  inner: CommandCodec<Cmd>,
): CommandCodec<ServiceCommand<Cmd>> {
  const sessions = sessionCodec(inner);
  return {
    encode(command) {
      let tag: number;
      let body: Uint8Array;
      if (command.kind === 'service') {
        tag = SERVICE;
        body = inner.encode(command.command);
      } else if (command.kind === 'once') {
        tag = ONCE;
        body = sessions.encode({ clientId: command.key, seq: 1, command: command.command });
      } else {
        tag = ADVERTISE;
        body = encoder.encode(JSON.stringify({ id: command.id, http: command.http }));
      }
      const out = new Uint8Array(body.length + 1);
      out[0] = tag;
      out.set(body, 1);
      return out;
    },
    decode(bytes) {
      const body = bytes.subarray(1);
      if (bytes[0] === SERVICE) return { kind: 'service', command: inner.decode(body) };
      if (bytes[0] === ONCE) {
        const { clientId, command } = sessions.decode(body);
        return { kind: 'once', key: clientId, command };
      }
      if (bytes[0] === ADVERTISE) {
        const { id, http } = JSON.parse(decoder.decode(body)) as { id: unknown; http: unknown };
        if (typeof id !== 'string' || typeof http !== 'string') {
          throw new Error('a directory update needs string id and http');
        }
        return { kind: 'advertise', id, http };
      }
      throw new Error(`unknown service command kind ${String(bytes[0])}`);
    },
  };
}
