/**
 * Unit tests of what a service node runs around the service's own state machine: the directory
 * of HTTP addresses, snapshotted ahead of the service's image ("RSVC" ‖ u32 BE length ‖ JSON ‖
 * sessions' image, which frames the service's) and read back however the stream is cut, the
 * commands applied once per idempotency key, and the codec that tags each log entry as a
 * service command (0x00), a directory update (0x01) or a command applied once (0x02).
 */
import { type SnapshotMeta, utf8Codec } from '@raft/core';
import { describe, expect, it } from 'vitest';
import { type ServiceCommand, serviceCommandCodec } from '../src/node/service-command.js';
import { Directory, withDirectory } from '../src/node/service-state-machine.js';
import { type Register, registerService } from './fixtures/register-service.js';

const META: SnapshotMeta = { index: 7, term: 2 } as SnapshotMeta;
const at = (index: number) => ({ index, term: 1 });

/** A register wrapped with a fresh directory. */
function wrapped() {
  const parts = registerService.createStateMachine();
  const directory = new Directory();
  let snapshotStarts = 0;
  const machine = withDirectory(parts.stateMachine, directory, {
    onSnapshotStart: () => {
      snapshotStarts += 1;
    },
  });
  return { machine, directory, state: parts.state as Register, starts: () => snapshotStarts };
}

async function collect(chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>) {
  const parts: Uint8Array[] = [];
  for await (const c of chunks) parts.push(c);
  const out = new Uint8Array(parts.reduce((n, c) => n + c.length, 0));
  let offset = 0;
  for (const c of parts) {
    out.set(c, offset);
    offset += c.length;
  }
  return out;
}

/** `bytes` as a stream of the given pieces (copies, so nothing is shared with the image). */
async function* stream(...pieces: Uint8Array[]): AsyncGenerator<Uint8Array> {
  for (const p of pieces) yield p.slice();
}

/** A snapshot image of a register at "hello" (version 2) with a directory of two members. */
async function sampleImage() {
  const w = wrapped();
  w.machine.apply({ kind: 'service', command: 'first' }, at(1));
  w.machine.apply({ kind: 'advertise', id: 'n1', http: '127.0.0.1:8001' }, at(2));
  w.machine.apply({ kind: 'advertise', id: 'n2', http: '127.0.0.2:8002' }, at(3));
  w.machine.apply({ kind: 'service', command: 'hello' }, at(4));
  const snapshot = w.machine.snapshot;
  if (snapshot === undefined) throw new Error('the wrapped register has no snapshot()');
  const image = await collect(await snapshot());
  const jsonLength = new DataView(image.buffer, image.byteOffset).getUint32(4);
  return { image, headerBytes: 8 + jsonLength, starts: w.starts() };
}

const DIRECTORY = { n1: '127.0.0.1:8001', n2: '127.0.0.2:8002' };

async function restoreInto(pieces: Uint8Array[]) {
  const w = wrapped();
  w.directory.set('stale', '10.0.0.9:1'); // replaced by the image's directory
  const restore = w.machine.restore;
  if (restore === undefined) throw new Error('the wrapped register has no restore()');
  await restore(stream(...pieces), META);
  return w;
}

