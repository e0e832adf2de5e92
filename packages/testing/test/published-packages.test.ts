/**
 * The packages as users get them: `pnpm pack` @raft/core, @raft/testing, @raft/store-file and
 * @raft/transport-tcp,
 * install the tarballs into a scratch project outside the workspace, and use them from there
 * (a cluster, a simulation, the file store opened, locked and reopened), as ESM and as
 * CJS, from TypeScript (node16 and bundler resolution), and through publint and attw.
 *
 * Everything else in this workspace resolves @raft/* to TypeScript sources (the "@raft/source"
 * condition); this is the one test that exercises dist/, the "exports" map and the tarball's
 * file list. It builds the packages first when dist/ is missing or older than its inputs,
 * so it works before and after `pnpm build`.
 *
 * The consumer project lives in os.tmpdir() and is removed afterwards. Every child process is
 * bounded by a timeout and killed (with its process group) when it overruns; a failed step
 * throws with the command, its exit status, stdout and stderr.
 */
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunResult } from './child-process.js';
import {
  childEnv,
  describeRun as describeChild,
  killAll,
  run as runChild,
} from './child-process.js';

const PNPM = 'pnpm@10.34.9'; // shared/TOOLCHAIN.md; run through npx like .ci/run does
const NPX = process.platform === 'win32' ? 'npx.cmd' : 'npx';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const packageDirs = {
  core: join(root, 'packages', 'core'),
  testing: join(root, 'packages', 'testing'),
  'store-file': join(root, 'packages', 'store-file'),
  'transport-tcp': join(root, 'packages', 'transport-tcp'),
} as const;
type Pkg = keyof typeof packageDirs;
const PKGS: readonly Pkg[] = ['core', 'testing', 'store-file', 'transport-tcp'];
/** The registry dependencies each tarball may have (exact pins), and nothing else. */
const DEPENDENCIES: Readonly<Record<Pkg, Readonly<Record<string, string>>>> = {
  core: {},
  // The conformance suites' property cases.
  testing: { 'fast-check': '4.10.2' },
  'store-file': {},
  'transport-tcp': {},
};

// ------------------------------------------------------------------------- child processes

/**
 * The environment for children: ours minus what `pnpm test` and vitest add. npm reads
 * `npm_config_*` variables as settings, and the ones a package manager sets while running a
 * script (prefix, local_prefix, cache, ...) would point npm at the workspace; NODE_OPTIONS could
 * carry `--conditions=@raft/source` and make the consumer load TypeScript sources. Connection
 * settings stay.
 */
function consumerEnv(extra: Readonly<Record<string, string>> = {}): NodeJS.ProcessEnv {
  return childEnv(
    /^(?!npm_config_(registry|cafile|ca|proxy|https_proxy|noproxy|strict_ssl)$)(npm_|pnpm_)|^(VITEST|PNPM_PACKAGE_NAME$|PNPM_SCRIPT_SRC_DIR$|NODE_OPTIONS$)/,
    extra,
  );
}

function run(
  command: string,
  args: readonly string[],
  options: { readonly cwd: string; readonly timeoutMs: number; readonly env?: NodeJS.ProcessEnv },
): Promise<RunResult> {
  return runChild(command, args, { ...options, env: options.env ?? consumerEnv() });
}

const describeRun = (what: string, command: string, args: readonly string[], r: RunResult) =>
  describeChild(what, [command, ...args].join(' '), r);

/** Runs a command and throws (with its output) unless it exits 0. */
async function runOk(
  what: string,
  command: string,
  args: readonly string[],
  options: { readonly cwd: string; readonly timeoutMs: number; readonly env?: NodeJS.ProcessEnv },
): Promise<RunResult> {
  const r = await run(command, args, options);
  if (r.code !== 0 || r.timedOut) throw new Error(describeRun(what, command, args, r));
  return r;
}

// ------------------------------------------------------------------------------ the build

function walk(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...walk(path));
    else out.push(path);
  }
  return out;
}

/** Every "./dist/..." target of a package.json "exports" map. */
function exportTargets(value: unknown): string[] {
  if (typeof value === 'string') return value.startsWith('./dist/') ? [value] : [];
  if (typeof value !== 'object' || value === null) return [];
  return Object.values(value).flatMap(exportTargets);
}

