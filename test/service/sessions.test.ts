import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApiKeyring } from "../../src/service/index.js";
import { useTestServers } from "../support/servers.js";
import { call, expectErrorShape, openTestService, type TestService } from "./harness.js";

// The sessions as data over HTTP: tenant-scoped, bad input answered 400 naming the field.

const servers = useTestServers();
const ACME = { authorization: "Bearer sessions-acme-key-0123456789" };
const GLOBEX = { authorization: "Bearer sessions-globex-key-0123456789" };
let service: TestService;

beforeAll(async () => {
  service = await openTestService(servers.database, servers.redis, {
    apiKeys: ApiKeyring.fromPairs([
      { tenant: "acme", key: "sessions-acme-key-0123456789" },
      { tenant: "globex", key: "sessions-globex-key-0123456789" },
    ]),
  });
  for (const [headers, prefix] of [
    [ACME, "acme"],
    [GLOBEX, "globex"],
  ] as const) {
    for (let index = 0; index < 3; index++) {
      const posted = await call(service.app, "POST", `/v1/sessions/${prefix}-${index}/messages`, {
        headers,
        body: { role: "user", content: `Hello from ${prefix} ${index}` },
      });
      expect(posted.statusCode).toBe(201);
    }
  }
});

afterAll(async () => {
  await service.close();
});

describe("GET /v1/sessions", () => {
  it("pages through the key's tenant's sessions only", async () => {
    const seen: string[] = [];
    let url = "/v1/sessions?limit=2&order=created_desc";
    for (;;) {
      const page = await call(service.app, "GET", url, { headers: ACME });
      expect(page.statusCode).toBe(200);
      const body = page.json<{ sessions: { session_id: string }[]; next_cursor: string | null }>();
      seen.push(...body.sessions.map((session) => session.session_id));
      if (body.next_cursor === null) break;
      url = `/v1/sessions?limit=2&order=created_desc&cursor=${body.next_cursor}`;
    }
    expect(seen).toEqual(["acme-2", "acme-1", "acme-0"]);
  });

  it.each([
    ["limit=0", "limit"],
    ["limit=101", "limit"],
    ["limit=ten", "limit"],
    ["cursor=%7B%7D", "cursor"],
    ["cursor=WyJ4Il0", "cursor"],
    ["order=oldest", "order"],
    ["updated_since=yesterday", "updated_since"],
    ["user_id=", "user_id"],
    ["colour=red", "colour"],
  ])("?%s answers 400 naming %s", async (query, field) => {
    const answer = await call(service.app, "GET", `/v1/sessions?${query}`, { headers: ACME });
    expect(answer.statusCode).toBe(400);
    const body = answer.json();
    expectErrorShape(body);
    expect(body.error.field).toBe(field);
  });
});

describe("GET and PATCH /v1/sessions/{session_id}", () => {
  it("sets the key's tenant's session only; another tenant's is a 404", async () => {
    const patched = await call(service.app, "PATCH", "/v1/sessions/acme-0", {
      headers: ACME,
      body: { title: "Acme's", user_id: "u-acme", metadata: { plan: "pro" } },
    });
    expect(patched.statusCode).toBe(200);
    expect(patched.json()).toMatchObject({
      session_id: "acme-0",
      title: "Acme's",
      metadata: { plan: "pro" },
    });
    const foreign = await call(service.app, "PATCH", "/v1/sessions/acme-0", {
      headers: GLOBEX,
      body: { title: "Mine now" },
    });
    expect(foreign.statusCode).toBe(404);
    expect((await call(service.app, "GET", "/v1/sessions/acme-0", { headers: GLOBEX })).statusCode).toBe(404);
    const read = await call(service.app, "GET", "/v1/sessions/acme-0", { headers: ACME });
    expect(read.json()).toMatchObject({ title: "Acme's", user_id: "u-acme" });
  });

  it("records user_id sent with the first message, and lists by it", async () => {
    const posted = await call(service.app, "POST", "/v1/sessions/acme-user/messages?user_id=u-7", {
      headers: ACME,
      body: { role: "user", content: "Hello" },
    });
    expect(posted.statusCode).toBe(201);
    const listed = await call(service.app, "GET", "/v1/sessions?user_id=u-7", { headers: ACME });
    expect(listed.json<{ sessions: { session_id: string }[] }>().sessions.map((s) => s.session_id)).toEqual([
      "acme-user",
    ]);
  });

  it.each([
    [{ title: "" }, "title"],
    [{ metadata: { big: "x".repeat(17_000) } }, "metadata"],
    [{ metadata: [] }, "metadata"],
    [{ owner: "x" }, "owner"],
  ])("PATCH %j answers 400 naming %s", async (body, field) => {
    const answer = await call(service.app, "PATCH", "/v1/sessions/acme-1", { headers: ACME, body });
    expect(answer.statusCode).toBe(400);
    const error = answer.json();
    expectErrorShape(error);
    expect(error.error.field).toBe(field);
  });
});

