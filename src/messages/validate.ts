import { inspect } from "node:util";
import { ValidationError } from "../errors.js";
import type { Logger } from "../logger.js";
import type { ChatMessage, ContentPart, MessageRole, ToolCall } from "../types.js";

export interface MessageLimits {
  /** Largest content of one message, in UTF-8 bytes (default 262144, 256 KiB). */
  maxContentBytes: number;
  /**
   * Largest whole message as stored (content, tool calls, metadata, ids), in UTF-8 bytes of its
   * JSON (default 524288, 512 KiB). Without it, metadata was unbounded: 30 messages of 1.9 MB
   * metadata each made one session's context 57 MB.
   */
  maxMessageBytes: number;
}

export const DEFAULT_MESSAGE_LIMITS: MessageLimits = {
  maxContentBytes: 256 * 1024,
  maxMessageBytes: 512 * 1024,
};

/** Deepest nesting of a message's metadata (objects and arrays), counting the metadata itself. */
export const MAX_METADATA_DEPTH = 32;

const ROLES: readonly MessageRole[] = ["system", "user", "assistant", "tool"];
const MESSAGE_FIELDS = new Set([
  "role",
  "content",
  "name",
  "tool_call_id",
  "tool_calls",
  "id",
  "timestamp",
  "metadata",
]);
// Printable: no C0/C1 control characters (tabs and newlines included), 1 to 256 characters; and
// well-formed Unicode (no lone surrogate): stored as UTF-8, a lone surrogate becomes U+FFFD, so
// "a\uD800" and "a\uFFFD" would be taken for the same id and the second message dropped.
const PRINTABLE_ID = /^[^\p{Cc}\p{Cs}]{1,256}$/u;
const PRINTABLE_ID_RULE = "must be 1-256 printable characters of well-formed Unicode";
const TENANT_ID = /^[A-Za-z0-9_.-]{1,64}$/;

/** Checks a session id: 1-256 printable characters. */
export function validateSessionId(sessionId: unknown): string {
  if (typeof sessionId !== "string" || !PRINTABLE_ID.test(sessionId)) {
    throw new ValidationError("session_id", PRINTABLE_ID_RULE);
  }
  return sessionId;
}

/** Checks a tenant name: 1-64 of `A-Z a-z 0-9 _ . -`. */
export function validateTenant(tenant: unknown): string {
  if (typeof tenant !== "string" || !TENANT_ID.test(tenant)) {
    throw new ValidationError("tenant", "must be 1-64 characters of A-Z, a-z, 0-9, _, . and -");
  }
  return tenant;
}

/**
 * Checks one message and returns a clean copy with its timestamp set. Throws a ValidationError
 * naming the field for anything malformed. Metadata that JSON cannot represent (a BigInt, a cycle)
 * is not an error: it is kept as its text form and a warning is logged.
 */
export function validateMessage(
  input: unknown,
  limits: MessageLimits,
  logger: Logger,
  field = "message",
  nowSeconds = Math.floor(Date.now() / 1000),
): ChatMessage {
  if (typeof input !== "object" || input === null || Array.isArray(input)) {
    throw new ValidationError(field, "must be an object");
  }
  const raw = input as Record<string, unknown>;
  for (const key of Object.keys(raw)) {
    if (!MESSAGE_FIELDS.has(key)) throw new ValidationError(`${field}.${key}`, "unknown field");
  }
  if (!ROLES.includes(raw.role as MessageRole)) {
    throw new ValidationError(`${field}.role`, `must be one of ${ROLES.join(", ")}`);
  }
  const role = raw.role as MessageRole;
  const message: ChatMessage = { role, content: validateContent(raw.content, `${field}.content`, limits) };

  if (raw.tool_calls !== undefined) {
    if (role !== "assistant")
      throw new ValidationError(`${field}.tool_calls`, "only assistant messages make tool calls");
    message.tool_calls = validateToolCalls(raw.tool_calls, `${field}.tool_calls`);
  }
  if (message.content === null && !message.tool_calls?.length) {
    throw new ValidationError(`${field}.content`, "may be null only on an assistant message with tool_calls");
  }
  if (raw.name !== undefined) message.name = requireString(raw.name, `${field}.name`, 256);
  if (role === "tool") {
    message.tool_call_id = requireString(raw.tool_call_id, `${field}.tool_call_id`, 256);
  } else if (raw.tool_call_id !== undefined) {
    throw new ValidationError(`${field}.tool_call_id`, "only tool messages answer a tool call");
  }
  if (raw.id !== undefined) {
    if (typeof raw.id !== "string" || !PRINTABLE_ID.test(raw.id)) {
      throw new ValidationError(`${field}.id`, PRINTABLE_ID_RULE);
    }
    message.id = raw.id;
  }
  if (raw.timestamp === undefined) {
    message.timestamp = nowSeconds;
  } else if (typeof raw.timestamp === "number" && Number.isFinite(raw.timestamp) && raw.timestamp >= 0) {
    message.timestamp = raw.timestamp;
  } else {
    throw new ValidationError(`${field}.timestamp`, "must be a non-negative number of seconds");
  }
  if (raw.metadata !== undefined) {
    if (typeof raw.metadata !== "object" || raw.metadata === null || Array.isArray(raw.metadata)) {
      throw new ValidationError(`${field}.metadata`, "must be an object");
    }
    assertDepth(raw.metadata, `${field}.metadata`);
    message.metadata = serializableMetadata(
      raw.metadata as Record<string, unknown>,
      logger,
      `${field}.metadata`,
    );
  }
  assertStoredSize(message, field, limits);
  return message;
}

