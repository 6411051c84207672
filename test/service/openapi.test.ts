import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApiKeyring } from "../../src/service/index.js";
import { createTestDatabase, type TestDatabase } from "../support/servers.js";
import { call, openTestService, type TestService } from "./harness.js";

interface OpenApiDocument {
  openapi: string;
  info: { title: string; description: string };
  servers?: { url: string }[];
  paths: Record<string, Record<string, OpenApiOperation>>;
  components: { schemas: Record<string, unknown>; securitySchemes?: Record<string, unknown> };
}
interface OpenApiOperation {
  parameters?: { name: string; in: string; schema: Record<string, unknown>; required?: boolean }[];
  requestBody?: { content: Record<string, { schema: unknown }> };
  responses: Record<string, unknown>;
  security?: unknown[];
}

let database: TestDatabase;
let service: TestService;
let anonymous: TestService;
let document: OpenApiDocument;

beforeAll(async () => {
  database = await createTestDatabase();
  service = await openTestService(database, undefined, {
    apiKeys: ApiKeyring.fromPairs([{ tenant: "acme", key: "openapi-test-key-0123456789" }]),
  });
  const response = await call(service.app, "GET", "/openapi.json");
  expect(response.statusCode).toBe(200);
  document = response.json<OpenApiDocument>();
  anonymous = await openTestService(database, undefined);
});

afterAll(async () => {
  await service.close();
  await anonymous.close();
  await database.drop();
});

describe("/openapi.json", () => {
  it("is OpenAPI 3.1 with every route", () => {
    expect(document.openapi).toBe("3.1.0");
    const operations = Object.entries(document.paths).flatMap(([path, methods]) =>
      Object.keys(methods).map((method) => `${method.toUpperCase()} ${path}`),
    );
    expect(operations.sort()).toEqual(
      [
        "POST /v1/sessions/{session_id}/messages",
        "GET /v1/sessions/{session_id}/context",
        "GET /v1/sessions/{session_id}/config",
        "PUT /v1/sessions/{session_id}/config",
        "GET /v1/sessions/{session_id}/stats",
        "GET /v1/sessions/{session_id}/summaries",
        "GET /v1/sessions/{session_id}/swisper-context",
        "PUT /v1/sessions/{session_id}/swisper-context",
        "DELETE /v1/sessions/{session_id}",
        "GET /health",
        "GET /ready",
        "GET /live",
        "GET /metrics",
      ].sort(),
    );
  });

  it("documents requests with the schemas that validate them", () => {
    const context = document.paths["/v1/sessions/{session_id}/context"]!.get!;
    const maxTokens = context.parameters?.find((parameter) => parameter.name === "max_tokens");
    expect(maxTokens).toMatchObject({
      in: "query",
      schema: { type: "integer", minimum: 1, maximum: 10_000_000 },
    });
    const limit = document.paths["/v1/sessions/{session_id}/summaries"]!.get!.parameters?.find(
      (parameter) => parameter.name === "limit",
    );
    expect(limit?.schema).toMatchObject({ minimum: 1, maximum: 100, default: 10 });
    const sessionId = context.parameters?.find((parameter) => parameter.name === "session_id");
    expect(sessionId).toMatchObject({ in: "path", required: true, schema: { maxLength: 256 } });

    const body = JSON.stringify(
      document.paths["/v1/sessions/{session_id}/messages"]!.post!.requestBody?.content["application/json"],
    );
    expect(body).toContain("ChatMessage");
    expect(body).toContain("MessageBatch");
    const message = JSON.stringify(document.components.schemas.ChatMessage);
    expect(message).toContain('"enum":["system","user","assistant","tool"]');
    expect(message).toContain('"additionalProperties":false');
  });

  it("documents responses, error statuses and the API key schemes", () => {
    const post = document.paths["/v1/sessions/{session_id}/messages"]!.post!;
    expect(Object.keys(post.responses).sort()).toEqual(["200", "201", "400", "401", "413", "429", "503"]);
    expect(Object.keys(document.paths["/v1/sessions/{session_id}/context"]!.get!.responses)).toContain("404");
    expect(document.components.securitySchemes).toHaveProperty("bearerAuth");
    expect(document.components.securitySchemes).toHaveProperty("apiKey");
    expect(post.security).toEqual([{ bearerAuth: [] }, { apiKey: [] }]);
    expect(document.components.schemas).toHaveProperty("MemoryContext");
    expect(document.components.schemas).toHaveProperty("Error");
  });

  it("names components after the schemas: no *Input twin", () => {
    const names = Object.keys(document.components.schemas);
    expect(names).toEqual(expect.arrayContaining(["ChatMessage", "Error", "SessionConfig", "MemoryContext"]));
    expect(names.filter((name) => name.endsWith("Input"))).toEqual([]);
    const refs = JSON.stringify(document).match(/"#\/components\/schemas\/[^"]+"/g) ?? [];
    expect(refs.filter((ref) => !names.includes(ref.slice(22, -1)))).toEqual([]);
  });

  it("is served relative to where it is fetched, with real integer bounds", () => {
    expect(document.servers).toEqual([expect.objectContaining({ url: "/" })]);
    const text = JSON.stringify(document);
    expect(text).not.toContain(String(Number.MIN_SAFE_INTEGER));
    expect(text).not.toContain(String(Number.MAX_SAFE_INTEGER));
  });

  it("without API keys declares no security scheme (so /docs has no Authorize button)", async () => {
    const withoutKeys = (await call(anonymous.app, "GET", "/openapi.json")).json<OpenApiDocument>();
    expect(withoutKeys.components.securitySchemes).toBeUndefined();
    expect(withoutKeys.info.description).toContain("Authentication is off");
    expect((await call(anonymous.app, "GET", "/docs/json")).json()).toEqual(withoutKeys);
  });
});

describe("/docs", () => {
  it("serves the interactive docs and their assets from the package (nothing downloaded)", async () => {
    const page = await service.app.inject({ method: "GET", url: "/docs/" });
    expect(page.statusCode).toBe(200);
    expect(page.headers["content-type"]).toMatch(/text\/html/);
    const assets = [...page.body.matchAll(/(?:src|href)="([^"]+)"/g)].map((match) => match[1]!);
    expect(assets.length).toBeGreaterThan(0);
    for (const asset of assets) {
      expect(asset.startsWith("http"), asset).toBe(false);
      const url = asset.startsWith("/") ? asset : `/docs/${asset.replace(/^\.\//, "")}`;
      expect((await service.app.inject({ method: "GET", url })).statusCode, url).toBe(200);
    }
  });

  it("shows no Fastify logo and no top bar", async () => {
    const initializer = await call(anonymous.app, "GET", "/docs/static/swagger-initializer.js");
    expect(initializer.statusCode).toBe(200);
    expect(initializer.body).toContain('"layout":"BaseLayout"');
    expect(initializer.body).not.toContain("data:image");
    const require = createRequire(import.meta.url);
    const logo = await readFile(require.resolve("@fastify/swagger-ui/static/logo.svg"));
    expect(initializer.body).not.toContain(logo.toString("base64").slice(0, 64));
  });
});