/** dist/ is missing a target of "exports", or is older than one of its inputs. */
function needsBuild(dir: string): boolean {
  const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
    exports: unknown;
  };
  const targets = exportTargets(manifest.exports).map((t) => join(dir, t));
  if (targets.length === 0 || !targets.every((t) => existsSync(t))) return true;
  const inputs = [
    ...walk(join(dir, 'src')),
    join(dir, 'package.json'),
    join(dir, 'tsup.config.ts'),
    join(dir, 'tsconfig.json'),
    join(root, 'tsconfig.base.json'),
    join(root, 'pnpm-lock.yaml'),
  ].filter((f) => existsSync(f));
  const newestInput = Math.max(...inputs.map((f) => statSync(f).mtimeMs));
  const oldestOutput = Math.min(...walk(join(dir, 'dist')).map((f) => statSync(f).mtimeMs));
  return newestInput > oldestOutput;
}

// ------------------------------------------------------------------- the consumer project

/**
 * The runtime checks, shared by the ESM and the CJS script. Each script's header loads the
 * packages in its own module system and defines FORMAT, here, resolveFile and load.
 */
const CHECKS = `
function waitFor(what, probe, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const poll = () => {
      const value = probe();
      if (value) return resolve(value);
      if (Date.now() >= deadline) return reject(new Error('timed out after ' + timeoutMs + ' ms waiting for ' + what));
      setTimeout(poll, 10);
    };
    poll();
  });
}

/**
 * Every subpath in "exports" resolves, through this module system's condition, to a file of the
 * installed tarball (not a link into the workspace) and loads, except ./vitest, which needs the
 * optional peer vitest (not installed here).
 */
async function checkEntryPoints() {
  for (const name of ${JSON.stringify(PKGS.map((p) => `@raft/${p}`))}) {
    const dir = join(here, 'node_modules', ...name.split('/'));
    const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
    for (const [subpath, conditions] of Object.entries(manifest.exports)) {
      if (subpath === './package.json') continue;
      const id = name + subpath.slice(1);
      const target = conditions[FORMAT === 'esm' ? 'import' : 'require'].default;
      const actual = resolveFile(id);
      assert.equal(actual, join(dir, ...target.split('/')), id + ' resolved to ' + actual);
      assert.equal(realpathSync(actual), actual, id + ' is a link: expected the installed tarball');
      if (id === '@raft/testing/vitest') continue;
      const loaded = await load(id);
      assert.ok(Object.keys(loaded).length > 0, id + ' loaded without exports');
      console.log('[' + FORMAT + '] ' + id + ' -> ' + target);
    }
  }
}

function checkEngineErrorIdentity() {
  // A lone RawNode is a follower that knows no leader: propose() throws NotLeaderError.
  const solo = new RawNode(
    { id: 'solo', electionTicks: 10, heartbeatTicks: 1, random: () => 0.5 },
    { hardState: null, entries: [], applied: 0 },
  );
  let thrown = null;
  try {
    solo.propose(new Uint8Array([1]));
  } catch (err) {
    thrown = err;
  }
  assert.ok(thrown !== null, 'RawNode#propose on a follower did not throw');
  assert.ok(
    thrown.constructor === NotLeaderError,
    '@raft/core/engine threw a ' + thrown.constructor.name + ' that is not the class @raft/core exports (two copies of the module?)',
  );
  assert.ok(thrown instanceof NotLeaderError);
  assert.ok(thrown instanceof RaftError);
  assert.ok(RaftError.is(thrown, 'NO_LEADER'), 'expected code NO_LEADER, got ' + thrown.code);
  assert.equal(thrown.name, 'NotLeaderError');
  assert.equal(thrown.leaderId, null);
  assert.equal(thrown.retryable, true);
}

class KvMachine {
  constructor() {
    this.data = new Map();
  }
  apply(command) {
    const previous = this.data.has(command.key) ? this.data.get(command.key) : null;
    this.data.set(command.key, command.value);
    return previous;
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const codec = {
  encode: (command) => encoder.encode(JSON.stringify(command)),
  decode: (bytes) => JSON.parse(decoder.decode(bytes)),
};

async function checkCluster() {
  const ids = ['n1', 'n2', 'n3'];
  const membership = { members: ids.map((id) => ({ id, address: 'memory://' + id, voter: true })) };
  const network = new MemoryNetwork();
  const machines = ids.map(() => new KvMachine());
  const nodes = ids.map((id, i) =>
    createRaftNode({
      id,
      stateMachine: machines[i],
      codec,
      logStore: new MemoryLogStore(),
      stableStore: new MemoryStableStore(),
      transport: network.transport(id),
      followerProposals: 'reject',
    }),
  );
  try {
    await Promise.all(nodes.map((node) => node.start({ bootstrap: membership })));
    const leader = await waitFor('a leader', () => nodes.find((n) => n.status().role === 'leader'));
    const leaderId = leader.status().id;
    console.log('[' + FORMAT + '] ' + leaderId + ' is the leader of term ' + leader.status().term);

    const first = await leader.propose({ key: 'color', value: 'blue' });
    assert.equal(first.result, null);
    assert.equal(first.term, leader.status().term);
    assert.ok(first.index >= 2, 'index ' + first.index + ': the bootstrap membership is entry 1');
    const second = await leader.propose({ key: 'color', value: 'green' });
    assert.equal(second.result, 'blue');
    assert.equal(second.index, first.index + 1);
    console.log('[' + FORMAT + '] committed at indexes ' + first.index + ' and ' + second.index);

    const follower = await waitFor('a follower that knows the leader', () =>
      nodes.find((n) => n !== leader && n.status().leaderId === leaderId),
    );
    const rejection = await follower.propose({ key: 'color', value: 'red' }).then(
      () => assert.fail('a follower in reject mode accepted a proposal'),
      (err) => err,
    );
    assert.ok(RaftError.is(rejection, 'NOT_LEADER'), 'expected NOT_LEADER, got ' + String(rejection && rejection.stack));
    assert.ok(rejection instanceof NotLeaderError);
    assert.equal(rejection.leaderId, leaderId);
    assert.equal(rejection.retryable, true);

    await waitFor('every replica to apply index ' + second.index, () =>
      nodes.every((n) => n.status().appliedIndex >= second.index),
    );
    for (const machine of machines) assert.equal(machine.data.get('color'), 'green');
  } finally {
    await Promise.all(nodes.map((node) => node.stop()));
  }
  for (const node of nodes) assert.equal(node.state, 'stopped');
}

async function checkTesting() {
  // @raft/testing's build imports @raft/core (a peer, never bundled): a short simulation run
  // goes through both.
  const report = await runScenario({ seed: 1, nodes: 3, steps: 200 });
  assert.equal(report.seed, 1);
  assert.equal(report.nodes, 3);
  assert.ok(report.leaders >= 1, 'no leader in the simulation');
  const a = new Prng(42);
  const b = new Prng(42);
  assert.equal(a.next(), b.next());
}

async function checkFileStore() {
  // The adapter loads against the installed @raft/core (a peer): its errors are core's classes.
  const { openFileStores, DirectoryLockedError } = await load('@raft/store-file');
  const dir = join(here, 'file-store-' + FORMAT);
  const stores = await openFileStores({ dir });
  await stores.logStore.open();
  await stores.logStore.append([{ index: 1, term: 1, kind: 'command', data: new Uint8Array([7]) }]);
  await stores.stableStore.save({ term: 1, votedFor: 'n1', commit: 1 });
  const locked = await openFileStores({ dir }).catch((err) => err);
  assert.ok(locked instanceof DirectoryLockedError, 'a second open was not refused');
  assert.ok(RaftError.is(locked, 'STORAGE'), 'DirectoryLockedError is not a @raft/core StorageError');
  await stores.close();
  const again = await openFileStores({ dir });
  assert.deepEqual(await again.logStore.open(), { firstIndex: 1, lastIndex: 1 });
  const [entry] = await again.logStore.read(1, 2);
  assert.deepEqual([...entry.data], [7]);
  assert.deepEqual(await again.stableStore.load(), { term: 1, votedFor: 'n1', commit: 1 });
  await again.close();
}

async function checkTcpTransport() {
  // The adapter and @raft/core/wire load against the installed @raft/core: one copy of it.
  const { createTcpTransport } = await load('@raft/transport-tcp');
  const bad = (() => {
    try {
      createTcpTransport({ id: 'n1', listen: 'nowhere' });
    } catch (err) {
      return err;
    }
  })();
  assert.ok(bad instanceof ConfigError, 'a bad option did not throw @raft/core ConfigError');
  const received = [];
  const a = createTcpTransport({ id: 'n1', listen: '127.0.0.1:0' });
  const b = createTcpTransport({ id: 'n2', listen: '127.0.0.1:0' });
  await a.start({ onMessage: () => {} });
  await b.start({ onMessage: (m) => received.push(m) });
  a.setPeers([{ id: 'n2', address: b.address, voter: true }]);
  const data = new Uint8Array([1, 2, 3]);
  await waitFor('an append over TCP', () => {
    a.send([{ type: 'append', from: 'n1', to: 'n2', term: 1, prevIndex: 0, prevTerm: 0, entries: [{ index: 1, term: 1, kind: 'command', data }], commit: 0 }]);
    return received.length > 0;
  });
  assert.deepEqual([...received[0].entries[0].data], [1, 2, 3]);
  assert.ok(a.stats().peers[0].messagesSent >= 1);
  await a.close();
  await b.close();
}

async function main() {
  await checkEntryPoints();
  checkEngineErrorIdentity();
  await checkCluster();
  await checkTesting();
  await checkFileStore();
  await checkTcpTransport();
}

// Exit 0 only after every check passed and every node stopped; never hang.
process.exitCode = 1;
const watchdog = setTimeout(() => {
  console.error('[' + FORMAT + '] watchdog: still running after 20 s');
  process.exit(2);
}, 20000);
main().then(
  () => {
    clearTimeout(watchdog);
    process.exitCode = 0;
    console.log('[' + FORMAT + '] consumer checks passed');
    // Stopped nodes hold no timers: the process must now exit by itself.
    setTimeout(() => {
      console.error('[' + FORMAT + '] handles still open 3 s after stop()');
      process.exit(3);
    }, 3000).unref();
  },
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
`;