describe('withDirectory', () => {
  it('applies directory updates to the directory and service commands to the service', () => {
    const w = wrapped();
    expect(w.machine.apply({ kind: 'advertise', id: 'n1', http: '127.0.0.1:1' }, at(1))).toEqual({
      kind: 'advertise',
    });
    expect(w.machine.apply({ kind: 'service', command: 'a' }, at(2))).toEqual({
      kind: 'service',
      result: 1,
    });
    expect(w.machine.apply({ kind: 'advertise', id: 'n1', http: '127.0.0.1:2' }, at(3))).toEqual({
      kind: 'advertise',
    });
    expect(w.directory.get('n1')).toBe('127.0.0.1:2');
    expect(w.directory.toJSON()).toEqual({ n1: '127.0.0.1:2' });
    expect(w.state).toEqual({ value: 'a', version: 1 });
  });

  it('wraps an asynchronous apply result', async () => {
    const directory = new Directory();
    const machine = withDirectory<string, number>(
      { apply: async (c: string) => c.length },
      directory,
    );
    await expect(machine.apply({ kind: 'service', command: 'abc' }, at(1))).resolves.toEqual({
      kind: 'service',
      result: 3,
    });
    // No snapshot() and restore() inside: none outside either.
    expect(machine.snapshot).toBeUndefined();
    expect(machine.restore).toBeUndefined();
  });

  it('snapshots as "RSVC", a u32 big-endian length, the directory JSON, then the sessions image framing the service image', async () => {
    const { image, headerBytes, starts } = await sampleImage();
    expect(starts).toBe(1);
    expect([...image.subarray(0, 4)]).toEqual([0x52, 0x53, 0x56, 0x43]);
    const json = new TextDecoder().decode(image.subarray(8, headerBytes));
    expect(JSON.parse(json)).toEqual(DIRECTORY);
    expect(new TextDecoder().decode(image.subarray(headerBytes, headerBytes + 4))).toBe('RSES');
    const inner = JSON.stringify({ value: 'hello', version: 2 });
    expect(new TextDecoder().decode(image.subarray(image.length - inner.length))).toBe(inner);
  });

  it('applies a command with an idempotency key once; a retry gets the first result, also after a snapshot', async () => {
    const w = wrapped();
    const once = (key: string, command: string, i: number) =>
      w.machine.apply({ kind: 'once', key, command }, at(i));
    expect(once('k1', 'a', 1)).toEqual({ kind: 'service', result: 1 });
    expect(once('k1', 'b', 2)).toEqual({ kind: 'service', result: 1 });
    expect(w.state).toEqual({ value: 'a', version: 1 });
    expect(once('k2', 'c', 3)).toEqual({ kind: 'service', result: 2 });
    const image = await collect(
      await (w.machine.snapshot as () => Promise<Iterable<Uint8Array>>)(),
    );
    const r = wrapped();
    await (r.machine.restore as NonNullable<typeof r.machine.restore>)(stream(image), META);
    expect(r.state).toEqual({ value: 'c', version: 2 });
    expect(r.machine.apply({ kind: 'once', key: 'k1', command: 'z' }, at(4))).toEqual({
      kind: 'service',
      result: 1,
    });
    expect(r.state).toEqual({ value: 'c', version: 2 });
    expect(r.machine.apply({ kind: 'service', command: 'plain' }, at(5))).toEqual({
      kind: 'service',
      result: 3,
    });
  });

  it('restores the directory and the service state from the image in one chunk', async () => {
    const { image } = await sampleImage();
    const w = await restoreInto([image]);
    expect(w.directory.toJSON()).toEqual(DIRECTORY);
    expect(w.directory.get('stale')).toBeUndefined();
    expect(w.state).toEqual({ value: 'hello', version: 2 });
  });

  it('restores the same, split in two at every offset (every byte boundary of the header and beyond)', async () => {
    const { image, headerBytes } = await sampleImage();
    expect(headerBytes).toBeLessThan(image.length);
    for (let cut = 0; cut <= image.length; cut++) {
      const w = await restoreInto([image.subarray(0, cut), image.subarray(cut)]);
      expect(w.directory.toJSON(), `cut at ${cut}`).toEqual(DIRECTORY);
      expect(w.state, `cut at ${cut}`).toEqual({ value: 'hello', version: 2 });
    }
  });

  it('restores the same, split in three around every pair of header offsets', async () => {
    const { image, headerBytes } = await sampleImage();
    for (let a = 0; a <= headerBytes; a++) {
      for (let b = a; b <= headerBytes + 1; b++) {
        const w = await restoreInto([
          image.subarray(0, a),
          image.subarray(a, b),
          image.subarray(b),
        ]);
        expect(w.directory.toJSON(), `cuts at ${a}, ${b}`).toEqual(DIRECTORY);
        expect(w.state, `cuts at ${a}, ${b}`).toEqual({ value: 'hello', version: 2 });
      }
    }
  });

  it('restores the same, one byte per chunk', async () => {
    const { image } = await sampleImage();
    const pieces = [...image].map((b) => Uint8Array.of(b));
    const w = await restoreInto(pieces);
    expect(w.directory.toJSON()).toEqual(DIRECTORY);
    expect(w.state).toEqual({ value: 'hello', version: 2 });
  });

  it('restores an empty directory', async () => {
    const w = wrapped();
    w.machine.apply({ kind: 'service', command: 'x' }, at(1));
    const image = await collect(
      await (w.machine.snapshot as () => Promise<Iterable<Uint8Array>>)(),
    );
    const again = await restoreInto([image]);
    expect(again.directory.toJSON()).toEqual({});
    expect(again.state).toEqual({ value: 'x', version: 1 });
  });

  it('rejects an image that does not start with "RSVC", leaving the directory alone', async () => {
    const { image } = await sampleImage();
    for (let i = 0; i < 4; i++) {
      const corrupt = image.slice();
      corrupt[i] = (corrupt[i] as number) ^ 0xff;
      const w = wrapped();
      w.directory.set('kept', '127.0.0.1:1');
      await expect(
        (w.machine.restore as NonNullable<typeof w.machine.restore>)(stream(corrupt), META),
        `byte ${i} corrupted`,
      ).rejects.toThrow('not a service snapshot: the image does not start with "RSVC"');
      expect(w.directory.toJSON()).toEqual({ kept: '127.0.0.1:1' });
      expect(w.state).toEqual({ value: '', version: 0 });
    }
  });

  it('rejects an image that ends inside its header, wherever it ends', async () => {
    const { image, headerBytes } = await sampleImage();
    for (let end = 0; end < headerBytes; end++) {
      const w = wrapped();
      const restore = w.machine.restore as NonNullable<typeof w.machine.restore>;
      // Whole, and cut once more in the middle: the same answer.
      for (const pieces of [
        [image.subarray(0, end)],
        [image.subarray(0, end >> 1), image.subarray(end >> 1, end)],
      ]) {
        await expect(restore(stream(...pieces), META), `ends at ${end}`).rejects.toThrow(
          'not a service snapshot: the image ends inside its header',
        );
      }
      expect(w.directory.toJSON()).toEqual({});
    }
  });
});

