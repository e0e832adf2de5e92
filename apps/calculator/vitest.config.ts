import { defineProject } from 'vitest/config';

export default defineProject({
  // Resolve workspace packages to their TypeScript source (the "@raft/source" export condition).
  // Node tests go through Vite's SSR resolver, so the condition is set there too
  // (vitest-dev/vitest#6992).
  resolve: { conditions: ['@raft/source'] },
  environments: { ssr: { resolve: { conditions: ['@raft/source'] } } },
  test: {
    name: '@raft/calculator',
    environment: 'node',
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
  },
});
