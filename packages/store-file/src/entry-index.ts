/**
 * The 32-bit tag under which the index stores segment `seq`: in [1, 2^32 - 1] (0 is "missing").
 * Sequence numbers only grow, so a long-lived log with small segments passes 2^32 (a Uint32Array
 * wrapped it: segment 2^32 read as missing, 2^32 + 1 as segment 1); the few segments live at
 * once are far fewer than 2^32 - 1 apart, so their tags never collide.
 */
export function segmentTag(seq: number): number {
  return ((seq - 1) % 0xffffffff) + 1;
}

/**
 * Where each live entry sits on disk: log index → (segment, byte offset, record length), in
 * typed arrays (about 16 bytes per entry, no object per entry), for the indexes
 * `[firstIndex, lastIndex]`.
 *
 * Invariant: segments are non-decreasing in index order (an append always goes to the newest
 * segment), so every segment older than the one holding `firstIndex` holds nothing live.
 *
 * Recovery may start from a segment whose header says entries exist before its first record
 * (they were in segments since deleted): those slots are "missing" (segment 0) until a compact
 * marker drops them; a missing slot left at the end of recovery is corruption.
 */
export class EntryIndex {
  private seg = new Uint32Array(1024);
  private off = new Float64Array(1024);
  private len = new Uint32Array(1024);
  /** Slot of `firstIndex`. */
  private start = 0;
  /** Live slots: `lastIndex - firstIndex + 1`. */
  private count = 0;
  private first = 1;

  get firstIndex(): number {
    return this.first;
  }

  get lastIndex(): number {
    return this.first + this.count - 1;
  }

  /** Sets the bounds to `[first, last]` with every slot missing. */
  reset(first: number, last: number): void {
    this.first = first;
    this.start = 0;
    this.count = 0;
    const n = last - first + 1;
    if (n > 0) {
      this.reserve(n);
      this.seg.fill(0, 0, n);
      this.count = n;
    }
  }

  /**
   * Records entry `index` (at most `lastIndex + 1`; anything from `index` on is dropped) in the
   * segment tagged `segment` ({@link segmentTag}).
   */
  put(index: number, segment: number, offset: number, length: number): void {
    const k = index - this.first;
    this.count = k;
    this.reserve(k + 1);
    const slot = this.start + k;
    this.seg[slot] = segment;
    this.off[slot] = offset;
    this.len[slot] = length;
    this.count = k + 1;
  }

  /** Drops the indexes `>= from` (all of them when `from <= firstIndex`). */
  truncateFrom(from: number): void {
    const keep = from - this.first;
    if (keep < this.count) this.count = Math.max(keep, 0);
  }

  /** Drops the indexes `<= upTo`; past `lastIndex`, the index is empty and ends at `upTo`. */
  compactTo(upTo: number): void {
    if (upTo < this.first) return;
    const drop = upTo - this.first + 1;
    if (drop >= this.count) {
      this.start = 0;
      this.count = 0;
    } else {
      this.start += drop;
      this.count -= drop;
    }
    this.first = upTo + 1;
  }

  /** The {@link segmentTag} of the segment holding `index`. */
  segmentOf(index: number): number {
    return this.seg[this.start + index - this.first] as number;
  }

  offsetOf(index: number): number {
    return this.off[this.start + index - this.first] as number;
  }

  lengthOf(index: number): number {
    return this.len[this.start + index - this.first] as number;
  }

  /** The first index in `[firstIndex, lastIndex]` with no position, or null. */
  firstMissing(): number | null {
    for (let k = 0; k < this.count; k++) {
      if (this.seg[this.start + k] === 0) return this.first + k;
    }
    return null;
  }

  /** Room for `n` live slots from `start`, moving the live slots down or growing as needed. */
  private reserve(n: number): void {
    if (this.start + n <= this.seg.length) return;
    if (n <= this.seg.length / 2 && this.start > 0) {
      this.seg.copyWithin(0, this.start, this.start + this.count);
      this.off.copyWithin(0, this.start, this.start + this.count);
      this.len.copyWithin(0, this.start, this.start + this.count);
      this.start = 0;
      return;
    }
    let cap = this.seg.length;
    while (cap < n * 1.5 || cap < n + 1024) cap *= 2;
    const seg = new Uint32Array(cap);
    const off = new Float64Array(cap);
    const len = new Uint32Array(cap);
    seg.set(this.seg.subarray(this.start, this.start + this.count));
    off.set(this.off.subarray(this.start, this.start + this.count));
    len.set(this.len.subarray(this.start, this.start + this.count));
    this.seg = seg;
    this.off = off;
    this.len = len;
    this.start = 0;
  }
}
