import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { MemoryEnvironmentSchema, readMemoryEnvironment } from "../src/environment.js";
import { ValidationError } from "../src/errors.js";
import { createMemoryManager, redisUrlFromEnv } from "../src/manager/create-memory-manager.js";

// Before: REDIS_URL=127.0.0.1:6379 said "Invalid URL" without naming the variable,
// DATABASE_URL=nc_cli said "getaddrinfo ENOTFOUND base", and MEMORY_IDLE_FINALIZE_SECONDS=abc
// silently became NaN and turned idle finalization off.

const SUMMARIZER_VARIABLES = [
  "MEMORY_SUMMARIZER",
  "OPENAI_BASE_URL",
  "OPENAI_API_KEY",
  "MEMORY_SUMMARY_MODEL",
  "MEMORY_SUMMARY_TIMEOUT_MS",
  "MEMORY_SUMMARY_TEMPERATURE",
];

function fieldOf(work: () => unknown): string {
  try {
    work();
  } catch (error) {
    expect(error).toBeInstanceOf(ValidationError);
    return (error as ValidationError).field;
  }
  throw new Error("no error");
}

describe("the environment", () => {
  it.each([
    ["REDIS_URL", "127.0.0.1:6379", /redis:\/\//],
    ["REDIS_URL", "http://cache:6379", /must start with redis:\/\/ or rediss:\/\//],
    ["DATABASE_URL", "nc_cli", /postgres:\/\//],
    ["REDIS_PORT", "http", /whole number/],
    ["MEMORY_IDLE_FINALIZE_SECONDS", "abc", /whole number/],
    ["MEMORY_AUTO_MIGRATE", "maybe", /true or false/],
    ["REDIS_CLUSTER", "yes please", /true or false/],
  ])("names %s when it is %j", (variable, value, message) => {
    expect(fieldOf(() => readMemoryEnvironment({ [variable]: value }))).toBe(variable);
    expect(() => readMemoryEnvironment({ [variable]: value })).toThrow(message);
  });

  it("reads good values, typed", () => {
    expect(
      readMemoryEnvironment({
        REDIS_URL: "redis://cache:6380/2",
        DATABASE_URL: "postgresql://memory@db:5432/memory",
        MEMORY_IDLE_FINALIZE_SECONDS: "0",
        MEMORY_AUTO_MIGRATE: "false",
        UNRELATED: "anything",
      }),
    ).toEqual({
      REDIS_URL: "redis://cache:6380/2",
      DATABASE_URL: "postgresql://memory@db:5432/memory",
      MEMORY_IDLE_FINALIZE_SECONDS: 0,
      MEMORY_AUTO_MIGRATE: false,
    });
    expect(redisUrlFromEnv({ REDIS_HOST: "cache", REDIS_PORT: "6380", REDIS_DB: "3" })).toBe(
      "redis://cache:6380/3",
    );
  });

  it("stops the manager at once, naming the variable, before connecting to anything", async () => {
    const started = Date.now();
    const error = await createMemoryManager({ env: { DATABASE_URL: "nc_cli" } }).catch((e: unknown) => e);
    expect((error as ValidationError).field).toBe("DATABASE_URL");
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it("is what the README's configuration table lists", () => {
    const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
    const section = readme.slice(readme.indexOf("## Configuration (environment)"));
    const table = section.slice(0, section.indexOf("\n\n", section.indexOf("|---")));
    const documented = [...table.matchAll(/`([A-Z][A-Z0-9_]+)`/g)].map((match) => match[1]!);
    const schema = Object.keys(MemoryEnvironmentSchema.shape);
    for (const variable of schema) expect(documented, `${variable} is not in the README`).toContain(variable);
    for (const variable of documented) {
      expect([...schema, ...SUMMARIZER_VARIABLES], `${variable} is documented but not read`).toContain(
        variable,
      );
    }
  });
});
