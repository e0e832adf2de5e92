/**
 * The StableStore of a prefix: the HardState in the `P hard` hash, written by one script with
 * one HSET of every field, so a reader never sees a term without its vote.
 */
import type { HardState, StableStore } from '@raft/core';
import { StorageError } from '@raft/core';
import { SAVE_HARD_STATE } from './lua-scripts.js';
import type { RedisLink } from './redis-link.js';

/** The stable store of one prefix (see the module comment). */
export class RedisStableStore implements StableStore {
  private closed = false;

  constructor(private readonly link: RedisLink) {}

  /** Also reopens a closed store (a node restarted on the same stores loads first). */
  async load(): Promise<HardState | null> {
    this.link.check('load()');
    this.closed = false;
    this.link.storeOpened('stable');
    const reply = await this.link.call('load()', 'HMGET', [
      this.link.keys.hardState,
      'term',
      'voted',
      'votedFor',
      'commit',
    ]);
    const [term, voted, votedFor, commit] = Array.isArray(reply) ? (reply as unknown[]) : [];
    if (term === null || term === undefined) return null;
    const state: HardState = {
      term: Number(term),
      votedFor: voted === '1' ? String(votedFor ?? '') : null,
      commit: Number(commit),
    };
    if (
      !(Number.isSafeInteger(state.term) && state.term >= 0) ||
      !(Number.isSafeInteger(state.commit) && state.commit >= 0) ||
      (voted !== '1' && voted !== '0') ||
      (voted === '1' && typeof votedFor !== 'string')
    ) {
      throw new StorageError(
        `load(): the hard state in Redis is corrupt (term ${String(term)}, voted ${String(voted)}, commit ${String(commit)})`,
      );
    }
    return state;
  }

  async save(state: HardState): Promise<void> {
    if (this.closed) throw new StorageError('save(): the stable store is closed');
    const { term, votedFor, commit } = state;
    if (
      !(Number.isSafeInteger(term) && term >= 0) ||
      !(Number.isSafeInteger(commit) && commit >= 0) ||
      !(votedFor === null || typeof votedFor === 'string')
    ) {
      throw new StorageError(
        `save(): not a valid hard state (term ${term}, votedFor ${String(votedFor)}, commit ${commit}); nothing was stored`,
      );
    }
    const { keys, holder } = this.link;
    await this.link.script(
      'save()',
      SAVE_HARD_STATE,
      [keys.lock, keys.hardState],
      [holder, String(term), votedFor === null ? '0' : '1', votedFor ?? '', String(commit)],
    );
  }

  async close(): Promise<void> {
    this.closed = true;
    this.link.storeClosed('stable');
  }
}
