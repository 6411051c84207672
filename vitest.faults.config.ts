import { defineConfig } from "vitest/config";

// The fault suite (`npm run test:faults`): each file starts its own redis-server and PostgreSQL
// cluster, kills, pauses, evicts or restarts them under traffic, and checks the invariants
// (every acknowledged write present once, in order; nothing erased back; no 5xx for a committed
// write; once quiet, every context equal to the transcript's newest messages).
export default defineConfig({
  test: {
    include: ["test/faults/**/*.test.ts"],
    globalSetup: ["test/support/global-setup.ts"],
    testTimeout: 180_000,
    hookTimeout: 120_000,
    pool: "forks",
    // Two cores: one file at a time, so that a file's timing faults are its own.
    fileParallelism: false,
  },
});
