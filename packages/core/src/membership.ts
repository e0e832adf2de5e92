/**
 * Encoding of membership configurations inside `membership` log entries. Not on the hot path
 * (one entry per configuration change), so it favours a readable, versioned layout:
 * UTF-8 JSON `{"v":1,"members":[{"id","address","voter"}]}`.
 */
import { CodecError, RaftError } from './errors.js';
import type { Member, Membership } from './types.js';
import { utf8Decode, utf8Encode } from './utf8.js';

/** Encodes a membership for a `membership` log entry. */
export function encodeMembership(membership: Membership): Uint8Array {
  const members = membership.members.map((m) => ({ id: m.id, address: m.address, voter: m.voter }));
  return utf8Encode(JSON.stringify({ v: 1, members }));
}

/** Decodes the data of a `membership` log entry. Throws a RaftError with code CODEC. */
export function decodeMembership(data: Uint8Array): Membership {
  const text = utf8Decode(data);
  let parsed: unknown;
  try {
    parsed = text === null ? undefined : JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  const obj = parsed as { v?: unknown; members?: unknown } | undefined;
  if (obj?.v !== 1 || !Array.isArray(obj.members)) {
    throw new CodecError('malformed membership entry', 0);
  }
  const members: Member[] = obj.members.map((m: unknown) => {
    const r = m as Record<string, unknown>;
    if (
      typeof r?.id !== 'string' ||
      typeof r.address !== 'string' ||
      typeof r.voter !== 'boolean'
    ) {
      throw new CodecError('malformed member in membership entry', 0);
    }
    return { id: r.id, address: r.address, voter: r.voter };
  });
  return { members };
}

/**
 * Checks a membership a caller supplied (for example as bootstrap): at least one voter, unique
 * non-empty ids. Throws a RaftError with code INVALID_ARGUMENT naming the problem.
 */
export function validateMembership(membership: Membership): void {
  const seen = new Set<string>();
  if (!Array.isArray(membership.members) || membership.members.length === 0) {
    throw new RaftError('INVALID_ARGUMENT', 'membership must list at least one member');
  }
  for (const m of membership.members) {
    if (typeof m.id !== 'string' || m.id.length === 0) {
      throw new RaftError('INVALID_ARGUMENT', 'every member needs a non-empty string id');
    }
    if (seen.has(m.id)) throw new RaftError('INVALID_ARGUMENT', `member ${m.id} is listed twice`);
    seen.add(m.id);
    if (typeof m.address !== 'string') {
      throw new RaftError('INVALID_ARGUMENT', `member ${m.id} needs a string address`);
    }
  }
  if (!membership.members.some((m) => m.voter)) {
    throw new RaftError('INVALID_ARGUMENT', 'membership must have at least one voter');
  }
}
