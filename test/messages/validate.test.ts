import { describe, expect, it } from "vitest";
import { ValidationError } from "../../src/errors.js";
import { validateConfigKeys } from "../../src/manager/session-config.js";
import { DEFAULT_MESSAGE_LIMITS, validateMessage } from "../../src/messages/validate.js";
import { recordingLogger } from "../support/fixtures.js";

// What the move to one zod schema could have changed without a test noticing: the clean copy,
// the library-only rules (metadata JSON cannot represent, parts with a BigInt), and the field a
// nested error names.

const validate = (input: unknown, logger = recordingLogger()) =>
  validateMessage(input, DEFAULT_MESSAGE_LIMITS, logger, "message", 1_700_000_000);

function refusal(action: () => unknown): ValidationError {
  try {
    action();
  } catch (error) {
    if (error instanceof ValidationError) return error;
    throw error;
  }
  throw new Error("expected a ValidationError");
}

describe("validateMessage", () => {
  it("returns a clean copy: the timestamp set, keys of a tool call the chat API does not know dropped", () => {
    const input = {
      role: "assistant",
      content: null,
      tool_calls: [
        { id: "c1", type: "function", function: { name: "f", arguments: "{}", x: 1 }, extra: true },
      ],
    };
    const message = validate(input);
    expect(message).toEqual({
      role: "assistant",
      content: null,
      tool_calls: [{ id: "c1", type: "function", function: { name: "f", arguments: "{}" } }],
      timestamp: 1_700_000_000,
    });
    expect(message).not.toBe(input);
    expect(validate({ role: "user", content: "x", timestamp: 5 }).timestamp).toBe(5);
  });

  it("keeps a cycle or a BigInt in metadata as text with a warning (not as 'too deep')", () => {
    const logger = recordingLogger();
    const cycle: Record<string, unknown> = { name: "loop", big: 10n };
    cycle.self = cycle;
    const message = validate({ role: "user", content: "x", metadata: { cycle } }, logger);
    expect(Object.keys(message.metadata!)).toEqual(["unserializable"]);
    expect(String(message.metadata!.unserializable)).toContain("10n");
    expect(logger.warnings.join(" ")).toMatch(/not JSON-serializable/);
  });

  it("refuses metadata 33 levels deep and takes 32", () => {
    const nested = (depth: number) => {
      let value: Record<string, unknown> = {};
      for (let level = 1; level < depth; level++) value = { a: value };
      return value;
    };
    expect(validate({ role: "user", content: "x", metadata: nested(32) }).metadata).toEqual(nested(32));
    const error = refusal(() => validate({ role: "user", content: "x", metadata: nested(33) }));
    expect([error.field, error.message]).toEqual([
      "message.metadata",
      "message.metadata: is nested deeper than 32 levels",
    ]);
  });

  it("refuses a part JSON cannot represent, naming the part", () => {
    const error = refusal(() => validate({ role: "user", content: [{ type: "data", value: 1n }] }));
    expect([error.field, error.message]).toEqual([
      "message.content[0]",
      "message.content[0]: must be representable as JSON",
    ]);
  });

  it("names the deepest field that is wrong, in the schema's words", () => {
    const cases: [unknown, string, string][] = [
      [
        {
          role: "assistant",
          content: null,
          tool_calls: [{ id: "c", type: "fn", function: { name: "f", arguments: "" } }],
        },
        "message.tool_calls[0].type",
        'must be "function"',
      ],
      [
        {
          role: "assistant",
          content: null,
          tool_calls: [{ id: "c", type: "function", function: { name: "" } }],
        },
        "message.tool_calls[0].function.name",
        "must be a string of 1-256 characters",
      ],
      [
        { role: "user", content: [{ type: "text", text: 1 }] },
        "message.content[0].text",
        "a text part needs a string text",
      ],
      [
        { role: "user", content: [7] },
        "message.content[0]",
        "each part must be an object with a string type",
      ],
      // An unknown field is named first: it explains what else looks wrong.
      [{ role: "robot", content: "x", colour: "red" }, "message.colour", "unknown field"],
      [[], "message", "must be an object"],
    ];
    for (const [input, field, words] of cases) {
      const error = refusal(() => validate(input));
      expect([error.field, error.message]).toEqual([field, `${field}: ${words}`]);
    }
  });
});

describe("validateConfigKeys", () => {
  it("refuses a key sent as undefined (a mistake, not a key left out)", () => {
    const error = refusal(() => validateConfigKeys({ max_buffer_tokens: undefined }));
    expect(error.field).toBe("config.max_buffer_tokens");
    expect(validateConfigKeys({ max_buffer_tokens: 5000 })).toEqual({ max_buffer_tokens: 5000 });
  });
});
