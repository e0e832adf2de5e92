/**
 * The binary wire format of {@link RaftMessage}, shared by every transport. Compact, versioned
 * and strict: the decoder accepts exactly the bytes the encoder produces, so
 * `encodeMessage(decodeMessage(bytes))` returns `bytes` whenever decoding succeeds.
 *
 * Layout (version 3). `uv` is an unsigned LEB128 varint holding a safe integer (at most 8
 * bytes, minimal length); `str` is a `uv` byte length followed by well-formed UTF-8; `bytes` is
 * a `uv` length followed by raw bytes; `flags` is one byte whose unlisted bits MUST be zero.
 *
 * ```text
 * byte 0   version (CODEC_VERSION)
 * byte 1   tag
 * then     from:str  to:str  term:uv  (the envelope, every message)
 * then, by tag:
 *   1  vote               flags(b0 preVote, b1 transfer) lastLogIndex:uv lastLogTerm:uv
 *   2  voteResponse       flags(b0 preVote, b1 granted)
 *   3  append             prevIndex:uv prevTerm:uv commit:uv count:uv entry × count
 *   4  appendResponse     flags(b0 success, b1 conflict) matchIndex:uv
 *                         [conflict.index:uv conflict.term:uv]    (only when b1)
 *   5  heartbeat          commit:uv round:uv
 *   6  heartbeatResponse  round:uv
 *   7  propose            session:uv requestId:uv data:bytes
 *   8  proposeResponse    flags(b0 rejected, b1 leaderId) session:uv requestId:uv index:uv
 *                         entryTerm:uv
 *                         [reason:u8]  (only when b0: 0 notLeader, 1 entryTooLarge, 2 dropped,
 *                                       3 staleTerm)
 *                         [leaderId:str]                          (only when b1; b1 needs b0)
 *   9  installSnapshot    meta.index:uv meta.term:uv membership:bytes size:uv offset:uv data:bytes
 *                         (offset + data length <= size)
 *  10  installSnapshotResponse
 *                         flags(b0 done) index:uv snapshotTerm:uv nextOffset:uv
 *  11  timeoutNow         (nothing)
 *  12  readIndex          session:uv requestId:uv
 *  13  readIndexResponse  flags(b0 rejected, b1 leaderId) session:uv requestId:uv index:uv
 *                         [leaderId:str]                          (only when b1; b1 needs b0)
 *
 * entry  header(b0-b1 kind: 0 command, 1 noop, 2 membership; b2 term follows) [term:uv] data:bytes
 * ```
 *
 * Tag 0 is never valid (a zeroed buffer is not a message). Tags are never reused or
 * renumbered: a new message type takes the next free tag; a changed layout takes a new version.
 *
 * An append carries the contiguous slice of the log that follows `prevIndex` (§5.3), so no
 * index is encoded at all: entry `i` has index `prevIndex + 1 + i`. The format cannot express an
 * append whose entries do not follow `prevIndex`, and the encoder refuses to build one. (Version
 * 1 carried the first index apart from `prevIndex`, so a malformed append could name entries that
 * did not follow it. Version 2 had no heartbeat rounds and no transfer flag.) An entry's term is encoded only when it differs from the
 * previous entry's term (the first entry compares against `prevTerm`), which in steady state
 * makes the per-entry overhead two bytes for payloads under 128 bytes.
 *
 * A snapshot chunk's membership is the exact output of `encodeMembership` (membership.ts), the
 * same JSON that `membership` entries carry. JSON has many spellings of one value (whitespace,
 * key order, escapes), so the decoder accepts only the one `encodeMembership` writes: it decodes
 * the membership, re-encodes it and requires the same bytes.
 */
import { CodecError, RaftError } from './errors.js';
import { decodeMembership, encodeMembership } from './membership.js';
import type {
  AppendMessage,
  AppendResponseMessage,
  HeartbeatMessage,
  HeartbeatResponseMessage,
  InstallSnapshotMessage,
  InstallSnapshotResponseMessage,
  ProposeMessage,
  ProposeRejection,
  ProposeResponseMessage,
  RaftMessage,
  ReadIndexMessage,
  ReadIndexResponseMessage,
  TimeoutNowMessage,
  VoteMessage,
  VoteResponseMessage,
} from './messages.js';
import type { EntryKind, LogEntry, Membership } from './types.js';

/** The format version written in byte 0. The decoder rejects every other version. */
export const CODEC_VERSION = 3;

/** Bounds {@link decodeMessage} enforces before allocating anything proportional to them. */
export interface DecodeLimits {
  /** Longest input accepted, in bytes. Default: 64 MiB (67_108_864). */
  readonly maxBytes?: number;
  /** Most entries accepted in one append. Default: 1_000_000. */
  readonly maxEntries?: number;
}

const DEFAULT_MAX_BYTES = 64 * 1024 * 1024;
const DEFAULT_MAX_ENTRIES = 1_000_000;

// Stable wire tags: never reuse or renumber (see the table in the module comment).
const TAG_VOTE = 1;
const TAG_VOTE_RESPONSE = 2;
const TAG_APPEND = 3;
const TAG_APPEND_RESPONSE = 4;
const TAG_HEARTBEAT = 5;
const TAG_HEARTBEAT_RESPONSE = 6;
const TAG_PROPOSE = 7;
const TAG_PROPOSE_RESPONSE = 8;
const TAG_INSTALL_SNAPSHOT = 9;
const TAG_INSTALL_SNAPSHOT_RESPONSE = 10;
const TAG_TIMEOUT_NOW = 11;
const TAG_READ_INDEX = 12;
const TAG_READ_INDEX_RESPONSE = 13;
const MAX_TAG = TAG_READ_INDEX_RESPONSE;

