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
