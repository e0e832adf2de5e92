/**
 * The log encoding of {@link SessionCommand}s: a small binary envelope around the bytes of the
 * user's own command codec.
 *
 * ```text
 * offset  size      field
 * 0       1         format version (1)
 * 1       varint    clientId length n (1..256)
 * .       n         clientId, UTF-8
 * .       varint    seq (>= 1)
 * .       varint    ack (0 when absent; < seq)
 * .       rest      the inner codec's bytes of `command`
 * ```
 *
 * Varints are unsigned LEB128 of safe integers (see `binary.ts`), so a typical envelope costs a
 * dozen bytes. An `ack` of 0 and an absent `ack` mean the same and encode the same: decoding
 * gives no `ack` property for either.
 */
import { RaftError } from '../errors.js';
import type { CommandCodec } from '../interfaces/state-machine.js';
import { utf8Encode } from '../utf8.js';
import { ByteReader, ByteWriter, varintBytes } from './binary.js';
import {
  MAX_CLIENT_ID_BYTES,
  type SessionCommand,
  sessionCommandProblem,
} from './session-command.js';

/** The first byte of every encoded session command. */
const SESSION_COMMAND_VERSION = 1;

/**
 * A {@link CommandCodec} for {@link SessionCommand}s, around `inner` (the codec of the user's
 * commands).
 *
 * - `encode` refuses an invalid envelope (empty or over-long `clientId`, a `seq` that is not a
 *   positive safe integer, an `ack` that is not below `seq`) with a RaftError INVALID_ARGUMENT,
 *   outcome `notApplied`, as the ready-made codecs do, so `propose()` rejects it before anything
 *   is appended. Errors of `inner.encode` are passed on unchanged.
 * - `decode` rejects malformed bytes (an unknown version, a truncated or redundant varint, a
 *   clientId that is empty, too long or not UTF-8, `seq` 0, `ack >= seq`) with a
 *   {@link CodecError}; `inner.decode` gets a view of the command's bytes.
 */
export function sessionCodec<Cmd>(inner: CommandCodec<Cmd>): CommandCodec<SessionCommand<Cmd>> {
  return {
    encode(command: SessionCommand<Cmd>): Uint8Array {
      const problem = sessionCommandProblem(command);
      if (problem !== null)
        throw new RaftError('INVALID_ARGUMENT', `invalid session command: ${problem}`, {
          outcome: 'notApplied',
        });
      const body = inner.encode(command.command);
      const id = utf8Encode(command.clientId);
      const ack = command.ack ?? 0;
      const w = new ByteWriter(
        1 +
          varintBytes(id.byteLength) +
          id.byteLength +
          varintBytes(command.seq) +
          varintBytes(ack) +
          body.byteLength,
      );
      w.u8(SESSION_COMMAND_VERSION);
      w.lengthPrefixed(id);
      w.varint(command.seq);
      w.varint(ack);
      w.bytes(body);
      return w.finish();
    },

    decode(bytes: Uint8Array): SessionCommand<Cmd> {
      const r = new ByteReader(bytes);
      const version = r.u8('version');
      if (version !== SESSION_COMMAND_VERSION)
        r.fail(`unsupported session command version ${version} (expected 1)`, 0);
      const idAt = r.offset;
      const clientId = r.string('clientId', MAX_CLIENT_ID_BYTES);
      if (clientId.length === 0) r.fail('clientId is empty', idAt);
      const seqAt = r.offset;
      const seq = r.varint('seq');
      if (seq < 1) r.fail('seq must be at least 1', seqAt);
      const ackAt = r.offset;
      const ack = r.varint('ack');
      if (ack >= seq) r.fail(`ack (${ack}) must be below seq (${seq})`, ackAt);
      const command = inner.decode(r.rest());
      return ack === 0 ? { clientId, seq, command } : { clientId, seq, ack, command };
    },
  };
}