// Flag bits, per message type.
const FLAG_PRE_VOTE = 0x01;
const FLAG_GRANTED = 0x02;
const FLAG_TRANSFER = 0x02;
const FLAG_SUCCESS = 0x01;
const FLAG_CONFLICT = 0x02;
const FLAG_REJECTED = 0x01;
const FLAG_LEADER_ID = 0x02;
const FLAG_DONE = 0x01;

/** Rejection reasons of proposeResponse, by wire code. Codes are never reused. */
const REJECTIONS: readonly ProposeRejection[] = [
  'notLeader',
  'entryTooLarge',
  'dropped',
  'staleTerm',
];

function rejectionCode(reason: ProposeRejection): number {
  const code = REJECTIONS.indexOf(reason);
  if (code < 0) throw invalidArgument(`unknown rejection reason ${String(reason)}`);
  return code;
}

// Entry header bits.
const ENTRY_KIND_MASK = 0x03;
const ENTRY_HAS_TERM = 0x04;
/** Indexed by the wire kind code; code 3 is invalid. */
const ENTRY_KINDS: readonly EntryKind[] = ['command', 'noop', 'membership'];

/** Smallest encoding of one entry: a header byte and a one-byte data length. */
const MIN_ENTRY_BYTES = 2;
/** 8 × 7 = 56 bits covers Number.MAX_SAFE_INTEGER (2^53 - 1). */
const MAX_VARINT_BYTES = 8;
/** Code units per String.fromCharCode call, well under every engine's argument limit. */
const STRING_CHUNK = 4096;

// ---------------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------------

/**
 * Encodes `message` into a new Uint8Array of exactly {@link encodedSize} bytes.
 *
 * Two passes: the first measures and validates, the second writes into one allocation.
 *
 * Throws a `RaftError` with code `INVALID_ARGUMENT` (a caller bug, never a transport
 * condition) when the message cannot be represented: an integer field (term, index, commit,
 * requestId, ...) that is not a non-negative safe integer, append entries whose indexes do not
 * run contiguously from `prevIndex + 1`, an unknown entry kind or message type, a node id
 * containing a lone UTF-16 surrogate, a snapshot chunk whose `offset + data.length` exceeds its
 * `size`, or a snapshot membership whose members are not `{id: string, address: string,
 * voter: boolean}`.
 */
export function encodeMessage(message: RaftMessage): Uint8Array {
  const out = new Uint8Array(measureMessage(message));
  writeMessage(message, out);
  return out;
}

/**
 * The number of bytes {@link encodeMessage} would produce for `message`, without allocating.
 * Costs one pass over the message (a string scan per node id, constant work per entry; a
 * snapshot chunk also encodes its membership). Throws exactly as {@link encodeMessage} does.
 */
export function encodedSize(message: RaftMessage): number {
  return measureMessage(message);
}

/**
 * Writes the encoding of `message` into `out`, which must be exactly {@link encodedSize}
 * bytes (a view into a larger buffer, for encoders that pack several messages into one
 * allocation). Not part of the public surface: the wire batch encoder uses it.
 */
export function encodeMessageInto(message: RaftMessage, out: Uint8Array): void {
  writeMessage(message, out);
}

function invalidArgument(message: string): RaftError {
  return new RaftError('INVALID_ARGUMENT', `cannot encode message: ${message}`);
}

function varintSize(value: number): number {
  if (value < 0x80) return 1;
  if (value < 0x4000) return 2;
  if (value < 0x200000) return 3;
  if (value < 0x10000000) return 4;
  if (value < 0x800000000) return 5;
  if (value < 0x40000000000) return 6;
  if (value < 0x2000000000000) return 7;
  return 8;
}

/** Size of a `uv` field, after checking that `value` is a non-negative safe integer. */
function uintSize(value: number, field: string): number {
  if (!(Number.isSafeInteger(value) && value >= 0)) {
    throw invalidArgument(`${field} must be a non-negative safe integer, got ${value}`);
  }
  return varintSize(value);
}

/** UTF-8 byte length of `value`; rejects lone surrogates, which UTF-8 cannot represent. */
function utf8Length(value: string, field: string): number {
  let length = 0;
  for (let i = 0; i < value.length; i++) {
    const unit = value.charCodeAt(i);
    if (unit < 0x80) {
      length += 1;
    } else if (unit < 0x800) {
      length += 2;
    } else if (unit < 0xd800 || unit > 0xdfff) {
      length += 3;
    } else {
      const next = i + 1 < value.length ? value.charCodeAt(i + 1) : 0;
      if (unit > 0xdbff || next < 0xdc00 || next > 0xdfff) {
        throw invalidArgument(`${field} contains a lone surrogate at code unit ${i}`);
      }
      length += 4;
      i++;
    }
  }
  return length;
}

function stringSize(value: string, field: string): number {
  const length = utf8Length(value, field);
  return varintSize(length) + length;
}

function entryKindCode(kind: EntryKind, index: number): number {
  switch (kind) {
    case 'command':
      return 0;
    case 'noop':
      return 1;
    case 'membership':
      return 2;
    default:
      throw invalidArgument(`entries[${index}].kind is not an entry kind: ${String(kind)}`);
  }
}

