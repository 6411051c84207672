/**
 * Sources for the archived memory servers, read straight from their Redis, for the import engine
 * (import.ts). Their layouts, as their public code writes them:
 *
 * - LangChain Python, `RedisChatMessageHistory` (langchain-ai/langchain,
 *   `libs/community/langchain_community/chat_message_histories/redis.py`): one list a session,
 *   key `<key_prefix><session_id>` with `key_prefix` "message_store:" by default; `add_message`
 *   LPUSHes `json.dumps(message_to_dict(message))`, i.e. `{"type": "human"|"ai"|"system"|"chat"|
 *   "function"|"tool", "data": {"content": ..., "additional_kwargs": ..., ...}}`, so the list
 *   holds the newest message first (its `messages` reads LRANGE 0 -1 reversed).
 * - LangChain JS, `RedisChatMessageHistory` (langchain-ai/langchainjs, `libs/langchain-redis/
 *   src/chat_histories.ts`, earlier `langchain/src/stores/message/redis.ts`): the key is the
 *   `sessionId` itself, no prefix; `addMessage` LPUSHes `JSON.stringify` of
 *   `mapChatMessagesToStoredMessages`, `{type, data: {content, role, name, tool_call_id,
 *   additional_kwargs, ...}}` (type "generic" carries `data.role`): newest first as well.
 * - Motorhead (getmetal/motorhead, `src/memory.rs`): the key is the session id itself; POST
 *   `/sessions/{id}/memory` LPUSHes each message as the string `"<role>: <content>"` (GET splits at
 *   the first ": "), newest first; the running summary is the string key `<id>_context`, the token
 *   count `<id>_tokens`. Roles are free text; LangChain's MotorheadMemory writes "Human" and "AI".
 *
 * So every layout is read with LRANGE and reversed: index 0 is the oldest message. The ids are
 * derived from the source, the session, that index and the raw element, so a re-run stores nothing
 * twice. Archived servers no longer write, so the indexes are stable; a Motorhead still compacting
 * (it trims the oldest messages into `_context`) would shift them.
 */
import { createHash } from "node:crypto";
import type { SwisperContext } from "../schemas/swisper-context.js";
import type { RedisConnection } from "../storage/redis-client.js";
import { ReplyReader } from "../storage/redis-reply.js";
import type { ChatMessage, MessageRole } from "../types.js";
import { canonicalJson } from "./convert.js";
import type { SkippedItem, SourceSession } from "./import.js";

export const ARCHIVED_SOURCES = ["langchain-redis", "motorhead"] as const;
export type ArchivedSource = (typeof ARCHIVED_SOURCES)[number];
export type LangChainLayout = "python" | "js";

/** Where each layout keeps its sessions when `--key-prefix` is not given. */
export function defaultKeyPrefix(source: ArchivedSource, layout: LangChainLayout): string {
  return source === "langchain-redis" && layout === "python" ? "message_store:" : "";
}

export interface ArchivedSourceOptions {
  redis: RedisConnection;
  source: ArchivedSource;
  /** Every list key starting with it is a session. */
  keyPrefix: string;
  /**
   * The part of each key that is not the session id: LangChain Python's `key_prefix`. LangChain
   * JS and Motorhead use the session id itself as the key, so theirs is "" and `keyPrefix` only
   * picks which sessions to import.
   */
  idPrefix: string;
  /** Import only this session. */
  sessionId?: string;
}

type Converted = { ok: true; message: ChatMessage & { id: string } } | { ok: false; reason: string };

/** The idempotency key of a source's element: same source, session, index and text, same id. */
export function archivedMessageId(
  source: ArchivedSource,
  sessionId: string,
  index: number,
  raw: string,
): string {
  const hash = createHash("sha256")
    .update(canonicalJson([source, sessionId, index, raw]))
    .digest("hex");
  return `legacy:${hash.slice(0, 32)}`;
}

/** A glob that matches `prefix` literally, then anything. */
function prefixPattern(prefix: string): string {
  return `${prefix.replace(/[*?[\]\\]/g, (char) => `\\${char}`)}*`;
}

/**
 * The session keys, streamed with SCAN (never KEYS, which blocks the server): only lists, so
 * Motorhead's `_context`/`_tokens` strings and anything else under the prefix are passed over.
 * SCAN may return a key twice; each is yielded once.
 */
export async function* archivedSessionKeys(
  redis: RedisConnection,
  keyPrefix: string,
): AsyncGenerator<string> {
  const seen = new Set<string>();
  let cursor = "0";
  do {
    const args = ["SCAN", cursor, "MATCH", prefixPattern(keyPrefix), "COUNT", "500", "TYPE", "list"];
    const read = new ReplyReader("SCAN", await redis.send(args));
    const [next, batch] = read.tuple(2);
    cursor = read.string(next, "the cursor");
    for (const key of read.strings(batch, "the keys")) {
      if (seen.has(key)) continue;
      seen.add(key);
      yield key;
    }
  } while (cursor !== "0");
}

