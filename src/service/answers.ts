/**
 * What routes declare about their answers, for `/openapi.json`: each status with what it means,
 * its body's schema and named examples. Responses are not validated at run time (see the
 * serializer in app.ts); test/service/openapi-live.test.ts checks real answers against them.
 */
import type { z } from "zod";
import { ErrorBodySchema } from "./schemas.js";

export interface Example<T> {
  summary: string;
  value: T;
}
export type Examples<T extends z.ZodType> = Record<string, Example<z.input<T>>>;

interface Header {
  description: string;
  type: "integer" | "string";
}

/** A documented answer, in the form Fastify and @fastify/swagger both read. */
export interface Answer<T extends z.ZodType> {
  description: string;
  headers?: Record<string, Header>;
  content: Record<string, { schema: T; examples?: Examples<T> }>;
}

/** Named examples of a request body (checked against its schema by the compiler). */
export function bodyExamples<T extends z.ZodType>(_schema: T, examples: Examples<T>): Examples<T> {
  return examples;
}

/** A JSON answer. */
export function json<T extends z.ZodType>(description: string, schema: T, examples?: Examples<T>): Answer<T> {
  return { description, content: { "application/json": { schema, ...(examples ? { examples } : {}) } } };
}

const RETRY_AFTER: Record<string, Header> = {
  "Retry-After": { type: "integer", description: "Seconds to wait before retrying" },
};

type ErrorStatus = 400 | 401 | 403 | 404 | 409 | 413 | 415 | 429 | 500 | 503;
const error = (code: string, message: string, field?: string) => ({
  error: { code, message, ...(field ? { field } : {}) },
});

/** The error of every route but /live while the service drains. */
export const SHUTTING_DOWN: Example<z.input<typeof ErrorBodySchema>> = {
  summary: "This instance is draining",
  value: error("shutting_down", "the service is shutting down; retry on another instance"),
};

const ERROR_ANSWERS: Record<
  ErrorStatus,
  Omit<Answer<typeof ErrorBodySchema>, "content"> & { examples: Examples<typeof ErrorBodySchema> }
> = {
  400: {
    description:
      "The request is not valid (`invalid_input`); `field` names the input, as the library's ValidationError does",
    examples: {
      invalid_input: {
        summary: "A message with an unknown role",
        value: error(
          "invalid_input",
          'message.role: Invalid option: expected one of "system"|"user"|"assistant"|"tool"',
          "message.role",
        ),
      },
    },
  },
  401: {
    description: "No API key, or one that is not valid (`unauthorized`)",
    headers: { "WWW-Authenticate": { type: "string", description: 'Bearer realm="swisper-memory"' } },
    examples: {
      unauthorized: {
        summary: "No API key",
        value: error(
          "unauthorized",
          "an API key is required: Authorization: Bearer <key> or X-API-Key: <key>",
        ),
      },
    },
  },
  403: {
    description: "The key's tenant may not use this operation (`forbidden`)",
    examples: {
      forbidden: {
        summary: "Another tenant's key",
        value: error(
          "forbidden",
          "the legacy store migrates into tenant 'default'; this key's tenant is 'acme'",
        ),
      },
    },
  },
  404: {
    description: "The tenant has no such session: never written to, or erased (`not_found`)",
    examples: {
      not_found: {
        summary: "An unknown session",
        value: error("not_found", "session 'session_123' has no memory"),
      },
    },
  },
  409: {
    description:
      "A session to import already exists with other content (`import_conflict`); nothing of it changed",
    examples: {
      import_conflict: {
        summary: "The session exists with other messages",
        value: error(
          "import_conflict",
          "line 2: session 'session_123' already exists with other content; erase it first to replace it",
        ),
      },
    },
  },
  413: {
    description: "The body is larger than the limit, MEMORY_BODY_LIMIT_BYTES (`payload_too_large`)",
    examples: {
      payload_too_large: {
        summary: "Too large",
        value: error("payload_too_large", "request body is larger than the limit"),
      },
    },
  },
  415: {
    description: "The body is not JSON (`unsupported_media_type`)",
    examples: {
      unsupported_media_type: {
        summary: "A text/plain body",
        value: error("unsupported_media_type", "send JSON (Content-Type: application/json)"),
      },
    },
  },
  429: {
    description:
      "More requests this minute than the key's limit (`rate_limited`); retry after Retry-After seconds",
    headers: RETRY_AFTER,
    examples: {
      rate_limited: {
        summary: "Over the limit",
        value: error("rate_limited", "more than 120000 requests per minute; retry in 12 seconds"),
      },
    },
  },
  500: {
    description: "An unexpected error (`internal`), logged with the request id the message names",
    examples: {
      internal: {
        summary: "A bug",
        value: error("internal", "internal error (request id 6f1d2c3e-3b1a-4e7c-9d2f-8a5b4c3d2e1f)"),
      },
    },
  },
  503: {
    description:
      "No storage tier can serve the request (`storage_unavailable`), or the service is shutting down " +
      "(`shutting_down`); retry after Retry-After seconds",
    headers: RETRY_AFTER,
    examples: {
      storage_unavailable: {
        summary: "Neither PostgreSQL nor a durable Redis answers",
        value: error("storage_unavailable", "no storage tier can serve the request right now; retry later"),
      },
      shutting_down: SHUTTING_DOWN,
    },
  },
};

/** The error answers of some statuses, in the service's error shape; `descriptions` override the generic ones. */
export function errorAnswers(
  statuses: readonly ErrorStatus[],
  descriptions: Partial<Record<ErrorStatus, string>> = {},
): Record<number, Answer<typeof ErrorBodySchema>> {
  return Object.fromEntries(
    statuses.map((status) => {
      const { examples, ...answer } = ERROR_ANSWERS[status];
      const described = { ...answer, description: descriptions[status] ?? answer.description };
      return [
        status,
        { ...described, content: { "application/json": { schema: ErrorBodySchema, examples } } },
      ];
    }),
  );
}

/**
 * The 413 and 415 of an operation that takes no body (a DELETE): a body sent is still read, and
 * refused, before the operation runs.
 */
export const NO_BODY: Partial<Record<ErrorStatus, string>> = {
  413: "A body was sent (this operation takes none), larger than the limit (`payload_too_large`)",
  415: "A body was sent (this operation takes none), not JSON (`unsupported_media_type`)",
};

/** Which errors every /v1 operation can give besides its own: 401 with API keys, 429 with a rate limit. */
export interface ServiceErrors {
  authenticated: boolean;
  rateLimited: boolean;
}

/** A /v1 operation's error answers: its own, and those every /v1 operation gives. */
export function v1ErrorAnswers(
  service: ServiceErrors,
  own: readonly ErrorStatus[],
  descriptions: Partial<Record<ErrorStatus, string>> = {},
): Record<number, Answer<typeof ErrorBodySchema>> {
  const shared: ErrorStatus[] = [
    ...(service.authenticated ? [401 as const] : []),
    ...(service.rateLimited ? [429 as const] : []),
    500,
    503,
  ];
  return errorAnswers(
    [...own, ...shared].sort((a, b) => a - b),
    descriptions,
  );
}