function measureMessage(message: RaftMessage): number {
  const envelope =
    2 +
    stringSize(message.from, 'from') +
    stringSize(message.to, 'to') +
    uintSize(message.term, 'term');
  switch (message.type) {
    case 'vote':
      return (
        envelope +
        1 +
        uintSize(message.lastLogIndex, 'lastLogIndex') +
        uintSize(message.lastLogTerm, 'lastLogTerm')
      );
    case 'voteResponse':
      return envelope + 1;
    case 'append':
      return envelope + measureAppendBody(message);
    case 'appendResponse': {
      let size = envelope + 1 + uintSize(message.matchIndex, 'matchIndex');
      if (message.conflict !== undefined) {
        size +=
          uintSize(message.conflict.index, 'conflict.index') +
          uintSize(message.conflict.term, 'conflict.term');
      }
      return size;
    }
    case 'heartbeat':
      return envelope + uintSize(message.commit, 'commit') + uintSize(message.round, 'round');
    case 'heartbeatResponse':
      return envelope + uintSize(message.round, 'round');
    case 'timeoutNow':
      return envelope;
    case 'readIndex':
      return (
        envelope + uintSize(message.session, 'session') + uintSize(message.requestId, 'requestId')
      );
    case 'readIndexResponse': {
      let size =
        envelope +
        1 +
        uintSize(message.session, 'session') +
        uintSize(message.requestId, 'requestId') +
        uintSize(message.index, 'index');
      const leaderId = message.rejected?.leaderId ?? null;
      if (leaderId !== null) size += stringSize(leaderId, 'rejected.leaderId');
      return size;
    }
    case 'propose': {
      const length = message.data.length;
      return (
        envelope +
        uintSize(message.session, 'session') +
        uintSize(message.requestId, 'requestId') +
        varintSize(length) +
        length
      );
    }
    case 'proposeResponse': {
      let size =
        envelope +
        1 +
        uintSize(message.session, 'session') +
        uintSize(message.requestId, 'requestId') +
        uintSize(message.index, 'index') +
        uintSize(message.entryTerm, 'entryTerm');
      if (message.rejected !== undefined) {
        rejectionCode(message.rejected.reason);
        size += 1;
        const leaderId = message.rejected.leaderId;
        if (leaderId !== null) size += stringSize(leaderId, 'rejected.leaderId');
      }
      return size;
    }
    case 'installSnapshot': {
      const meta = message.meta;
      const length = message.data.length;
      const size =
        envelope +
        uintSize(meta.index, 'meta.index') +
        uintSize(meta.term, 'meta.term') +
        uintSize(message.size, 'size') +
        uintSize(message.offset, 'offset') +
        varintSize(length) +
        length;
      checkChunk(message.offset, length, message.size);
      const membership = membershipBytes(meta.membership).length;
      return size + varintSize(membership) + membership;
    }
    case 'installSnapshotResponse':
      return (
        envelope +
        1 +
        uintSize(message.index, 'index') +
        uintSize(message.snapshotTerm, 'snapshotTerm') +
        uintSize(message.nextOffset, 'nextOffset')
      );
    default:
      throw invalidArgument(
        `unknown message type ${String((message as { readonly type: unknown }).type)}`,
      );
  }
}

/** Checks that a chunk of `length` bytes at `offset` (safe integers) lies within `size`. */
function checkChunk(offset: number, length: number, size: number): void {
  // Subtracting keeps the arithmetic exact near 2^53, where offset + length could round.
  if (offset > size || length > size - offset) {
    throw invalidArgument(
      `a chunk of ${length} bytes at offset ${offset} runs past the snapshot size ${size}`,
    );
  }
}

/**
 * The `membership` field of a snapshot chunk: `encodeMembership`'s bytes, after checking the
 * shape they need to decode back to an equal membership. Called by both passes (a membership is
 * small and a chunk's data dominates its cost).
 */
function membershipBytes(membership: Membership): Uint8Array {
  const members: unknown = membership?.members;
  if (!Array.isArray(members)) throw invalidArgument('meta.membership.members is not an array');
  for (let i = 0; i < members.length; i++) {
    const member = members[i] as Partial<Record<string, unknown>> | null | undefined;
    if (
      typeof member?.id !== 'string' ||
      typeof member.address !== 'string' ||
      typeof member.voter !== 'boolean'
    ) {
      throw invalidArgument(
        `meta.membership.members[${i}] needs a string id, a string address and a boolean voter`,
      );
    }
  }
  return encodeMembership(membership);
}

function measureAppendBody(message: AppendMessage): number {
  const entries = message.entries;
  const count = entries.length;
  let size =
    uintSize(message.prevIndex, 'prevIndex') +
    uintSize(message.prevTerm, 'prevTerm') +
    uintSize(message.commit, 'commit') +
    varintSize(count);
  if (count === 0) return size;
  const firstIndex = message.prevIndex + 1;
  if (count - 1 > Number.MAX_SAFE_INTEGER - firstIndex) {
    throw invalidArgument('the last entry index exceeds Number.MAX_SAFE_INTEGER');
  }
  let previousTerm = message.prevTerm;
  for (let i = 0; i < count; i++) {
    const entry = entries[i] as LogEntry;
    // §5.3: AppendEntries carries the slice of the leader's log that follows prevIndex.
    if (entry.index !== firstIndex + i) {
      throw invalidArgument(
        `entries[${i}].index is ${entry.index}, expected ${firstIndex + i} (entries must follow prevIndex ${message.prevIndex} contiguously)`,
      );
    }
    entryKindCode(entry.kind, i);
    size += 1;
    if (entry.term !== previousTerm) {
      size += uintSize(entry.term, `entries[${i}].term`);
      previousTerm = entry.term;
    }
    const length = entry.data.length;
    size += varintSize(length) + length;
  }
  return size;
}

