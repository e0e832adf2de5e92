/**
 * A bounded window of in-flight AppendEntries to one follower (etcd `Inflights`).
 *
 * Each slot holds the last index of one sent append. An acknowledgement up to index `i` frees
 * every slot <= i. When the window is full, the leader stops sending (pipelining with back
 * pressure) until an acknowledgement frees a slot.
 */
export class Inflights {
  private readonly buffer: number[];
  private start = 0;
  private count = 0;

  constructor(readonly capacity: number) {
    this.buffer = new Array<number>(capacity).fill(0);
  }

  get size(): number {
    return this.count;
  }

  isFull(): boolean {
    return this.count === this.capacity;
  }

  /** Records an append whose last entry is `lastIndex`. Indexes must be increasing. */
  add(lastIndex: number): void {
    if (this.count === this.capacity) throw new RangeError('inflights window is full');
    this.buffer[(this.start + this.count) % this.capacity] = lastIndex;
    this.count++;
  }

  /** Frees every in-flight append whose last index is <= `index`. */
  freeLE(index: number): void {
    while (this.count > 0 && (this.buffer[this.start] as number) <= index) {
      this.start = (this.start + 1) % this.capacity;
      this.count--;
    }
  }

  /** Frees the oldest in-flight append (its acknowledgement was probably lost). */
  freeFirst(): void {
    if (this.count === 0) return;
    this.start = (this.start + 1) % this.capacity;
    this.count--;
  }

  reset(): void {
    this.start = 0;
    this.count = 0;
  }
}
