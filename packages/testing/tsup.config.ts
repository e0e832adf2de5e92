import { defineConfig } from 'tsup';

export default defineConfig({
  entry: ['src/index.ts', 'src/vitest.ts', 'src/conformance/index.ts'],
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
  platform: 'node',
  // Never bundle the peers: users bring their own @raft/core and vitest.
  external: ['@raft/core', 'vitest'],
  // One copy of the shared code (the conformance cases under `./vitest` and `./conformance`) in
  // CJS too, as in @raft/core's tsup.config.ts (see there for why `treeshake` goes with it).
  splitting: true,
  treeshake: true,
  esbuildOptions(options) {
    // The maps point at ../src (which ships) instead of embedding a second copy of it.
    options.sourcesContent = false;
  },
});