/** Writes `value` (a validated non-negative safe integer) at `pos`; returns the next position. */
function writeVarint(out: Uint8Array, pos: number, value: number): number {
  let rest = value;
  while (rest >= 0x80) {
    // `& 0x7f` is exact above 2^32 too: ToInt32 keeps the low 32 bits of an integer.
    out[pos++] = (rest & 0x7f) | 0x80;
    rest = rest < 0x80000000 ? rest >>> 7 : Math.floor(rest / 0x80);
  }
  out[pos++] = rest;
  return pos;
}

/** Writes a `str` field. `value` was validated by the measuring pass. */
function writeString(out: Uint8Array, pos: number, value: string): number {
  let p = writeVarint(out, pos, utf8Length(value, ''));
  for (let i = 0; i < value.length; i++) {
    let code = value.charCodeAt(i);
    if (code < 0x80) {
      out[p++] = code;
    } else if (code < 0x800) {
      out[p++] = 0xc0 | (code >> 6);
      out[p++] = 0x80 | (code & 0x3f);
    } else if (code < 0xd800 || code > 0xdfff) {
      out[p++] = 0xe0 | (code >> 12);
      out[p++] = 0x80 | ((code >> 6) & 0x3f);
      out[p++] = 0x80 | (code & 0x3f);
    } else {
      code = 0x10000 + ((code - 0xd800) << 10) + (value.charCodeAt(++i) - 0xdc00);
      out[p++] = 0xf0 | (code >> 18);
      out[p++] = 0x80 | ((code >> 12) & 0x3f);
      out[p++] = 0x80 | ((code >> 6) & 0x3f);
      out[p++] = 0x80 | (code & 0x3f);
    }
  }
  return p;
}

/** Writes a `bytes` field. */
function writeBytes(out: Uint8Array, pos: number, data: Uint8Array): number {
  const length = data.length;
  const p = writeVarint(out, pos, length);
  // set() measured faster than a byte loop even for 12-byte payloads.
  out.set(data, p);
  return p + length;
}

function writeMessage(message: RaftMessage, out: Uint8Array): void {
  out[0] = CODEC_VERSION;
  let pos = writeString(out, 2, message.from);
  pos = writeString(out, pos, message.to);
  pos = writeVarint(out, pos, message.term);
  switch (message.type) {
    case 'vote':
      out[1] = TAG_VOTE;
      out[pos++] = (message.preVote ? FLAG_PRE_VOTE : 0) | (message.transfer ? FLAG_TRANSFER : 0);
      pos = writeVarint(out, pos, message.lastLogIndex);
      writeVarint(out, pos, message.lastLogTerm);
      return;
    case 'voteResponse':
      out[1] = TAG_VOTE_RESPONSE;
      out[pos] = (message.preVote ? FLAG_PRE_VOTE : 0) | (message.granted ? FLAG_GRANTED : 0);
      return;
    case 'append':
      out[1] = TAG_APPEND;
      writeAppendBody(message, out, pos);
      return;
    case 'appendResponse': {
      out[1] = TAG_APPEND_RESPONSE;
      const conflict = message.conflict;
      out[pos++] =
        (message.success ? FLAG_SUCCESS : 0) | (conflict !== undefined ? FLAG_CONFLICT : 0);
      pos = writeVarint(out, pos, message.matchIndex);
      if (conflict !== undefined) {
        pos = writeVarint(out, pos, conflict.index);
        writeVarint(out, pos, conflict.term);
      }
      return;
    }
    case 'heartbeat':
      out[1] = TAG_HEARTBEAT;
      pos = writeVarint(out, pos, message.commit);
      writeVarint(out, pos, message.round);
      return;
    case 'heartbeatResponse':
      out[1] = TAG_HEARTBEAT_RESPONSE;
      writeVarint(out, pos, message.round);
      return;
    case 'timeoutNow':
      out[1] = TAG_TIMEOUT_NOW;
      return;
    case 'readIndex':
      out[1] = TAG_READ_INDEX;
      pos = writeVarint(out, pos, message.session);
      writeVarint(out, pos, message.requestId);
      return;
    case 'readIndexResponse': {
      out[1] = TAG_READ_INDEX_RESPONSE;
      const rejected = message.rejected;
      const leaderId = rejected === undefined ? null : rejected.leaderId;
      out[pos++] =
        (rejected !== undefined ? FLAG_REJECTED : 0) | (leaderId !== null ? FLAG_LEADER_ID : 0);
      pos = writeVarint(out, pos, message.session);
      pos = writeVarint(out, pos, message.requestId);
      pos = writeVarint(out, pos, message.index);
      if (leaderId !== null) writeString(out, pos, leaderId);
      return;
    }
    case 'propose':
      out[1] = TAG_PROPOSE;
      pos = writeVarint(out, pos, message.session);
      pos = writeVarint(out, pos, message.requestId);
      writeBytes(out, pos, message.data);
      return;
    case 'proposeResponse': {
      out[1] = TAG_PROPOSE_RESPONSE;
      const rejected = message.rejected;
      const leaderId = rejected === undefined ? null : rejected.leaderId;
      out[pos++] =
        (rejected !== undefined ? FLAG_REJECTED : 0) | (leaderId !== null ? FLAG_LEADER_ID : 0);
      pos = writeVarint(out, pos, message.session);
      pos = writeVarint(out, pos, message.requestId);
      pos = writeVarint(out, pos, message.index);
      pos = writeVarint(out, pos, message.entryTerm);
      if (rejected !== undefined) out[pos++] = rejectionCode(rejected.reason);
      if (leaderId !== null) writeString(out, pos, leaderId);
      return;
    }
    case 'installSnapshot': {
      out[1] = TAG_INSTALL_SNAPSHOT;
      const meta = message.meta;
      pos = writeVarint(out, pos, meta.index);
      pos = writeVarint(out, pos, meta.term);
      pos = writeBytes(out, pos, membershipBytes(meta.membership));
      pos = writeVarint(out, pos, message.size);
      pos = writeVarint(out, pos, message.offset);
      writeBytes(out, pos, message.data);
      return;
    }
    case 'installSnapshotResponse':
      out[1] = TAG_INSTALL_SNAPSHOT_RESPONSE;
      out[pos++] = message.done ? FLAG_DONE : 0;
      pos = writeVarint(out, pos, message.index);
      pos = writeVarint(out, pos, message.snapshotTerm);
      writeVarint(out, pos, message.nextOffset);
      return;
  }
}

