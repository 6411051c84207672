import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ValidationError } from "../../src/errors.js";
import {
  DEFAULT_COMPRESS_PROMPT,
  OpenAISummarizer,
  type OpenAISummarizerOptions,
  type SummarizeRequest,
  SummarizerAbortedError,
  SummarizerHttpError,
  SummarizerResponseError,
  SummarizerTimeoutError,
  SummarizerUnavailableError,
} from "../../src/summarizer/index.js";
import type { StoredMessage } from "../../src/types.js";
import { type FakeOpenAIServer, startFakeOpenAIServer } from "../support/fake-openai-server.js";

const API_KEY = "sk-test-0123456789abcdefghijklmnop";
const countTokens = (text: string) => Math.ceil(text.length / 4);

function message(
  seq: number,
  role: StoredMessage["role"],
  content: string | null,
  extra: Partial<StoredMessage> = {},
) {
  return { role, content, seq, tokens: 10, timestamp: 1_700_000_000 + seq, ...extra } satisfies StoredMessage;
}

const MESSAGES: StoredMessage[] = [
  message(5, "user", "I need a laptop under $1,500 and I prefer Lenovo."),
  message(6, "assistant", null, {
    tool_calls: [
      { id: "call_1", type: "function", function: { name: "search_products", arguments: '{"q": "lenovo"}' } },
    ],
  }),
  message(7, "tool", '{"results": ["ThinkPad X1 Carbon", "Yoga Slim 7"]}', { tool_call_id: "call_1" }),
  message(8, "assistant", "The ThinkPad X1 Carbon costs $1,449."),
];

function request(overrides: Partial<SummarizeRequest> = {}): SummarizeRequest {
  return {
    previousSummary: "Goals:\n- user: wants a laptop for university",
    messages: MESSAGES,
    maxSummaryTokens: 200,
    countTokens,
    ...overrides,
  };
}

let server: FakeOpenAIServer;
beforeEach(async () => {
  server = await startFakeOpenAIServer();
});
afterEach(async () => {
  await server.close();
});

function summarizer(options: OpenAISummarizerOptions = {}) {
  return new OpenAISummarizer({ baseUrl: server.url, apiKey: API_KEY, ...options });
}

