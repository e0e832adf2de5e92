/** Fresh temporary directories for the tests, removed afterwards. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const made = new Set<string>();

/** A new empty directory under the OS temp dir. */
export function tempDir(label = 'store-file'): string {
  const dir = mkdtempSync(join(tmpdir(), `raft-${label}-`));
  made.add(dir);
  return dir;
}

/** Removes `dir` (or every directory made so far). */
export function removeDir(dir?: string): void {
  for (const d of dir === undefined ? [...made] : [dir]) {
    rmSync(d, { recursive: true, force: true });
    made.delete(d);
  }
}