function writeAppendBody(message: AppendMessage, out: Uint8Array, start: number): void {
  const entries = message.entries;
  let pos = writeVarint(out, start, message.prevIndex);
  pos = writeVarint(out, pos, message.prevTerm);
  pos = writeVarint(out, pos, message.commit);
  pos = writeVarint(out, pos, entries.length);
  let previousTerm = message.prevTerm;
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i] as LogEntry;
    const kind = entryKindCode(entry.kind, i);
    if (entry.term === previousTerm) {
      out[pos++] = kind;
    } else {
      out[pos++] = kind | ENTRY_HAS_TERM;
      pos = writeVarint(out, pos, entry.term);
      previousTerm = entry.term;
    }
    pos = writeBytes(out, pos, entry.data);
  }
}

// ---------------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------------

/**
 * Decodes one message produced by {@link encodeMessage}.
 *
 * Zero-copy: the `data` of decoded entries, proposals and snapshot chunks are views into
 * `bytes`' underlying buffer (always plain Uint8Arrays, even when `bytes` is a Buffer). The
 * caller MUST NOT write to or reuse that buffer while the message, or anything that kept its
 * entries or chunk data, is alive. A holder that keeps one entry keeps the whole input buffer
 * reachable; copy (`data.slice()`) before retaining small payloads from large frames for long.
 *
 * Throws only `CodecError` (code `CODEC`, with the failing byte `offset`), for every
 * malformed input: an input longer than `limits.maxBytes`, a wrong version, an unknown tag,
 * truncation, trailing bytes, a length or entry count larger than the remaining input or
 * `limits.maxEntries`, a varint that is over-long, not minimal or above
 * `Number.MAX_SAFE_INTEGER`, ill-formed UTF-8, unknown flag bits or entry kinds, a snapshot
 * chunk that runs past its `size`, a snapshot membership that is malformed or not spelled
 * exactly as `encodeMembership` spells it, and any other encoding {@link encodeMessage} would
 * not produce. Every length is checked against the remaining input before anything is
 * allocated, so memory use is proportional to `bytes.length`.
 */