const ESM_SCRIPT = `import assert from 'node:assert/strict';
import { readFileSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  ConfigError,
  createRaftNode,
  MemoryLogStore,
  MemoryNetwork,
  MemoryStableStore,
  NotLeaderError,
  RaftError,
} from '@raft/core';
import { RawNode } from '@raft/core/engine';
import { Prng, runScenario } from '@raft/testing';

const FORMAT = 'esm';
const here = realpathSync(fileURLToPath(new URL('.', import.meta.url)));
const resolveFile = (id) => fileURLToPath(import.meta.resolve(id));
const load = (id) => import(id);
${CHECKS}`;

const CJS_SCRIPT = `'use strict';
const assert = require('node:assert/strict');
const { readFileSync, realpathSync } = require('node:fs');
const { join } = require('node:path');
const {
  ConfigError,
  createRaftNode,
  MemoryLogStore,
  MemoryNetwork,
  MemoryStableStore,
  NotLeaderError,
  RaftError,
} = require('@raft/core');
const { RawNode } = require('@raft/core/engine');
const { Prng, runScenario } = require('@raft/testing');

const FORMAT = 'cjs';
const here = realpathSync(__dirname);
const resolveFile = (id) => require.resolve(id);
const load = async (id) => require(id);
${CHECKS}`;

