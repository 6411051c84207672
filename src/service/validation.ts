import type {
  FastifyBaseLogger,
  FastifyInstance,
  FastifySchemaCompiler,
  RawReplyDefaultExpression,
  RawRequestDefaultExpression,
  RawServerDefault,
} from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import type { z } from "zod";
import { HttpError } from "./http-errors.js";

type Issue = z.core.$ZodIssue;
type Segment = PropertyKey;

/** Where a part of the request sits in field paths: the body of a message route is `message`. */
const PART_PREFIX: Record<string, string> = {
  body: "",
  querystring: "",
  params: "",
  headers: "header",
};

/** Names the body in field paths, per route: `message.role`, `config.max_buffer_tokens`. */
export const bodyFieldNames = new WeakMap<object, string>();

/** Fastify with routes typed by their zod schemas (`app.withTypeProvider<ZodTypeProvider>()`). */
export type ZodRoutes = FastifyInstance<
  RawServerDefault,
  RawRequestDefaultExpression,
  RawReplyDefaultExpression,
  FastifyBaseLogger,
  ZodTypeProvider
>;

/**
 * Validates a request part with its zod schema; on failure, throws the service's 400 with the
 * first issue's field as a dotted path in the library's notation (`messages[0].role`), so that
 * the HTTP layer and the library name the same field the same way.
 */
export const zodValidatorCompiler: FastifySchemaCompiler<z.ZodType> = ({ schema, httpPart }) => {
  const prefix = (httpPart && PART_PREFIX[httpPart]) ?? "";
  return (data: unknown) => {
    const result = schema.safeParse(data);
    if (result.success) return { value: result.data };
    const bodyName = httpPart === "body" ? (bodyFieldNames.get(schema) ?? "body") : prefix;
    return { error: toHttpError(result.error.issues, data, bodyName) };
  };
};

function toHttpError(issues: readonly Issue[], data: unknown, root: string): HttpError {
  const issue = mostRelevant(issues);
  let path: Segment[] = [...issue.path];
  let message = issue.message;
  // The body of POST .../messages is one message or {messages: [...]}: only a lone message is
  // named `message`; a batch's fields are named from the body (`messages[0].role`).
  const rootName = root === "message" && isObject(data) && "messages" in data ? "" : root;
  if (issue.code === "unrecognized_keys") {
    path = [...path, issue.keys[0] ?? ""];
    message = "unknown field";
  } else if (issue.code === "invalid_type" && valueAt(data, path) === undefined) {
    message = "is required";
  }
  const field = formatPath(rootName, path) || rootName || "body";
  return new HttpError(400, "invalid_input", `${field}: ${message}`, { field });
}

/**
 * The issue to report. For a failed union at the root (a lone message or a batch), the branch
 * with the fewest issues is the one the caller meant.
 */
function mostRelevant(issues: readonly Issue[]): Issue {
  // biome-ignore lint/style/noNonNullAssertion: a failed zod parse reports at least one issue
  const first = issues[0]!;
  if (first.code === "invalid_union" && first.path.length === 0 && first.errors.length > 0) {
    const branch = first.errors.reduce((best, candidate) =>
      candidate.length < best.length ? candidate : best,
    );
    if (branch.length > 0) return mostRelevant(branch);
  }
  return first;
}

/** `["messages", 0, "role"]` under "" → `messages[0].role`; `["role"]` under "message" → `message.role`. */
export function formatPath(root: string, path: readonly Segment[]): string {
  let text = root;
  for (const segment of path) {
    if (typeof segment === "number") text += `[${segment}]`;
    else text += text === "" ? String(segment) : `.${String(segment)}`;
  }
  return text;
}

function valueAt(data: unknown, path: readonly Segment[]): unknown {
  let value = data;
  for (const segment of path) {
    if (typeof value !== "object" || value === null) return undefined;
    value = (value as Record<PropertyKey, unknown>)[segment];
  }
  return value;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
