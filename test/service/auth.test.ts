import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ValidationError } from "../../src/errors.js";
import { ApiKeyring, apiKeyringFromEnv, presentedKey } from "../../src/service/index.js";
import { describeWithRedis, useTestServers } from "../support/servers.js";
import { call, DEPLOYMENTS, expectErrorShape, openTestService, type TestService } from "./harness.js";

const KEY_A = "key-of-tenant-a-0123456789abcdef";
const KEY_B = "key-of-tenant-b-fedcba9876543210";
const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

/** Every /v1 route, with a body where it takes one. */
const ROUTES: { method: "GET" | "POST" | "PUT" | "DELETE"; path: string; body?: unknown }[] = [
  { method: "POST", path: "messages", body: { role: "user", content: "tenant A was here" } },
  { method: "GET", path: "context" },
  { method: "GET", path: "context?max_tokens=100" },
  { method: "GET", path: "buffer?limit=2" },
  { method: "DELETE", path: "buffer" },
  { method: "GET", path: "config" },
  { method: "PUT", path: "config", body: { max_buffer_messages: 3 } },
  { method: "GET", path: "stats" },
  { method: "GET", path: "summaries?limit=5" },
  { method: "POST", path: "summaries", body: { summary_text: "tenant A's own summary" } },
  { method: "DELETE", path: "summaries" },
  { method: "GET", path: "swisper-context" },
  { method: "PUT", path: "swisper-context", body: { current_state: "tenant A's state" } },
  { method: "DELETE", path: "" },
];
const url = (session: string, path: string) => `/v1/sessions/${session}${path ? `/${path}` : ""}`;

const servers = useTestServers();

