/**
 * Every code block of every README.md in the repository is checked, so the docs show only what
 * works:
 *
 * - `ts`, `typescript`, `js` and `javascript` blocks are complete programs. Each one is written
 *   to a file under `.readme-examples/` of the README's own package (gitignored; created and
 *   removed here; `packages/testing` for READMEs outside the packages), where the package's own
 *   name and its dependencies resolve to the workspace sources, and
 *   run the way `pnpm example` runs: `node --conditions=@raft/source --import tsx <file>`. It
 *   must exit with status 0 by itself within 60 s (then it is killed). The `ts` blocks must also
 *   type-check under the repository's strict compiler options.
 * - `sh`, `bash` and `shell` blocks are not run (they install things or take minutes), but every
 *   `pnpm <script>` and `npx --yes pnpm@<version> <script>` in them must name a script of the
 *   root package.json or of the package the README belongs to, and a pinned pnpm version must be
 *   the one in `packageManager`.
 * - `text`, `txt`, `json`, `jsonc` and untagged blocks are not checked: use `text` for
 *   signatures and output samples. Any other tag fails, so no unchecked code hides under
 *   another name.
 *
 * Blocks are numbered in the order they appear in their README, counting every fenced block.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunResult } from './child-process.js';
import {
  childEnv,
  describeRun as describeChild,
  killAll,
  run as runChild,
} from './child-process.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const testingDir = join(root, 'packages', 'testing');

const RUN_TIMEOUT_MS = 60_000;
const TYPECHECK_TIMEOUT_MS = 120_000;

const RUN_TAGS = new Set(['ts', 'typescript', 'js', 'javascript']);
const SHELL_TAGS = new Set(['sh', 'bash', 'shell']);
const UNCHECKED_TAGS = new Set(['', 'text', 'txt', 'json', 'jsonc']);
const TYPESCRIPT_TAGS = new Set(['ts', 'typescript']);

/** Directories never searched for READMEs: installed, generated or scratch files. */
const SKIP_DIRS = new Set([
  'node_modules',
  '.git',
  'dist',
  'coverage',
  '.turbo',
  '.readme-examples',
  'sim-failures',
]);

/**
 * pnpm commands of its own (not scripts) that a README may show. Anything else after `pnpm`
 * must be a script: pnpm would otherwise fall back to a binary, which is not what the docs
 * promise.
 */
const PNPM_BUILTINS = new Set(['install', 'i', 'add', 'exec', 'dlx', 'create', 'pack']);

// ------------------------------------------------------------------------- finding blocks

interface CodeBlock {
  /** The README's path relative to the repository root, with `/` separators. */
  readonly readme: string;
  /** 1-based position among the README's fenced blocks. */
  readonly ordinal: number;
  /** 1-based line of the opening fence. */
  readonly line: number;
  /** The first word of the info string, lower-cased; '' when untagged. */
  readonly tag: string;
  readonly code: string;
}

function findReadmes(dir: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) {
      if (!SKIP_DIRS.has(entry.name)) found.push(...findReadmes(join(dir, entry.name)));
    } else if (entry.isFile() && entry.name === 'README.md') {
      found.push(join(dir, entry.name));
    }
  }
  return found.sort();
}

/**
 * The fenced code blocks of a Markdown file (CommonMark fences: three or more backticks or
 * tildes; the closing fence uses the same character, at least as many times). Fences are
 * recognised at any indentation, so a block nested in a list is not missed. Throws for a fence
 * that is never closed.
 */
