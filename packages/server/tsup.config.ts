import { defineConfig } from 'tsup';

export default defineConfig({
  entry: ['src/index.ts'],
  format: ['esm'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
  platform: 'node',
  // Never bundle the peer or the dependencies: users install them.
  external: ['@raft/core'],
  esbuildOptions(options) {
    options.sourcesContent = false;
  },
});
