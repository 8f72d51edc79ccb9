import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: [
      'server/**/*.test.ts',
      'client/**/*.test.ts',
      'telemetry/**/*.test.ts',
      'test/**/*.test.ts',
      'scripts/**/*.test.ts',
      'bench/**/*.test.ts',
      'chaos/**/*.test.ts',
    ],
    // Every test file starts its own redis-server processes on free loopback ports; two files at a time keep
    // a 2-core machine responsive enough that per-node timeouts measure Redis, not CPU starvation.
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
  },
});
