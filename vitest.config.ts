import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ['default', 'json'],
    outputFile: { json: '.vitest/results.json' },
    projects: [
      // Kernel-free: no root, no build (npm run test:unit runs only these).
      {
        extends: true,
        resolve: { alias: { '@xlb/native': new URL('test/unit/lib/no-native.ts', import.meta.url).pathname } },
        // Threads start faster than forks, and nothing here needs a process of its own.
        test: { name: 'unit', include: ['test/unit/**/*.test.ts'], pool: 'threads', sequence: { groupOrder: 0 } },
      },
      {
        extends: true,
        test: { name: 'main', include: ['test/**/*.test.ts'], exclude: ['test/unit/**', 'test/soak.test.ts'], sequence: { groupOrder: 0 } },
      },
      // The soak judges timing-sensitive failover (200 ms health checks): it runs alone, after the rest.
      { extends: true, test: { name: 'soak', include: ['test/soak.test.ts'], sequence: { groupOrder: 1 } } },
    ],
  },
});
