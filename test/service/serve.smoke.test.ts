import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { freePort } from "../support/processes.js";
import { killServed, type Served, serve, waitUntilReady } from "../support/serve-process.js";
import {
  createTestDatabase,
  createTestRedis,
  type TestDatabase,
  type TestRedis,
} from "../support/servers.js";
import { TEST_REDIS_URL } from "../support/urls.js";

// `swisper-memory serve` as users run it: a child process on a real socket, stopped by SIGTERM.

const KEY = "smoke-test-key-0123456789abcdef";

describe("swisper-memory serve (real socket)", () => {
  let database: TestDatabase | undefined;
  let testRedis: TestRedis | undefined;
  let dataDir: string | undefined;
  let served: Served;
  let base: string;

  beforeAll(async () => {
    const env: Record<string, string> = {
      MEMORY_API_KEYS: `acme:${KEY}`,
      HOST: "127.0.0.1",
      LOG_LEVEL: "info",
    };
    if (inject("postgresAvailable")) {
      database = await createTestDatabase();
      env.DATABASE_URL = database.url!;
    } else {
      dataDir = await mkdtemp(join(tmpdir(), "swm-serve-"));
      env.MEMORY_DATA_DIR = dataDir;
    }
    if (inject("redisAvailable")) {
      testRedis = await createTestRedis();
      env.REDIS_URL = TEST_REDIS_URL;
      env.MEMORY_KEY_PREFIX = testRedis.keyPrefix;
    }
    const port = await freePort();
    env.PORT = String(port);
    base = `http://127.0.0.1:${port}`;
    served = serve(env);
    await waitUntilReady(base, served);
  });

  afterAll(async () => {
    await killServed(served);
    await testRedis?.cleanup();
    await database?.drop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it("serves the API, operations routes and docs, then drains and exits 0 on SIGTERM", async () => {
    const auth = { authorization: `Bearer ${KEY}`, "content-type": "application/json" };
    const post = await fetch(`${base}/v1/sessions/smoke/messages`, {
      method: "POST",
      headers: { ...auth, "x-request-id": "smoke-request-1" },
      body: JSON.stringify({ role: "user", content: "Hello over a real socket" }),
    });
    expect(post.status).toBe(201);
    expect(post.headers.get("x-request-id")).toBe("smoke-request-1");

    const context = await fetch(`${base}/v1/sessions/smoke/context?max_tokens=100`, { headers: auth });
    expect(context.status).toBe(200);
    expect(await context.json()).toMatchObject({ session_id: "smoke", message_count: 1 });

    const anonymous = await fetch(`${base}/v1/sessions/smoke/context`);
    expect(anonymous.status).toBe(401);
    expect(await anonymous.json()).toMatchObject({ error: { code: "unauthorized" } });

    const health = await fetch(`${base}/health`);
    expect(health.status).toBe(200);
    const report = (await health.json()) as {
      status: string;
      components: Record<string, { status: string }>;
    };
    expect(report.components.postgres?.status).toBe("up");
    expect(report.components.redis?.status).toBe(testRedis ? "up" : "disabled");

    const metrics = await fetch(`${base}/metrics`);
    expect(metrics.status).toBe(200);
    const text = await metrics.text();
    expect(text).toContain("swisper_memory_write_latency_seconds_bucket");
    expect(text).toContain("swisper_memory_process_cpu_seconds_total");

    expect((await fetch(`${base}/docs/`)).status).toBe(200);
    expect((await fetch(`${base}/openapi.json`)).status).toBe(200);

    served.child.kill("SIGTERM");
    expect(await served.exited).toBe(0);
    const lines = served.stdout
      .join("")
      .split("\n")
      .filter((line) => line !== "")
      .map((line) => JSON.parse(line) as { level: number; msg: string; reqId?: string; status?: number });
    expect(lines.some((line) => line.msg.startsWith("swisper-memory listening on http://127.0.0.1:"))).toBe(
      true,
    );
    expect(lines.find((line) => line.reqId === "smoke-request-1")).toMatchObject({
      msg: "request",
      status: 201,
    });
    expect(lines.map((line) => line.msg)).toContain("summarization jobs drained");
    expect(lines.at(-1)?.msg).toBe("stopped");
    expect(lines.filter((line) => line.level >= 50)).toEqual([]);
    expect(served.stdout.join("")).not.toContain(KEY);
  });
});

describe("swisper-memory serve without API keys", () => {
  it("refuses to listen beyond loopback, saying why", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "swm-serve-"));
    try {
      const served = serve({ HOST: "0.0.0.0", PORT: String(await freePort()), MEMORY_DATA_DIR: dataDir });
      expect(await served.exited).toBe(1);
      expect(served.stderr.join("")).toContain("invalid HOST");
      expect(served.stderr.join("")).toContain("127.0.0.1 only");
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
