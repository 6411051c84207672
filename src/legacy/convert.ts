/**
 * How one legacy `chat_history` element becomes a message of the transcript, and the contract
 * context a SwisperContext. Import and verification share it, so that they agree on what a valid
 * element is and what it must look like once stored.
 */
import { createHash } from "node:crypto";
import type { SwisperContext } from "../schemas/swisper-context.js";
import type { ChatMessage } from "../types.js";
import { localIsoToEpochSeconds } from "./local-time.js";

const LEGACY_ROLES = new Set(["user", "assistant", "system"]);

/** Keys of an element that the message itself carries; every other key goes to `metadata`. */
const MESSAGE_KEYS = new Set(["role", "content", "timestamp"]);

export type ConvertedElement =
  | { ok: true; message: ChatMessage & { id: string } }
  | { ok: false; reason: string };

/** JSON with object keys sorted, so that the same element always hashes the same. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (typeof value === "object" && value !== null) {
    const keys = Object.keys(value).sort();
    const record = value as Record<string, unknown>;
    return `{${keys.map((key) => `${JSON.stringify(key)}:${canonicalJson(record[key])}`).join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}

/**
 * The idempotency key of element `index` of a session: the same element at the same place always
 * gets the same key, so a re-run or a resumed import stores it once.
 */
export function legacyMessageId(sessionId: string, index: number, element: unknown): string {
  const hash = createHash("sha256")
    .update(canonicalJson([sessionId, index, element]))
    .digest("hex");
  return `legacy:${hash.slice(0, 32)}`;
}

/**
 * One element as a ChatMessage, or why it is not a valid message. `fallbackSeconds` is the time
 * of an element without a readable timestamp (the previous element's, or the session's creation).
 */
export function convertElement(
  sessionId: string,
  index: number,
  element: unknown,
  timeZone: string,
  fallbackSeconds: number | undefined,
): ConvertedElement {
  if (typeof element !== "object" || element === null || Array.isArray(element)) {
    return { ok: false, reason: "not an object" };
  }
  const record = element as Record<string, unknown>;
  if (record.role === undefined || record.role === null) return { ok: false, reason: "no role" };
  if (typeof record.role !== "string" || !LEGACY_ROLES.has(record.role))
    return { ok: false, reason: "unknown role" };
  if (typeof record.content !== "string") return { ok: false, reason: "non-string content" };
  const metadata: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(record)) if (!MESSAGE_KEYS.has(key)) metadata[key] = value;
  const timestamp = elementSeconds(record.timestamp, timeZone);
  if (timestamp === null && record.timestamp !== undefined) metadata.legacy_timestamp = record.timestamp;
  const message: ChatMessage & { id: string } = {
    id: legacyMessageId(sessionId, index, element),
    role: record.role as ChatMessage["role"],
    content: record.content,
  };
  const seconds = timestamp ?? fallbackSeconds;
  if (seconds !== undefined) message.timestamp = seconds;
  if (Object.keys(metadata).length > 0) message.metadata = metadata;
  return { ok: true, message };
}

/** An element's time in epoch seconds: an ISO local time in the zone, or a number already in seconds. */
function elementSeconds(timestamp: unknown, timeZone: string): number | null {
  if (typeof timestamp === "string") return localIsoToEpochSeconds(timestamp, timeZone);
  if (typeof timestamp === "number" && Number.isFinite(timestamp) && timestamp >= 0) return timestamp;
  return null;
}

/**
 * `session_metadata.contract_context` as the SwisperContext to save, or null when there is none.
 * Its `contract_template` and every other field are kept; a `session_id` naming another session
 * (a copied context) is kept as `legacy_session_id`, since a saved context must name its own.
 */
export function convertContext(sessionId: string, metadata: Record<string, unknown>): SwisperContext | null {
  const context = metadata.contract_context;
  if (typeof context !== "object" || context === null || Array.isArray(context)) return null;
  const fields = { ...(context as Record<string, unknown>) };
  if (fields.session_id !== undefined && fields.session_id !== sessionId) {
    fields.legacy_session_id = fields.session_id;
  }
  return { ...fields, session_id: sessionId } as SwisperContext;
}
