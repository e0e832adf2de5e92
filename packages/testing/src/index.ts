/**
 * @raft/testing: a deterministic simulator for @raft/core (virtual time, seeded faults,
 * crashes that lose unsynced writes) and the safety checkers that watch it.
 */
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