export function decodeMessage(bytes: Uint8Array, limits?: DecodeLimits): RaftMessage {
  if (!(bytes instanceof Uint8Array)) throw new CodecError('input is not a Uint8Array', 0);
  const maxBytes = limits?.maxBytes ?? DEFAULT_MAX_BYTES;
  const maxEntries = limits?.maxEntries ?? DEFAULT_MAX_ENTRIES;
  if (bytes.length > maxBytes) {
    throw new CodecError(`input of ${bytes.length} bytes exceeds maxBytes ${maxBytes}`, 0);
  }
  if (bytes.length < 2) throw new CodecError('truncated message header', bytes.length);
  const version = bytes[0] as number;
  if (version !== CODEC_VERSION) {
    throw new CodecError(`unsupported codec version ${version} (expected ${CODEC_VERSION})`, 0);
  }
  const tag = bytes[1] as number;
  if (tag === 0 || tag > MAX_TAG) throw new CodecError(`unknown message tag ${tag}`, 1);

  const reader = new Reader(bytes);
  const from = reader.string('from');
  const to = reader.string('to');
  const term = reader.varint('term');
  let message: RaftMessage;
  switch (tag) {
    case TAG_VOTE: {
      const flags = reader.flags(FLAG_PRE_VOTE | FLAG_TRANSFER, 'vote flags');
      const lastLogIndex = reader.varint('lastLogIndex');
      const lastLogTerm = reader.varint('lastLogTerm');
      message =
        (flags & FLAG_TRANSFER) !== 0
          ? ({
              type: 'vote',
              from,
              to,
              term,
              preVote: (flags & FLAG_PRE_VOTE) !== 0,
              lastLogIndex,
              lastLogTerm,
              transfer: true,
            } satisfies VoteMessage)
          : ({
              type: 'vote',
              from,
              to,
              term,
              preVote: (flags & FLAG_PRE_VOTE) !== 0,
              lastLogIndex,
              lastLogTerm,
            } satisfies VoteMessage);
      break;
    }
    case TAG_VOTE_RESPONSE: {
      const flags = reader.flags(FLAG_PRE_VOTE | FLAG_GRANTED, 'voteResponse flags');
      message = {
        type: 'voteResponse',
        from,
        to,
        term,
        preVote: (flags & FLAG_PRE_VOTE) !== 0,
        granted: (flags & FLAG_GRANTED) !== 0,
      } satisfies VoteResponseMessage;
      break;
    }
    case TAG_APPEND:
      message = readAppendBody(reader, from, to, term, maxEntries);
      break;
    case TAG_APPEND_RESPONSE: {
      const flags = reader.flags(FLAG_SUCCESS | FLAG_CONFLICT, 'appendResponse flags');
      const success = (flags & FLAG_SUCCESS) !== 0;
      const matchIndex = reader.varint('matchIndex');
      if ((flags & FLAG_CONFLICT) !== 0) {
        const index = reader.varint('conflict.index');
        const conflictTerm = reader.varint('conflict.term');
        message = {
          type: 'appendResponse',
          from,
          to,
          term,
          success,
          matchIndex,
          conflict: { index, term: conflictTerm },
        } satisfies AppendResponseMessage;
      } else {
        message = {
          type: 'appendResponse',
          from,
          to,
          term,
          success,
          matchIndex,
        } satisfies AppendResponseMessage;
      }
      break;
    }
    case TAG_HEARTBEAT:
      message = {
        type: 'heartbeat',
        from,
        to,
        term,
        commit: reader.varint('commit'),
        round: reader.varint('round'),
      } satisfies HeartbeatMessage;
      break;
    case TAG_HEARTBEAT_RESPONSE:
      message = {
        type: 'heartbeatResponse',
        from,
        to,
        term,
        round: reader.varint('round'),
      } satisfies HeartbeatResponseMessage;
      break;
    case TAG_TIMEOUT_NOW:
      message = { type: 'timeoutNow', from, to, term } satisfies TimeoutNowMessage;
      break;
    case TAG_READ_INDEX:
      message = {
        type: 'readIndex',
        from,
        to,
        term,
        session: reader.varint('session'),
        requestId: reader.varint('requestId'),
      } satisfies ReadIndexMessage;
      break;
    case TAG_READ_INDEX_RESPONSE:
      message = readReadIndexResponse(reader, from, to, term);
      break;
    case TAG_PROPOSE:
      message = {
        type: 'propose',
        from,
        to,
        term,
        session: reader.varint('session'),
        requestId: reader.varint('requestId'),
        data: reader.bytes('data'),
      } satisfies ProposeMessage;
      break;
    case TAG_INSTALL_SNAPSHOT:
      message = readInstallSnapshotBody(reader, from, to, term);
      break;
    case TAG_INSTALL_SNAPSHOT_RESPONSE: {
      const flags = reader.flags(FLAG_DONE, 'installSnapshotResponse flags');
      message = {
        type: 'installSnapshotResponse',
        from,
        to,
        term,
        index: reader.varint('index'),
        snapshotTerm: reader.varint('snapshotTerm'),
        nextOffset: reader.varint('nextOffset'),
        done: (flags & FLAG_DONE) !== 0,
      } satisfies InstallSnapshotResponseMessage;
      break;
    }
    default: {
      // TAG_PROPOSE_RESPONSE: the only tag left after the range check above.
      const flagsOffset = reader.pos;
      const flags = reader.flags(FLAG_REJECTED | FLAG_LEADER_ID, 'proposeResponse flags');
      if (flags === FLAG_LEADER_ID) {
        throw new CodecError('proposeResponse has a leaderId but is not rejected', flagsOffset);
      }
      const session = reader.varint('session');
      const requestId = reader.varint('requestId');
      const index = reader.varint('index');
      const entryTerm = reader.varint('entryTerm');
      if ((flags & FLAG_REJECTED) !== 0) {
        const reasonOffset = reader.pos;
        const reason = REJECTIONS[reader.flags(0xff, 'rejected.reason')];
        if (reason === undefined)
          throw new CodecError('unknown proposeResponse rejection reason', reasonOffset);
        const leaderId = (flags & FLAG_LEADER_ID) !== 0 ? reader.string('rejected.leaderId') : null;
        message = {
          type: 'proposeResponse',
          from,
          to,
          term,
          session,
          requestId,
          index,
          entryTerm,
          rejected: { leaderId, reason },
        } satisfies ProposeResponseMessage;
      } else {
        message = {
          type: 'proposeResponse',
          from,
          to,
          term,
          session,
          requestId,
          index,
          entryTerm,
        } satisfies ProposeResponseMessage;
      }
    }
  }
  if (reader.pos !== bytes.length) {
    throw new CodecError(`${bytes.length - reader.pos} trailing bytes after message`, reader.pos);
  }
  return message;
}

function readReadIndexResponse(
  reader: Reader,
  from: string,
  to: string,
  term: number,
): ReadIndexResponseMessage {
  const flagsOffset = reader.pos;
  const flags = reader.flags(FLAG_REJECTED | FLAG_LEADER_ID, 'readIndexResponse flags');
  if (flags === FLAG_LEADER_ID) {
    throw new CodecError('readIndexResponse has a leaderId but is not rejected', flagsOffset);
  }
  const session = reader.varint('session');
  const requestId = reader.varint('requestId');
  const index = reader.varint('index');
  if ((flags & FLAG_REJECTED) === 0) {
    return { type: 'readIndexResponse', from, to, term, session, requestId, index };
  }
  const leaderId = (flags & FLAG_LEADER_ID) !== 0 ? reader.string('rejected.leaderId') : null;
  return {
    type: 'readIndexResponse',
    from,
    to,
    term,
    session,
    requestId,
    index,
    rejected: { leaderId },
  };
}

