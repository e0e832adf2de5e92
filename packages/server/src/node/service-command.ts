/**
 * What a service node proposes: a command of the service's own state machine, or an update of
 * the cluster's directory (a member's HTTP address, so that any node can show and reach every
 * other node's API, as rqlite keeps its nodes' API addresses in the log).
 *
 * ```text
 * log bytes: 0x00 ‖ the service codec's bytes       a service command
 *            0x01 ‖ UTF-8 JSON {"id","http"}          a member advertises its HTTP address
 * ```
 */
import type { CommandCodec } from '@raft/core';

/** A command of the service, or a directory update. */
export type ServiceCommand<Cmd> =
  | { readonly kind: 'service'; readonly command: Cmd }
  | { readonly kind: 'advertise'; readonly id: string; readonly http: string };

/** What applying a {@link ServiceCommand} returns: the service's result, or nothing. */
export type ServiceResult<Res> =
  | { readonly kind: 'service'; readonly result: Res }
  | { readonly kind: 'advertise' };

const SERVICE = 0;
const ADVERTISE = 1;
const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/** The codec of {@link ServiceCommand}s around the service's own codec. */
export function serviceCommandCodec<Cmd>(
  inner: CommandCodec<Cmd>,
): CommandCodec<ServiceCommand<Cmd>> {
  return {
    encode(command) {
      const body =
        command.kind === 'service'
          ? inner.encode(command.command)
          : encoder.encode(JSON.stringify({ id: command.id, http: command.http }));
      const out = new Uint8Array(body.length + 1);
      out[0] = command.kind === 'service' ? SERVICE : ADVERTISE;
      out.set(body, 1);
      return out;
    },
    decode(bytes) {
      const body = bytes.subarray(1);
      if (bytes[0] === SERVICE) return { kind: 'service', command: inner.decode(body) };
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
