/**
 * A minimal file-backed SnapshotStore for the memory tests: a snapshot is streamed to a
 * temporary file and renamed into place on commit, and read back with positioned reads, so the
 * store itself never holds a snapshot in memory (the MemorySnapshotStore does, by design).
 * Test support only; the durable store users get is @raft/store-file.
 */
import { mkdirSync } from 'node:fs';
import { type FileHandle, open, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { SnapshotMeta, SnapshotSink, SnapshotSource, SnapshotStore } from '@raft/core';
import { RaftError, StorageError } from '@raft/core';

interface Entry {
  readonly meta: SnapshotMeta;
  readonly file: string;
  readonly size: number;
  readonly seq: number;
}

export class FileSnapshotStore implements SnapshotStore {
  private readonly committed: Entry[] = [];
  private seq = 0;

  constructor(
    private readonly dir: string,
    private readonly retain = 2,
  ) {
    mkdirSync(dir, { recursive: true });
  }

  async create(meta: SnapshotMeta): Promise<SnapshotSink> {
    const seq = ++this.seq;
    const tmp = join(this.dir, `${seq}.tmp`);
    const handle = await open(tmp, 'w');
    let size = 0;
    let state: 'open' | 'committed' | 'aborted' = 'open';
    return {
      write: async (chunk) => {
        if (state !== 'open') throw new StorageError(`write on a ${state} snapshot`);
        let at = 0;
        while (at < chunk.byteLength) {
          const { bytesWritten } = await handle.write(chunk, at, chunk.byteLength - at, size + at);
          at += bytesWritten;
        }
        size += chunk.byteLength;
      },
      commit: async () => {
        if (state !== 'open') throw new StorageError(`commit of a ${state} snapshot`);
        state = 'committed';
        await handle.sync();
        await handle.close();
        const file = join(this.dir, `${seq}.snap`);
        await rename(tmp, file);
        this.committed.push({ meta, file, size, seq });
        this.committed.sort((a, b) => a.meta.index - b.meta.index || a.seq - b.seq);
        while (this.committed.length > this.retain) {
          const old = this.committed.shift() as Entry;
          // An open source keeps reading the unlinked file through its handle.
          await rm(old.file, { force: true });
        }
      },
      abort: async () => {
        if (state !== 'open') return;
        state = 'aborted';
        await handle.close().catch(() => {});
        await rm(tmp, { force: true });
      },
    };
  }

  async open(): Promise<SnapshotSource | null> {
    const latest = this.committed[this.committed.length - 1];
    if (latest === undefined) return null;
    const handle: FileHandle = await open(latest.file, 'r');
    let closed = false;
    return {
      meta: latest.meta,
      size: latest.size,
      read: async (offset, length) => {
        if (closed) throw new StorageError('read on a closed snapshot source');
        if (!Number.isInteger(offset) || offset < 0 || offset > latest.size)
          throw new RaftError('INVALID_ARGUMENT', `offset ${offset} outside [0, ${latest.size}]`);
        if (!Number.isInteger(length) || length < 1)
          throw new RaftError('INVALID_ARGUMENT', `length ${length} must be a positive integer`);
        const n = Math.min(length, latest.size - offset);
        const out = new Uint8Array(n);
        let at = 0;
        while (at < n) {
          const { bytesRead } = await handle.read(out, at, n - at, offset + at);
          if (bytesRead === 0) throw new StorageError(`snapshot file ended at ${offset + at}`);
          at += bytesRead;
        }
        return out;
      },
      close: async () => {
        if (closed) return;
        closed = true;
        await handle.close();
      },
    };
  }

  async close(): Promise<void> {}

  /** Files on disk (tests). */
  async files(): Promise<string[]> {
    return (await readdir(this.dir)).sort();
  }
}
