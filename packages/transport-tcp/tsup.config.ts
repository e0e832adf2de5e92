import { defineConfig } from 'tsup';

export default defineConfig({
  entry: ['src/index.ts'],
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
  platform: 'node',
  // Never bundle the peer or the dependencies: users install them.
  external: ['@raft/core'],
  esbuildOptions(options) {
    // The maps point at ../src (which ships) instead of embedding a second copy of it.
    options.sourcesContent = false;
  },
});
