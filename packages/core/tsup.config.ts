import { defineConfig } from 'tsup';

export default defineConfig({
  entry: ['src/index.ts', 'src/engine/index.ts', 'src/wire/index.ts'],
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
  platform: 'neutral',
  // Share chunks between the two entries in CJS too (ESM always does). Without it, `@raft/core`
  // and `@raft/core/engine` each bundle their own engine and error classes under require(), and
  // `instanceof NotLeaderError` fails for an error thrown by RawNode. tsup calls code splitting
  // for cjs experimental; @raft/testing's test/published-packages.test.ts checks the identity
  // from the packed tarball.
  splitting: true,
  // With `treeshake`, rollup turns the split ESM output into CJS. Without it, tsup uses sucrase,
  // which rewrites every `?.` and `??` into helper calls and leaves the build machine's absolute
  // path in the CJS source maps.
  treeshake: true,
  esbuildOptions(options) {
    // The maps point at ../src (which ships) instead of embedding a second copy of it.
    options.sourcesContent = false;
  },
});