/**
 * A TypeScript consumer, type-checked only. It uses no host APIs, so it compiles with
 * `"types": []`: the published declarations need no @types/node. The `@ts-expect-error` lines
 * prove the types are precise (an `any` would make them fail as unused).
 */
const TS_CONSUMER = `import type {
  CommandCodec,
  Membership,
  ProposeResult,
  RaftErrorCode,
  RaftNode,
  RaftNodeOptions,
  RaftStatus,
  StateMachine,
} from '@raft/core';
import {
  createRaftNode,
  MemoryLogStore,
  MemoryNetwork,
  MemoryStableStore,
  NotLeaderError,
  RaftError,
} from '@raft/core';
import type { EngineConfig, InitialState, Ready, Role } from '@raft/core/engine';
import { isEmptyReady, RawNode } from '@raft/core/engine';
import type { ScenarioConfig, ScenarioReport } from '@raft/testing';
import { Prng, runScenario } from '@raft/testing';

interface Command {
  readonly key: string;
  readonly value: string;
}

class Kv implements StateMachine<Command, string | null> {
  readonly data = new Map<string, string>();
  apply(command: Command): string | null {
    const previous = this.data.get(command.key) ?? null;
    this.data.set(command.key, command.value);
    return previous;
  }
}

declare const codec: CommandCodec<Command>;

export const membership: Membership = {
  members: [{ id: 'n1', address: 'memory://n1', voter: true }],
};

export function makeNode(id: string, network: MemoryNetwork): RaftNode<Command, string | null> {
  const options: RaftNodeOptions<Command, string | null> = {
    id,
    stateMachine: new Kv(),
    codec,
    logStore: new MemoryLogStore(),
    stableStore: new MemoryStableStore(),
    transport: network.transport(id),
    followerProposals: 'reject',
  };
  return createRaftNode(options);
}

export async function put(node: RaftNode<Command, string | null>): Promise<string | null> {
  try {
    const done: ProposeResult<string | null> = await node.propose({ key: 'k', value: 'v' });
    return done.result;
  } catch (err) {
    if (err instanceof NotLeaderError) return err.leaderId;
    if (RaftError.is(err, 'TIMEOUT')) {
      const code: RaftErrorCode = err.code;
      return code;
    }
    throw err;
  }
}

export function role(node: RaftNode<Command, string | null>): Role {
  const status: RaftStatus = node.status();
  return status.role;
}

export function drive(config: EngineConfig, initial: InitialState): number {
  const node = new RawNode(config, initial);
  node.tick();
  if (!node.hasReady()) return 0;
  const rd: Ready = node.ready();
  const work = isEmptyReady(rd) ? 0 : rd.entries.length + rd.messages.length;
  node.advance(rd);
  return work;
}

export function scenario(seed: number): Promise<ScenarioReport> {
  const config: ScenarioConfig = { seed, nodes: 3, steps: 100 };
  return runScenario(config);
}

export const draw: number = new Prng(7).next();

// @ts-expect-error 'BOGUS' is not a RaftErrorCode
export const bogus: RaftErrorCode = 'BOGUS';

export function wrongCommand(node: RaftNode<Command, string | null>): void {
  // @ts-expect-error propose() takes a Command
  void node.propose(42);
}
`;

