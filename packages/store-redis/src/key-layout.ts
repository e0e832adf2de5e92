/**
 * Where one node's storage lives in Redis: every key starts with the node's prefix `P`.
 *
 * | key | type | what |
 * | --- | --- | --- |
 * | `P lock` | string | the owner's lock: `{ token, pid, host, since }` as JSON, with a TTL |
 * | `P meta` | hash | `version` (layout, 1), log bounds `first` and `last`, and `floor` and `ceiling`: every `P log` field lies in `[floor, ceiling]`, those outside `[first, last]` are garbage still to delete |
 * | `P log` | hash | one field per entry: the decimal index -> kind (1 byte), term (8 bytes, big-endian), data |
 * | `P log:stage` | list | the pieces of one large append until the script that applies them |
 * | `P hard` | hash | the HardState: `term`, `voted` (`1` or `0`), `votedFor`, `commit` |
 * | `P snap:counter` | string | counter for snapshot ids and commit order |
 * | `P snap:pending` | hash | snapshots being written: id -> chunks written so far |
 * | `P snaps` | sorted set | committed snapshots: score index, member `<commit seq, 16 digits>:<id>` |
 * | `P snap:doomed` | set | ids of pruned snapshots whose keys are still to delete |
 * | `P snap:<id>` | hash | a committed snapshot: `meta` (JSON), `size`, `chunkBytes`, `chunks` |
 * | `P snap:<id>:<n>` | string | chunk `n` of snapshot `id`: bytes `[n * chunkBytes, (n + 1) * chunkBytes)` |
 *
 * Why this layout:
 * - A hash field per entry makes `read(from, to)` one HMGET of the fields it needs, and a
 *   suffix replacement an HSET of the new entries plus an HDEL of the old entries past them,
 *   both proportional to what changes, never to the log.
 * - Entries are deleted (compaction, truncation, a shorter suffix) by moving the bounds in
 *   `P meta` atomically and then deleting the fields outside them in bounded steps, so no
 *   script runs for long; `floor` and `ceiling` say where garbage may be, so a crash between
 *   steps leaves nothing behind for ever (the next open finishes the job).
 * - Snapshot chunks are separate strings of a fixed size, so a ranged read is a GETRANGE of
 *   the bytes it needs from one or two keys, whatever the snapshot's size.
 */

/** The key names of one prefix. */
export interface KeyLayout {
  readonly prefix: string;
  readonly lock: string;
  readonly meta: string;
  readonly log: string;
  readonly logStage: string;
  readonly hardState: string;
  readonly snapCounter: string;
  readonly snapPending: string;
  readonly snaps: string;
  readonly snapDoomed: string;
  /** `P snap:`: `snapBase + id` is a snapshot's hash, `snapBase + id + ':' + n` its chunk. */
  readonly snapBase: string;
}

/** The version written to `P meta`; a store refuses a prefix written by another layout. */
export const LAYOUT_VERSION = '1';

/** The key names under `prefix`. */
export function keyLayout(prefix: string): KeyLayout {
  return {
    prefix,
    lock: `${prefix}lock`,
    meta: `${prefix}meta`,
    log: `${prefix}log`,
    logStage: `${prefix}log:stage`,
    hardState: `${prefix}hard`,
    snapCounter: `${prefix}snap:counter`,
    snapPending: `${prefix}snap:pending`,
    snaps: `${prefix}snaps`,
    snapDoomed: `${prefix}snap:doomed`,
    snapBase: `${prefix}snap:`,
  };
}

/** The hash of snapshot `id`. */
export function snapshotKey(keys: KeyLayout, id: number): string {
  return `${keys.snapBase}${id}`;
}

/** Chunk `n` of snapshot `id`. */
export function chunkKey(keys: KeyLayout, id: number, n: number): string {
  return `${keys.snapBase}${id}:${n}`;
}
