/**
 * Ready-made {@link CommandCodec}s, so a first cluster needs no codec of its own.
 *
 * Both refuse, at `encode`, what they could not give back unchanged, so `propose()` rejects such
 * a command with INVALID_ARGUMENT before anything is appended.
 */
import { RaftError } from './errors.js';
import type { CommandCodec } from './interfaces/state-machine.js';
import { isWellFormedString, utf8Decode, utf8Encode } from './utf8.js';

function invalid(message: string): RaftError {
  return new RaftError('INVALID_ARGUMENT', message, { outcome: 'notApplied' });
}

function decodeText(bytes: Uint8Array): string {
  const text = utf8Decode(bytes);
  if (text === null) throw invalid('the command is not well-formed UTF-8');
  return text;
}

/**
 * Commands as JSON text in UTF-8. Commands must be JSON values: `undefined`, functions and
 * symbols are refused (JSON has no encoding for them), and what JSON turns into something else
 * arrives as that something else (a `Date` as its ISO string, a `Map` as `{}`), on every replica
 * alike. `JSON.stringify` errors (a BigInt, a cycle) are passed on.
 */
export function jsonCodec<Cmd>(): CommandCodec<Cmd> {
  return {
    encode(command: Cmd): Uint8Array {
      const text = JSON.stringify(command);
      if (text === undefined)
        throw invalid(
          `a ${typeof command} cannot be encoded as JSON (commands must be JSON values)`,
        );
      return utf8Encode(text);
    },
    decode(bytes: Uint8Array): Cmd {
      return JSON.parse(decodeText(bytes)) as Cmd;
    },
  };
}

/** Commands as strings in UTF-8. Strings with a lone surrogate (not valid text) are refused. */
export const utf8Codec: CommandCodec<string> = {
  encode(command: string): Uint8Array {
    if (typeof command !== 'string') throw invalid(`expected a string, got ${typeof command}`);
    if (!isWellFormedString(command))
      throw invalid('the string has a lone UTF-16 surrogate, which UTF-8 cannot carry');
    return utf8Encode(command);
  },
  decode: decodeText,
};
