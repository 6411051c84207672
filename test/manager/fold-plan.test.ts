import { describe, expect, it } from "vitest";
import { planFold } from "../../src/manager/fold-plan.js";
import { DEFAULT_SESSION_CONFIG, type SessionConfig } from "../../src/manager/session-config.js";
import type { ChatMessage, StoredMessage } from "../../src/types.js";

const config: SessionConfig = {
  ...DEFAULT_SESSION_CONFIG,
  summary_trigger_tokens: 100,
  max_buffer_tokens: 150,
  max_buffer_messages: 10,
  keep_recent_tokens: 40,
};

function stored(messages: (ChatMessage & { tokens: number })[]): StoredMessage[] {
  return messages.map((message, index) => ({ ...message, seq: index + 1, timestamp: 0 }));
}

const user = (tokens: number): ChatMessage & { tokens: number } => ({ role: "user", content: "u", tokens });
const call = (tokens: number): ChatMessage & { tokens: number } => ({
  role: "assistant",
  content: null,
  tool_calls: [{ id: "c", type: "function", function: { name: "f", arguments: "{}" } }],
  tokens,
});
const result = (tokens: number): ChatMessage & { tokens: number } => ({
  role: "tool",
  content: "r",
  tool_call_id: "c",
  tokens,
});

describe("planFold", () => {
  it("folds nothing while the buffer is below its trigger and nothing was pushed out", () => {
    expect(planFold(stored([user(20), user(20), user(20)]), true, config, "trigger")).toBe(0);
  });

  it("folds all but the newest keep_recent_tokens once the buffer reaches the trigger", () => {
    // 6 x 20 = 120 tokens >= 100; the newest 40 tokens (two messages) stay verbatim.
    expect(planFold(stored(Array.from({ length: 6 }, () => user(20))), true, config, "trigger")).toBe(4);
  });

  it("folds what the caps pushed out even below the trigger", () => {
    // 12 messages of 5 tokens: the 10-message cap leaves the first 2 outside the buffer.
    expect(planFold(stored(Array.from({ length: 12 }, () => user(5))), true, config, "trigger")).toBe(2);
  });

  it("never leaves a tool result in the buffer without the call it answers", () => {
    // Boundary would fall between the call (index 3) and its two results: they are folded with it.
    const window = stored([user(30), user(30), user(30), call(10), result(15), result(15), user(10)]);
    expect(planFold(window, true, config, "trigger")).toBe(6);
  });

  it("leaves a call at the end of a cut window for the job that reads its results", () => {
    const window = stored([user(30), user(30), call(10)]);
    expect(planFold(window, false, config, "trigger")).toBe(2);
    expect(planFold(stored([call(10)]), false, config, "trigger")).toBe(1);
  });

  it("folds everything when finalizing an idle session", () => {
    expect(planFold(stored([user(5), user(5)]), true, config, "final")).toBe(2);
    expect(planFold([], true, config, "final")).toBe(0);
  });
});