function parseFencedBlocks(readme: string, text: string): CodeBlock[] {
  const lines = text.split(/\r?\n/);
  const blocks: CodeBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,}|~{3,})(.*)$/.exec(lines[i] as string);
    if (open === null) continue;
    const [, indent = '', fence = '', info = ''] = open;
    if (fence[0] === '`' && info.includes('`')) continue; // inline code, not a fence
    const tag = (info.trim().split(/\s+/)[0] ?? '').toLowerCase();
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length; j++) {
      const close = /^\s*(`{3,}|~{3,})\s*$/.exec(lines[j] as string)?.[1] ?? '';
      if (close.startsWith(fence[0] as string) && close.length >= fence.length) break;
      // Remove the opening fence's indentation from each line, as CommonMark does.
      const line = lines[j] as string;
      const strip = Math.min(indent.length, /^\s*/.exec(line)?.[0].length ?? 0);
      body.push(line.slice(strip));
    }
    if (j >= lines.length) throw new Error(`${readme}:${i + 1}: the code fence is never closed`);
    blocks.push({ readme, ordinal: blocks.length + 1, line: i + 1, tag, code: body.join('\n') });
    i = j;
  }
  return blocks;
}

const readmes = findReadmes(root).map((path) => {
  const name = relative(root, path).split(sep).join('/');
  return { path, name, blocks: parseFencedBlocks(name, readFileSync(path, 'utf8')) };
});
const allBlocks = readmes.flatMap((r) => r.blocks);
const runBlocks = allBlocks.filter((b) => RUN_TAGS.has(b.tag));
const shellBlocks = allBlocks.filter((b) => SHELL_TAGS.has(b.tag));

const title = (b: CodeBlock): string => `${b.readme} block #${b.ordinal} (line ${b.line})`;

// ------------------------------------------------------------------------- child processes

/** Runs node with `args` in `cwd`, with our environment minus what vitest adds
 *  (NODE_OPTIONS could carry loaders of its own). */
function run(args: readonly string[], timeoutMs: number, cwd = testingDir): Promise<RunResult> {
  return runChild(process.execPath, args, {
    cwd,
    timeoutMs,
    env: childEnv(/^(VITEST|NODE_OPTIONS$)/),
  });
}

const describeRun = (what: string, args: readonly string[], r: RunResult) =>
  describeChild(
    what,
    `node ${args.join(' ')}`,
    r,
    `was killed after ${RUN_TIMEOUT_MS / 1000} s (does every wait have a bound, and is every node stopped?)`,
  );

// ------------------------------------------------------------------------- scratch files

/** This run's folder name: separate from any other run of this file going on at the same time. */
const runName = `run-${process.pid}-${Date.now().toString(36)}`;

/**
 * The package a README's examples run in: the package the README belongs to when it can import
 * @raft/testing as well (so that its own name resolves as a self-reference, and its
 * dependencies resolve: the adapters), else @raft/testing (the root README, and @raft/core's,
 * whose examples import @raft/core and @raft/testing).
 */
function homeOf(b: CodeBlock): string {
  const dir = dirname(join(root, b.readme));
  if (dir === root || !existsSync(join(dir, 'package.json'))) return testingDir;
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
    devDependencies?: Record<string, string>;
    dependencies?: Record<string, string>;
  };
  const seesTesting =
    pkg.devDependencies?.['@raft/testing'] !== undefined ||
    pkg.dependencies?.['@raft/testing'] !== undefined;
  return seesTesting ? dir : testingDir;
}

/** The scratch folder of a block: `.readme-examples/<run>/` inside its home package. */
function scratchOf(b: CodeBlock): string {
  return join(homeOf(b), '.readme-examples', runName);
}

function fileOf(b: CodeBlock): string {
  const slug = b.readme.replace(/\.md$/i, '').replace(/[^A-Za-z0-9]+/g, '-');
  return join(
    scratchOf(b),
    `${slug}-block-${b.ordinal}${TYPESCRIPT_TAGS.has(b.tag) ? '.ts' : '.mjs'}`,
  );
}

const scratches = [...new Set(runBlocks.map(scratchOf))];

beforeAll(() => {
  for (const dir of scratches) mkdirSync(dir, { recursive: true });
  for (const b of runBlocks) writeFileSync(fileOf(b), `${b.code}\n`);
});

afterAll(() => {
  killAll();
  for (const dir of scratches) {
    rmSync(dir, { recursive: true, force: true });
    const examplesRoot = dirname(dir);
    try {
      // Only when no other run still has its folder there.
      if (readdirSync(examplesRoot).length === 0) rmSync(examplesRoot, { recursive: true });
    } catch {
      // already gone
    }
  }
});

// ------------------------------------------------------------------------- the checks

describe('README code blocks', () => {
  it('are found: the root README and the package READMEs, with runnable blocks', () => {
    const names = readmes.map((r) => r.name);
    expect(names).toContain('README.md');
    expect(names).toContain('packages/core/README.md');
    expect(names).toContain('packages/testing/README.md');
    expect(runBlocks.length).toBeGreaterThan(0);
  });

  for (const readme of readmes) {
    it(`${readme.name} tags every block with a checked language (or text)`, () => {
      const unchecked = readme.blocks
        .filter((b) => !RUN_TAGS.has(b.tag) && !SHELL_TAGS.has(b.tag) && !UNCHECKED_TAGS.has(b.tag))
        .map((b) => `${title(b)} is tagged '${b.tag}'`);
      expect(
        unchecked,
        `tag code blocks ts, typescript, js or javascript (run), sh, bash or shell (pnpm scripts checked), or text, txt, json, jsonc or nothing (not checked)`,
      ).toEqual([]);
    });
  }
});

describe('README ts/js blocks run to completion', () => {
  for (const b of runBlocks) {
    it(
      title(b),
      async () => {
        const args = ['--conditions=@raft/source', '--import', 'tsx', fileOf(b)];
        const r = await run(args, RUN_TIMEOUT_MS, homeOf(b));
        const where = `${title(b)} (line n of the file is README line ${b.line} + n)`;
        expect(r.code === 0 && !r.timedOut, describeRun(where, args, r)).toBe(true);
      },
      RUN_TIMEOUT_MS + 30_000,
    );
  }

  const typed = runBlocks.filter((b) => TYPESCRIPT_TAGS.has(b.tag));
  // One program per home package (its tsconfig, its dependencies): each file is a module, so
  // their names never clash.
  for (const scratch of [...new Set(typed.map(scratchOf))]) {
    const mine = typed.filter((b) => scratchOf(b) === scratch);
    const home = dirname(dirname(scratch));
    it(
      `README ts blocks run in ${relative(root, home) || '.'} type-check with the repository compiler options`,
      async () => {
        writeFileSync(
          join(scratch, 'tsconfig.json'),
          JSON.stringify({
            extends: '../../tsconfig.json',
            compilerOptions: { noEmit: true, types: ['node'] },
            include: mine.map((b) => relative(scratch, fileOf(b)).split(sep).join('/')),
          }),
        );
        const tsc = createRequire(join(root, 'package.json')).resolve('typescript/bin/tsc');
        const args = [tsc, '-p', join(scratch, 'tsconfig.json')];
        const r = await run(args, TYPECHECK_TIMEOUT_MS, home);
        const blocks = mine.map((b) => `  ${relative(home, fileOf(b))}: ${title(b)}`);
        expect(
          r.code === 0 && !r.timedOut,
          `${describeRun('tsc', args, r)}\nfiles:\n${blocks.join('\n')}`,
        ).toBe(true);
      },
      TYPECHECK_TIMEOUT_MS + 30_000,
    );
  }
});

// ------------------------------------------------------------------------- shell blocks

interface PackageJson {
  readonly name?: string;
  readonly packageManager?: string;
  readonly scripts?: Readonly<Record<string, string>>;
}

const readPackageJson = (dir: string): PackageJson =>
  JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as PackageJson;

const rootPackage = readPackageJson(root);
const pinnedPnpm = /^pnpm@(.+)$/.exec(rootPackage.packageManager ?? '')?.[1];

/** Every workspace package by name (for `pnpm --filter <name> <script>`). */
const workspacePackages = new Map<string, PackageJson>();
for (const group of ['packages', 'apps']) {
  const dir = join(root, group);
  if (!existsSync(dir)) continue;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const pkgDir = join(dir, entry.name);
    if (!entry.isDirectory() || !existsSync(join(pkgDir, 'package.json'))) continue;
    const pkg = readPackageJson(pkgDir);
    if (pkg.name !== undefined) workspacePackages.set(pkg.name, pkg);
  }
}

