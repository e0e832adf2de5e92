/**
 * Membership changes, one server at a time (thesis §4.1).
 *
 * Each change adds, removes, promotes or demotes exactly one member, so any majority of the old
 * voters and any majority of the new voters share a node: the two configurations can never
 * elect two leaders in one term, and no joint configuration is needed. The rules that keep it
 * safe live in the engine (raft.ts):
 *
 * - a configuration takes effect as soon as it is appended, committed or not;
 * - a leader proposes a change only after it has committed an entry of its own term (the fix
 *   Ongaro published in 2015 for the single-server algorithm), and only when the previous change
 *   is committed: at most one change is in flight;
 * - a node reverts to an older configuration only when the entry of the newer one is truncated.
 */
import { RaftError } from '../errors.js';
import type { Member, Membership, NodeId } from '../types.js';

/** One single-server change. */
export type MembershipChange =
  | { readonly type: 'add'; readonly member: Member }
  | { readonly type: 'remove'; readonly id: NodeId }
  | { readonly type: 'promote'; readonly id: NodeId }
  | { readonly type: 'demote'; readonly id: NodeId };

function invalid(message: string): RaftError {
  return new RaftError('INVALID_ARGUMENT', message, { outcome: 'notApplied' });
}

function find(membership: Membership, id: NodeId): Member {
  const m = membership.members.find((x) => x.id === id);
  if (m === undefined) throw invalid(`${id} is not a member`);
  return m;
}

/**
 * The membership after `change`. Throws a RaftError with code INVALID_ARGUMENT (outcome
 * `notApplied`) when the change makes no sense here: adding a member twice (ids are never
 * reused, even after a removal), removing or promoting an unknown id, promoting a voter,
 * demoting a learner, or leaving no voter at all.
 */
export function applyChange(membership: Membership, change: MembershipChange): Membership {
  let members: Member[];
  switch (change.type) {
    case 'add': {
      const m = change.member;
      if (typeof m?.id !== 'string' || m.id.length === 0)
        throw invalid('a new member needs a non-empty string id');
      if (typeof m.address !== 'string') throw invalid(`member ${m.id} needs a string address`);
      if (typeof m.voter !== 'boolean') throw invalid(`member ${m.id} needs a boolean voter`);
      if (membership.members.some((x) => x.id === m.id))
        throw invalid(`${m.id} is already a member`);
      members = [...membership.members, { id: m.id, address: m.address, voter: m.voter }];
      break;
    }
    case 'remove':
      find(membership, change.id);
      members = membership.members.filter((x) => x.id !== change.id);
      break;
    case 'promote':
    case 'demote': {
      const target = find(membership, change.id);
      const voter = change.type === 'promote';
      if (target.voter === voter)
        throw invalid(`${change.id} is already a ${voter ? 'voter' : 'learner'}`);
      members = membership.members.map((x) => (x.id === change.id ? { ...x, voter } : x));
      break;
    }
    default:
      throw invalid(`unknown membership change ${String((change as { type?: unknown }).type)}`);
  }
  if (!members.some((m) => m.voter))
    throw invalid('the change would leave the cluster without a voter');
  return { members };
}
