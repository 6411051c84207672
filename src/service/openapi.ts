/**
 * `/openapi.json` and `/docs`: the document is generated from the routes' zod schemas (the ones
 * that validate requests) and their declared answers. Components are named after the schemas'
 * ids (`ChatMessage`, `Error`); security is declared only when API keys are configured.
 */
import type { FastifyDynamicSwaggerOptions, SwaggerTransform } from "@fastify/swagger";
import type { FastifySwaggerUiOptions } from "@fastify/swagger-ui";
import type { FastifySchema } from "fastify";
import { z } from "zod";

type JsonSchema = Record<string, unknown>;

declare module "fastify" {
  interface FastifySchema {
    /**
     * Named examples of the request body, valid as they stand (Swagger UI's "Try it out" starts
     * from the first). Documentation only.
     */
    bodyExamples?: Record<string, { summary: string; value: unknown }>;
  }
}

export interface DocumentOptions {
  /** API keys are configured: /v1 operations need one. */
  authenticated: boolean;
}

/** The security requirement of an operation that needs an API key (either scheme). */
export const API_KEY_SECURITY: Record<string, string[]>[] = [{ bearerAuth: [] }, { apiKey: [] }];

const SECURITY_SCHEMES = {
  bearerAuth: { type: "http", scheme: "bearer", description: "Authorization: Bearer <key>" },
  apiKey: { type: "apiKey", in: "header", name: "X-API-Key", description: "X-API-Key: <key>" },
} as const;

/** Options of @fastify/swagger: the document's fixed parts, and the zod schemas turned into JSON Schema. */
export function swaggerOptions(options: DocumentOptions): FastifyDynamicSwaggerOptions {
  const converter = new SchemaConverter();
  return {
    openapi: {
      openapi: "3.1.0",
      info: {
        title: "Swisper Memory",
        version: "1",
        license: { name: "MIT", identifier: "MIT" },
        description:
          "Session memory for LLM chat applications: a Redis buffer, rolling summaries in PostgreSQL, " +
          "exact token counts. Errors answer `{ error: { code, message, field? } }`." +
          (options.authenticated
            ? " Send an API key as `Authorization: Bearer <key>` or `X-API-Key: <key>`."
            : " Authentication is off (no API keys configured); the service listens on loopback only."),
      },
      // Relative: the service answers wherever this document was fetched from, behind any proxy
      // or port mapping, with no public URL to configure.
      servers: [{ url: "/", description: "This service (where this document is served)" }],
      tags: [
        { name: "sessions", description: "A tenant's session memory" },
        {
          name: "legacy",
          description:
            "The migration from the legacy session store (swisper_sessions): status, import, verify",
        },
        { name: "operations", description: "Liveness, readiness, health and metrics" },
      ],
      ...(options.authenticated ? { components: { securitySchemes: SECURITY_SCHEMES } } : {}),
    },
    transform: converter.transformRoute,
    transformObject: (document) => {
      if (!("openapiObject" in document)) throw new Error("expected an OpenAPI 3 document");
      return converter.complete(document.openapiObject);
    },
  };
}

/** Options of @fastify/swagger-ui: the docs page without the Fastify logo and the URL bar. */
export function swaggerUiOptions(): FastifySwaggerUiOptions {
  return {
    routePrefix: "/docs",
    // BaseLayout has no top bar, so neither a logo nor a field to load another document. null:
    // no logo to put there (undefined would embed Fastify's; the types omit null, the plugin checks it).
    logo: null as unknown as undefined,
    theme: { title: "Swisper Memory API" },
    uiConfig: { layout: "BaseLayout", validatorUrl: null, deepLinking: true },
  };
}

const COMPONENT_REF = "#/components/schemas/";
interface RequestBody {
  content: Record<string, { examples?: unknown }>;
}
const REQUEST_PARTS = ["body", "params", "querystring", "headers"] as const;

/**
 * zod → JSON Schema 2020-12, one schema per zod schema: a schema with an id (`.meta({ id })`)
 * becomes the component of that name, referenced wherever it is used. Everything is converted
 * in zod's input mode, for requests and responses alike: so a component has one name (the
 * type provider's own transform emits each schema twice, `X` for responses and `XInput` for
 * requests), and response objects stay open to fields added later (output mode would close
 * them with `additionalProperties: false`, which breaks strict clients at the next release).
 */
