/**
 * Host changes a chaos run makes (packet-filter tables, cgroups) that must not outlive it: each is
 * registered here and undone synchronously when the process exits, however the run ends.
 */

/** Something undone synchronously (exit and signal paths cannot wait). */
export interface ClosesSync {
  closeSync(): void;
}

/** A set of open things, each closed by `closeAllSync()` and, at the latest, at process exit. */
export function closeAtExit<T extends ClosesSync>(): {
  track(item: T): void;
  /** `item` closed itself: nothing left to undo at exit. */
  untrack(item: T): void;
  closeAllSync(): void;
} {
  const opened = new Set<T>();
  let hooked = false;
  const closeAllSync = () => {
    for (const item of opened) item.closeSync();
    opened.clear();
  };
  return {
    track(item) {
      opened.add(item);
      if (!hooked) {
        hooked = true;
        process.once('exit', closeAllSync);
      }
    },
    untrack(item) {
      opened.delete(item);
    },
    closeAllSync,
  };
}