function readAppendBody(
  reader: Reader,
  from: string,
  to: string,
  term: number,
  maxEntries: number,
): AppendMessage {
  const prevIndex = reader.varint('prevIndex');
  const prevTerm = reader.varint('prevTerm');
  const commit = reader.varint('commit');
  const countOffset = reader.pos;
  const count = reader.varint('entry count');
  if (count > maxEntries) {
    throw new CodecError(`entry count ${count} exceeds maxEntries ${maxEntries}`, countOffset);
  }
  // Bound the count by the input before building anything per entry.
  if (count > (reader.input.length - reader.pos) / MIN_ENTRY_BYTES) {
    throw new CodecError(`entry count ${count} exceeds the remaining input`, countOffset);
  }
  const entries: LogEntry[] = new Array(count);
  if (count > 0) {
    // Entries follow prevIndex: entry i has index prevIndex + 1 + i.
    const firstIndex = prevIndex + 1;
    if (count - 1 > Number.MAX_SAFE_INTEGER - firstIndex) {
      throw new CodecError('last entry index exceeds Number.MAX_SAFE_INTEGER', countOffset);
    }
    const input = reader.input;
    const buffer = input.buffer;
    const byteOffset = input.byteOffset;
    let previousTerm = prevTerm;
    for (let i = 0; i < count; i++) {
      const headerOffset = reader.pos;
      if (headerOffset >= input.length) {
        throw new CodecError(`truncated input reading entries[${i}]`, headerOffset);
      }
      const header = input[headerOffset] as number;
      reader.pos = headerOffset + 1;
      const kind = ENTRY_KINDS[header & ENTRY_KIND_MASK];
      if ((header & ~(ENTRY_KIND_MASK | ENTRY_HAS_TERM)) !== 0 || kind === undefined) {
        throw new CodecError(
          `invalid header 0x${header.toString(16)} of entries[${i}]`,
          headerOffset,
        );
      }
      let entryTerm = previousTerm;
      if ((header & ENTRY_HAS_TERM) !== 0) {
        entryTerm = reader.varint('entry term');
        // The encoder omits a repeated term; accepting it would give bytes two meanings.
        if (entryTerm === previousTerm) {
          throw new CodecError(`entries[${i}] repeats the previous term`, headerOffset);
        }
        previousTerm = entryTerm;
      }
      // Fast path for the common 1- and 2-byte data lengths (entries under 16 KiB): read the
      // varint here and make the view directly (a third of the decoding time of small entries
      // went to the generic reader); anything else goes through the checked reader.
      const p = reader.pos;
      const b0 = input[p];
      const b1 = input[p + 1];
      let start = -1;
      let dataLength = 0;
      if (b0 !== undefined && b0 < 0x80) {
        dataLength = b0;
        start = p + 1;
      } else if (b0 !== undefined && b1 !== undefined && b1 !== 0 && b1 < 0x80) {
        dataLength = (b0 & 0x7f) | (b1 << 7);
        start = p + 2;
      }
      let data: Uint8Array;
      if (start >= 0 && dataLength <= input.length - start) {
        data = new Uint8Array(buffer, byteOffset + start, dataLength);
        reader.pos = start + dataLength;
      } else {
        data = reader.bytes('entry data');
      }
      entries[i] = { index: firstIndex + i, term: entryTerm, kind, data };
    }
  }
  return { type: 'append', from, to, term, prevIndex, prevTerm, entries, commit };
}

function readInstallSnapshotBody(
  reader: Reader,
  from: string,
  to: string,
  term: number,
): InstallSnapshotMessage {
  const index = reader.varint('meta.index');
  const snapshotTerm = reader.varint('meta.term');
  const raw = reader.bytes('membership');
  const membership = readMembership(raw, reader.pos - raw.length);
  const size = reader.varint('size');
  const offsetStart = reader.pos;
  const offset = reader.varint('offset');
  if (offset > size) {
    throw new CodecError(`chunk offset ${offset} exceeds the snapshot size ${size}`, offsetStart);
  }
  const dataStart = reader.pos;
  const data = reader.bytes('data');
  if (data.length > size - offset) {
    throw new CodecError(
      `a chunk of ${data.length} bytes at offset ${offset} runs past the snapshot size ${size}`,
      dataStart,
    );
  }
  return {
    type: 'installSnapshot',
    from,
    to,
    term,
    meta: { index, term: snapshotTerm, membership },
    size,
    offset,
    data,
  };
}

/**
 * Decodes a snapshot chunk's membership, `raw`, which starts at byte `offset` of the input. Any
 * failure becomes a CodecError (the cause attached); so does any spelling other than
 * `encodeMembership`'s, which would not re-encode to the same bytes (reported at the first byte
 * that differs).
 */
function readMembership(raw: Uint8Array, offset: number): Membership {
  let membership: Membership;
  try {
    membership = decodeMembership(raw);
  } catch (err) {
    const at = err instanceof CodecError ? offset + err.offset : offset;
    throw new CodecError('malformed snapshot membership', at, { cause: err });
  }
  const canonical = encodeMembership(membership);
  const common = Math.min(canonical.length, raw.length);
  let i = 0;
  while (i < common && canonical[i] === raw[i]) i++;
  if (i < common || canonical.length !== raw.length) {
    throw new CodecError(
      'snapshot membership is not spelled as encodeMembership spells it',
      offset + i,
    );
  }
  return membership;
}

