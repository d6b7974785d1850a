import { defineConfig } from 'vitest/config';

// Only the deliberately failing test, with the suite's own global setup (../../vitest.config.mts).
export default defineConfig({
  test: {
    include: ['test/gate/*.gate.ts'],
    globalSetup: ['test/helpers/global-setup.ts'],
    pool: 'forks',
  },
});
