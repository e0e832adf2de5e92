/**
 * Internal limits that keep every Redis command and script call small. Not options: they trade
 * nothing a user could tune better, and tests shrink them to exercise the multi-step paths.
 */
export interface RedisStoreTuning {
  /** Largest batch one append sends in one command; a larger append is staged first. */
  readonly maxBatchBytes: number;
  /** Most entries in one batch. */
  readonly maxBatchEntries: number;
  /** Most hash fields one script deletes; the rest is left to further sweep calls. */
  readonly sweepBudget: number;
  /** Most entries one HMGET of a read asks for (the HMGETs of one read are pipelined). */
  readonly readBatchEntries: number;
  /** Most chunk keys one step of deleting a snapshot removes. */
  readonly deleteChunkBudget: number;
}

/** The limits in use. */
export const DEFAULT_TUNING: RedisStoreTuning = {
  maxBatchBytes: 4 * 1024 * 1024,
  maxBatchEntries: 4096,
  sweepBudget: 4096,
  readBatchEntries: 4096,
  deleteChunkBudget: 1024,
};
