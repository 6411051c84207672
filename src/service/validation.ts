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
import { toValidationError } from "../schemas/issues.js";

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
 * Validates a request part with its zod schema (the one the library validates with); on failure,
 * the library's own ValidationError, mapped to 400: the same field (`messages[0].role`) and the
 * same words as a library caller gets for the same input.
 */
export const zodValidatorCompiler: FastifySchemaCompiler<z.ZodType> = ({ schema, httpPart }) => {
  const prefix = (httpPart && PART_PREFIX[httpPart]) ?? "";
  return (data: unknown) => {
    const result = schema.safeParse(data);
    if (result.success) return { value: result.data };
    const root = httpPart === "body" ? bodyRoot(schema, data) : prefix;
    return { error: toValidationError(result.error.issues, root, root || "body") };
  };
};

/**
 * The body of POST .../messages is one message or `{messages: [...]}`: only a lone message is
 * named `message`; a batch's fields are named from the body (`messages[0].role`).
 */
function bodyRoot(schema: object, data: unknown): string {
  const name = bodyFieldNames.get(schema) ?? "body";
  const isBatch = typeof data === "object" && data !== null && !Array.isArray(data) && "messages" in data;
  return name === "message" && isBatch ? "" : name;
}
