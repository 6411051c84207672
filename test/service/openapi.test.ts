import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApiKeyring } from "../../src/service/index.js";
import { createTestDatabase, type TestDatabase } from "../support/servers.js";
import { call, openTestService, type TestService } from "./harness.js";
import {
  fetchDocument,
  type JsonSchema,
  type MediaType,
  type OpenApiDocument,
  operationsOf,
  schemaChecker,
} from "./openapi-contract.js";

let database: TestDatabase;
let service: TestService;
let anonymous: TestService;
let document: OpenApiDocument;
let withoutKeys: OpenApiDocument;

beforeAll(async () => {
  database = await createTestDatabase();
  service = await openTestService(database, undefined, {
    apiKeys: ApiKeyring.fromPairs([{ tenant: "acme", key: "openapi-test-key-0123456789" }]),
  });
  anonymous = await openTestService(database, undefined);
  document = await fetchDocument(service.app);
  withoutKeys = await fetchDocument(anonymous.app);
});

afterAll(async () => {
  await service.close();
  await anonymous.close();
  await database.drop();
});

const V1_OPERATIONS = [
  "GET /v1/sessions",
  "GET /v1/search",
  "DELETE /v1/users/{user_id}",
  "POST /v1/sessions/{session_id}/messages",
  "GET /v1/sessions/{session_id}/messages",
  "GET /v1/sessions/{session_id}/context",
  "GET /v1/sessions/{session_id}/buffer",
  "DELETE /v1/sessions/{session_id}/buffer",
  "GET /v1/sessions/{session_id}/config",
  "PUT /v1/sessions/{session_id}/config",
  "GET /v1/sessions/{session_id}/stats",
  "GET /v1/sessions/{session_id}/summaries",
  "POST /v1/sessions/{session_id}/summaries",
  "DELETE /v1/sessions/{session_id}/summaries",
  "GET /v1/sessions/{session_id}/swisper-context",
  "PUT /v1/sessions/{session_id}/swisper-context",
  "GET /v1/sessions/{session_id}",
  "PATCH /v1/sessions/{session_id}",
  "GET /v1/sessions/{session_id}/export",
  "POST /v1/imports",
  "DELETE /v1/sessions/{session_id}",
  "GET /v1/legacy",
  "POST /v1/legacy/imports",
  "POST /v1/legacy/verifications",
  "GET /v1/legacy/jobs/{job_id}",
];

/** Every `$ref` in a value, and every `examples` array of a schema node inside it, with its node. */
function walk(node: unknown, visit: (node: Record<string, unknown>) => void): void {
  if (Array.isArray(node)) for (const item of node) walk(item, visit);
  if (typeof node !== "object" || node === null || Array.isArray(node)) return;
  visit(node as Record<string, unknown>);
  for (const [key, value] of Object.entries(node)) {
    if (!["examples", "example", "default", "const", "enum"].includes(key)) walk(value, visit);
  }
}

/** Every documented example with the schema it must satisfy, and where it is. */
function documentedExamples(doc: OpenApiDocument): { where: string; schema: JsonSchema; value: unknown }[] {
  const found: { where: string; schema: JsonSchema; value: unknown }[] = [];
  for (const [name, component] of Object.entries(doc.components.schemas)) {
    walk(component, (node) => {
      if (!Array.isArray(node.examples)) return;
      for (const value of node.examples) found.push({ where: `component ${name}`, schema: node, value });
    });
  }
  const ofMedia = (where: string, media: MediaType) => {
    if (media.example !== undefined) found.push({ where, schema: media.schema, value: media.example });
    for (const [name, example] of Object.entries(media.examples ?? {})) {
      found.push({ where: `${where} ${name}`, schema: media.schema, value: example.value });
    }
  };
  for (const { key, operation } of operationsOf(doc)) {
    for (const parameter of operation.parameters ?? []) {
      ofMedia(`${key} parameter ${parameter.name}`, parameter as MediaType);
    }
    for (const [type, media] of Object.entries(operation.requestBody?.content ?? {})) {
      ofMedia(`${key} request ${type}`, media);
    }
    for (const [status, response] of Object.entries(operation.responses)) {
      for (const media of Object.values(response.content ?? {})) ofMedia(`${key} ${status}`, media);
    }
  }
  return found;
}

