/**
 * @raft/testing: a deterministic simulator for @raft/core (virtual time, seeded faults,
 * crashes that lose unsynced writes), the safety checkers that watch it, and a
 * linearizability checker for client histories.
 */
export type {
  KvAckOutput,
  KvCasOutput,
  KvInput,
  KvOutput,
  KvState,
  KvValueOutput,
  RegisterInput,
  RegisterOutput,
  RegisterState,
} from './checkers/kv-model.js';
export { kvModel, registerModel } from './checkers/kv-model.js';
export type {
  LinearizabilityCounterexample,
  LinearizabilityOptions,
  LinearizabilityResult,
  Model,
  Operation,
} from './checkers/linearizability.js';
export {
  checkLinearizability,
  DEFAULT_LINEARIZABILITY_MAX_STEPS,
} from './checkers/linearizability.js';
export type {
  CommandInfo,
  DurableView,
  SafetyCheckerOptions,
  Violation,
} from './checkers/safety.js';
export { hashBytes, SafetyChecker, SafetyViolation } from './checkers/safety.js';
export type {
  ScenarioConfig,
  ScenarioKnobs,
  ScenarioProfile,
  ScenarioReport,
  ScenarioStateMachine,
} from './sim/cluster.js';
export { runScenario, SCENARIO_PROFILES, ScenarioFailure } from './sim/cluster.js';
export { Prng } from './sim/prng.js';
export type {
  EventGroup,
  EventHandle,
  FlushMode,
  RunResult,
  RunStopReason,
  SchedulerOptions,
} from './sim/scheduler.js';
export { Scheduler } from './sim/scheduler.js';
export type { SimClockOptions } from './sim/sim-clock.js';
export { SimClock } from './sim/sim-clock.js';
export type {
  SimDiskOperation,
  SimDiskOptions,
  SimDiskSnapshot,
  SimDiskStores,
} from './sim/sim-disk.js';
export { SimDisk } from './sim/sim-disk.js';
export type {
  DropReason,
  NetworkFaults,
  NetworkStats,
  SendListener,
  SimNetworkOptions,
  SimTransport,
} from './sim/sim-network.js';
export { SimNetwork } from './sim/sim-network.js';
