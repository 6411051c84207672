import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApiKeyring } from "../../src/service/index.js";
import { createTestDatabase, type TestDatabase } from "../support/servers.js";
import { call, openTestService, type TestService } from "./harness.js";

interface OpenApiDocument {
  openapi: string;
  info: { title: string };
  paths: Record<string, Record<string, OpenApiOperation>>;
  components: { schemas: Record<string, unknown>; securitySchemes: Record<string, unknown> };
}
interface OpenApiOperation {
  parameters?: { name: string; in: string; schema: Record<string, unknown>; required?: boolean }[];
  requestBody?: { content: Record<string, { schema: unknown }> };
  responses: Record<string, unknown>;
  security?: unknown[];
}

let database: TestDatabase;
let service: TestService;
let document: OpenApiDocument;

beforeAll(async () => {
  database = await createTestDatabase();
  service = await openTestService(database, undefined, {
    apiKeys: ApiKeyring.fromPairs([{ tenant: "acme", key: "openapi-test-key-0123456789" }]),
  });
  const response = await call(service.app, "GET", "/openapi.json");
  expect(response.statusCode).toBe(200);
  document = response.json<OpenApiDocument>();
});

afterAll(async () => {
  await service.close();
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
    const message = JSON.stringify(document.components.schemas.ChatMessageInput);
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
});