for (const deployment of DEPLOYMENTS) {
  const suite = deployment.needsRedis ? describeWithRedis : describe;
  suite(`API keys and tenants (${deployment.name})`, () => {
    let service: TestService;
    const session = `${deployment.needsRedis ? "r" : "p"}-shared-session`;

    beforeAll(async () => {
      service = await openTestService(servers.database, deployment.needsRedis ? servers.redis : undefined, {
        apiKeys: ApiKeyring.fromPairs([
          { tenant: "tenant-a", key: KEY_A },
          { tenant: "tenant-b", key: KEY_B },
        ]),
      });
      // Tenant B owns the session: messages, a config, a SwisperContext and a summary.
      const headers = bearer(KEY_B);
      await call(service.app, "PUT", url(session, "config"), {
        headers,
        body: {
          summary_trigger_tokens: 60,
          max_buffer_tokens: 300,
          keep_recent_tokens: 20,
          max_summary_tokens: 60,
        },
      });
      for (let turn = 0; turn < 6; turn++) {
        await call(service.app, "POST", url(session, "messages"), {
          headers,
          body: { role: "user", content: `B's secret plan, part ${turn}: buy the red laptop for 999 CHF.` },
        });
      }
      await call(service.app, "PUT", url(session, "swisper-context"), {
        headers,
        body: { current_state: "B's secret state" },
      });
      await service.memory.waitForIdle();
    });
    afterAll(async () => {
      await service.close();
    });

    async function tenantBView() {
      const headers = bearer(KEY_B);
      const [context, config, swisper, summaries] = await Promise.all([
        call(service.app, "GET", url(session, "context"), { headers }),
        call(service.app, "GET", url(session, "config"), { headers }),
        call(service.app, "GET", url(session, "swisper-context"), { headers }),
        call(service.app, "GET", url(session, "summaries"), { headers }),
      ]);
      // The buffer's TTL counts down between two views; everything else must stay as it was.
      const { buffer_info: bufferInfo, ...rest } = context.json<{ buffer_info?: Record<string, unknown> }>();
      const { ttl_remaining: _ttl, ...stableInfo } = bufferInfo ?? {};
      return {
        context: { ...rest, buffer_info: stableInfo },
        config: config.json(),
        swisper: swisper.json(),
        summaries: summaries.json(),
      };
    }

    it.each(ROUTES)(
      "$method $path without a key is 401 in the error shape",
      async ({ method, path, body }) => {
        const response = await call(service.app, method, url(session, path), { body });
        expect(response.statusCode).toBe(401);
        expect(response.headers["www-authenticate"]).toBe('Bearer realm="swisper-memory"');
        const answer = response.json();
        expectErrorShape(answer);
        expect(answer.error.code).toBe("unauthorized");
      },
    );

    it.each(ROUTES)("$method $path with a wrong key is 401", async ({ method, path, body }) => {
      for (const headers of [
        bearer(`${KEY_A}x`),
        { "x-api-key": "not-a-key-not-a-key" },
        { authorization: KEY_A },
      ]) {
        const response = await call(service.app, method, url(session, path), { body, headers });
        expect(response.statusCode).toBe(401);
        expect(response.json()).toMatchObject({ error: { code: "unauthorized" } });
      }
    });

    it("accepts a key as Authorization: Bearer or as X-API-Key", async () => {
      expect(
        (await call(service.app, "GET", url(session, "config"), { headers: bearer(KEY_B) })).statusCode,
      ).toBe(200);
      const viaHeader = await call(service.app, "GET", url(session, "config"), {
        headers: { "x-api-key": KEY_B },
      });
      expect(viaHeader.statusCode).toBe(200);
    });

    it("keeps /health, /ready, /metrics, /openapi.json and /docs open (they hold no tenant data)", async () => {
      for (const path of ["/health", "/ready", "/metrics", "/openapi.json", "/docs"]) {
        expect((await call(service.app, "GET", path)).statusCode, path).toBe(200);
      }
    });

    it("has given tenant B's session messages, summaries, a config and a SwisperContext", async () => {
      const view = await tenantBView();
      expect(view.context).toMatchObject({ session_id: session });
      expect((view.summaries as { summaries: unknown[] }).summaries.length).toBeGreaterThan(0);
      expect(view.config).toMatchObject({ summary_trigger_tokens: 60 });
      expect(view.swisper).toMatchObject({ current_state: "B's secret state" });
    });

    // The isolation matrix: tenant A's key on every route of tenant B's session.
    it.each(ROUTES)(
      "tenant A's $method $path on B's session gets 404 or its own namespace, never B's data",
      async ({ method, path, body }) => {
        const before = await tenantBView();
        const response = await call(service.app, method, url(session, path), {
          body,
          headers: bearer(KEY_A),
        });
        if (method === "GET" || method === "DELETE") {
          expect([403, 404]).toContain(response.statusCode);
          expectErrorShape(response.json());
        } else {
          // A write lands in A's own namespace: it creates A's session of that name.
          expect([200, 201]).toContain(response.statusCode);
        }
        expect(response.body).not.toContain("secret");
        expect(response.body).not.toContain("999 CHF");
        expect(await tenantBView()).toEqual(before);
        // Leave A's namespace empty again for the next row of the matrix.
        await call(service.app, "DELETE", url(session, ""), { headers: bearer(KEY_A) });
      },
    );

    it("shows tenant A only what A wrote under the same session id", async () => {
      await call(service.app, "POST", url(session, "messages"), {
        headers: bearer(KEY_A),
        body: { role: "user", content: "A's own message" },
      });
      const mine = await call(service.app, "GET", url(session, "context"), { headers: bearer(KEY_A) });
      const context = mine.json<{ buffer_messages: { content: string }[]; message_count: number }>();
      expect(context.message_count).toBe(1);
      expect(context.buffer_messages[0]!.content).toBe("A's own message");
      const theirs = await call(service.app, "GET", url(session, "context"), { headers: bearer(KEY_B) });
      expect(theirs.body).not.toContain("A's own message");
      await call(service.app, "DELETE", url(session, ""), { headers: bearer(KEY_A) });
      expect(
        (await call(service.app, "GET", url(session, "context"), { headers: bearer(KEY_B) })).statusCode,
      ).toBe(200);
    });
  });
}