describe("OpenAISummarizer", () => {
  it("posts a chat completion with the prompt, model, auth, temperature and max_tokens", async () => {
    server.setBehaviour({
      kind: "answer",
      content: "  The user wants a Lenovo laptop under $1,500.  ",
      promptTokens: 321,
    });

    const result = await summarizer({ model: "gpt-4o-mini", temperature: 0.2 }).summarize(request());

    expect(server.requests).toHaveLength(1);
    const [sent] = server.requests;
    expect(sent!.method).toBe("POST");
    expect(sent!.url).toBe("/v1/chat/completions");
    expect(sent!.headers.authorization).toBe(`Bearer ${API_KEY}`);
    expect(sent!.headers["content-type"]).toBe("application/json");
    expect(sent!.body).toMatchObject({ model: "gpt-4o-mini", temperature: 0.2, max_tokens: 200 });
    const [system, user] = sent!.body!.messages!;
    expect(system!.role).toBe("system");
    expect(system!.content).toContain("within 200 tokens");
    expect(system!.content).not.toContain("{max_tokens}");
    expect(user!.role).toBe("user");
    expect(user!.content).toBe(
      "Previous summary:\nGoals:\n- user: wants a laptop for university\n\n" +
        "New messages:\n" +
        "user: I need a laptop under $1,500 and I prefer Lenovo.\n" +
        'assistant: [calls search_products({"q":"lenovo"})]\n' +
        'tool (search_products): {"results": ["ThinkPad X1 Carbon", "Yoga Slim 7"]}\n' +
        "assistant: The ThinkPad X1 Carbon costs $1,449.",
    );

    expect(result).toMatchObject({
      text: "The user wants a Lenovo laptop under $1,500.",
      summarizer: "openai",
      model: "fake-model-1",
      inputTokens: 321,
      outputTokens: countTokens("The user wants a Lenovo laptop under $1,500."),
      merged: false,
    });
    expect(result.latencyMs).toBeGreaterThanOrEqual(0);
  });

  it("defaults to temperature 0, says (none) without a previous summary, and counts input tokens without usage", async () => {
    server.setBehaviour({ kind: "answer", content: "Lenovo laptop under $1,500." });

    const result = await summarizer().summarize(request({ previousSummary: null }));

    const body = server.requests[0]!.body!;
    expect(body.temperature).toBe(0);
    expect(body.model).toBe("gpt-4o-mini");
    const [system, user] = body.messages!;
    expect(user!.content.startsWith("Previous summary:\n(none)\n\nNew messages:\n")).toBe(true);
    expect(result.inputTokens).toBe(countTokens(`${system!.content}\n${user!.content}`));
  });

  it("uses a custom prompt template, extra headers and keeps the base URL's query (Azure)", async () => {
    server.setBehaviour({ kind: "answer", content: "Résumé court." });
    const summary = new OpenAISummarizer({
      baseUrl: `${server.url}/?api-version=2024-06-01`,
      headers: { "api-key": "azure-secret-key-123456" },
      promptTemplate: "Summarize in at most {max_tokens} tokens. Budget again: {max_tokens}.",
    });

    await summary.summarize(request({ maxSummaryTokens: 77 }));

    const [sent] = server.requests;
    expect(sent!.url).toBe("/v1/chat/completions?api-version=2024-06-01");
    expect(sent!.headers["api-key"]).toBe("azure-secret-key-123456");
    expect(sent!.headers.authorization).toBeUndefined();
    expect(sent!.body!.messages![0]!.content).toBe("Summarize in at most 77 tokens. Budget again: 77.");
  });

  it("waits for a slow answer that arrives within the timeout", async () => {
    server.setBehaviour({ kind: "answer", content: "Slow but fine.", delayMs: 150 });

    const result = await summarizer({ timeoutMs: 5_000 }).summarize(request());

    expect(result.text).toBe("Slow but fine.");
  });

  it("maps a 5xx to a retryable SummarizerHttpError with status and a short body", async () => {
    server.setBehaviour({ kind: "status", status: 503, body: `overloaded ${"x".repeat(500)}` });

    const error = await summarizer()
      .summarize(request())
      .catch((caught: unknown) => caught);

    expect(error).toBeInstanceOf(SummarizerHttpError);
    const httpError = error as SummarizerHttpError;
    expect(httpError.code).toBe("summarizer_http_error");
    expect(httpError.status).toBe(503);
    expect(httpError.retryable).toBe(true);
    expect(httpError.bodySnippet.startsWith("overloaded xxx")).toBe(true);
    expect(httpError.bodySnippet.length).toBeLessThanOrEqual(200);
    expect(httpError.message).toContain("HTTP 503");
  });

  it("reports a 429's Retry-After and a 401 as not retryable", async () => {
    server.setBehaviour(
      { kind: "status", status: 429, headers: { "retry-after": "2" } },
      { kind: "status", status: 401 },
    );

    const limited = await summarizer()
      .summarize(request())
      .catch((caught: unknown) => caught);
    const denied = await summarizer()
      .summarize(request())
      .catch((caught: unknown) => caught);

    expect(limited).toBeInstanceOf(SummarizerHttpError);
    expect((limited as SummarizerHttpError).status).toBe(429);
    expect((limited as SummarizerHttpError).retryAfterMs).toBe(2_000);
    expect((limited as SummarizerHttpError).retryable).toBe(true);
    expect(denied).toBeInstanceOf(SummarizerHttpError);
    expect((denied as SummarizerHttpError).retryable).toBe(false);
  });

  it("never puts the API key or a secret header into an error", async () => {
    const azureKey = "azure-secret-key-987654321";
    server.setBehaviour({
      kind: "status",
      status: 401,
      body: JSON.stringify({
        error: { message: `Incorrect API key provided: ${API_KEY} (api-key ${azureKey})` },
      }),
    });

    const error = await summarizer({ headers: { "api-key": azureKey } })
      .summarize(request())
      .catch((caught: unknown) => caught);

    expect(error).toBeInstanceOf(SummarizerHttpError);
    const text = `${(error as Error).message} ${(error as SummarizerHttpError).bodySnippet} ${String(error)}`;
    expect(text).toContain("Incorrect API key provided: [redacted]");
    expect(text).not.toContain(API_KEY);
    expect(text).not.toContain(azureKey);
    expect(text).not.toContain(API_KEY.slice(0, 12));
  });

  it.each([
    ["malformed JSON", { kind: "malformed-json" as const }, /invalid JSON/],
    ["no choices", { kind: "no-choices" as const }, /no choices\[0\]\.message\.content/],
    ["empty content", { kind: "empty-content" as const }, /empty summary/],
    ["whitespace-only content", { kind: "empty-content" as const, content: " \n\t " }, /empty summary/],
  ])("maps %s to SummarizerResponseError", async (_name, behaviour, messagePattern) => {
    server.setBehaviour(behaviour);

    const error = await summarizer()
      .summarize(request())
      .catch((caught: unknown) => caught);

    expect(error).toBeInstanceOf(SummarizerResponseError);
    expect((error as SummarizerResponseError).code).toBe("summarizer_bad_response");
    expect((error as Error).message).toMatch(messagePattern);
  });

  it("times out a request that never gets an answer", { timeout: 10_000 }, async () => {
    server.setBehaviour({ kind: "hang" });

    const error = await summarizer({ timeoutMs: 300 })
      .summarize(request())
      .catch((caught: unknown) => caught);

    expect(error).toBeInstanceOf(SummarizerTimeoutError);
    expect((error as SummarizerTimeoutError).code).toBe("summarizer_timeout");
    expect((error as SummarizerTimeoutError).timeoutMs).toBe(300);
    expect(server.requests).toHaveLength(1);
  });

  it("aborts through the caller's signal, and as an abort rather than a timeout", {
    timeout: 10_000,
  }, async () => {
    server.setBehaviour({ kind: "hang" });
    const controller = new AbortController();
    const pending = summarizer({ timeoutMs: 60_000 })
      .summarize(request({ signal: controller.signal }))
      .catch((caught: unknown) => caught);
    await until(() => server.requests.length === 1);

    controller.abort(new Error("job cancelled"));
    const error = await pending;

    expect(error).toBeInstanceOf(SummarizerAbortedError);
    expect((error as SummarizerAbortedError).code).toBe("summarizer_aborted");
    expect(((error as Error).cause as Error).message).toBe("job cancelled");
  });

  it("sends nothing when the signal is already aborted", async () => {
    const error = await summarizer()
      .summarize(request({ signal: AbortSignal.abort() }))
      .catch((caught: unknown) => caught);

    expect(error).toBeInstanceOf(SummarizerAbortedError);
    expect(server.requests).toHaveLength(0);
  });

  it("compresses an over-budget answer with a second call and reports merged", async () => {
    const long = "The user wants a Lenovo laptop under $1,500. ".repeat(10).trim();
    const short = "Lenovo laptop, budget $1,500.";
    server.setBehaviour(
      { kind: "answer", content: long, promptTokens: 400 },
      { kind: "answer", content: short, promptTokens: 150, model: "fake-model-2" },
    );

    const result = await summarizer().summarize(request({ maxSummaryTokens: 30 }));

    expect(server.requests).toHaveLength(2);
    const compress = server.requests[1]!.body!;
    expect(compress.max_tokens).toBe(30);
    expect(compress.messages![0]!.content).toBe(DEFAULT_COMPRESS_PROMPT.replace("{max_tokens}", "30"));
    expect(compress.messages![1]!.content).toBe(long);
    expect(result).toMatchObject({
      text: short,
      merged: true,
      model: "fake-model-2",
      inputTokens: 550,
      outputTokens: countTokens(short),
    });
  });

  it("compresses when the server stopped at max_tokens even if the text fits", async () => {
    server.setBehaviour(
      { kind: "answer", content: "The user wants a laptop and", finishReason: "length" },
      { kind: "answer", content: "The user wants a laptop." },
    );

    const result = await summarizer().summarize(request());

    expect(server.requests).toHaveLength(2);
    expect(result).toMatchObject({ text: "The user wants a laptop.", merged: true });
  });

  it("cuts a still over-budget compression at the last sentence end that fits", async () => {
    const sentences = [
      "Goal: a Lenovo laptop.",
      "Budget: under $1,500.",
      "Candidate: ThinkPad X1 Carbon at $1,449.",
      "Open: battery life.",
    ];
    server.setBehaviour(
      { kind: "answer", content: sentences.join(" ").repeat(3) },
      { kind: "answer", content: sentences.join(" ") },
    );
    const maxSummaryTokens = countTokens(`${sentences[0]} ${sentences[1]}`) + 2;

    const result = await summarizer().summarize(request({ maxSummaryTokens }));

    expect(server.requests).toHaveLength(2);
    expect(result.merged).toBe(true);
    expect(result.text).toBe(`${sentences[0]} ${sentences[1]}`);
    expect(result.outputTokens).toBeLessThanOrEqual(maxSummaryTokens);
  });

  it("maps an unreachable endpoint to SummarizerUnavailableError", async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise<void>((resolve) => closed.close(() => resolve()));

    const error = await new OpenAISummarizer({ baseUrl: `http://127.0.0.1:${port}/v1`, apiKey: API_KEY })
      .summarize(request())
      .catch((caught: unknown) => caught);

    expect(error).toBeInstanceOf(SummarizerUnavailableError);
    expect((error as SummarizerUnavailableError).code).toBe("summarizer_unavailable");
    expect((error as Error).message).not.toContain(API_KEY);
  });

  it("rejects bad options and requests before calling the server", async () => {
    expect(() => new OpenAISummarizer({ baseUrl: "not a url" })).toThrow(ValidationError);
    expect(() => new OpenAISummarizer({ baseUrl: "ftp://example.com/v1" })).toThrow(ValidationError);
    expect(() => new OpenAISummarizer({ timeoutMs: 0 })).toThrow(ValidationError);
    expect(() => new OpenAISummarizer({ temperature: 3 })).toThrow(ValidationError);
    await expect(summarizer().summarize(request({ maxSummaryTokens: 0 }))).rejects.toThrow(ValidationError);
    await expect(summarizer().summarize(request({ messages: [], previousSummary: null }))).rejects.toThrow(
      ValidationError,
    );
    expect(server.requests).toHaveLength(0);
  });

  it("close() ends a request the fake server is still holding", async () => {
    server.setBehaviour({ kind: "hang" });
    const pending = fetch(`${server.url}/chat/completions`, { method: "POST", body: "{}" }).catch(
      (caught: unknown) => caught,
    );
    await until(() => server.requests.length === 1);

    await server.close();

    expect(await pending).toBeInstanceOf(Error);
    server = await startFakeOpenAIServer();
  });
});

async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 5));
}
