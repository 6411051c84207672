import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import type { Environment } from "../../src/cli/command.js";
import { CircuitState } from "../../src/resilience/index.js";
import { type RunningService, startMemoryService } from "../../src/service/index.js";
import { freePort } from "../support/processes.js";
import {
  createTestDatabase,
  createTestRedis,
  type TestDatabase,
  type TestRedis,
} from "../support/servers.js";
import { TEST_REDIS_URL } from "../support/urls.js";
import { Capture, cli } from "./run-cli.js";

// `inspect`, `stats` and `clear` with --url / MEMORY_URL ask a running service over HTTP instead
// of opening its storage, and show that service's live breakers, not fresh ones of their own.

const KEY = "acme-remote-cli-key-0123456789abcdef";
let database: TestDatabase | undefined;
let testRedis: TestRedis | undefined;
let dataDir: string | undefined;
let storage: Environment;
let service: RunningService;
/** The CLI's environment: where the service is and its key; no storage of its own. */
let remote: Environment;

beforeAll(async () => {
  storage = { MEMORY_IDLE_FINALIZE_SECONDS: "0" };
  if (inject("postgresAvailable")) {
    database = await createTestDatabase();
    storage.DATABASE_URL = database.url!;
  } else {
    dataDir = await mkdtemp(join(tmpdir(), "swm-remote-cli-"));
    storage.MEMORY_DATA_DIR = dataDir;
  }
  if (inject("redisAvailable")) {
    testRedis = await createTestRedis();
    storage.REDIS_URL = TEST_REDIS_URL;
    storage.MEMORY_KEY_PREFIX = testRedis.keyPrefix;
  }
  service = await startMemoryService({
    env: { ...storage, PORT: "0", HOST: "127.0.0.1", MEMORY_API_KEYS: `acme:${KEY}`, LOG_LEVEL: "silent" },
    logDestination: new Capture(),
    handleSignals: false,
  });
  remote = { MEMORY_URL: service.url, MEMORY_API_KEY: KEY };
  const response = await fetch(`${service.url}/v1/sessions/remote-1/messages`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${KEY}` },
    body: JSON.stringify({
      messages: [
        { role: "user", content: "Which laptop weighs under 1.5 kg?" },
        { role: "assistant", content: "The ThinkPad X1 Carbon weighs 1.12 kg." },
      ],
    }),
  });
  expect(response.status).toBe(201);
});

afterAll(async () => {
  await service?.stop();
  await testRedis?.cleanup();
  await database?.drop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

describe("inspect --url", () => {
  it("reads the session from the service and shows the service's breakers as they are", async () => {
    const summarizer = service.memory.circuitBreaker.summarizer;
    // Opened the way summarization jobs open it: calls failing through the breaker until it trips.
    for (let call = 0; call < 100 && summarizer.getState() !== CircuitState.OPEN; call++) {
      await summarizer
        .execute(() => Promise.reject(new Error("upstream model refused the request")))
        .catch(() => {});
    }
    try {
      const result = await cli(remote, "inspect", "remote-1");
      expect(result.stderr).toBe("");
      expect(result.code).toBe(0);
      expect(result.stdout).toContain("Circuit breakers:  the service's, live");
      expect(result.stdout).toMatch(
        /\n {2}summarizer\s+OPEN \(\d+ failures, retry in \d+ ms, last error: upstream model refused the request\)/,
      );
      expect(result.stdout).toMatch(/#2 assistant \(\d+ tokens\): The ThinkPad X1 Carbon weighs 1.12 kg./);

      // Opening the storage instead builds breakers of this command's own: all closed.
      const local = await cli(storage, "inspect", "remote-1", "--tenant", "acme", "--json");
      const report = JSON.parse(local.stdout) as { circuit_breakers: { name: string; state: string }[] };
      expect(report.circuit_breakers.find((breaker) => breaker.name === "summarizer")?.state).toBe("closed");
    } finally {
      summarizer.reset();
    }
  });

  it("prints the same JSON shape as a local inspect", async () => {
    const viaService = JSON.parse((await cli(remote, "inspect", "remote-1", "--json")).stdout);
    const viaStorage = JSON.parse(
      (await cli(storage, "inspect", "remote-1", "--tenant", "acme", "--json")).stdout,
    );
    expect(Object.keys(viaService).sort()).toEqual(Object.keys(viaStorage).sort());
    expect(viaService.buffer_messages).toEqual(viaStorage.buffer_messages);
    expect(viaService.session_config).toEqual(viaStorage.session_config);
    expect(viaService.available).toBe(true);
  });

  it("exits 1 for a session without memory, and 2 for --tenant (the key decides the tenant)", async () => {
    const missing = await cli(remote, "inspect", "never-written");
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(`session 'never-written' at ${service.url} has no memory`);
    const tenant = await cli(remote, "inspect", "remote-1", "--tenant", "acme");
    expect(tenant.code).toBe(2);
    expect(tenant.stderr).toContain("--tenant cannot be used with --url or MEMORY_URL");
  });

  it("names the URL, where it came from, the address and the error code when the service is not there", async () => {
    const port = await freePort();
    const byOption = await cli({}, "inspect", "remote-1", "--url", `http://127.0.0.1:${port}`);
    expect(byOption.code).toBe(1);
    expect(byOption.stderr).toBe(
      `swisper-memory inspect: cannot reach the service at http://127.0.0.1:${port} (--url, 127.0.0.1:${port}): ECONNREFUSED\n`,
    );
    const byVariable = await cli({ MEMORY_URL: "http://no-such-host.invalid:8080" }, "stats", "remote-1");
    expect(byVariable.stderr).toMatch(/\(MEMORY_URL, no-such-host\.invalid:8080\): (ENOTFOUND|EAI_AGAIN)/);
  });

  it("refuses a URL that is not http(s), naming --url or MEMORY_URL", async () => {
    const option = await cli({}, "inspect", "remote-1", "--url", "127.0.0.1:8080");
    expect(option.code).toBe(1);
    expect(option.stderr).toMatch(/^swisper-memory inspect: invalid --url: must be a URL like http:\/\//);
    const variable = await cli({ MEMORY_URL: "redis://127.0.0.1:6379" }, "stats", "remote-1");
    expect(variable.stderr).toMatch(
      /^swisper-memory stats: invalid MEMORY_URL: must start with http:\/\/ or https:\/\//,
    );
  });

  it("says what the service answered to a key it does not know", async () => {
    const result = await cli({ ...remote, MEMORY_API_KEY: "not-a-key-of-this-service" }, "stats", "remote-1");
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/answered 401 \w+: /);
  });
});

describe("stats --url", () => {
  it("prints the session's statistics from the service; the whole store's need the storage", async () => {
    const json = await cli(remote, "stats", "remote-1", "--json");
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ session_id: "remote-1", buffer: { last_seq: 2 } });
    const whole = await cli(remote, "stats");
    expect(whole.code).toBe(2);
    expect(whole.stderr).toContain("name a session");
  });
});

describe("clear --url", () => {
  it("has the service erase the session; a second clear finds nothing", async () => {
    const headers = { "content-type": "application/json", authorization: `Bearer ${KEY}` };
    await fetch(`${service.url}/v1/sessions/remote-2/messages`, {
      method: "POST",
      headers,
      body: JSON.stringify({ messages: [{ role: "user", content: "forget me" }] }),
    });
    const result = await cli(remote, "clear", "remote-2", "--yes");
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(`erased session 'remote-2' at ${service.url}: 1 message, 0 summaries\n`);
    const after = await fetch(`${service.url}/v1/sessions/remote-2/context`, { headers });
    expect(after.status).toBe(404);
    const again = await cli(remote, "clear", "remote-2", "--yes");
    expect(again.code).toBe(1);
    expect(again.stderr).toContain("has no memory");
  });
});
