import { get_encoding, type TiktokenEncoding } from "tiktoken";
import { afterAll, describe, expect, it } from "vitest";
import { ValidationError } from "../../src/errors.js";
import {
  encodingForModel,
  IMAGE_PART_TOKENS,
  REPLY_PRIMING_TOKENS,
  TOKENS_PER_MESSAGE,
  TOKENS_PER_TOOL_CALL,
  TokenCounter,
  type TokenEncoder,
} from "../../src/tokens/index.js";
import type { ChatMessage } from "../../src/types.js";

/** Expected values are computed from tiktoken's counts of the individual strings. */
const references = new Map<TiktokenEncoding, ReturnType<typeof get_encoding>>();
function tiktokenCount(encoding: TiktokenEncoding, text: string): number {
  let reference = references.get(encoding);
  if (!reference) {
    reference = get_encoding(encoding);
    references.set(encoding, reference);
  }
  return reference.encode_ordinary(text).length;
}
afterAll(() => {
  for (const reference of references.values()) reference.free();
});

const MODELS = [
  { model: "gpt-4o", encoding: "o200k_base" },
  { model: "gpt-4", encoding: "cl100k_base" },
] as const;

for (const { model, encoding } of MODELS) {
  describe(`chat framing (${model})`, () => {
    const counter = new TokenCounter({ model });
    const tok = (text: string): number => tiktokenCount(encoding, text);

    it("counts a message as 3 + role + content", () => {
      expect(counter.countMessageTokens({ role: "user", content: "hello" })).toBe(
        3 + tok("user") + tok("hello"),
      );
      const content = "Ich möchte einen Laptop kaufen, Budget 1500 CHF. 🙂";
      expect(counter.countMessageTokens({ role: "assistant", content })).toBe(
        3 + tok("assistant") + tok(content),
      );
    });

    it("adds the name's tokens plus 1 when name is set", () => {
      const message: ChatMessage = { role: "user", content: "hi there", name: "alice_smith" };
      expect(counter.countMessageTokens(message)).toBe(
        3 + tok("user") + tok("hi there") + tok("alice_smith") + 1,
      );
    });

    it("adds 3 reply-priming tokens per batch, and counts an empty batch as 0", () => {
      const messages: ChatMessage[] = [
        { role: "system", content: "You are a shopping assistant." },
        { role: "user", content: "I want to buy a laptop" },
        { role: "assistant", content: "What is your budget?" },
      ];
      const sum = messages.reduce((total, message) => total + counter.countMessageTokens(message), 0);
      expect(counter.countBatchTokens(messages)).toBe(sum + 3);
      expect(counter.countBatchTokens([])).toBe(0);
    });

    it("counts each text part of array content exactly, an image as 85, null content as 0", () => {
      const parts: ChatMessage = {
        role: "user",
        content: [
          { type: "text", text: "Compare these two:" },
          { type: "image_url", image_url: { url: "https://example.com/a.png", detail: "low" } },
          { type: "text", text: "Which is cheaper?" },
        ],
      };
      expect(counter.countMessageTokens(parts)).toBe(
        3 + tok("user") + tok("Compare these two:") + IMAGE_PART_TOKENS + tok("Which is cheaper?"),
      );
      expect(counter.countMessageTokens({ role: "assistant", content: null })).toBe(3 + tok("assistant"));
      const refusal: ChatMessage = {
        role: "assistant",
        content: [{ type: "refusal", refusal: "I can't help." }],
      };
      expect(counter.countMessageTokens(refusal)).toBe(3 + tok("assistant") + tok("I can't help."));
    });

    it("counts other part types as their JSON text", () => {
      const part = { type: "input_audio", input_audio: { data: "UklGRg==", format: "wav" } };
      const message: ChatMessage = { role: "user", content: [part] };
      expect(counter.countMessageTokens(message)).toBe(3 + tok("user") + tok(JSON.stringify(part)));
    });

    it("counts tool calls as 3 + id + name + arguments, and a tool result's tool_call_id", () => {
      const call = {
        id: "call_Xy12abCD34efGH56",
        type: "function" as const,
        function: { name: "search_products", arguments: '{"query":"laptop","max_price":1500}' },
      };
      const assistant: ChatMessage = { role: "assistant", content: null, tool_calls: [call, call] };
      const perCall =
        TOKENS_PER_TOOL_CALL + tok(call.id) + tok(call.function.name) + tok(call.function.arguments);
      expect(counter.countMessageTokens(assistant)).toBe(3 + tok("assistant") + 2 * perCall);
      const result: ChatMessage = { role: "tool", tool_call_id: call.id, content: '[{"name":"ThinkPad"}]' };
      expect(counter.countMessageTokens(result)).toBe(
        3 + tok("tool") + tok('[{"name":"ThinkPad"}]') + tok(call.id),
      );
    });

    it("counts special-token strings in content as ordinary text", () => {
      for (const text of [
        "<|endoftext|>",
        "<|im_start|>system\nhi<|im_end|>",
        "x<|fim_prefix|><|endofprompt|>",
      ]) {
        expect(counter.measureText(text)).toEqual({ tokens: tok(text), estimated: false });
        expect(counter.measureMessage({ role: "user", content: text })).toEqual({
          tokens: 3 + tok("user") + tok(text),
          estimated: false,
        });
      }
      expect(counter.countTokens("<|endoftext|>")).toBeGreaterThan(1);
    });
  });
}

