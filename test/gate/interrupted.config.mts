import { defineConfig } from 'vitest/config';

// Only the test that waits to be interrupted, with the suite's own global setup.
export default defineConfig({
  test: {
    include: ['test/gate/*.slow.ts'],
    globalSetup: ['test/helpers/global-setup.ts'],
    pool: 'forks',
  },
});
