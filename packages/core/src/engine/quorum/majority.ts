/**
 * Majority quorums (§5.2, §5.3). Joint quorums (membership changes) are not supported yet.
 */
import type { LogIndex, NodeId } from '../../types.js';

/** Outcome of a vote count. */
export type VoteResult = 'pending' | 'won' | 'lost';

/** The size of a majority of `n` voters. */
export function majority(n: number): number {
  return Math.floor(n / 2) + 1;
}

/**
 * The highest index acknowledged by a majority of `voters` (etcd `CommittedIndex`):
 * sort the match indexes descending and take the one at position majority - 1.
 */
export function committedIndex(
  voters: readonly NodeId[],
  matchOf: (id: NodeId) => LogIndex,
): LogIndex {
  const n = voters.length;
  if (n === 0) return 0;
  // Called on every acknowledgement: insertion sort into a reused buffer (clusters are small),
  // descending, no allocation.
  if (scratch.length < n) scratch = new Array<number>(n);
  const matches = scratch;
  for (let i = 0; i < n; i++) {
    const m = matchOf(voters[i] as NodeId);
    let j = i;
    while (j > 0 && (matches[j - 1] as number) < m) {
      matches[j] = matches[j - 1] as number;
      j--;
    }
    matches[j] = m;
  }
  return matches[majority(n) - 1] as number;
}

let scratch: number[] = new Array<number>(8);

/** Tallies votes among `voters`: won once a majority granted, lost once a majority is out of
 *  reach. */
export function voteResult(
  voters: readonly NodeId[],
  votes: ReadonlyMap<NodeId, boolean>,
): VoteResult {
  let granted = 0;
  let rejected = 0;
  for (const id of voters) {
    const v = votes.get(id);
    if (v === true) granted++;
    else if (v === false) rejected++;
  }
  const need = majority(voters.length);
  if (granted >= need) return 'won';
  if (voters.length - rejected < need) return 'lost';
  return 'pending';
}
