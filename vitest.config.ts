import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // The fault suite runs on its own: `npm run test:faults` (vitest.faults.config.ts).
    exclude: ["test/faults/**", "node_modules/**"],
    globalSetup: ["test/support/global-setup.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Two cores on CI: a test file per worker, files that restart servers start their own.
    pool: "forks",
  },
});
