/**
 * `@raft/core/engine`: the pure, synchronous Raft engine for users who drive their own I/O
 * (etcd-style). Most users want `createRaftNode` from `@raft/core` instead.
 */
export type { MembershipChange } from './configuration.js';
export { applyChange } from './configuration.js';
export type {
  BasicStatus,
  EngineConfig,
  EngineStatus,
  InitialState,
  LeaseStatus,
  ProgressStatus,
  SnapshotRequest,
} from './raft.js';
export type { ReadOutcomes } from './raw-node.js';
export { RawNode, validateEngineConfig } from './raw-node.js';
export type { ReadState } from './read-index.js';
export type { Ready, Role, SnapshotInstall, SoftState } from './ready.js';
export { isEmptyReady } from './ready.js';