/** The same from a CommonJS module (node16 only): resolves through the "require" condition. */
const CTS_CONSUMER = `import { NotLeaderError, RaftError } from '@raft/core';
import { RawNode } from '@raft/core/engine';
import { Prng } from '@raft/testing';

export function isNotLeader(err: unknown): err is NotLeaderError {
  return RaftError.is(err, 'NOT_LEADER') || RaftError.is(err, 'NO_LEADER');
}

export type Engine = RawNode;

export const draw: number = new Prng(1).next();
`;

function tsconfig(mode: 'node16' | 'bundler'): string {
  const compilerOptions =
    mode === 'node16'
      ? { module: 'node16', moduleResolution: 'node16' }
      : { module: 'esnext', moduleResolution: 'bundler' };
  return JSON.stringify(
    {
      compilerOptions: {
        ...compilerOptions,
        target: 'ES2022',
        lib: ['ES2022'],
        strict: true,
        noEmit: true,
        // Check the published declarations too, not only our use of them.
        skipLibCheck: false,
        types: [],
      },
      files: mode === 'node16' ? ['consumer.ts', 'consumer-cjs.cts'] : ['consumer.ts'],
    },
    null,
    2,
  );
}

// ------------------------------------------------------------------------------ the suite

interface Packed {
  readonly tarball: string;
  readonly files: readonly string[];
  /** Where npm installed it in the consumer project. */
  readonly installed: string;
}

let work = '';
let consumer = '';
const packed = {} as Record<Pkg, Packed>;

/** The package.json as installed from the tarball. */
function installedManifest(
  pkg: Pkg,
): Record<string, unknown> & { exports: Record<string, unknown> } {
  return JSON.parse(readFileSync(join(packed[pkg].installed, 'package.json'), 'utf8'));
}

