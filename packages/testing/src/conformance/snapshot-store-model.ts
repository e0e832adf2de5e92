/**
 * The reference model and the generated operations of the snapshot store property case: the
 * sinks open now, the snapshots committed (in commit order), and the sources the case holds
 * open, as the `SnapshotStore` contract defines them.
 *
 * Operations refer to sinks and sources by a number taken modulo how many are open when the
 * operation runs (an operation with nothing to act on does nothing), so every operation is
 * valid in every state and shrinking never invents an invalid sequence.
 */
import type { Member, Membership, SnapshotMeta } from '@raft/core';
import * as fc from 'fast-check';
import {
  bigOrSmall,
  MAX_PROPERTY_STEPS,
  nodeId,
  type PayloadSpec,
  payloadSpec,
} from './store-property.js';
import { concat } from './support.js';

/** At most this many sinks open at once: a durable store holds a file or a transaction each. */
export const MAX_OPEN_SINKS = 4;

/** At most this many sources held open across steps, for the same reason. */
export const MAX_HELD_SOURCES = 3;

/** One generated read of a source: `offset` is taken modulo `size + 1`. */
export interface ReadSpec {
  readonly offset: number;
  readonly length: number;
  /** Read past the end instead (offset `size + 1 + offset % 4`): it must reject. */
  readonly past: boolean;
}

/** A generated snapshot store operation, resolved against the model when it runs. */
export type SnapshotOperation =
  /**
   * create() of a snapshot at `indexStep` from the latest committed one's index (before any
   * commit, from the highest index created so far), at least 1: mostly the same, so sinks open
   * together often share an index and the tie rule comes up; a little higher or lower as often
   * (a lower one committed later must not win); sometimes far higher (past 2^32).
   */
  | {
      readonly op: 'create';
      readonly indexStep: number;
      readonly term: number;
      readonly membership: Membership;
    }
  | { readonly op: 'write'; readonly sink: number; readonly chunk: PayloadSpec }
  | { readonly op: 'commit'; readonly sink: number }
  | { readonly op: 'abort'; readonly sink: number }
  /** open(), its meta, size and content checked, a few reads; `hold` keeps the source open. */
  | { readonly op: 'open'; readonly hold: boolean; readonly reads: readonly ReadSpec[] }
  | { readonly op: 'readHeld'; readonly source: number; readonly read: ReadSpec }
  | { readonly op: 'closeHeld'; readonly source: number }
  /**
   * close(), the harness's reopen(). Held sources are closed first. Open sinks are aborted
   * first, or with `crash` left open as a crash mid-write leaves them (the contract: after a
   * crash the store holds a snapshot whole or not at all); either way they are gone.
   */
  | { readonly op: 'reopen'; readonly crash: boolean };

const member: fc.Arbitrary<Member> = fc.record({
  id: nodeId,
  address: fc.oneof(
    fc.constantFrom('10.0.0.1:7000', 'n1:7000', ''),
    fc.string({ unit: 'grapheme', maxLength: 16 }),
  ),
  voter: fc.boolean(),
});

const indexStep = fc.oneof(
  { withCrossShrink: true },
  { weight: 6, arbitrary: fc.constant(0) },
  { weight: 3, arbitrary: fc.integer({ min: 1, max: 3 }) },
  { weight: 3, arbitrary: fc.integer({ min: -3, max: -1 }) },
  { weight: 1, arbitrary: fc.integer({ min: 2 ** 32, max: 2 ** 40 }) },
);

const membership: fc.Arbitrary<Membership> = fc.record({
  members: fc.uniqueArray(member, { minLength: 1, maxLength: 4, selector: (m) => m.id }),
});

const readSpec: fc.Arbitrary<ReadSpec> = fc.record({
  offset: fc.nat(),
  length: fc.oneof(
    { withCrossShrink: true },
    fc.integer({ min: 1, max: 64 }),
    fc.integer({ min: 65, max: 9000 }),
  ),
  past: fc.constantFrom(false, false, false, true),
});

const ref = fc.nat({ max: 7 });

// Creates and commits outweigh the rest: a sink operation with no sink open does nothing, and
// the ordering rules need several commits, of sinks open together, in one sequence.
const operation: fc.Arbitrary<SnapshotOperation> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      op: fc.constant('create' as const),
      indexStep,
      term: bigOrSmall,
      membership,
    }),
  },
  {
    weight: 5,
    arbitrary: fc.record({ op: fc.constant('write' as const), sink: ref, chunk: payloadSpec }),
  },
  { weight: 6, arbitrary: fc.record({ op: fc.constant('commit' as const), sink: ref }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('abort' as const), sink: ref }) },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('open' as const),
      hold: fc.boolean(),
      reads: fc.array(readSpec, { maxLength: 3 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ op: fc.constant('readHeld' as const), source: ref, read: readSpec }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('closeHeld' as const), source: ref }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('reopen' as const), crash: fc.boolean() }) },
);

