/**
 * Reads `/openapi.json` as a client generator would, and checks answers and examples against it
 * with a JSON Schema 2020-12 validator (the dialect of OpenAPI 3.1).
 */
import { Ajv2020 } from "ajv/dist/2020.js";
import type { FastifyInstance } from "fastify";

export interface OpenApiDocument {
  openapi: string;
  info: { title: string; description?: string };
  servers?: { url: string }[];
  security?: unknown[];
  tags?: { name: string; description?: string }[];
  paths: Record<string, Record<string, OpenApiOperation>>;
  components: { schemas: Record<string, JsonSchema>; securitySchemes?: Record<string, unknown> };
}

export interface OpenApiOperation {
  operationId?: string;
  summary?: string;
  description?: string;
  tags?: string[];
  parameters?: {
    name: string;
    in: string;
    schema: JsonSchema;
    required?: boolean;
    example?: unknown;
    examples?: Record<string, { value: unknown }>;
  }[];
  requestBody?: { content: Record<string, MediaType> };
  responses: Record<string, OpenApiResponse>;
  security?: unknown[];
}

export interface OpenApiResponse {
  description: string;
  headers?: Record<string, { required?: boolean; schema?: JsonSchema }>;
  content?: Record<string, MediaType>;
}

export interface MediaType {
  schema: JsonSchema;
  example?: unknown;
  examples?: Record<string, { summary?: string; value: unknown }>;
}

export type JsonSchema = Record<string, unknown>;

export async function fetchDocument(app: FastifyInstance): Promise<OpenApiDocument> {
  const response = await app.inject({ method: "GET", url: "/openapi.json" });
  if (response.statusCode !== 200) throw new Error(`/openapi.json answered ${response.statusCode}`);
  return JSON.parse(response.body) as OpenApiDocument;
}

/** Every operation of the document, as `METHOD /path`. */
export function operationsOf(document: OpenApiDocument): { key: string; operation: OpenApiOperation }[] {
  return Object.entries(document.paths).flatMap(([path, methods]) =>
    Object.entries(methods).map(([method, operation]) => ({
      key: `${method.toUpperCase()} ${path}`,
      operation,
    })),
  );
}

/** The operation a request lands on: `GET /v1/sessions/abc/context?x=1` → `GET /v1/sessions/{session_id}/context`. */
export function operationFor(
  document: OpenApiDocument,
  method: string,
  url: string,
): { key: string; operation: OpenApiOperation } | null {
  const path = url.split("?")[0]!;
  for (const [template, methods] of Object.entries(document.paths)) {
    const pattern = new RegExp(`^${template.replace(/\{[^}]+\}/g, "[^/]+")}$`);
    const operation = methods[method.toLowerCase()];
    if (operation && pattern.test(path)) return { key: `${method.toUpperCase()} ${template}`, operation };
  }
  return null;
}

const DOCUMENT_ID = "https://swisper-memory.test/openapi.json";
// Keywords whose values are data, not subschemas.
const DATA_KEYWORDS = new Set(["examples", "example", "default", "const", "enum"]);

export type SchemaCheck = (schema: JsonSchema, value: unknown) => string[];

/**
 * Validates values against schemas of the document (their `$ref`s resolve to its components).
 * `closed`: objects that do not say otherwise take no properties beyond those listed, so that a
 * field the service sends but the document does not name fails (the document itself leaves
 * responses open, so that clients accept fields added later).
 */
export function schemaChecker(document: OpenApiDocument, options: { closed: boolean }): SchemaCheck {
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  const schemas = options.closed ? closeObjects(document.components.schemas) : document.components.schemas;
  ajv.addSchema({ $id: DOCUMENT_ID, components: { schemas } });
  return (schema, value) => {
    const absolute = JSON.parse(
      JSON.stringify(options.closed ? closeObjects(schema) : schema).replaceAll(
        '"#/components/',
        `"${DOCUMENT_ID}#/components/`,
      ),
    ) as JsonSchema;
    const validate = ajv.compile(absolute);
    if (validate(value)) return [];
    return (validate.errors ?? []).map((error) => `${error.instancePath || "/"} ${error.message ?? ""}`);
  };
}

function closeObjects<T>(node: T): T {
  if (Array.isArray(node)) return node.map(closeObjects) as T;
  if (typeof node !== "object" || node === null) return node;
  const copy: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(node)) {
    copy[key] = DATA_KEYWORDS.has(key) ? value : closeObjects(value);
  }
  if (copy.type === "object" && copy.properties && copy.additionalProperties === undefined) {
    copy.additionalProperties = false;
  }
  return copy as T;
}

/** One answer of the service, as the checks need it. */
export interface Exchange {
  method: string;
  url: string;
  statusCode: number;
  headers: Record<string, unknown>;
  body: string;
}

/**
 * What is wrong with an answer, measured against the document: its status must be declared
 * for its operation (explicitly: a `default` response does not count), its content type
 * declared for that status, its body valid against the declared schema, and each required
 * header present.
 */
export function exchangeProblems(
  document: OpenApiDocument,
  check: SchemaCheck,
  exchange: Exchange,
): string[] {
  const where = `${exchange.method} ${exchange.url} → ${exchange.statusCode}`;
  const found = operationFor(document, exchange.method, exchange.url);
  if (!found) return [`${where}: no operation in the document`];
  const response = found.operation.responses[String(exchange.statusCode)];
  if (!response) {
    const declared = Object.keys(found.operation.responses).join(", ");
    return [`${where}: status not declared (declared: ${declared})`];
  }
  const problems = missingHeaders(response, exchange).map((header) => `${where}: no ${header} header`);
  if (exchange.body === "") {
    if (response.content) problems.push(`${where}: no body, but the document declares one`);
    return problems;
  }
  const mediaType = String(exchange.headers["content-type"] ?? "")
    .split(";")[0]!
    .trim();
  const media = response.content?.[mediaType];
  if (!media) {
    const declared = Object.keys(response.content ?? {}).join(", ") || "none";
    return [...problems, `${where}: content type ${mediaType} not declared (declared: ${declared})`];
  }
  const value = mediaType === "application/json" ? JSON.parse(exchange.body) : exchange.body;
  for (const error of check(media.schema, value)) problems.push(`${where}: body ${error}`);
  return problems;
}

function missingHeaders(response: OpenApiResponse, exchange: Exchange): string[] {
  return Object.entries(response.headers ?? {})
    .filter(([name, header]) => header.required && exchange.headers[name.toLowerCase()] === undefined)
    .map(([name]) => name);
}
