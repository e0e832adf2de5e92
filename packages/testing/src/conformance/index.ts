/**
 * `@raft/testing/conformance`: the contract of each storage and transport interface of
 * `@raft/core` as framework-agnostic lists of named cases. An adapter supplies a harness (how to
 * create, reopen and clean up its store, or how to create its transport on a network) and runs
 * the cases with {@link runConformance}, with one `describe…Conformance(harness)` call from
 * `@raft/testing/vitest`, or case by case from any other test framework.
 *
 * Each store suite ends with a property case: fast-check sequences of operations, each over a
 * fresh storage from the harness, checked against a reference model. A failure is a
 * {@link ConformancePropertyError} whose message gives the shrunk sequence and the seed and
 * path that replay it (the harness's `propertySeed` and `propertyPath`); `propertyRuns` sets
 * how many sequences a check runs.
 *
 * The transport cases that need more than the basic contract (a restart at the same address,
 * cluster ids, secrets, raw connections to the listener) run only against a harness that
 * declares the feature in `features`; against any other harness they are left out, neither
 * passed nor skipped, and the report lists them as not applicable.
 *
 * Every export is listed by name: this file is the reviewed public surface.
 */
export type { ConformanceCase, NamedHarness } from './conformance-case.js';
export type { PropertyCounterexample } from './conformance-error.js';
export { ConformanceError, ConformancePropertyError } from './conformance-error.js';
export type {
  CrashConsistencyOptions,
  CrashConsistencyReport,
  CrashStorage,
  CrashStores,
} from './crash-consistency.js';
export { checkCrashConsistency } from './crash-consistency.js';
export type { LogStoreHarness, LogStoreHarnessInstance } from './log-store.js';
export { logStoreConformanceCases } from './log-store.js';
export type {
  ConformanceOptions,
  ConformanceReport,
  ConformanceResult,
  ConformanceStatus,
} from './run-conformance.js';
export { formatConformanceReport, runConformance } from './run-conformance.js';
export type { SnapshotStoreHarness, SnapshotStoreHarnessInstance } from './snapshot-store.js';
export { snapshotStoreConformanceCases } from './snapshot-store.js';
export type { StableStoreHarness, StableStoreHarnessInstance } from './stable-store.js';
export { stableStoreConformanceCases } from './stable-store.js';
export type { StoreHarness, StoreHarnessInstance } from './store-session.js';
export type {
  RawConnection,
  TransportEndpoint,
  TransportEndpointOptions,
  TransportFabric,
  TransportFeatures,
  TransportHarness,
} from './transport.js';
export { transportConformanceCases } from './transport.js';
