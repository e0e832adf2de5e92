/**
 * `@raft/core/engine`: the pure, synchronous Raft engine for users who drive their own I/O
 * (etcd-style). Most users want `createRaftNode` from `@raft/core` instead.
 */
export type {
  BasicStatus,
  EngineConfig,
  EngineStatus,
  InitialState,
  ProgressStatus,
  SnapshotRequest,
} from './raft.js';
export { RawNode, validateEngineConfig } from './raw-node.js';
export type { Ready, Role, SnapshotInstall, SoftState } from './ready.js';
export { isEmptyReady } from './ready.js';