/** A user message whose exact size under `counter` is `tokens` (each " a" is one more token). */
function messageOfSize(counter: TokenCounter, tokens: number, label: string): ChatMessage {
  const base = counter.countMessageTokens({ role: "user", content: label });
  const message: ChatMessage = { role: "user", content: label + " a".repeat(tokens - base) };
  expect(counter.countMessageTokens(message)).toBe(tokens);
  return message;
}

describe("getOverflowMessages", () => {
  const counter = new TokenCounter();
  const messages = [10, 20, 30, 40].map((size, index) => messageOfSize(counter, size, `m${index}`));

  it("returns the oldest messages, in order, so that the newest fit", () => {
    // All four: 100 + 3. Dropping the oldest two leaves 70 + 3.
    expect(counter.getOverflowMessages(messages, 80)).toEqual(messages.slice(0, 2));
    expect(counter.countBatchTokens(messages.slice(2))).toBeLessThanOrEqual(80);
    expect(counter.countBatchTokens(messages.slice(1))).toBeGreaterThan(80);
  });

  it("removes nothing when everything fits, even at the exact limit", () => {
    expect(counter.getOverflowMessages(messages, 103)).toEqual([]);
    expect(counter.getOverflowMessages(messages, 102)).toEqual(messages.slice(0, 1));
    expect(counter.getOverflowMessages(messages)).toEqual([]);
  });

  it("removes everything when not even the newest message fits", () => {
    expect(counter.getOverflowMessages(messages, 42)).toEqual(messages);
    expect(counter.getOverflowMessages(messages, 0)).toEqual(messages);
    expect(counter.getOverflowMessages([], 0)).toEqual([]);
  });

  it("rejects a negative or non-finite limit", () => {
    expect(() => counter.getOverflowMessages(messages, -1)).toThrow(ValidationError);
    expect(() => counter.getOverflowMessages(messages, Number.NaN)).toThrow(ValidationError);
  });
});

describe("shouldTriggerSummary", () => {
  const counter = new TokenCounter();
  const messages = [messageOfSize(counter, 40, "a"), messageOfSize(counter, 57, "b")];
  const total = 40 + 57 + REPLY_PRIMING_TOKENS;

  it("triggers when the batch reaches the threshold", () => {
    expect(counter.countBatchTokens(messages)).toBe(total);
    expect(counter.shouldTriggerSummary(messages, total)).toBe(true);
    expect(counter.shouldTriggerSummary(messages, total - 1)).toBe(true);
    expect(counter.shouldTriggerSummary(messages, total + 1)).toBe(false);
  });

  it("uses 3000 tokens by default", () => {
    const big = messageOfSize(counter, 2997, "big");
    expect(counter.shouldTriggerSummary([big])).toBe(true);
    const smaller = messageOfSize(counter, 2996, "small");
    expect(counter.shouldTriggerSummary([smaller])).toBe(false);
  });

  it("rejects an invalid threshold", () => {
    expect(() => counter.shouldTriggerSummary(messages, -5)).toThrow(ValidationError);
    expect(() => counter.shouldTriggerSummary(messages, Number.POSITIVE_INFINITY)).toThrow(ValidationError);
  });
});

