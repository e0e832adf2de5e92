/**
 * The stable store of `@raft/store-file`: the hard state in one small file, `state`, replaced
 * atomically on every save (temporary file, fdatasync, rename, fsync of the directory), so a
 * reader sees the old `{ term, votedFor, commit }` or the new one, never a torn mix.
 *
 * ```
 * state file
 *   0  "RAFTHS" 0x00 0x01   magic and format version
 *   8  u32 crc              CRC-32 of the JSON bytes
 *  12  u32 length           bytes of JSON
 *  16  JSON                 { "term": …, "votedFor": …, "commit": … }
 * ```
 *
 * JSON is fine here: the hard state changes with terms and votes, not with every commit (the
 * engine does not save a commit-only change), so this is far from the hot path.
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { type HardState, type StableStore, StorageError } from '@raft/core';
import { crc32 } from './crc32.js';
import { asStorageError, CorruptLogError } from './errors.js';
import { isErrno, writeFileAtomic } from './fs-io.js';

const MAGIC = Buffer.from([0x52, 0x41, 0x46, 0x54, 0x48, 0x53, 0x00, 0x01]);
const HEADER_BYTES = 16;

/** See the module comment. */
export class FileStableStore implements StableStore {
  private closed = false;
  private readonly path: string;
  /** The save in flight, if any (calls are never concurrent): close() waits for it. */
  private saving: Promise<void> | null = null;
  private closing: Promise<void> | null = null;

  /** `onClosed` runs once, when the first close() has settled (the bundle counts its stores). */
  constructor(
    dir: string,
    private readonly onClosed: () => void = () => {},
  ) {
    this.path = join(dir, 'state');
  }

  async load(): Promise<HardState | null> {
    this.check();
    let buf: Buffer;
    try {
      buf = await fsp.readFile(this.path);
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return null;
      throw asStorageError(err, `read ${this.path}`);
    }
    return decodeHardState(buf, this.path);
  }

  save(state: HardState): Promise<void> {
    const call = this.doSave(state);
    this.saving = call;
    const forget = (): void => {
      if (this.saving === call) this.saving = null;
    };
    call.then(forget, forget);
    return call;
  }

  /**
   * Refuses new calls at once, and resolves once a save in flight has settled: the bundle
   * releases the directory's lock after this, and a save stalled on the disk that renamed over
   * `state` later could overwrite the hard state (the vote) of the next process to open the
   * directory (the runtime stops after a bounded wait, so a stalled disk can leave one running).
   */
  close(): Promise<void> {
    this.closed = true;
    this.closing ??= (this.saving ?? Promise.resolve())
      .then(
        () => {},
        () => {},
      )
      .then(() => this.onClosed());
    return this.closing;
  }

  private async doSave(state: HardState): Promise<void> {
    this.check();
    const json = Buffer.from(
      JSON.stringify({ term: state.term, votedFor: state.votedFor, commit: state.commit }),
      'utf8',
    );
    const buf = Buffer.alloc(HEADER_BYTES + json.length);
    MAGIC.copy(buf, 0);
    buf.writeUInt32LE(crc32(json), 8);
    buf.writeUInt32LE(json.length, 12);
    json.copy(buf, HEADER_BYTES);
    try {
      await writeFileAtomic(this.path, buf);
    } catch (err) {
      throw asStorageError(err, `save the hard state to ${this.path}`);
    }
  }

  private check(): void {
    if (this.closed) throw new StorageError('the stable store is closed');
  }
}

function decodeHardState(buf: Buffer, path: string): HardState {
  if (buf.length < HEADER_BYTES || !buf.subarray(0, 8).equals(MAGIC)) {
    throw new CorruptLogError(path, 0, 'not a hard-state file (bad magic or too short)');
  }
  const length = buf.readUInt32LE(12);
  const json = buf.subarray(HEADER_BYTES, HEADER_BYTES + length);
  if (json.length !== length || crc32(json) !== buf.readUInt32LE(8)) {
    throw new CorruptLogError(path, HEADER_BYTES, 'the hard state fails its checksum');
  }
  let value: unknown;
  try {
    value = JSON.parse(json.toString('utf8'));
  } catch (err) {
    throw new CorruptLogError(path, HEADER_BYTES, `the hard state is not JSON: ${String(err)}`);
  }
  const v = value as { term?: unknown; votedFor?: unknown; commit?: unknown };
  if (
    !Number.isSafeInteger(v.term) ||
    !Number.isSafeInteger(v.commit) ||
    !(v.votedFor === null || typeof v.votedFor === 'string')
  ) {
    throw new CorruptLogError(path, HEADER_BYTES, 'the hard state has invalid fields');
  }
  return { term: v.term as number, votedFor: v.votedFor, commit: v.commit as number };
}
