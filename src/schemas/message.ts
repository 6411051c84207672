/**
 * Chat messages in the OpenAI shape: what a caller hands in (ChatMessage), what memory holds
 * (StoredMessage) and what goes to a model (ModelMessage). The library validates with these, the
 * HTTP layer validates and documents with them, and `src/types.ts` infers the types from them.
 * Limits a deployment configures (content and message bytes) are not here: `messages/validate.ts`
 * checks them after the schema, with the same field names.
 */
import { z } from "zod";
import { count, printableId, seq } from "./ids.js";
import { type Check, complain, strictObjectErrors } from "./issues.js";

const ROLES = ["system", "user", "assistant", "tool"] as const;

export const MessageRoleSchema = z.enum(ROLES, { error: `must be one of ${ROLES.join(", ")}` });

/** Deepest nesting of a message's metadata (objects and arrays), counting the metadata itself. */
export const MAX_METADATA_DEPTH = 32;

/** Largest tool-call `arguments`, in characters. */
const MAX_ARGUMENTS_LENGTH = 256 * 1024;

/** The same words for every bounded string: `must be a string of 1-256 characters`. */
function text(minLength: number, maxLength: number) {
  const rule = { error: `must be a string of ${minLength}-${maxLength} characters` };
  return z.string(rule).min(minLength, rule).max(maxLength, rule);
}

const OBJECT = { error: "must be an object" };

const PART_RULE = { error: "each part must be an object with a string type" };

const textPartHasText: Check<{ type: string; text?: unknown }> = (payload) => {
  if (payload.value.type === "text" && typeof payload.value.text !== "string") {
    complain(payload, ["text"], "a text part needs a string text");
  }
};

export const ContentPartSchema = z
  .looseObject({ type: z.string(PART_RULE).min(1, PART_RULE) }, PART_RULE)
  .check(textPartHasText)
  .describe('A content part: {"type":"text","text":...} or {"type":"image_url","image_url":{"url":...}}');

export const ToolCallSchema = z
  .object(
    {
      id: text(1, 256),
      type: z.literal("function", { error: 'must be "function"' }),
      function: z.object({ name: text(1, 256), arguments: text(0, MAX_ARGUMENTS_LENGTH) }, OBJECT),
    },
    OBJECT,
  )
  .meta({ id: "ToolCall" });

/** Whether metadata nests deeper than the limit; a cycle is not "deep" (validate.ts keeps it as text). */
function deeperThan(limit: number, value: unknown, depth = 1, ancestors: object[] = []): boolean {
  if (typeof value !== "object" || value === null || ancestors.includes(value)) return false;
  if (depth > limit) return true;
  ancestors.push(value);
  const deep = Object.values(value).some((child) => deeperThan(limit, child, depth + 1, ancestors));
  ancestors.pop();
  return deep;
}

const shallowEnough: Check<Record<string, unknown>> = (payload) => {
  if (deeperThan(MAX_METADATA_DEPTH, payload.value)) {
    complain(payload, [], `is nested deeper than ${MAX_METADATA_DEPTH} levels`);
  }
};

const MetadataSchema = z.record(z.string(), z.unknown(), OBJECT).check(shallowEnough);

const CONTENT_RULE = { error: "must be a string, an array of parts, or null" };
const TIMESTAMP_RULE = { error: "must be a non-negative number of seconds" };

const chatMessageFields = {
  role: MessageRoleSchema,
  content: z
    .union([z.string(), z.array(ContentPartSchema), z.null()], CONTENT_RULE)
    .describe("Text, parts, or null on an assistant message that only makes tool calls; at most 256 KiB"),
  name: text(1, 256).optional(),
  tool_call_id: text(1, 256).optional().describe("Required on tool messages"),
  tool_calls: z
    .array(ToolCallSchema, { error: "must be an array" })
    .optional()
    .describe("Only on assistant messages"),
  id: printableId()
    .optional()
    .describe("Idempotency key: a message sent again with the same id is stored once"),
  timestamp: z
    .number(TIMESTAMP_RULE)
    .min(0, TIMESTAMP_RULE)
    .optional()
    .describe("Unix time in seconds; set on write when absent"),
  metadata: MetadataSchema.optional(),
};

/** The chat API's rules between fields, checked once every field is well-formed. */
const roleRules: Check<z.infer<z.ZodObject<typeof chatMessageFields>>> = (payload) => {
  const { role, content, tool_calls, tool_call_id } = payload.value;
  if (tool_calls !== undefined && role !== "assistant") {
    complain(payload, ["tool_calls"], "only assistant messages make tool calls");
  } else if (content === null && !tool_calls?.length) {
    complain(payload, ["content"], "may be null only on an assistant message with tool_calls");
  }
  if (role === "tool" && tool_call_id === undefined) {
    complain(payload, ["tool_call_id"], "is required on a tool message");
  } else if (role !== "tool" && tool_call_id !== undefined) {
    complain(payload, ["tool_call_id"], "only tool messages answer a tool call");
  }
};

const ChatMessageObject = z.strictObject(chatMessageFields, strictObjectErrors());

export const ChatMessageSchema = ChatMessageObject.check(roleRules).meta({
  id: "ChatMessage",
  description: "A chat message in the OpenAI shape",
  examples: [{ role: "user", content: "I want to buy a laptop" }],
});

/** How many messages one call may add. */
const BATCH_RULE = { error: "must be an array of 1 to 1000 messages" };

/** A batch of 1 to 1000 items, with the words the library and the HTTP layer both use. */
export const batchOf = <Item extends z.ZodType>(item: Item) =>
  z.array(item, BATCH_RULE).min(1, BATCH_RULE).max(1000, BATCH_RULE);

export const MessageBatchSchema = z
  .strictObject({ messages: batchOf(ChatMessageSchema) }, strictObjectErrors())
  .meta({ id: "MessageBatch", description: "1 to 1000 messages, stored in order" });

export const StoredMessageSchema = ChatMessageObject.extend({
  seq: seq().describe("Position in the session's transcript, 1-based"),
  tokens: count().describe("Exact tokens of this message with chat framing"),
  timestamp: z.number().min(0).describe("Unix time in seconds"),
  tokens_estimated: z
    .boolean()
    .optional()
    .describe("True when the tokens are a character estimate (the tokenizer failed)"),
}).meta({
  id: "StoredMessage",
  description: "A message as stored: with its seq and token count",
  examples: [{ role: "user", content: "I want to buy a laptop", timestamp: 1795492748, seq: 1, tokens: 10 }],
});

/** A message as sent to a model: the chat fields only (open, like every answer). */
export const ModelMessageSchema = z
  .object({
    role: chatMessageFields.role,
    content: chatMessageFields.content,
    name: chatMessageFields.name,
    tool_call_id: chatMessageFields.tool_call_id,
    tool_calls: chatMessageFields.tool_calls,
  })
  .meta({ id: "ModelMessage" });