/** The package.json next to a README, if any (its scripts count for that README). */
function packageOf(readme: string): PackageJson | undefined {
  const dir = dirname(join(root, readme));
  return dir !== root && existsSync(join(dir, 'package.json')) ? readPackageJson(dir) : undefined;
}

/** Simple commands of a shell block: continuations joined, comments dropped, split at `&&`,
 *  `||`, `;` and `|`. Quoting is not interpreted (README commands do not need it). */
function shellCommands(code: string): string[][] {
  return code
    .replace(/\\\r?\n/g, ' ')
    .split(/\r?\n/)
    .map((line) => line.replace(/(^|\s)#.*$/, ''))
    .flatMap((line) => line.split(/&&|\|\||;|\|/))
    .map((command) => command.trim().split(/\s+/).filter(Boolean))
    .map((words) => {
      let i = 0;
      while (i < words.length && /^[A-Za-z_][A-Za-z0-9_]*=/.test(words[i] as string)) i++;
      return words.slice(i); // without leading VAR=value assignments
    })
    .filter((words) => words.length > 0);
}

/** What is wrong with one pnpm command line, or null. `words` start after `pnpm`. */
function checkPnpmCommand(words: readonly string[], own: PackageJson | undefined): string | null {
  let filtered: PackageJson | undefined;
  let i = 0;
  for (; i < words.length && (words[i] as string).startsWith('-'); i++) {
    const flag = words[i] as string;
    const filter = /^--filter=(.+)$/.exec(flag)?.[1];
    const name = filter ?? (flag === '--filter' || flag === '-F' ? words[++i] : undefined);
    if (name === undefined) continue;
    filtered = workspacePackages.get(name);
    if (filtered === undefined) return `--filter ${name} names no workspace package`;
  }
  let command = words[i];
  if (command === undefined) return 'names no command';
  if (command === 'run') {
    command = words[i + 1];
    if (command === undefined) return 'pnpm run names no script';
  } else if (PNPM_BUILTINS.has(command)) {
    return null;
  }
  const scopes = filtered !== undefined ? [filtered] : [rootPackage, ...(own ? [own] : [])];
  if (scopes.some((pkg) => Object.hasOwn(pkg.scripts ?? {}, command))) return null;
  const where = scopes.map((pkg) => pkg.name ?? 'package.json').join(' or ');
  return `'${command}' is not a script of ${where}`;
}

describe('README shell blocks name existing pnpm scripts', () => {
  for (const b of shellBlocks) {
    it(title(b), () => {
      const own = packageOf(b.readme);
      const problems: string[] = [];
      for (const words of shellCommands(b.code)) {
        let rest: readonly string[] | undefined;
        if (words[0] === 'pnpm') {
          rest = words.slice(1);
        } else if (words[0] === 'npx') {
          let i = 1;
          while (i < words.length && (words[i] as string).startsWith('-')) i++;
          const pnpm = /^pnpm(?:@(.+))?$/.exec(words[i] ?? '');
          if (pnpm !== null) {
            if (pnpm[1] !== undefined && pnpm[1] !== pinnedPnpm)
              problems.push(`${words.join(' ')}: pnpm@${pnpm[1]} is not pnpm@${pinnedPnpm}`);
            rest = words.slice(i + 1);
          }
        }
        if (rest === undefined) continue;
        const problem = checkPnpmCommand(rest, own);
        if (problem !== null) problems.push(`${words.join(' ')}: ${problem}`);
      }
      expect(problems).toEqual([]);
    });
  }
});
