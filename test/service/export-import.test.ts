import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApiKeyring } from "../../src/service/index.js";
import { useTestServers } from "../support/servers.js";
import { call, expectErrorShape, openTestService, type TestService } from "./harness.js";

// GET /v1/sessions/{id}/export and POST /v1/imports: tenant-scoped, streamed JSON Lines.

const servers = useTestServers();
const ACME = { authorization: "Bearer export-acme-key-0123456789" };
const GLOBEX = { authorization: "Bearer export-globex-key-0123456789" };
let service: TestService;

const importBody = (headers: Record<string, string>, payload: string) =>
  service.app.inject({
    method: "POST",
    url: "/v1/imports",
    headers: { ...headers, "content-type": "application/x-ndjson" },
    payload,
  });

beforeAll(async () => {
  service = await openTestService(servers.database, servers.redis, {
    apiKeys: ApiKeyring.fromPairs([
      { tenant: "acme", key: "export-acme-key-0123456789" },
      { tenant: "globex", key: "export-globex-key-0123456789" },
    ]),
    importBodyLimitBytes: 64 * 1024,
  });
  const posted = await call(service.app, "POST", "/v1/sessions/trip/messages", {
    headers: ACME,
    body: {
      messages: [
        { role: "user", content: "Zürich → 東京, bitte" },
        { role: "assistant", content: "Gern." },
      ],
    },
  });
  expect(posted.statusCode).toBe(201);
  await call(service.app, "PUT", "/v1/sessions/trip/swisper-context", {
    headers: ACME,
    body: { current_state: "booking" },
  });
});

afterAll(async () => {
  await service.close();
});

describe("GET /v1/sessions/{id}/export", () => {
  it("streams the session as JSON Lines; another tenant gets 404", async () => {
    const exported = await service.app.inject({
      method: "GET",
      url: "/v1/sessions/trip/export",
      headers: ACME,
    });
    expect(exported.statusCode).toBe(200);
    expect(exported.headers["content-type"]).toContain("application/x-ndjson");
    const types = exported.body
      .trimEnd()
      .split("\n")
      .map((line) => JSON.parse(line).type);
    expect(types).toEqual(["export", "session", "message", "message", "context", "end"]);
    expect(exported.body).toContain("Zürich → 東京");
    const foreign = await call(service.app, "GET", "/v1/sessions/trip/export", { headers: GLOBEX });
    expect(foreign.statusCode).toBe(404);
    expectErrorShape(foreign.json());
  });
});

describe("POST /v1/imports", () => {
  it("restores into the key's tenant; sending it twice stores nothing twice", async () => {
    const exported = (
      await service.app.inject({ method: "GET", url: "/v1/sessions/trip/export", headers: ACME })
    ).body;
    const first = await importBody(GLOBEX, exported);
    expect(first.statusCode, first.body).toBe(200);
    expect(first.json()).toEqual({
      sessions: 1,
      sessions_imported: 1,
      sessions_unchanged: 0,
      messages_imported: 2,
      summaries_imported: 0,
    });
    const again = await importBody(GLOBEX, exported);
    expect(again.json()).toMatchObject({ sessions_imported: 0, sessions_unchanged: 1, messages_imported: 0 });
    const restored = await service.app.inject({
      method: "GET",
      url: "/v1/sessions/trip/export",
      headers: GLOBEX,
    });
    expect(restored.body).toBe(exported.replace('"tenant":"acme"', '"tenant":"globex"'));
  });

  it("answers 400 naming the line and field of a bad line, storing nothing of its session", async () => {
    const exported = (
      await service.app.inject({ method: "GET", url: "/v1/sessions/trip/export", headers: ACME })
    ).body;
    const lines = exported.split("\n");
    const renamed = lines.map((line) => line.replaceAll('"session_id":"trip"', '"session_id":"trip-2"'));
    renamed[3] = (renamed[3] as string).replace('"role":"assistant"', '"role":"robot"');
    const answer = await importBody(GLOBEX, renamed.join("\n"));
    expect(answer.statusCode).toBe(400);
    const body = answer.json();
    expectErrorShape(body);
    expect(body.error).toMatchObject({ code: "invalid_input", field: "message.role" });
    expect(body.error.message).toMatch(/^line 4: message\.role: /);
    expect((await call(service.app, "GET", "/v1/sessions/trip-2", { headers: GLOBEX })).statusCode).toBe(404);
  });

  it("answers 409 for a session that exists with other content, 413 past the limit, 415 for JSON", async () => {
    const exported = (
      await service.app.inject({ method: "GET", url: "/v1/sessions/trip/export", headers: ACME })
    ).body;
    await call(service.app, "POST", "/v1/sessions/trip/messages", {
      headers: ACME,
      body: { role: "user", content: "one more" },
    });
    const conflict = await importBody(ACME, exported);
    expect(conflict.statusCode).toBe(409);
    expect(conflict.json()).toMatchObject({ error: { code: "import_conflict" } });
    const large = await importBody(GLOBEX, `${exported}\n`.repeat(1000));
    expect(large.statusCode).toBe(413);
    const notLines = await call(service.app, "POST", "/v1/imports", {
      headers: GLOBEX,
      body: { sessions: [] },
    });
    expect(notLines.statusCode).toBe(415);
  });
});