/** A cursor over the input. Every read checks bounds first and throws only CodecError. */
class Reader {
  readonly input: Uint8Array;
  pos = 2;

  constructor(input: Uint8Array) {
    this.input = input;
  }

  /** One flags byte; bits outside `allowed` are reserved and rejected. */
  flags(allowed: number, field: string): number {
    const pos = this.pos;
    if (pos >= this.input.length) throw new CodecError(`truncated input reading ${field}`, pos);
    const value = this.input[pos] as number;
    if ((value & ~allowed) !== 0) {
      throw new CodecError(`unknown bits 0x${value.toString(16)} in ${field}`, pos);
    }
    this.pos = pos + 1;
    return value;
  }

  /** An unsigned LEB128 varint: minimal, at most 8 bytes, at most Number.MAX_SAFE_INTEGER. */
  varint(field: string): number {
    const input = this.input;
    const start = this.pos;
    if (start >= input.length) throw new CodecError(`truncated input reading ${field}`, start);
    let byte = input[start] as number;
    if (byte < 0x80) {
      this.pos = start + 1;
      return byte;
    }
    let value = byte & 0x7f;
    let scale = 0x80;
    let pos = start + 1;
    for (;;) {
      if (pos - start >= MAX_VARINT_BYTES) {
        throw new CodecError(`varint longer than ${MAX_VARINT_BYTES} bytes in ${field}`, start);
      }
      if (pos >= input.length) throw new CodecError(`truncated varint in ${field}`, pos);
      byte = input[pos++] as number;
      // Exact: every partial sum stays below 2^56, and a rounded sum above 2^53 stays above it.
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) break;
      scale *= 0x80;
    }
    if (byte === 0) throw new CodecError(`non-minimal varint in ${field}`, start);
    if (value > Number.MAX_SAFE_INTEGER) {
      throw new CodecError(`varint above Number.MAX_SAFE_INTEGER in ${field}`, start);
    }
    this.pos = pos;
    return value;
  }

  /** A length, checked against the remaining input before anything is allocated. */
  length(field: string): number {
    const start = this.pos;
    const length = this.varint(field);
    if (length > this.input.length - this.pos) {
      throw new CodecError(
        `${field} length ${length} exceeds the remaining ${this.input.length - this.pos} bytes`,
        start,
      );
    }
    return length;
  }

  /** A `bytes` field, as a zero-copy view of the input's buffer. */
  bytes(field: string): Uint8Array {
    const length = this.length(field);
    const input = this.input;
    const view = new Uint8Array(input.buffer, input.byteOffset + this.pos, length);
    this.pos += length;
    return view;
  }

  /** A `str` field: strictly well-formed UTF-8 (no overlongs, surrogates or values > U+10FFFF). */
  string(field: string): string {
    const length = this.length(field);
    const input = this.input;
    const start = this.pos;
    const end = start + length;
    this.pos = end;
    let ascii = true;
    for (let i = start; i < end; i++) {
      if ((input[i] as number) >= 0x80) {
        ascii = false;
        break;
      }
    }
    if (ascii && length <= STRING_CHUNK) {
      return String.fromCharCode.apply(null, input.subarray(start, end) as unknown as number[]);
    }
    return decodeUtf8(input, start, end, field);
  }
}

function decodeUtf8(input: Uint8Array, start: number, end: number, field: string): string {
  let result = '';
  const units: number[] = [];
  let i = start;
  while (i < end) {
    const lead = input[i] as number;
    if (lead < 0x80) {
      units.push(lead);
      i++;
    } else {
      let need: number;
      let code: number;
      let min: number;
      if (lead >= 0xc2 && lead <= 0xdf) {
        need = 1;
        code = lead & 0x1f;
        min = 0x80;
      } else if (lead >= 0xe0 && lead <= 0xef) {
        need = 2;
        code = lead & 0x0f;
        min = 0x800;
      } else if (lead >= 0xf0 && lead <= 0xf4) {
        need = 3;
        code = lead & 0x07;
        min = 0x10000;
      } else {
        throw new CodecError(`invalid UTF-8 lead byte in ${field}`, i);
      }
      if (end - i <= need) throw new CodecError(`truncated UTF-8 sequence in ${field}`, i);
      for (let k = 1; k <= need; k++) {
        const next = input[i + k] as number;
        if ((next & 0xc0) !== 0x80) {
          throw new CodecError(`invalid UTF-8 continuation byte in ${field}`, i + k);
        }
        code = (code << 6) | (next & 0x3f);
      }
      // Rejects overlong forms, UTF-16 surrogates and values past U+10FFFF.
      if (code < min || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) {
        throw new CodecError(`invalid UTF-8 sequence in ${field}`, i);
      }
      if (code < 0x10000) {
        units.push(code);
      } else {
        code -= 0x10000;
        units.push(0xd800 | (code >> 10), 0xdc00 | (code & 0x3ff));
      }
      i += need + 1;
    }
    if (units.length >= STRING_CHUNK) {
      result += String.fromCharCode.apply(null, units);
      units.length = 0;
    }
  }
  return result + String.fromCharCode.apply(null, units);
}