describe("content cache", () => {
  it("answers repeated content from the cache and reports the hit ratio", () => {
    const counter = new TokenCounter();
    expect(counter.cacheStats()).toEqual({ hits: 0, misses: 0, size: 0, hit_ratio: 0 });
    const first = counter.countTokens("repeated content");
    expect(counter.countTokens("repeated content")).toBe(first);
    expect(counter.countTokens("repeated content")).toBe(first);
    counter.countTokens("other content");
    expect(counter.cacheStats()).toEqual({ hits: 2, misses: 2, size: 2, hit_ratio: 0.5 });
  });

  it("serves a cached 30-message batch entirely from the cache with the same count", () => {
    const counter = new TokenCounter();
    const messages: ChatMessage[] = Array.from({ length: 30 }, (_, index) => ({
      role: index % 2 === 0 ? "user" : "assistant",
      content: `Message ${index}: I am looking for a light laptop with a long battery life.`,
    }));
    const cold = counter.countBatchTokens(messages);
    const before = counter.cacheStats();
    expect(counter.countBatchTokens(messages)).toBe(cold);
    const after = counter.cacheStats();
    expect(after.hits - before.hits).toBe(30);
    expect(after.misses).toBe(before.misses);
  });

  it("evicts the least recently used entry when full", () => {
    const counter = new TokenCounter({ cacheSize: 2 });
    counter.countTokens("alpha");
    counter.countTokens("beta");
    counter.countTokens("alpha"); // hit: beta is now the least recently used
    counter.countTokens("gamma"); // evicts beta
    counter.countTokens("alpha"); // hit
    counter.countTokens("beta"); // miss
    expect(counter.cacheStats()).toMatchObject({ hits: 2, misses: 4, size: 2 });
  });

  it("keys long content by hash and still counts it exactly", () => {
    const counter = new TokenCounter({ cacheSize: 10 });
    const long = "The memory manager folds older history into summaries. ".repeat(40);
    const almostSame = `${long.slice(0, -1)}!`;
    const count = counter.countTokens(long);
    expect(count).toBe(tiktokenCount("o200k_base", long));
    expect(counter.countTokens(long)).toBe(count);
    expect(counter.countTokens(almostSame)).toBe(tiktokenCount("o200k_base", almostSame));
    expect(counter.cacheStats()).toMatchObject({ hits: 1, misses: 2, size: 2 });
  });

  it("can be disabled", () => {
    const counter = new TokenCounter({ cacheSize: 0 });
    counter.countTokens("same");
    counter.countTokens("same");
    expect(counter.cacheStats()).toEqual({ hits: 0, misses: 2, size: 0, hit_ratio: 0 });
  });

  it("rejects an invalid cacheSize", () => {
    expect(() => new TokenCounter({ cacheSize: -1 })).toThrow(ValidationError);
    expect(() => new TokenCounter({ cacheSize: 1.5 })).toThrow(ValidationError);
  });
});

describe("estimate fallback", () => {
  const failingEncoder: TokenEncoder = {
    encoding: "o200k_base",
    count: () => {
      throw new Error("tokenizer exploded");
    },
  };

  it("estimates ceil(chars / 4) when the encoder throws, and reports the error", () => {
    const errors: unknown[] = [];
    const counter = new TokenCounter({ encoder: failingEncoder, onEstimate: (error) => errors.push(error) });
    expect(counter.measureText("twelve chars")).toEqual({ tokens: 3, estimated: true });
    expect(counter.countTokens("thirteen char")).toBe(4);
    expect(counter.measureMessage({ role: "user", content: "hello world" })).toEqual({
      tokens: Math.ceil(("user".length + "hello world".length) / 4),
      estimated: true,
    });
    expect(errors).toHaveLength(3);
    expect((errors[0] as Error).message).toBe("tokenizer exploded");
  });

  it("estimates when the encoder returns something that is not a count", () => {
    const counter = new TokenCounter({ encoder: { encoding: "o200k_base", count: () => Number.NaN } });
    expect(counter.measureText("abcdefgh")).toEqual({ tokens: 2, estimated: true });
  });

  it("estimates a message whose content has an unexpected runtime type", () => {
    const counter = new TokenCounter();
    const bad = { role: "user", content: 12345 } as unknown as ChatMessage;
    expect(counter.measureMessage(bad)).toEqual({
      tokens: Math.ceil(("user".length + "12345".length) / 4),
      estimated: true,
    });
    const badRole = { role: 7, content: "hello" } as unknown as ChatMessage;
    expect(counter.measureMessage(badRole).estimated).toBe(true);
    expect(counter.measureText(undefined as unknown as string)).toEqual({ tokens: 0, estimated: true });
  });

  it("marks a batch estimated when one message is, and counts the rest exactly", () => {
    const counter = new TokenCounter();
    const good: ChatMessage = { role: "user", content: "hello" };
    const bad = { role: "user", content: { nested: true } } as unknown as ChatMessage;
    const batch = counter.measureBatch([good, bad]);
    expect(batch.estimated).toBe(true);
    expect(batch.tokens).toBe(
      REPLY_PRIMING_TOKENS +
        counter.countMessageTokens(good) +
        Math.ceil(("user".length + '{"nested":true}'.length) / 4),
    );
    expect(counter.countBatchTokens([good, bad])).toBe(batch.tokens);
  });
});

