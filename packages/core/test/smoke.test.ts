import * as core from '@raft/core';
import * as engine from '@raft/core/engine';
import { describe, expect, it } from 'vitest';
import * as engineSource from '../src/engine/index';
import * as coreSource from '../src/index';

// Tests run against the TypeScript source, never a stale dist/: the "@raft/source" export
// condition must reach Vite's SSR resolver (environments.ssr.resolve.conditions on Vite 8).
// import.meta.resolve is provided by vitest; core's tsconfig has no host types that declare it.
const resolve = (specifier: string): string =>
  (import.meta as ImportMeta & { resolve(specifier: string): string }).resolve(specifier);

describe('workspace resolution', () => {
  it('resolves @raft/core to src/', () => {
    expect(resolve('@raft/core')).toMatch(/\/packages\/core\/src\/index\.ts$/);
    expect(core).toBe(coreSource);
  });

  it('resolves @raft/core/engine to src/engine/', () => {
    expect(resolve('@raft/core/engine')).toMatch(/\/packages\/core\/src\/engine\/index\.ts$/);
    expect(engine).toBe(engineSource);
  });
});