/** Sequences of up to {@link MAX_PROPERTY_STEPS} snapshot store operations. */
export const snapshotOperations: fc.Arbitrary<readonly SnapshotOperation[]> = fc.array(operation, {
  // Not 1: fast-check drops a trailing operation only by shrinking the rest of the list to
  // empty, which a minimum length of 1 forbids.
  minLength: 0,
  maxLength: MAX_PROPERTY_STEPS,
  size: 'max',
});

/** A snapshot the model knows: its meta and every byte, `label` naming it in messages. */
export interface ModelSnapshot {
  readonly label: number;
  readonly meta: SnapshotMeta;
  readonly content: Uint8Array;
}

/** A sink open in the store, with copies of the chunks written to it. */
interface ModelSink<Sink> {
  readonly label: number;
  readonly meta: SnapshotMeta;
  readonly handle: Sink;
  readonly chunks: Uint8Array[];
}

/** A source held open across steps, and the snapshot it must go on reading. */
interface ModelSource<Source> {
  readonly handle: Source;
  readonly snapshot: ModelSnapshot;
}

/**
 * What the store must show. Generic over the store's handle types so the case keeps sinks and
 * sources next to what the model expects of them.
 */
export class SnapshotModel<Sink, Source> {
  /** Open sinks, oldest first. */
  readonly sinks: ModelSink<Sink>[] = [];
  /** Committed snapshots in commit order (retention may have pruned the store's copies). */
  private readonly committed: ModelSnapshot[] = [];
  /** Sources held open, oldest first. */
  readonly sources: ModelSource<Source>[] = [];
  private labels = 0;
  /** The highest index of any sink created so far (0 before the first). */
  private highestIndex = 0;

  /** The sink an operation's `ref` names, or undefined when none is open. */
  sink(ref: number): ModelSink<Sink> | undefined {
    return this.sinks.length === 0 ? undefined : this.sinks[ref % this.sinks.length];
  }

  source(ref: number): ModelSource<Source> | undefined {
    return this.sources.length === 0 ? undefined : this.sources[ref % this.sources.length];
  }

  /** The meta a create operation asks for. */
  meta(op: Extract<SnapshotOperation, { op: 'create' }>): SnapshotMeta {
    const index = Math.max(1, (this.latest()?.meta.index ?? this.highestIndex) + op.indexStep);
    return { index, term: op.term, membership: op.membership };
  }

  /** The label the next sink gets. */
  nextLabel(): number {
    return this.labels + 1;
  }

  created(meta: SnapshotMeta, handle: Sink): void {
    this.labels++;
    this.highestIndex = Math.max(this.highestIndex, meta.index);
    this.sinks.push({ label: this.labels, meta, handle, chunks: [] });
  }

  /** Records a chunk the store accepted (a copy: the caller's buffer is reused after). */
  wrote(sink: ModelSink<Sink>, chunk: Uint8Array): void {
    sink.chunks.push(chunk.slice());
  }

  committedSink(sink: ModelSink<Sink>): void {
    this.forget(sink);
    this.committed.push({ label: sink.label, meta: sink.meta, content: concat(sink.chunks) });
  }

  /** An aborted sink, or one lost in a reopen: as if `create` had never been called. */
  forget(sink: ModelSink<Sink>): void {
    this.sinks.splice(this.sinks.indexOf(sink), 1);
  }

  /**
   * What `open()` must return: the committed snapshot with the highest index, of those with
   * that index the one committed last; undefined when none was committed.
   */
  latest(): ModelSnapshot | undefined {
    let best: ModelSnapshot | undefined;
    for (const s of this.committed)
      if (best === undefined || s.meta.index >= best.meta.index) best = s;
    return best;
  }

  held(handle: Source, snapshot: ModelSnapshot): void {
    this.sources.push({ handle, snapshot });
  }

  released(source: ModelSource<Source>): void {
    this.sources.splice(this.sources.indexOf(source), 1);
  }

  /** A reopen: open sinks are gone (aborted or lost), held sources were closed. */
  reopened(): void {
    this.sinks.length = 0;
    this.sources.length = 0;
  }
}

/** The `[offset, offset + length)` a read spec asks of a snapshot of `size` bytes. */
export function resolveRead(spec: ReadSpec, size: number): { offset: number; length: number } {
  if (spec.past) return { offset: size + 1 + (spec.offset % 4), length: spec.length };
  return { offset: spec.offset % (size + 1), length: spec.length };
}
