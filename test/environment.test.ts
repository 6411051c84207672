import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  MemoryEnvironmentSchema,
  readMemoryEnvironment,
  readProductEnvironment,
} from "../src/environment.js";
import { ValidationError } from "../src/errors.js";
import { createMemoryManager, redisUrlFromEnv } from "../src/manager/create-memory-manager.js";
import { cli } from "./cli/run-cli.js";

// Before: REDIS_URL=127.0.0.1:6379 said "Invalid URL" without naming the variable,
// DATABASE_URL=nc_cli said "getaddrinfo ENOTFOUND base", and MEMORY_IDLE_FINALIZE_SECONDS=abc
// silently became NaN and turned idle finalization off.

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
    ["REDIS_URLS", "redis://a:6379,http://b:6379", /URL 2 must start with redis:\/\//],
    ["REDIS_URLS", "redis://a:6379,redis://a:6379", /names a URL twice/],
    ["REDIS_URLS", " , ", /names no URL/],
    ["MEMORY_MIGRATION_PHASE", "sideways", /must be one of off, coexistence, gradual, full/],
    ["MEMORY_MIGRATION_SAMPLE_RATE", "2", /from 0 to 1/],
    ["MEMORY_MIGRATION_SAMPLE_RATE", "1%", /from 0 to 1/],
    ["MEMORY_LEGACY_WRITE_TIMEOUT_MS", "fast", /whole number/],
    ["LEGACY_TIME_ZONE", "Mars/Olympus", /IANA time zone/],
  ])("names %s when it is %j", (variable, value, message) => {
    expect(fieldOf(() => readMemoryEnvironment({ [variable]: value }))).toBe(variable);
    expect(() => readMemoryEnvironment({ [variable]: value })).toThrow(message);
  });

  it.each([
    ["PORT", "80a", /whole number from 0 to 65535/],
    ["LOG_LEVEL", "loud", /must be one of fatal, error/],
    ["MEMORY_SUMMARIZER", "gpt", /must be one of extractive, openai/],
    ["MEMORY_SUMMARY_TIMEOUT_MS", "soon", /whole number/],
    ["MEMORY_SUMMARY_TEMPERATURE", "3", /from 0 to 2/],
    ["OPENAI_BASE_URL", "api.openai.com/v1", /must be a URL like https:\/\//],
    ["MEMORY_URL", "127.0.0.1:8080", /must be a URL like http:\/\//],
  ])("names %s when it is %j, in the product's one schema", (variable, value, message) => {
    expect(fieldOf(() => readProductEnvironment({ [variable]: value }))).toBe(variable);
    expect(() => readProductEnvironment({ [variable]: value })).toThrow(message);
  });

  it("leaves the service's and the CLI's variables to them when embedded as a library", () => {
    // A program that embeds the library may use PORT or LOG_LEVEL for itself.
    expect(readMemoryEnvironment({ PORT: "http", LOG_LEVEL: "verbose", MEMORY_URL: "x" })).toEqual({});
    expect(fieldOf(() => readMemoryEnvironment({ MEMORY_SUMMARIZER: "gpt" }))).toBe("MEMORY_SUMMARIZER");
  });

  it("stops every CLI command before it opens anything, naming the variable", async () => {
    const result = await cli({ REDIS_PORT: "6379x" }, "stats");
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      "swisper-memory stats: invalid REDIS_PORT: must be a whole number from 1 to 65535\n",
    );
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

  it("is what the README's variable tables list (library, summarizer, service and CLI alike)", () => {
    const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
    // A row of a variables table starts with the variable: | `NAME` | default | meaning |
    const documented = [...readme.matchAll(/^\| `([A-Z][A-Z0-9_]+)` \|/gm)].map((match) => match[1]!);
    const schema = Object.keys(MemoryEnvironmentSchema.shape);
    for (const variable of schema) expect(documented, `${variable} is not in the README`).toContain(variable);
    for (const variable of documented) {
      expect(schema, `${variable} is documented but not read`).toContain(variable);
    }
  });
});
