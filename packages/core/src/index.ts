/**
 * @raft/core: a Raft consensus engine with a runtime around it. Transport- and
 * storage-agnostic, no runtime dependencies, no Node-only modules.
 *
 * Every export is listed by name: this file is the reviewed public surface.
 */

// Wire codec (shared by the TCP and WebSocket transports)
export type { DecodeLimits } from './codec.js';
export { CODEC_VERSION, decodeMessage, encodeMessage } from './codec.js';
// Command codecs to start with
export { jsonCodec, utf8Codec } from './command-codecs.js';
// Runtime
export type { FollowerProposals, RaftNodeOptions } from './config.js';
export { DEFAULT_OPTIONS, validateOptions } from './config.js';
export type { ProgressStatus } from './engine/raft.js';
export type { Role } from './engine/ready.js';
// Errors
export type {
  ProposalOutcome,
  RaftErrorClasses,
  RaftErrorCode,
  RaftErrorInit,
  RaftErrorOf,
  RaftErrorOptions,
} from './errors.js';
export {
  ApplyError,
  CodecError,
  ConfigError,
  LeadershipLostError,
  MembershipChangeInProgressError,
  NotLeaderError,
  RaftError,
  StorageError,
  TimeoutError,
} from './errors.js';
// Interfaces implemented by users and adapters
export type { Clock, Random, TimerHandle } from './interfaces/clock.js';
export type { LogBounds, LogStore } from './interfaces/log-store.js';
export type { SnapshotSink, SnapshotSource, SnapshotStore } from './interfaces/snapshot-store.js';
export type { StableStore } from './interfaces/stable-store.js';
export type {
  ApplyContext,
  CommandCodec,
  MaybePromise,
  SnapshotChunks,
  StateMachine,
} from './interfaces/state-machine.js';
export type { RaftStores } from './interfaces/stores.js';
export type { Transport, TransportHandlers } from './interfaces/transport.js';
export type { Logger } from './logger.js';
export { noopLogger } from './logger.js';
// Membership encoding (shared by adapters and tools that read logs)
export { decodeMembership, encodeMembership } from './membership.js';
// In-memory implementations for tests and embedding
export { MemoryLogStore } from './memory/memory-log-store.js';
export { MemoryNetwork } from './memory/memory-network.js';
export type { MemorySnapshotStoreOptions } from './memory/memory-snapshot-store.js';
export { MemorySnapshotStore } from './memory/memory-snapshot-store.js';
export { MemoryStableStore } from './memory/memory-stable-store.js';
export type {
  AppendMessage,
  AppendResponseMessage,
  Envelope,
  HeartbeatMessage,
  HeartbeatResponseMessage,
  InstallSnapshotMessage,
  InstallSnapshotResponseMessage,
  ProposeMessage,
  ProposeRejection,
  ProposeResponseMessage,
  RaftMessage,
  RaftMessageType,
  ReadIndexMessage,
  ReadIndexResponseMessage,
  TimeoutNowMessage,
  VoteMessage,
  VoteResponseMessage,
} from './messages.js';
export type { RaftEvent, RaftEventListener } from './runtime/events.js';
export type { TransferOptions, TransferResult } from './runtime/leadership-transfer.js';
export type { MembershipCallOptions, PromoteOptions } from './runtime/membership-changes.js';
export type {
  AbortSignalLike,
  CallOptions,
  LeaderInfo,
  ProposeResult,
  RaftNode,
  RaftNodeState,
  RaftStatus,
} from './runtime/raft-node.js';
export { createRaftNode } from './runtime/raft-node.js';
export type { ReadConsistency, ReadOptions, ReadResult } from './runtime/reads.js';
export type { WriteSnapshotOptions } from './runtime/snapshot-stream.js';
export { readSnapshot, writeSnapshot } from './runtime/snapshot-stream.js';
export { systemClock } from './runtime/system-clock.js';
// Client sessions (exactly-once commands)
export type {
  ResultCodec,
  SessionOptions,
  SessionStateMachine,
} from './sessions/client-sessions.js';
export {
  DEFAULT_SESSION_OPTIONS,
  jsonResultCodec,
  withSessions,
} from './sessions/client-sessions.js';
export type {
  SessionClient,
  SessionClientOptions,
  SessionProposer,
} from './sessions/session-client.js';
export { createSessionClient } from './sessions/session-client.js';
export { sessionCodec } from './sessions/session-codec.js';
export type { SessionCommand } from './sessions/session-command.js';
export { MAX_CLIENT_ID_BYTES } from './sessions/session-command.js';
export type { SessionInfo } from './sessions/session-table.js';
// The argument checks of the storage contracts, for store adapters
export { checkLogIndex, checkLogRead, snapshotReadLength } from './store-arguments.js';
// Data types and messages
export type {
  EntryKind,
  HardState,
  LogEntry,
  LogIndex,
  Member,
  Membership,
  NodeId,
  SnapshotMeta,
  Term,
} from './types.js';
// Lanes of the Transport contract (order is kept per lane)
export type { MessageLane } from './wire/lanes.js';
export { messageLane } from './wire/lanes.js';
