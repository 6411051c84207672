import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ValidationError } from "../../src/errors.js";
import type { MemoryManager } from "../../src/manager/memory-manager.js";
import { useTestServers } from "../support/servers.js";
import { call, expectErrorShape, openTestService, type TestService } from "./harness.js";

// One schema per concept: the same bad input, handed to the library and sent over HTTP, is
// refused with the same field and the same words (the HTTP 400's message is the library error's).

const servers = useTestServers();
let service: TestService;

beforeAll(async () => {
  service = await openTestService(servers.database, undefined);
});
afterAll(async () => {
  await service.close();
});

/** Metadata nested `depth` levels deep: { a: { a: ... } }. */
function nested(depth: number): Record<string, unknown> {
  let value: Record<string, unknown> = {};
  for (let level = 1; level < depth; level++) value = { a: value };
  return value;
}

const user = (extra: Record<string, unknown>) => ({ role: "user", content: "x", ...extra });

interface Case {
  /** What the library is handed (`body` for a lone message, `body.messages` for a batch). */
  library(memory: MemoryManager, session: string): Promise<unknown>;
  request: { method: "GET" | "POST" | "PUT"; path: string; body?: unknown };
  field: string;
}

function messages(body: unknown, field: string): Case {
  const sent = typeof body === "object" && body !== null && "messages" in body ? body.messages : body;
  return {
    library: (memory, session) => memory.addMessages(session, sent as never),
    request: { method: "POST", path: "messages", body },
    field,
  };
}

/** Bodies PUT (or POSTed) to `path` and handed to the library by `library`: [name, body, field]. */
function bodies(
  path: string,
  library: (memory: MemoryManager, session: string, body: unknown) => Promise<unknown>,
  rows: [string, unknown, string][],
  method: "PUT" | "POST" = "PUT",
): [string, Case][] {
  return rows.map(([name, body, field]) => [
    name,
    {
      library: (memory, session) => library(memory, session, body),
      request: { method, path, body },
      field,
    },
  ]);
}

/** What `add_summary` is handed: the body's two fields as its two arguments. */
const addSummary = (memory: MemoryManager, session: string, body: unknown) => {
  const { summary_text: text, metadata } = body as {
    summary_text: string;
    metadata?: Record<string, unknown>;
  };
  return memory.summaryStore.addSummary(session, text, metadata);
};

