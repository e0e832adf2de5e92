/**
 * The state machine a service node runs: the service's own, behind the core's client sessions
 * (for commands applied once per idempotency key), plus the directory of members' HTTP
 * addresses, all replicated and snapshotted together.
 *
 * ```text
 * snapshot image: "RSVC" ‖ u32 BE length ‖ UTF-8 JSON {id: http} ‖ the sessions' image, which
 *                 frames the service's own
 * ```
 *
 * On restore the header is read from however the stream is cut, and the rest goes on to the
 * service's `restore()` as a stream, never gathered.
 */
import {
  type ApplyContext,
  type SessionOptions,
  type SnapshotChunks,
  type SnapshotMeta,
  type StateMachine,
  withSessions,
} from '@raft/core';
import type { ServiceCommand, ServiceResult } from './service-command.js';

const MAGIC = [0x52, 0x53, 0x56, 0x43]; // "RSVC"
const HEADER_BYTES = 8;
const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/** Members' HTTP addresses by id, as the log says. */
export class Directory {
  private entries = new Map<string, string>();

  get(id: string): string | undefined {
    return this.entries.get(id);
  }

  set(id: string, http: string): void {
    this.entries.set(id, http);
  }

  /** A copy, by id. */
  toJSON(): Record<string, string> {
    return Object.fromEntries(this.entries);
  }

  replace(entries: Record<string, string>): void {
    this.entries = new Map(Object.entries(entries));
  }
}

/** Options of {@link withDirectory}. */
export interface ServiceStateMachineOptions<Res> {
  /** The client sessions' options (MUST be the same on every node). Default: the core's. */
  readonly sessions?: SessionOptions<Res>;
  /** Called when a snapshot's image is fixed (for its duration metric). */
  readonly onSnapshotStart?: () => void;
}

/**
 * Wraps `inner` (which implements both snapshot and restore, or neither) with the sessions
 * that apply `once` commands once per key, and with `directory`.
 */
export function withDirectory<Cmd, Res>(
  inner: StateMachine<Cmd, Res>,
  directory: Directory,
  options: ServiceStateMachineOptions<Res> = {},
): StateMachine<ServiceCommand<Cmd>, ServiceResult<Res>> {
  const onSnapshotStart = options.onSnapshotStart ?? (() => {});
  const sessions = withSessions(inner, options.sessions ?? {});
  const apply = (command: ServiceCommand<Cmd>, at: ApplyContext) => {
    if (command.kind === 'advertise') {
      directory.set(command.id, command.http);
      return { kind: 'advertise' } as const;
    }
    const result =
      command.kind === 'service'
        ? inner.apply(command.command, at)
        : sessions.apply({ clientId: command.key, seq: 1, command: command.command }, at);
    return result instanceof Promise
      ? result.then((r) => ({ kind: 'service', result: r }) as const)
      : ({ kind: 'service', result } as const);
  };
  // The sessions' image frames the service's own (or neither exists).
  const innerSnapshot = sessions.snapshot?.bind(sessions);
  const innerRestore = sessions.restore?.bind(sessions);
  if (innerSnapshot === undefined || innerRestore === undefined) return { apply };
  return {
    apply,
    async snapshot(): Promise<SnapshotChunks> {
      // Both images are fixed here, between two applies.
      onSnapshotStart();
      const json = encoder.encode(JSON.stringify(directory.toJSON()));
      const chunks = await innerSnapshot();
      const header = new Uint8Array(HEADER_BYTES + json.length);
      header.set(MAGIC, 0);
      new DataView(header.buffer).setUint32(4, json.length);
      header.set(json, HEADER_BYTES);
      return (async function* () {
        yield header;
        yield* chunks;
      })();
    },
    async restore(chunks: AsyncIterable<Uint8Array>, meta: SnapshotMeta): Promise<void> {
      const iterator = chunks[Symbol.asyncIterator]();
      let buffered = new Uint8Array(0);
      const fill = async (bytes: number): Promise<void> => {
        while (buffered.length < bytes) {
          const next = await iterator.next();
          if (next.done === true) {
            throw new Error('not a service snapshot: the image ends inside its header');
          }
          const joined = new Uint8Array(buffered.length + next.value.length);
          joined.set(buffered, 0);
          joined.set(next.value, buffered.length);
          buffered = joined;
        }
      };
      await fill(HEADER_BYTES);
      if (MAGIC.some((b, i) => buffered[i] !== b)) {
        throw new Error('not a service snapshot: the image does not start with "RSVC"');
      }
      const length = new DataView(buffered.buffer, buffered.byteOffset).getUint32(4);
      await fill(HEADER_BYTES + length);
      const entries = JSON.parse(
        decoder.decode(buffered.subarray(HEADER_BYTES, HEADER_BYTES + length)),
      ) as Record<string, string>;
      const rest = buffered.subarray(HEADER_BYTES + length);
      await innerRestore(
        (async function* () {
          if (rest.length > 0) yield rest;
          for (;;) {
            const next = await iterator.next();
            if (next.done === true) return;
            yield next.value;
          }
        })(),
        meta,
      );
      directory.replace(entries);
    },
  };
}