describe("GET /v1/sessions/{session_id}/messages", () => {
  it("pages through the transcript; another tenant's session is a 404; bad queries are 400s", async () => {
    const first = await call(service.app, "GET", "/v1/sessions/acme-2/messages?limit=1", { headers: ACME });
    expect(first.statusCode).toBe(200);
    expect(first.json()).toMatchObject({
      session_id: "acme-2",
      messages: [{ seq: 1, role: "user", content: "Hello from acme 2", summarized: false }],
      next_after_seq: null,
    });
    expect(
      (await call(service.app, "GET", "/v1/sessions/acme-2/messages", { headers: GLOBEX })).statusCode,
    ).toBe(404);
    for (const [query, field] of [
      ["limit=0", "limit"],
      ["after_seq=-1", "after_seq"],
      ["after=1", "after"],
    ]) {
      const answer = await call(service.app, "GET", `/v1/sessions/acme-2/messages?${query}`, {
        headers: ACME,
      });
      expect(answer.statusCode, query).toBe(400);
      expect(answer.json<{ error: { field: string } }>().error.field).toBe(field);
    }
  });
});

describe("GET /v1/search", () => {
  it("finds the key's tenant's messages only; a bad query is a 400 naming q", async () => {
    const mine = await call(service.app, "GET", `/v1/search?q=${encodeURIComponent("Hello from")}`, {
      headers: ACME,
    });
    expect(mine.statusCode).toBe(200);
    const ids = mine.json<{ results: { session_id: string }[] }>().results.map((hit) => hit.session_id);
    expect(ids.length).toBeGreaterThan(0);
    expect(ids.every((id) => id.startsWith("acme"))).toBe(true);
    const globex = await call(service.app, "GET", "/v1/search?q=globex", { headers: GLOBEX });
    expect(globex.json<{ results: unknown[] }>().results).toHaveLength(3);
    expect((await call(service.app, "GET", "/v1/search?q=globex", { headers: ACME })).json()).toEqual({
      results: [],
      next_cursor: null,
      scan_limited: false,
    });
    for (const [query, field] of [
      ["", "q"],
      ["q=", "q"],
      ["q=x&limit=0", "limit"],
      ["q=x&role=robot", "role"],
    ]) {
      const answer = await call(service.app, "GET", `/v1/search?${query}`, { headers: ACME });
      expect(answer.statusCode, query).toBe(400);
      expect(answer.json<{ error: { field: string } }>().error.field).toBe(field);
    }
  });
});

describe("DELETE /v1/users/{user_id}", () => {
  it("erases the key's tenant's sessions of the user only", async () => {
    for (const [headers, session] of [
      [ACME, "acme-leaving"],
      [GLOBEX, "globex-leaving"],
    ] as const) {
      await call(service.app, "POST", `/v1/sessions/${session}/messages?user_id=leaver`, {
        headers,
        body: {
          messages: [
            { role: "user", content: "one" },
            { role: "user", content: "two" },
          ],
        },
      });
    }
    const erased = await call(service.app, "DELETE", "/v1/users/leaver", { headers: ACME });
    expect(erased.statusCode).toBe(200);
    expect(erased.json()).toEqual({ user_id: "leaver", sessions_erased: 1, messages_erased: 2 });
    expect((await call(service.app, "GET", "/v1/sessions/acme-leaving", { headers: ACME })).statusCode).toBe(
      404,
    );
    expect(
      (await call(service.app, "GET", "/v1/sessions/globex-leaving", { headers: GLOBEX })).statusCode,
    ).toBe(200);
  });
});
