/**
 * Length-prefixed frames on a byte stream: a 4-byte big-endian length, then that many bytes
 * (the frame; its first byte is the frame kind, so a frame is never empty).
 *
 * A frame that arrives inside one chunk is handed out as a view of that chunk (zero-copy: the
 * socket allocates a fresh buffer for every read and never writes it again); one that spans
 * chunks is copied into a buffer of its own. Nothing is ever reused.
 */

/** Bytes of the length prefix. */
export const FRAME_HEADER_BYTES = 4;

/** The 4-byte header of a frame of `length` bytes. */
export function frameHeader(length: number): Uint8Array {
  const header = new Uint8Array(FRAME_HEADER_BYTES);
  new DataView(header.buffer).setUint32(0, length);
  return header;
}

/** What a {@link FrameReader} reports. */
export interface FrameSink {
  frame(frame: Uint8Array): void;
  /** The stream cannot be framed any more (the reader stops; close the connection). */
  reject(kind: 'oversize' | 'malformed', detail: string): void;
}

/** Splits a byte stream into frames of at most `maxFrameBytes` (changeable between chunks). */
export class FrameReader {
  private readonly header = new Uint8Array(FRAME_HEADER_BYTES);
  private headerFill = 0;
  private body: Uint8Array | null = null;
  private bodyFill = 0;
  private failed = false;

  constructor(
    private readonly sink: FrameSink,
    public maxFrameBytes: number,
  ) {}

  /** Feeds one chunk read from the stream. */
  push(chunk: Uint8Array): void {
    let pos = 0;
    while (pos < chunk.length && !this.failed) {
      if (this.body === null) {
        // Fast path: a whole frame inside this chunk, header included.
        if (this.headerFill === 0 && chunk.length - pos >= FRAME_HEADER_BYTES) {
          const length = readLength(chunk, pos);
          if (!this.checkLength(length)) return;
          const start = pos + FRAME_HEADER_BYTES;
          if (chunk.length - start >= length) {
            pos = start + length;
            this.sink.frame(chunk.subarray(start, pos));
            continue;
          }
          this.body = new Uint8Array(length);
          this.body.set(chunk.subarray(start));
          this.bodyFill = chunk.length - start;
          return;
        }
        const take = Math.min(FRAME_HEADER_BYTES - this.headerFill, chunk.length - pos);
        this.header.set(chunk.subarray(pos, pos + take), this.headerFill);
        this.headerFill += take;
        pos += take;
        if (this.headerFill < FRAME_HEADER_BYTES) return;
        this.headerFill = 0;
        const length = readLength(this.header, 0);
        if (!this.checkLength(length)) return;
        this.body = new Uint8Array(length);
        this.bodyFill = 0;
        continue;
      }
      const take = Math.min(this.body.length - this.bodyFill, chunk.length - pos);
      this.body.set(chunk.subarray(pos, pos + take), this.bodyFill);
      this.bodyFill += take;
      pos += take;
      if (this.bodyFill === this.body.length) {
        const frame = this.body;
        this.body = null;
        this.bodyFill = 0;
        this.sink.frame(frame);
      }
    }
  }

  private checkLength(length: number): boolean {
    if (length === 0) {
      this.failed = true;
      this.sink.reject('malformed', 'a frame of length 0');
      return false;
    }
    if (length > this.maxFrameBytes) {
      this.failed = true;
      this.sink.reject(
        'oversize',
        `a frame of ${length} bytes exceeds the limit of ${this.maxFrameBytes}`,
      );
      return false;
    }
    return true;
  }
}

function readLength(bytes: Uint8Array, at: number): number {
  return (
    (bytes[at] as number) * 0x1000000 +
    (((bytes[at + 1] as number) << 16) |
      ((bytes[at + 2] as number) << 8) |
      (bytes[at + 3] as number))
  );
}