const CASES: [string, Case][] = [
  ["a bad role", messages({ role: "robot", content: "x" }, "message.role")],
  ["content of a wrong type", messages({ role: "user", content: 42 }, "message.content")],
  ["a missing content", messages({ role: "user" }, "message.content")],
  ["an unknown field", messages(user({ colour: "red" }), "message.colour")],
  ["a tool message without tool_call_id", messages({ role: "tool", content: "42" }, "message.tool_call_id")],
  ["tool_calls on a user message", messages(user({ tool_calls: [] }), "message.tool_calls")],
  ["null content without tool calls", messages({ role: "user", content: null }, "message.content")],
  [
    "a text part without text",
    messages({ role: "user", content: [{ type: "text" }] }, "message.content[0].text"),
  ],
  ["a negative timestamp", messages(user({ timestamp: -1 }), "message.timestamp")],
  ["an id with a control character", messages(user({ id: "a\u0007b" }), "message.id")],
  ["metadata that is a list", messages(user({ metadata: [1] }), "message.metadata")],
  ["metadata nested too deep", messages(user({ metadata: nested(40) }), "message.metadata")],
  // The deployment's limits are checked after the schema, with the same naming.
  ["content over the limit", messages({ role: "user", content: "x".repeat(300_000) }, "message.content")],
  ["a message over the stored limit", messages(user({ metadata: { blob: "m".repeat(600_000) } }), "message")],
  ["an empty batch", messages({ messages: [] }, "messages")],
  [
    "a bad message in a batch",
    messages({ messages: [{ role: "user", content: "ok" }, { role: "user" }] }, "messages[1].content"),
  ],
  [
    "a batch of one breaking a role rule",
    messages({ messages: [{ role: "tool", content: "42" }] }, "messages[0].tool_call_id"),
  ],
  [
    "a batch of one over the limit",
    messages({ messages: [{ role: "user", content: "x".repeat(300_000) }] }, "messages[0].content"),
  ],
  ...bodies("config", (memory, session, body) => memory.setSessionConfig(session, body as never), [
    ["an unknown config key", { colour: 1 }, "config.colour"],
    ["a non-integer config value", { max_buffer_tokens: 1.5 }, "config.max_buffer_tokens"],
    ["a config value over its maximum", { max_buffer_messages: 10_001 }, "config.max_buffer_messages"],
    ["a config that is a list", [1], "config"],
    [
      "a trigger at the token cap",
      { summary_trigger_tokens: 4000, max_buffer_tokens: 4000 },
      "config.summary_trigger_tokens",
    ],
  ]),
  ...bodies("swisper-context", (memory, session, body) => memory.saveContext(session, body as never), [
    ["a SwisperContext of another session", { session_id: "someone-else" }, "context.session_id"],
    ["SwisperContext preferences that are a list", { preferences: [1] }, "context.preferences"],
    [
      "a SwisperContext selected_product that is a number",
      { selected_product: 3 },
      "context.selected_product",
    ],
    ["a SwisperContext user_id that is a number", { user_id: 7 }, "context.user_id"],
  ]),
  ...bodies(
    "summaries",
    addSummary,
    [
      ["an empty summary", { summary_text: "" }, "summary_text"],
      ["a summary that is a number", { summary_text: 7 }, "summary_text"],
      ["a summary over the limit", { summary_text: "s".repeat(300_000) }, "summary_text"],
      ["summary metadata that is a list", { summary_text: "ok", metadata: [1] }, "metadata"],
    ],
    "POST",
  ),
  ...(
    [
      ["a budget of 0", { max_tokens: 0 }, "max_tokens=0", "max_tokens"],
      ["a budget over the maximum", { max_tokens: 10_000_001 }, "max_tokens=10000001", "max_tokens"],
      ["a model without a budget", { model: "gpt-4o" }, "model=gpt-4o", "max_tokens"],
      [
        "an unknown model",
        { max_tokens: 100, model: "no-such-model" },
        "max_tokens=100&model=no-such-model",
        "model",
      ],
      [
        "a model name too long",
        { max_tokens: 100, model: "m".repeat(129) },
        `max_tokens=100&model=${"m".repeat(129)}`,
        "model",
      ],
    ] as const
  ).map(([name, options, query, field]): [string, Case] => [
    name,
    {
      library: (memory, session) => memory.getContext(session, options),
      request: { method: "GET", path: `context?${query}` },
      field,
    },
  ]),
];

describe("the library and the HTTP API refuse the same input alike", () => {
  it.each(CASES)("%s", async (_name, { library, request, field }) => {
    const session = `parity-${field}-${Math.random().toString(36).slice(2)}`;
    // Reads need the session to exist over HTTP (else 404 comes first).
    if (request.method === "GET") await service.memory.addMessage(session, { role: "user", content: "hi" });
    const error = await library(service.memory, session).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).field).toBe(field);

    const response = await call(service.app, request.method, `/v1/sessions/${session}/${request.path}`, {
      ...(request.body !== undefined ? { body: request.body } : {}),
    });
    expect(response.statusCode).toBe(400);
    const answer = response.json();
    expectErrorShape(answer);
    expect(answer.error).toEqual({
      code: "invalid_input",
      field,
      message: (error as ValidationError).message,
    });
  });

  it.each([
    ["too long", "x".repeat(257)],
    ["with a tab", "tab\there"],
  ])("a session id %s", async (_name, sessionId) => {
    const error = await service.memory.getContext(sessionId).catch((caught: unknown) => caught);
    expect((error as ValidationError).field).toBe("session_id");
    const response = await call(service.app, "GET", `/v1/sessions/${encodeURIComponent(sessionId)}/context`);
    expect(response.statusCode).toBe(400);
    expect(response.json()).toEqual({
      error: { code: "invalid_input", field: "session_id", message: (error as ValidationError).message },
    });
  });
});