describe("ApiKeyring", () => {
  it("authenticates each key as its tenant and nothing else", () => {
    const keyring = ApiKeyring.fromPairs([
      { tenant: "acme", key: KEY_A },
      { tenant: "globex", key: KEY_B },
    ]);
    expect(keyring.enabled).toBe(true);
    expect(keyring.authenticate(KEY_A)?.tenant).toBe("acme");
    expect(keyring.authenticate(KEY_B)?.tenant).toBe("globex");
    expect(keyring.authenticate(KEY_A.slice(0, -1))).toBeNull();
    expect(keyring.authenticate("")).toBeNull();
    expect(keyring.authenticate(KEY_A)?.keyId).toMatch(/^[0-9a-f]{12}$/);
    expect(keyring.tenants).toEqual(["acme", "globex"]);
  });

  it("answers a key the same however often it is presented, and a near miss never", () => {
    const keyring = ApiKeyring.fromPairs([
      { tenant: "acme", key: KEY_A },
      { tenant: "globex", key: KEY_B },
    ]);
    const variants = [KEY_A.slice(0, -1), `${KEY_A}x`, KEY_A.toUpperCase(), ` ${KEY_A}`];
    for (let round = 0; round < 3; round++) {
      expect(keyring.authenticate(KEY_A)).toEqual(keyring.authenticate(KEY_A));
      expect(keyring.authenticate(KEY_A)?.tenant).toBe("acme");
      expect(keyring.authenticate(KEY_B)?.tenant).toBe("globex");
      for (const variant of variants.filter((text) => text !== KEY_A)) {
        expect(keyring.authenticate(variant)).toBeNull();
      }
    }
    // A keyring answers only its own keys, whatever another one has seen.
    const other = ApiKeyring.fromPairs([{ tenant: "globex", key: KEY_B }]);
    expect(other.authenticate(KEY_A)).toBeNull();
  });

  it("rejects short keys, bad tenants and a key configured twice", () => {
    expect(() => ApiKeyring.fromPairs([{ tenant: "acme", key: "short" }])).toThrow(ValidationError);
    expect(() => ApiKeyring.fromPairs([{ tenant: "a b", key: KEY_A }])).toThrow(ValidationError);
    expect(() =>
      ApiKeyring.fromPairs([
        { tenant: "acme", key: KEY_A },
        { tenant: "globex", key: KEY_A },
      ]),
    ).toThrow(/configured twice/);
  });

  it("reads MEMORY_API_KEYS and MEMORY_API_KEYS_FILE together", async () => {
    const dir = await mkdtemp(join(tmpdir(), "swm-keys-"));
    try {
      const file = join(dir, "keys");
      await writeFile(file, `# tenants of the staging cluster\n\nglobex:${KEY_B}\n`);
      const keyring = apiKeyringFromEnv({ MEMORY_API_KEYS: ` acme:${KEY_A} , `, MEMORY_API_KEYS_FILE: file });
      expect(keyring.size).toBe(2);
      expect(keyring.authenticate(KEY_B)?.tenant).toBe("globex");
      expect(() => apiKeyringFromEnv({ MEMORY_API_KEYS_FILE: join(dir, "missing") })).toThrow(
        /MEMORY_API_KEYS_FILE/,
      );
      expect(() => apiKeyringFromEnv({ MEMORY_API_KEYS: "no-colon-here" })).toThrow(/tenant:key/);
      expect(apiKeyringFromEnv({}).enabled).toBe(false);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("finds the presented key in Authorization: Bearer or X-API-Key", () => {
    expect(presentedKey({ authorization: `Bearer ${KEY_A}` })).toBe(KEY_A);
    expect(presentedKey({ authorization: `bearer   ${KEY_A} ` })).toBe(KEY_A);
    expect(presentedKey({ "x-api-key": KEY_B })).toBe(KEY_B);
    expect(presentedKey({ authorization: `Basic ${KEY_A}` })).toBeNull();
    expect(presentedKey({})).toBeNull();
  });
});