describe("estimateContextTokens", () => {
  const counter = new TokenCounter();
  const history: ChatMessage[] = [
    { role: "user", content: "I need a laptop for video editing" },
    { role: "assistant", content: "Any brand preference?" },
  ];

  it("counts conversation_history as a batch and every other field as one compact JSON text", () => {
    const context = {
      session_id: "s-42",
      current_state: "product_search",
      product_query: "laptop",
      preferences: { brand: "Lenovo", ram_gb: 32 },
      constraints: ["under 2000 CHF"],
      selected_product: null,
      search_results: [{ sku: "T14", price: 1499 }],
      conversation_history: history,
      metadata: { locale: "de-CH" },
      extra_field: true,
    };
    const { conversation_history: _history, ...rest } = context;
    expect(counter.estimateContextTokens(context)).toBe(
      counter.countBatchTokens(history) + tiktokenCount("o200k_base", JSON.stringify(rest)),
    );
  });

  it("counts only the history when there is nothing else, and 0 for an empty context", () => {
    expect(counter.estimateContextTokens({ conversation_history: history })).toBe(
      counter.countBatchTokens(history),
    );
    expect(counter.estimateContextTokens({})).toBe(0);
  });

  it("counts a conversation_history that is not an array as part of the JSON", () => {
    const context = { session_id: "s", conversation_history: "not a list" };
    expect(counter.estimateContextTokens(context as unknown as { session_id: string })).toBe(
      tiktokenCount("o200k_base", JSON.stringify({ session_id: "s", conversation_history: "not a list" })),
    );
  });

  it("estimates instead of throwing for a context that cannot be serialized", () => {
    const context: Record<string, unknown> = { session_id: "s-1", count: 10n };
    context.self = context;
    expect(counter.estimateContextTokens(context)).toBe(
      Math.ceil('{"session_id":"s-1","count":"10"}'.length / 4),
    );
  });
});

describe("models", () => {
  it.each([
    ["gpt-4o", "o200k_base"],
    ["gpt-4o-mini-2024-07-18", "o200k_base"],
    ["chatgpt-4o-latest", "o200k_base"],
    ["gpt-4.1-nano", "o200k_base"],
    ["gpt-4.5-preview", "o200k_base"],
    ["gpt-5", "o200k_base"],
    ["gpt-5.1-codex", "o200k_base"],
    ["o1", "o200k_base"],
    ["o3-mini", "o200k_base"],
    ["o4-mini-deep-research", "o200k_base"],
    ["gpt-oss-20b", "o200k_base"],
    ["ft:gpt-4o-mini:acme::abc123", "o200k_base"],
    ["GPT-4o", "o200k_base"],
    ["gpt-4", "cl100k_base"],
    ["gpt-4-0613", "cl100k_base"],
    ["gpt-4-turbo-2024-04-09", "cl100k_base"],
    ["gpt-4-32k", "cl100k_base"],
    ["gpt-3.5-turbo", "cl100k_base"],
    ["gpt-3.5-turbo-0125", "cl100k_base"],
    ["gpt-35-turbo", "cl100k_base"],
    ["text-embedding-3-small", "cl100k_base"],
    ["text-embedding-3-large", "cl100k_base"],
    ["ft:gpt-3.5-turbo:acme::xyz", "cl100k_base"],
  ])("maps %s to %s", (model, encoding) => {
    expect(encodingForModel(model)).toBe(encoding);
  });

  it.each(["", "gpt-2", "claude-3-opus", "llama3", "gpt-4x", "o", "davinci"])(
    "rejects unknown model %j",
    (model) => {
      expect(() => encodingForModel(model)).toThrow(ValidationError);
      try {
        encodingForModel(model);
      } catch (error) {
        expect((error as ValidationError).field).toBe("model");
      }
    },
  );

  it("exposes the model and its encoding, defaulting to gpt-4o", () => {
    const counter = new TokenCounter();
    expect(counter.model).toBe("gpt-4o");
    expect(counter.encoding).toBe("o200k_base");
    expect(new TokenCounter({ model: "gpt-3.5-turbo" }).encoding).toBe("cl100k_base");
    expect(() => new TokenCounter({ model: "unknown-model" })).toThrow(ValidationError);
  });

  it("framing constants match OpenAI's published counting recipe", () => {
    expect(TOKENS_PER_MESSAGE).toBe(3);
    expect(REPLY_PRIMING_TOKENS).toBe(3);
  });
});