/** A tool from the workspace root's node_modules (never downloaded). */
function nodeTool(relativePath: string): string {
  const path = join(root, 'node_modules', relativePath);
  if (!existsSync(path)) throw new Error(`${path} is missing: run pnpm install at the root`);
  return path;
}

describe('published packages (packed tarballs installed outside the workspace)', () => {
  beforeAll(async () => {
    work = realpathSync(mkdtempSync(join(tmpdir(), 'raft-published-')));
    const packs = join(work, 'packs');
    consumer = join(work, 'consumer');
    mkdirSync(packs);
    mkdirSync(consumer);

    if (PKGS.some((p) => needsBuild(packageDirs[p]))) {
      await runOk(
        'build',
        NPX,
        ['--yes', PNPM, ...PKGS.flatMap((p) => ['--filter', `@raft/${p}`]), 'build'],
        { cwd: root, timeoutMs: 150_000 },
      );
    }

    const tarballs: string[] = [];
    for (const pkg of PKGS) {
      const args = ['--yes', PNPM, 'pack', '--pack-destination', packs, '--json'];
      const r = await runOk(`pnpm pack (${pkg})`, NPX, args, {
        cwd: packageDirs[pkg],
        timeoutMs: 60_000,
      });
      const json = r.stdout.slice(r.stdout.indexOf('{'), r.stdout.lastIndexOf('}') + 1);
      const report = JSON.parse(json) as {
        name: string;
        filename: string;
        files: { path: string }[];
      };
      expect(report.name).toBe(`@raft/${pkg}`);
      const tarball = isAbsolute(report.filename) ? report.filename : join(packs, report.filename);
      expect(existsSync(tarball), tarball).toBe(true);
      tarballs.push(tarball);
      packed[pkg] = {
        tarball,
        files: report.files.map((f) => f.path).sort(),
        installed: join(consumer, 'node_modules', '@raft', pkg),
      };
    }

    writeFileSync(
      join(consumer, 'package.json'),
      `${JSON.stringify({ name: 'raft-consumer', private: true, type: 'module' }, null, 2)}\n`,
    );
    writeFileSync(join(consumer, 'cluster.mjs'), ESM_SCRIPT);
    writeFileSync(join(consumer, 'cluster.cjs'), CJS_SCRIPT);
    writeFileSync(join(consumer, 'consumer.ts'), TS_CONSUMER);
    writeFileSync(join(consumer, 'consumer-cjs.cts'), CTS_CONSUMER);
    writeFileSync(join(consumer, 'tsconfig.node16.json'), tsconfig('node16'));
    writeFileSync(join(consumer, 'tsconfig.bundler.json'), tsconfig('bundler'));

    // The tarballs' only registry dependency is @raft/testing's fast-check (vitest is an
    // optional peer): an offline install works once npm's cache has it, and otherwise falls
    // back to an online install (the npm registry is reachable where this runs), saying so.
    const install = ['install', '--no-audit', '--no-fund', '--no-update-notifier'];
    const env = consumerEnv({ npm_config_cache: join(work, 'npm-cache') });
    const offline = await run('npm', [...install, '--offline', ...tarballs], {
      cwd: consumer,
      timeoutMs: 90_000,
      env,
    });
    if (offline.code !== 0 || offline.timedOut) {
      console.warn(
        `${describeRun('npm install --offline', 'npm', [...install, '--offline', ...tarballs], offline)}\n(retrying online)`,
      );
      await runOk('npm install', 'npm', [...install, ...tarballs], {
        cwd: consumer,
        timeoutMs: 90_000,
        env,
      });
    }
    for (const pkg of PKGS)
      expect(existsSync(join(packed[pkg].installed, 'package.json'))).toBe(true);
  }, 240_000);

  afterAll(() => {
    killAll();
    if (work !== '') rmSync(work, { recursive: true, force: true });
  });

  it('packed manifests carry the publishing metadata and no workspace: ranges', () => {
    const manifests = {} as Record<Pkg, Record<string, unknown>>;
    for (const pkg of PKGS) {
      const text = readFileSync(join(packed[pkg].installed, 'package.json'), 'utf8');
      expect(text, `${pkg}: pnpm pack must rewrite workspace: ranges`).not.toContain('workspace:');
      const manifest = JSON.parse(text) as Record<string, unknown>;
      manifests[pkg] = manifest;
      expect(manifest.name).toBe(`@raft/${pkg}`);
      expect(manifest.license).toBe('MIT');
      expect(manifest.repository).toEqual({
        type: 'git',
        url: 'git+https://github.com/raft-ts/raft.git',
        directory: `packages/${pkg}`,
      });
      expect(manifest.homepage).toBe(
        `https://github.com/raft-ts/raft/tree/main/packages/${pkg}#readme`,
      );
      expect(manifest.bugs).toEqual({ url: 'https://github.com/raft-ts/raft/issues' });
      expect(manifest.keywords).toEqual(expect.arrayContaining(['raft', 'consensus']));
      expect(manifest.private).toBeUndefined();
      expect(manifest.dependencies ?? {}).toEqual(DEPENDENCIES[pkg]);
    }
    for (const adapter of ['store-file', 'transport-tcp'] as const) {
      expect(manifests[adapter].peerDependencies).toEqual({
        '@raft/core': `^${String(manifests.core.version)}`,
      });
    }
    expect(manifests.testing.peerDependencies).toEqual({
      '@raft/core': `^${String(manifests.core.version)}`,
      vitest: '>=3.0.0 <5',
    });
    expect(manifests.testing.peerDependenciesMeta).toEqual({ vitest: { optional: true } });
  });

  it('tarballs carry LICENSE, README, dist and src, and nothing test-only', () => {
    for (const pkg of PKGS) {
      const files = packed[pkg].files;
      expect(files).toEqual(
        expect.arrayContaining(['LICENSE', 'README.md', 'package.json', 'dist/index.js']),
      );
      expect(files.some((f) => f.startsWith('src/'))).toBe(true);
      const testOnly = files.filter((f) =>
        /(^|\/)(test|tests|__tests__|fixtures)\/|\.(test|spec|bench)\.[cm]?[jt]s$|(^|\/)(vitest|tsup)\.config\.|(^|\/)tsconfig[^/]*\.json$|\.tsbuildinfo$/.test(
          f,
        ),
      );
      expect(testOnly, `${pkg} ships test-only files`).toEqual([]);
      const license = readFileSync(join(packed[pkg].installed, 'LICENSE'), 'utf8');
      expect(license).toContain('MIT License');
      expect(license).toContain('Copyright (c) 2026 the raft contributors');
    }
    // @raft/core is a peer of @raft/testing and of the adapters: its classes must not be
    // bundled into them.
    for (const pkg of ['testing', 'store-file', 'transport-tcp'] as const) {
      for (const file of packed[pkg].files.filter((f) => /^dist\/.*\.[cm]?js$/.test(f))) {
        const code = readFileSync(join(packed[pkg].installed, file), 'utf8');
        expect(code, `${pkg}/${file} bundles @raft/core`).not.toMatch(/class RaftError\b/);
      }
    }
  });

  it('source maps point at the shipped src instead of embedding it', () => {
    for (const pkg of PKGS) {
      const { installed, files } = packed[pkg];
      const maps = files.filter((f) => f.endsWith('.map'));
      expect(maps.length, `${pkg} ships no source maps`).toBeGreaterThan(0);
      // An entry that only re-exports a shared chunk has a map with no sources; the rest point
      // at src/ files that are in the tarball.
      let sourcesSeen = 0;
      for (const map of maps) {
        const json = JSON.parse(readFileSync(join(installed, map), 'utf8')) as {
          file?: string;
          sources: string[];
        };
        expect('sourcesContent' in json, `${map} embeds its sources (sourcesContent)`).toBe(false);
        if (json.file !== undefined) expect(isAbsolute(json.file), `${map}: file`).toBe(false);
        sourcesSeen += json.sources.length;
        for (const source of json.sources) {
          expect(isAbsolute(source), `${map} names an absolute source ${source}`).toBe(false);
          const target = resolve(dirname(join(installed, map)), source);
          const inPackage = relative(installed, target);
          expect(inPackage.startsWith(`..${sep}`), `${map}: ${source} is outside the package`).toBe(
            false,
          );
          expect(files, `${map}: ${source} is not in the tarball`).toContain(
            inPackage.split(sep).join('/'),
          );
        }
      }
      expect(sourcesSeen, `${pkg}: no source map names a source`).toBeGreaterThan(0);
    }
  });

  for (const script of ['cluster.mjs', 'cluster.cjs']) {
    it(`${script}: a 3-node cluster, errors and instanceof across entry points`, async () => {
      const r = await runOk(`node ${script}`, process.execPath, [script], {
        cwd: consumer,
        timeoutMs: 30_000,
      });
      expect(r.stdout).toContain('consumer checks passed');
      // It loaded every entry point of both packages (./vitest needs the optional peer vitest).
      const format = script.endsWith('.mjs') ? 'esm' : 'cjs';
      for (const pkg of PKGS) {
        for (const subpath of Object.keys(installedManifest(pkg).exports)) {
          if (subpath === './package.json' || subpath === './vitest') continue;
          expect(r.stdout).toContain(`[${format}] @raft/${pkg}${subpath.slice(1)} -> ./dist/`);
        }
      }
    }, 45_000);
  }

  for (const mode of ['node16', 'bundler'] as const) {
    it(`TypeScript consumer type-checks with moduleResolution ${mode}`, async () => {
      const tsc = nodeTool('typescript/bin/tsc');
      const args = [tsc, '-p', `tsconfig.${mode}.json`, '--listFiles'];
      const r = await runOk(`tsc (${mode})`, process.execPath, args, {
        cwd: consumer,
        timeoutMs: 60_000,
      });
      const prefix = `${consumer.split(sep).join('/')}/node_modules/`;
      const ours = r.stdout
        .split(/\r?\n/)
        .map((line) => line.trim().split(sep).join('/'))
        .filter((line) => line.startsWith(`${prefix}@raft/`))
        .map((line) => line.slice(prefix.length))
        .sort();
      // Types come from dist/, through the condition each module system uses; never from src/.
      const expected = ['@raft/core/dist/index.d.ts', '@raft/testing/dist/index.d.ts'];
      if (mode === 'node16') {
        expected.push('@raft/core/dist/index.d.cts', '@raft/testing/dist/index.d.cts');
      }
      expect(ours).toEqual(expect.arrayContaining(expected));
      expect(ours.filter((f) => !/^@raft\/(core|testing)\/dist\/.*\.d\.c?ts$/.test(f))).toEqual([]);
    }, 70_000);
  }

  it('publint --strict passes on every tarball', async () => {
    const publint = nodeTool('publint/src/cli.js');
    for (const pkg of PKGS) {
      const r = await runOk(
        `publint (${pkg})`,
        process.execPath,
        [publint, 'run', packed[pkg].tarball, '--strict'],
        { cwd: work, timeoutMs: 60_000 },
      );
      expect(r.stdout).toContain('All good!');
    }
  }, 130_000);

  it('attw --profile node16 passes on every tarball', async () => {
    const attw = nodeTool('@arethetypeswrong/cli/dist/index.js');
    for (const pkg of PKGS) {
      const manifest = installedManifest(pkg);
      const args = [attw, packed[pkg].tarball, '--profile', 'node16', '--format', 'json'];
      const r = await runOk(`attw (${pkg})`, process.execPath, args, {
        cwd: work,
        timeoutMs: 60_000,
      });
      const result = JSON.parse(r.stdout) as {
        analysis: { packageName: string; entrypoints: Record<string, unknown> };
        problems?: Record<string, { resolutionKind?: string }[]>;
      };
      expect(result.analysis.packageName).toBe(`@raft/${pkg}`);
      // attw checked every subpath of "exports".
      expect(Object.keys(result.analysis.entrypoints).sort()).toEqual(
        Object.keys(manifest.exports).sort(),
      );
      // The node16 profile ignores node10 (which has no "exports" support); nothing else.
      const problems = Object.values(result.problems ?? {})
        .flat()
        .filter((p) => p.resolutionKind !== 'node10');
      expect(problems).toEqual([]);
    }
  }, 130_000);
});
