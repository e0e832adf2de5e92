/**
 * Seeded pseudo-random numbers for the simulator.
 *
 * The generator is sfc32 (Chris Doty-Humphrey's Small Fast Chaotic PRNG, 128-bit state, 32-bit
 * output), seeded through splitmix32. It is not cryptographic; it is fast, has no known bad
 * seeds once warmed up, and gives the same sequence on every JavaScript engine because it only
 * uses 32-bit integer arithmetic (`| 0`, `>>>`, `Math.imul`).
 *
 * Streams are derived, not shared: `fork(label)` derives a child from the parent's key and the
 * label without drawing from the parent, so a component that starts consuming more randomness
 * never shifts the sequence another component sees, and the order in which forks are created
 * does not matter.
 */
import type { Random } from '@raft/core';

const TWO_POW_32 = 4_294_967_296;

/** One splitmix32 output for `state` (a 32-bit integer). Pure: used to spread seeds. */
function splitmix32(state: number): number {
  let z = (state + 0x9e3779b9) | 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/** FNV-1a over the UTF-16 code units of `text`: a stable 32-bit hash for fork labels. */
function hashLabel(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  }
  return h >>> 0;
}

/** Folds a seed (any safe integer, negative allowed) into a 32-bit key, using all its bits. */
function keyFromSeed(seed: number): number {
  if (!Number.isSafeInteger(seed)) {
    throw new RangeError(`seed must be a safe integer, got ${seed}`);
  }
  const lo = seed >>> 0;
  const hi = Math.floor(seed / TWO_POW_32) >>> 0;
  return splitmix32(lo ^ splitmix32(hi));
}

/**
 * A deterministic random stream.
 *
 * The same seed gives the same sequence of every method, on every machine. Methods that take a
 * count or an array consume a fixed number of draws (documented per method), so traces stay
 * comparable across runs.
 *
 * @example
 * ```ts
 * const root = new Prng(42);
 * const net = root.fork('network');     // independent of every other fork
 * const delayMs = net.range(1, 10);
 * ```
 */
export class Prng {
  /** The seed this stream was created from (for forks: the parent's seed). */
  readonly seed: number;
  /** 32-bit key identifying this stream; forks derive theirs from it. */
  private key: number;
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  /**
   * @param seed any safe integer; the replay line of a failing simulation prints it.
   */
  constructor(seed: number) {
    this.seed = seed;
    this.key = keyFromSeed(seed);
    // Placeholders so the fields are initialised in the constructor (stable object shape).
    this.a = 0;
    this.b = 0;
    this.c = 0;
    this.d = 0;
    this.init(this.key);
  }

  private init(key: number): void {
    let s = key;
    s = splitmix32(s);
    this.a = s | 0;
    s = splitmix32(s);
    this.b = s | 0;
    s = splitmix32(s);
    this.c = s | 0;
    s = splitmix32(s);
    this.d = s | 0;
    // Warm-up recommended for sfc32: mixes the seed into all 128 bits of state.
    for (let i = 0; i < 12; i++) {
      this.nextUint32();
    }
  }

  /** A uniform 32-bit unsigned integer in `[0, 2^32)`. One draw. */
  nextUint32(): number {
    const a = this.a;
    const b = this.b;
    const c = this.c;
    const d = this.d;
    const t = (((a + b) | 0) + d) | 0;
    this.d = (d + 1) | 0;
    this.a = b ^ (b >>> 9);
    this.b = (c + (c << 3)) | 0;
    this.c = (((c << 21) | (c >>> 11)) + t) | 0;
    return t >>> 0;
  }

  /** A uniform number in `[0, 1)` with 32 bits of resolution. One draw. */
  next(): number {
    return this.nextUint32() / TWO_POW_32;
  }

  /**
   * A uniform integer in `[0, n)`. One draw. `n` must be an integer in `[1, 2^32]`; the bias
   * of the multiply-and-floor mapping is below `n / 2^32`, irrelevant for a simulator.
   */
  int(n: number): number {
    if (!(Number.isInteger(n) && n >= 1 && n <= TWO_POW_32)) {
      throw new RangeError(`int(n) needs an integer n in [1, 2^32], got ${n}`);
    }
    return Math.floor(this.next() * n);
  }

  /** A uniform number in `[lo, hi)` (or exactly `lo` when `lo === hi`). One draw. */
  range(lo: number, hi: number): number {
    if (!(hi >= lo)) {
      throw new RangeError(`range(lo, hi) needs lo <= hi, got [${lo}, ${hi})`);
    }
    return lo + this.next() * (hi - lo);
  }

  /**
   * True with probability `p`. One draw, even when `p` is 0 or 1, so changing a fault rate
   * never shifts the rest of the stream.
   */
  chance(p: number): boolean {
    return this.next() < p;
  }

  /** A uniformly chosen element. One draw. Throws on an empty array. */
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) {
      throw new RangeError('pick() from an empty array');
    }
    return items[this.int(items.length)] as T;
  }

  /** Shuffles `items` in place (Fisher–Yates) and returns it. `length - 1` draws. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = items[i] as T;
      items[i] = items[j] as T;
      items[j] = tmp;
    }
    return items;
  }

  /**
   * An independent stream derived from this stream's key and `label`. Draws nothing from this
   * stream. The same label always gives the same child sequence (fork once per component and
   * keep the result); different labels give unrelated sequences.
   */
  fork(label: string): Prng {
    // Forks are rare (one per component), so re-seeding a fresh instance costs nothing.
    const child = new Prng(this.seed);
    child.key = splitmix32(this.key ^ splitmix32(hashLabel(label)));
    child.init(child.key);
    return child;
  }

  /** This stream as core's {@link Random} (`() => number` in `[0, 1)`), e.g. for `RaftNodeOptions.random`. */
  asRandom(): Random {
    return () => this.next();
  }
}