describe('serviceCommandCodec', () => {
  const codec = serviceCommandCodec(utf8Codec);

  it('round-trips a service command, tagged 0x00 ahead of the inner codec bytes', () => {
    const command: ServiceCommand<string> = { kind: 'service', command: 'héllo' };
    const bytes = codec.encode(command);
    expect(bytes[0]).toBe(0x00);
    expect([...bytes.subarray(1)]).toEqual([...utf8Codec.encode('héllo')]);
    expect(codec.decode(bytes)).toEqual(command);
    expect(codec.decode(codec.encode({ kind: 'service', command: '' }))).toEqual({
      kind: 'service',
      command: '',
    });
  });

  it('round-trips a directory update, tagged 0x01 ahead of its JSON', () => {
    const command: ServiceCommand<string> = { kind: 'advertise', id: 'n1', http: '[::1]:8001' };
    const bytes = codec.encode(command);
    expect(bytes[0]).toBe(0x01);
    expect(JSON.parse(new TextDecoder().decode(bytes.subarray(1)))).toEqual({
      id: 'n1',
      http: '[::1]:8001',
    });
    expect(codec.decode(bytes)).toEqual(command);
  });

  it('round-trips a command applied once, tagged 0x02 ahead of its session encoding', () => {
    const command: ServiceCommand<string> = { kind: 'once', key: 'req-42', command: 'v' };
    const bytes = codec.encode(command);
    expect(bytes[0]).toBe(0x02);
    expect(codec.decode(bytes)).toEqual(command);
    expect(() => codec.encode({ kind: 'once', key: '', command: 'v' })).toThrow();
  });

  it('decodes from a subarray of a larger buffer', () => {
    const bytes = codec.encode({ kind: 'advertise', id: 'n2', http: '127.0.0.2:1' });
    const framed = new Uint8Array(bytes.length + 6);
    framed.set(bytes, 3);
    expect(codec.decode(framed.subarray(3, 3 + bytes.length))).toEqual({
      kind: 'advertise',
      id: 'n2',
      http: '127.0.0.2:1',
    });
  });

  it('rejects an unknown kind byte, an empty entry and a malformed directory update', () => {
    expect(() => codec.decode(Uint8Array.of(3, 0x61))).toThrow('unknown service command kind 3');
    expect(() => codec.decode(Uint8Array.of(0xff))).toThrow('unknown service command kind 255');
    expect(() => codec.decode(new Uint8Array(0))).toThrow(/unknown service command kind/);
    const badUpdate = (json: string) => {
      const body = new TextEncoder().encode(json);
      const bytes = new Uint8Array(body.length + 1);
      bytes[0] = 1;
      bytes.set(body, 1);
      return bytes;
    };
    expect(() => codec.decode(badUpdate('{"id":"n1","http":8001}'))).toThrow(
      'a directory update needs string id and http',
    );
    expect(() => codec.decode(badUpdate('{"id":"n1"'))).toThrow();
  });
});
