/**
 * Reads a stream of byte chunks (a snapshot being restored) as it arrives: varints and byte
 * runs that may straddle chunk boundaries, without gathering the stream. Only the unread part
 * of the current chunk, plus what a straddling read needs, is held.
 */
export class ChunkReader {
  private buf: Uint8Array = new Uint8Array(0);
  private pos = 0;
  private ended = false;
  private readonly iterator: AsyncIterator<Uint8Array>;

  constructor(chunks: AsyncIterable<Uint8Array>) {
    this.iterator = chunks[Symbol.asyncIterator]();
  }

  /** Reads an unsigned LEB128 varint of at most 8 bytes. */
  async varint(what: string): Promise<number> {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      if (this.buf.length - this.pos < 1 && !(await this.fill(1))) {
        throw new Error(`snapshot truncated in ${what}`);
      }
      const b = this.buf[this.pos++] as number;
      value += (b & 0x7f) * scale;
      if (b < 0x80) return value;
      scale *= 0x80;
    }
    throw new Error(`snapshot ${what} is too long`);
  }

  /** The next `n` bytes, as a copy of their own (safe to keep). */
  async bytes(n: number, what: string): Promise<Uint8Array> {
    if (this.buf.length - this.pos < n && !(await this.fill(n))) {
      throw new Error(`snapshot truncated in ${what}`);
    }
    const out = this.buf.slice(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  /** Whether the stream has no more bytes. */
  async atEnd(): Promise<boolean> {
    return this.buf.length - this.pos === 0 && !(await this.fill(1));
  }

  /** Buffers until `n` unread bytes are held; false when the stream ends first. */
  private async fill(n: number): Promise<boolean> {
    while (this.buf.length - this.pos < n) {
      if (this.ended) return false;
      const next = await this.iterator.next();
      if (next.done === true) {
        this.ended = true;
        return false;
      }
      const rest = this.buf.subarray(this.pos);
      if (rest.length === 0) {
        this.buf = next.value;
      } else {
        const joined = new Uint8Array(rest.length + next.value.length);
        joined.set(rest, 0);
        joined.set(next.value, rest.length);
        this.buf = joined;
      }
      this.pos = 0;
    }
    return true;
  }
}