/**
 * Refuses metadata nested deeper than MAX_METADATA_DEPTH. A cycle is not "deep": it is left to
 * `serializableMetadata`, which keeps it as text (the specification's rule for serialization errors).
 */
function assertDepth(value: unknown, field: string, depth = 1, ancestors: object[] = []): void {
  if (typeof value !== "object" || value === null || ancestors.includes(value)) return;
  if (depth > MAX_METADATA_DEPTH) {
    throw new ValidationError(field, `is nested deeper than ${MAX_METADATA_DEPTH} levels`);
  }
  ancestors.push(value);
  for (const child of Object.values(value)) assertDepth(child, field, depth + 1, ancestors);
  ancestors.pop();
}

function assertStoredSize(message: ChatMessage, field: string, limits: MessageLimits): void {
  const bytes = Buffer.byteLength(JSON.stringify(message), "utf8");
  if (bytes > limits.maxMessageBytes) {
    throw new ValidationError(
      field,
      `is ${bytes} bytes as stored (content, tool calls and metadata), more than ${limits.maxMessageBytes}`,
    );
  }
}

function validateContent(content: unknown, field: string, limits: MessageLimits): ChatMessage["content"] {
  if (content === null) return null;
  if (typeof content === "string") {
    if (Buffer.byteLength(content, "utf8") > limits.maxContentBytes) {
      throw new ValidationError(field, `is larger than ${limits.maxContentBytes} bytes`);
    }
    return content;
  }
  if (!Array.isArray(content))
    throw new ValidationError(field, "must be a string, an array of parts, or null");
  let bytes = 0;
  const parts: ContentPart[] = content.map((part: unknown, index) => {
    const partField = `${field}[${index}]`;
    if (typeof part !== "object" || part === null || typeof (part as { type?: unknown }).type !== "string") {
      throw new ValidationError(`${partField}.type`, "each part must be an object with a string type");
    }
    const typed = part as ContentPart;
    if (typed.type === "text" && typeof (typed as { text?: unknown }).text !== "string") {
      throw new ValidationError(`${partField}.text`, "a text part needs a string text");
    }
    let serialized: string;
    try {
      serialized = JSON.stringify(typed);
    } catch {
      throw new ValidationError(partField, "must be representable as JSON");
    }
    bytes += Buffer.byteLength(serialized, "utf8");
    return typed;
  });
  if (bytes > limits.maxContentBytes)
    throw new ValidationError(field, `is larger than ${limits.maxContentBytes} bytes`);
  return parts;
}

function validateToolCalls(value: unknown, field: string): ToolCall[] {
  if (!Array.isArray(value)) throw new ValidationError(field, "must be an array");
  return value.map((call: unknown, index) => {
    const callField = `${field}[${index}]`;
    if (typeof call !== "object" || call === null) throw new ValidationError(callField, "must be an object");
    const raw = call as { id?: unknown; type?: unknown; function?: { name?: unknown; arguments?: unknown } };
    if (raw.type !== "function") throw new ValidationError(`${callField}.type`, 'must be "function"');
    if (typeof raw.function !== "object" || raw.function === null) {
      throw new ValidationError(`${callField}.function`, "must be an object");
    }
    return {
      id: requireString(raw.id, `${callField}.id`, 256),
      type: "function",
      function: {
        name: requireString(raw.function.name, `${callField}.function.name`, 256),
        arguments: requireString(raw.function.arguments, `${callField}.function.arguments`, 256 * 1024, true),
      },
    };
  });
}

function requireString(value: unknown, field: string, maxLength: number, allowEmpty = false): string {
  if (typeof value !== "string" || (!allowEmpty && value.length === 0) || value.length > maxLength) {
    throw new ValidationError(field, `must be a string of ${allowEmpty ? 0 : 1}-${maxLength} characters`);
  }
  return value;
}

function serializableMetadata(
  metadata: Record<string, unknown>,
  logger: Logger,
  field: string,
): Record<string, unknown> {
  try {
    JSON.stringify(metadata);
    return metadata;
  } catch (error) {
    // The Memory Manager API specification's rule for serialization errors: warn, keep the raw data as text, continue.
    logger.warn({ field, error: String(error) }, "metadata is not JSON-serializable; stored as text");
    return { unserializable: inspect(metadata, { depth: 4, breakLength: Number.POSITIVE_INFINITY }) };
  }
}