describe("/openapi.json", () => {
  it("is OpenAPI 3.1 with every route, served relative to where it is fetched", () => {
    expect(document.openapi).toBe("3.1.0");
    expect(
      operationsOf(document)
        .map((entry) => entry.key)
        .sort(),
    ).toEqual([...V1_OPERATIONS, "GET /health", "GET /ready", "GET /live", "GET /metrics"].sort());
    expect(document.servers).toEqual([expect.objectContaining({ url: "/" })]);
  });

  it("names every operation: a unique camelCase operationId, a summary, a description and a tag", () => {
    const operations = operationsOf(document).map(({ operation }) => operation);
    const ids = operations.map((operation) => operation.operationId);
    expect(
      ids.every((id) => /^[a-z][A-Za-z]+$/.test(id ?? "")),
      ids.join(),
    ).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    for (const operation of operations) {
      expect(operation.summary, operation.operationId).toMatch(/\S/);
      expect(operation.description, operation.operationId).toMatch(/\S/);
      expect(operation.tags?.length, operation.operationId).toBe(1);
    }
    const tags = (document.tags ?? []).map((tag) => tag.name);
    expect(operations.flatMap((operation) => operation.tags ?? []).every((tag) => tags.includes(tag))).toBe(
      true,
    );
  });

  it("names components after the schemas (no *Input), and every $ref names one", () => {
    const names = Object.keys(document.components.schemas);
    expect(names).toEqual(
      expect.arrayContaining(["ChatMessage", "Error", "SessionConfig", "ContextResponse"]),
    );
    expect(names.filter((name) => name.endsWith("Input"))).toEqual([]);
    const refs = new Set<string>();
    walk(document, (node) => {
      if (typeof node.$ref === "string") refs.add(node.$ref);
    });
    expect([...refs].filter((ref) => !names.includes(ref.replace("#/components/schemas/", "")))).toEqual([]);
    expect(names.filter((name) => !refs.has(`#/components/schemas/${name}`))).toEqual([]);
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
    expect(body).toContain('"#/components/schemas/ChatMessage"');
    expect(body).toContain('"#/components/schemas/MessageBatch"');
    const message = JSON.stringify(document.components.schemas.ChatMessage);
    expect(message).toContain('"enum":["system","user","assistant","tool"]');
    expect(message).toContain('"additionalProperties":false');
  });

  it("gives integers real bounds, not zod's safe-integer ones", () => {
    const text = JSON.stringify(document);
    expect(text).not.toContain(String(Number.MIN_SAFE_INTEGER));
    expect(text).not.toContain(String(Number.MAX_SAFE_INTEGER));
    const stored = document.components.schemas.StoredMessage as { properties: Record<string, JsonSchema> };
    expect(stored.properties.seq).toMatchObject({ type: "integer", minimum: 1 });
  });

  it("has examples everywhere a body is sent, and every example is valid against its schema", () => {
    const examples = documentedExamples(document);
    const check = schemaChecker(document, { closed: true });
    const invalid = examples.flatMap(({ where, schema, value }) =>
      check(schema, value).map((error) => `${where}: ${error}`),
    );
    expect(invalid).toEqual([]);
    for (const { key, operation } of operationsOf(document)) {
      const media = operation.requestBody?.content["application/json"];
      if (media) expect(Object.keys(media.examples ?? {}).length, key).toBeGreaterThan(0);
    }
    // Components, parameters, request bodies and every error answer carry some.
    expect(examples.length).toBeGreaterThan(60);
  });

  it("describes every answer, and every error answer has the error shape", () => {
    for (const { key, operation } of operationsOf(document)) {
      for (const [status, response] of Object.entries(operation.responses)) {
        expect(response.description, `${key} ${status}`).not.toBe("Default Response");
        if (Number(status) < 400 || key === "GET /health" || key === "GET /ready") continue;
        expect(response.content?.["application/json"]?.schema, `${key} ${status}`).toEqual({
          $ref: "#/components/schemas/Error",
        });
      }
    }
    const post = document.paths["/v1/sessions/{session_id}/messages"]!.post!;
    expect(Object.keys(post.responses).sort()).toEqual([
      "200",
      "201",
      "400",
      "401",
      "413",
      "415",
      "429",
      "500",
      "503",
    ]);
    const erase = document.paths["/v1/sessions/{session_id}"]!.delete!;
    expect(erase.responses["204"]?.content).toBeUndefined();
    expect(post.responses["429"]?.headers).toHaveProperty("Retry-After");
    expect(post.responses["503"]?.headers).toHaveProperty("Retry-After");
  });

  it("with API keys: both schemes, required by every /v1 operation and by nothing else", () => {
    expect(Object.keys(document.components.securitySchemes ?? {}).sort()).toEqual(["apiKey", "bearerAuth"]);
    for (const { key, operation } of operationsOf(document)) {
      const v1 = V1_OPERATIONS.includes(key);
      expect(operation.security, key).toEqual(v1 ? [{ bearerAuth: [] }, { apiKey: [] }] : []);
      expect(Object.keys(operation.responses).includes("401"), key).toBe(v1);
    }
  });

  it("without API keys: no security scheme (so /docs has no Authorize button), no 401", () => {
    expect(withoutKeys.components.securitySchemes).toBeUndefined();
    expect(withoutKeys.security).toBeUndefined();
    for (const { key, operation } of operationsOf(withoutKeys)) {
      expect(operation.security ?? [], key).toEqual([]);
      expect(Object.keys(operation.responses), key).not.toContain("401");
    }
    expect(withoutKeys.info.description).toContain("Authentication is off");
  });
});

describe("/docs", () => {
  it("serves the interactive docs and their assets from the package (nothing downloaded)", async () => {
    const page = await service.app.inject({ method: "GET", url: "/docs/" });
    expect(page.statusCode).toBe(200);
    expect(page.headers["content-type"]).toMatch(/text\/html/);
    expect(page.body).toContain("<title>Swisper Memory API</title>");
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

  it("loads the same document as /openapi.json: Authorize only with API keys", async () => {
    for (const [app, expected] of [
      [anonymous.app, withoutKeys],
      [service.app, document],
    ] as const) {
      const loaded = await call(app, "GET", "/docs/json");
      expect(loaded.json()).toEqual(expected);
    }
  });
});
