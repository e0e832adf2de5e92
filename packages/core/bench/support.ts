/**
 * Pieces the benchmarks share: a state machine that costs next to nothing, and a latency
 * histogram of constant memory.
 */
import type { StateMachine } from '@raft/core';

/** Counts the commands applied: cheap, deterministic, touches every command. Its snapshot is
 *  the count (8 bytes): the benchmarks measure Raft, not a state machine's image. */
export class Counter<Command> implements StateMachine<Command, number> {
  count = 0;
  apply(): number {
    return ++this.count;
  }
  snapshot(): Uint8Array[] {
    const image = new Uint8Array(8);
    new DataView(image.buffer).setFloat64(0, this.count);
    return [image];
  }
  async restore(chunks: AsyncIterable<Uint8Array>): Promise<void> {
    for await (const c of chunks) this.count = new DataView(c.buffer, c.byteOffset).getFloat64(0);
  }
}

/**
 * Latencies in fixed 1 µs buckets up to 1 s (and one overflow bucket), so a benchmark's own
 * memory stays constant however long it runs; the max is exact.
 */
export class Histogram {
  private readonly buckets = new Uint32Array(1_000_001);
  count = 0;
  max = 0;
  reset(): void {
    this.buckets.fill(0);
    this.count = 0;
    this.max = 0;
  }
  record(ms: number): void {
    const bucket = Math.min(1_000_000, Math.round(ms * 1000));
    this.buckets[bucket] = (this.buckets[bucket] as number) + 1;
    this.count++;
    if (ms > this.max) this.max = ms;
  }
  /** The p-th percentile in ms (bucket resolution: 1 µs). */
  percentile(p: number): number {
    if (this.count === 0) return Number.NaN;
    const rank = Math.min(this.count - 1, Math.floor((p / 100) * this.count));
    let seen = 0;
    for (let i = 0; i < this.buckets.length; i++) {
      seen += this.buckets[i] as number;
      if (seen > rank) return i / 1000;
    }
    return Number.NaN;
  }
}