class SchemaConverter {
  readonly #components = new Map<string, JsonSchema>();
  // By operationId: @fastify/swagger keeps no examples beside a body that is a `$ref`, so they
  // are put into the finished document.
  readonly #bodyExamples = new Map<string, unknown>();

  readonly transformRoute: SwaggerTransform = ({ schema, url }) => {
    if (!schema || schema.hide) return { schema: { ...schema, hide: true }, url };
    const { bodyExamples, ...transformed }: Record<string, unknown> = { ...schema };
    if (bodyExamples) this.#bodyExamples.set(String(schema.operationId), bodyExamples);
    for (const part of REQUEST_PARTS) {
      if (schema[part]) transformed[part] = this.#jsonOf(schema[part]);
    }
    if (schema.response) {
      const responses = Object.entries(schema.response as Record<string, unknown>);
      transformed.response = Object.fromEntries(
        responses.map(([status, answer]) => [status, this.#answer(answer)]),
      );
    }
    return { schema: transformed as FastifySchema, url };
  };

  /** The document with its components and the request bodies' examples. */
  complete<T extends { components?: object; paths?: object }>(document: T): T {
    const operations = Object.values(document.paths ?? {}).flatMap((item) => Object.values(item as object));
    for (const operation of operations as { operationId?: string; requestBody?: RequestBody }[]) {
      const examples = this.#bodyExamples.get(operation.operationId ?? "");
      const media = operation.requestBody?.content["application/json"];
      if (examples && media) media.examples = examples;
    }
    const schemas = Object.fromEntries([...this.#components].sort(([a], [b]) => a.localeCompare(b)));
    return { ...document, components: { ...document.components, schemas } };
  }

  /** A JSON Schema with `$ref`s to components; the components it needs are kept for the document. */
  convert(schema: z.ZodType): JsonSchema {
    const {
      $defs = {},
      $schema: _,
      ...root
    } = z.toJSONSchema(schema, {
      target: "draft-2020-12",
      io: "input",
      unrepresentable: "any",
      override: ({ jsonSchema }) => dropSafeIntegerBounds(jsonSchema),
    }) as JsonSchema & { $defs?: Record<string, JsonSchema> };
    for (const [id, definition] of Object.entries($defs)) {
      // zod extracts a recursive schema without an id as `__schema0`: a name that means nothing
      // to a reader, and that would collide between routes.
      if (id.startsWith("__")) throw new Error(`a recursive schema needs an id: ${excerpt(definition)}`);
      this.#components.set(id, withComponentRefs(definition));
    }
    return withComponentRefs(root);
  }

  /** A route's answer: a schema, or `{ description, content: { type: { schema } } }`. */
  #answer(answer: unknown): unknown {
    if (answer instanceof z.ZodType) return this.convert(answer);
    const { content, ...rest } = answer as { content?: Record<string, { schema: unknown }> };
    if (!content) return answer;
    const media = Object.entries(content).map(([type, entry]) => [
      type,
      { ...entry, schema: this.#jsonOf(entry.schema) },
    ]);
    return { ...rest, content: Object.fromEntries(media) };
  }

  /** A zod schema converted; anything else (a JSON Schema written by hand) as it is. */
  #jsonOf(schema: unknown): unknown {
    return schema instanceof z.ZodType ? this.convert(schema) : schema;
  }
}

/**
 * zod bounds every integer to ±(2^53 - 1): true, but no bound a caller needs, and Swagger UI
 * makes its examples from the minimum (`seq: -9007199254740991`).
 */
function dropSafeIntegerBounds(jsonSchema: JsonSchema): void {
  if (jsonSchema.minimum === Number.MIN_SAFE_INTEGER) delete jsonSchema.minimum;
  if (jsonSchema.maximum === Number.MAX_SAFE_INTEGER) delete jsonSchema.maximum;
}

function withComponentRefs(schema: JsonSchema): JsonSchema {
  return JSON.parse(JSON.stringify(schema).replaceAll('"#/$defs/', `"${COMPONENT_REF}`)) as JsonSchema;
}

function excerpt(definition: JsonSchema): string {
  return JSON.stringify(definition).slice(0, 80);
}
