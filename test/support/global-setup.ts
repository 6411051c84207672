import type { TestProject } from "vitest/node";
import { serverAnswers, TEST_DATABASE_ADMIN_URL, TEST_REDIS_URL } from "./urls.js";

declare module "vitest" {
  export interface ProvidedContext {
    redisAvailable: boolean;
    postgresAvailable: boolean;
  }
}

/**
 * Checks once per run which servers answer. In CI (CI=true) or with SWISPER_REQUIRE_SERVERS=1 a
 * missing server fails the run; on a laptop the Redis suites skip with one loud line and the SQL
 * suites run on PGlite instead.
 */
export default async function setup(project: TestProject): Promise<void> {
  const required = process.env.CI === "true" || process.env.SWISPER_REQUIRE_SERVERS === "1";
  const redisAvailable = await serverAnswers(TEST_REDIS_URL);
  const postgresAvailable = await serverAnswers(TEST_DATABASE_ADMIN_URL);
  if (required && !(redisAvailable && postgresAvailable)) {
    throw new Error(
      `servers required (CI): Redis at ${TEST_REDIS_URL} ${redisAvailable ? "answers" : "does NOT answer"}, ` +
        `PostgreSQL at ${TEST_DATABASE_ADMIN_URL} ${postgresAvailable ? "answers" : "does NOT answer"}`,
    );
  }
  if (!redisAvailable) {
    console.warn(
      `\n*** Redis suites SKIPPED: no Redis at ${TEST_REDIS_URL}. Start one (redis-server) or set TEST_REDIS_URL to run them. ***\n`,
    );
  }
  if (!postgresAvailable) {
    console.warn(
      `\n*** No PostgreSQL at ${TEST_DATABASE_ADMIN_URL}: SQL suites run on embedded PGlite. Set TEST_DATABASE_ADMIN_URL to use a server. ***\n`,
    );
  }
  project.provide("redisAvailable", redisAvailable);
  project.provide("postgresAvailable", postgresAvailable);
}