/** How many sessions a run will import (for the progress bar): one SCAN pass over the keys. */
export async function countArchivedSessions(redis: RedisConnection, keyPrefix: string): Promise<number> {
  let count = 0;
  for await (const _key of archivedSessionKeys(redis, keyPrefix)) count += 1;
  return count;
}

/** Each session of the archived server, converted, one at a time as the engine asks. */
export async function* archivedSessions(options: ArchivedSourceOptions): AsyncGenerator<SourceSession> {
  const { redis, keyPrefix, idPrefix } = options;
  const keys =
    options.sessionId !== undefined
      ? onlyKey(redis, idPrefix + options.sessionId)
      : archivedSessionKeys(redis, keyPrefix);
  for await (const key of keys) {
    const sessionId = key.slice(idPrefix.length);
    if (sessionId === "") continue;
    const reply = await redis.send(["LRANGE", key, "0", "-1"], { key });
    // Both servers LPUSH: the list is newest first, the transcript oldest first.
    const elements = new ReplyReader("LRANGE", reply).strings(reply, "the elements").reverse();
    const session = convertArchivedSession(options.source, sessionId, elements);
    if (options.source === "motorhead") session.context = await motorheadContext(redis, key, sessionId);
    yield session;
  }
}

/** The one key of `--session`, when it is a list. */
async function* onlyKey(redis: RedisConnection, key: string): AsyncGenerator<string> {
  if ((await redis.send(["TYPE", key], { key })) === "list") yield key;
}

/**
 * Motorhead's running summary. It cannot become a summary of ours (a summary covers a range of
 * stored messages, and Motorhead's covers messages it already dropped), so it is kept where the
 * application reads it back: the saved SwisperContext, field `motorhead_context`.
 */
async function motorheadContext(
  redis: RedisConnection,
  key: string,
  sessionId: string,
): Promise<SwisperContext | null> {
  const contextKey = `${key}_context`;
  const value = await redis.send(["GET", contextKey], { key: contextKey });
  if (typeof value !== "string" || value === "") return null;
  return { session_id: sessionId, motorhead_context: value } as SwisperContext;
}

/** A session's elements, oldest first, as messages and skip reports. */
export function convertArchivedSession(
  source: ArchivedSource,
  sessionId: string,
  elements: readonly string[],
): SourceSession {
  const session: SourceSession = {
    sessionId,
    messages: [],
    indexes: [],
    skipped: [],
    context: null,
    elements: elements.length,
  };
  elements.forEach((raw, index) => {
    const converted = source === "motorhead" ? convertMotorhead(raw) : convertLangChain(raw);
    if (converted.ok) {
      const id = archivedMessageId(source, sessionId, index, raw);
      session.messages.push({ ...converted.message, id });
      session.indexes.push(index);
    } else {
      const skipped: SkippedItem = { sessionId, index, reason: converted.reason };
      session.skipped.push(skipped);
    }
  });
  return session;
}

/** LangChain message types (and a "chat"/"generic" message's own role) as our roles. */
const LANGCHAIN_ROLES: Record<string, MessageRole> = {
  human: "user",
  user: "user",
  ai: "assistant",
  assistant: "assistant",
  system: "system",
  tool: "tool",
  function: "tool",
};

function convertLangChain(raw: string): Converted {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return { ok: false, reason: "bad JSON" };
  }
  if (!isRecord(parsed) || !isRecord(parsed.data)) return { ok: false, reason: "not a LangChain message" };
  const { type, data } = parsed;
  // "chat" (Python) and "generic" (JS) messages carry their role in the data.
  const roleName = type === "chat" || type === "generic" ? data.role : type;
  const role = typeof roleName === "string" ? LANGCHAIN_ROLES[roleName] : undefined;
  if (!role) return { ok: false, reason: "unknown type" };
  const { content, ...rest } = data;
  if (typeof content !== "string") return { ok: false, reason: "non-string content" };
  const metadata: Record<string, unknown> = { import_source: "langchain-redis", langchain_type: type };
  // Empty fields (additional_kwargs {}, name null) say nothing; the rest is kept.
  for (const [key, value] of Object.entries(rest)) if (!isEmpty(value)) metadata[`langchain_${key}`] = value;
  const message: ChatMessage & { id: string } = { id: "", role, content, metadata };
  // Our tool messages name their call: a tool message's own id, a function message's name.
  const callId = type === "function" ? rest.name : rest.tool_call_id;
  if (role === "tool" && typeof callId === "string") message.tool_call_id = callId;
  return { ok: true, message };
}

function convertMotorhead(raw: string): Converted {
  const separator = raw.indexOf(": ");
  if (separator < 0) return { ok: false, reason: "no role" };
  const roleName = raw.slice(0, separator);
  const role = LANGCHAIN_ROLES[roleName.toLowerCase()];
  if (!role) return { ok: false, reason: "unknown role" };
  const metadata = { import_source: "motorhead", motorhead_role: roleName };
  return { ok: true, message: { id: "", role, content: raw.slice(separator + 2), metadata } };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isEmpty(value: unknown): boolean {
  if (value === null || value === undefined || value === false || value === "") return true;
  if (Array.isArray(value)) return value.length === 0;
  return isRecord(value) && Object.keys(value).length === 0;
}
