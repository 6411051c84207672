import type { ContentPart, StoredMessage, ToolCall } from "../types.js";

/** The text of a message's content; non-text parts become a short placeholder such as `[image]`. */
export function contentText(content: StoredMessage["content"]): string {
  if (content === null || content === undefined) return "";
  if (typeof content === "string") return content;
  return content
    .map(partText)
    .filter((text) => text.length > 0)
    .join("\n");
}

function partText(part: ContentPart): string {
  if (part.type === "text" && typeof part.text === "string") return part.text;
  if (part.type === "image_url") return "[image]";
  return `[${part.type}]`;
}

/** `name({"a":1})`, with the argument JSON cut to `maxArgumentChars`. */
export function describeToolCall(call: ToolCall, maxArgumentChars: number): string {
  return `${call.function.name}(${shorten(compactJson(call.function.arguments), maxArgumentChars)})`;
}

/** JSON re-serialized without whitespace; other text with its whitespace collapsed. */
export function compactJson(text: string): string {
  try {
    return JSON.stringify(JSON.parse(text));
  } catch {
    return collapseWhitespace(text);
  }
}

/** Every whitespace run as one space. Single spaces, most runs, are left alone rather than replaced. */
export function collapseWhitespace(text: string): string {
  return text.replace(/ \s+|[^\S ]\s*/gu, " ").trim();
}

/**
 * Cuts `text` to at most `maxChars` code points, at a word boundary when one is near, and marks the
 * cut with an ellipsis. Code points, not UTF-16 units, so that no surrogate pair is split.
 */
export function shorten(text: string, maxChars: number): string {
  // A code point is one or two UTF-16 units: a text this short cannot have too many.
  if (text.length <= maxChars) return text;
  if (maxChars >= 0 && codePointOffset(text, maxChars) === text.length) return text;
  const head = text.slice(0, codePointOffset(text, Math.max(1, maxChars - 1)));
  const lastSpace = head.lastIndexOf(" ");
  const cut = lastSpace >= head.length * 0.6 ? head.slice(0, lastSpace) : head;
  return `${cut.trimEnd()}…`;
}

/**
 * The UTF-16 offset just after the first `count` code points of `text` (a lone surrogate is a code
 * point of its own, as for `Array.from`), or `text.length` when it has no more.
 */
export function codePointOffset(text: string, count: number): number {
  let offset = 0;
  for (let seen = 0; seen < count && offset < text.length; seen++) {
    const code = text.charCodeAt(offset);
    offset += code >= 0xd800 && code <= 0xdbff && isLowSurrogate(text.charCodeAt(offset + 1)) ? 2 : 1;
  }
  return offset;
}

function isLowSurrogate(code: number): boolean {
  return code >= 0xdc00 && code <= 0xdfff;
}

/** Maps each tool_call_id of the assistant's calls to the tool's name, so results can name their tool. */
export function toolNamesById(messages: readonly StoredMessage[]): Map<string, string> {
  const names = new Map<string, string>();
  for (const message of messages) {
    for (const call of message.tool_calls ?? []) names.set(call.id, call.function.name);
  }
  return names;
}

/**
 * One line a message, `role: content`, as both summarizers read the conversation. Tool calls and
 * tool results name the tool so the summary can say which one ran.
 */
export function renderTranscript(messages: readonly StoredMessage[]): string {
  const toolNames = toolNamesById(messages);
  const lines: string[] = [];
  for (const message of messages) {
    const text = collapseWhitespace(contentText(message.content));
    if (message.role === "tool") {
      const tool = message.name ?? (message.tool_call_id ? toolNames.get(message.tool_call_id) : undefined);
      lines.push(`tool${tool ? ` (${tool})` : ""}: ${text}`);
      continue;
    }
    const calls = (message.tool_calls ?? []).map((call) => `[calls ${describeToolCall(call, 500)}]`);
    const body = [text, ...calls].filter((part) => part.length > 0).join(" ");
    lines.push(`${message.role}: ${body}`);
  }
  return lines.join("\n");
}
