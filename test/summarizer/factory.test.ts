import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ValidationError } from "../../src/errors.js";
import {
  createSummarizer,
  ExtractiveSummarizer,
  OpenAISummarizer,
  readSummarizerEnv,
  type SummarizeRequest,
  SummarizerTimeoutError,
  summarizerFromEnv,
} from "../../src/summarizer/index.js";
import { type FakeOpenAIServer, startFakeOpenAIServer } from "../support/fake-openai-server.js";

const REQUEST: SummarizeRequest = {
  previousSummary: null,
  messages: [
    { role: "user", content: "I want a tent for 2 people under 300 CHF.", seq: 1, tokens: 20, timestamp: 1 },
  ],
  maxSummaryTokens: 100,
  countTokens: (text) => Math.ceil(text.length / 4),
};

function validationField(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    if (error instanceof ValidationError) return error.field;
    throw error;
  }
  throw new Error("expected a ValidationError");
}

describe("summarizerFromEnv", () => {
  let server: FakeOpenAIServer;
  beforeEach(async () => {
    server = await startFakeOpenAIServer();
  });
  afterEach(async () => {
    await server.close();
  });

  it("builds the extractive summarizer when MEMORY_SUMMARIZER is unset or empty", () => {
    expect(summarizerFromEnv({})).toBeInstanceOf(ExtractiveSummarizer);
    expect(summarizerFromEnv({ MEMORY_SUMMARIZER: "" }).name).toBe("extractive");
    expect(summarizerFromEnv({ MEMORY_SUMMARIZER: " Extractive " }).name).toBe("extractive");
  });

  it("builds an OpenAI summarizer that uses every OpenAI variable", async () => {
    server.setBehaviour({ kind: "answer", content: "Tent for 2, under 300 CHF." });
    const summarizer = summarizerFromEnv({
      MEMORY_SUMMARIZER: "OpenAI",
      OPENAI_BASE_URL: server.url,
      OPENAI_API_KEY: "sk-env-key-0123456789",
      MEMORY_SUMMARY_MODEL: "llama3.1:8b",
      MEMORY_SUMMARY_TEMPERATURE: "0.3",
    });

    const result = await summarizer.summarize(REQUEST);

    expect(summarizer).toBeInstanceOf(OpenAISummarizer);
    expect(result.text).toBe("Tent for 2, under 300 CHF.");
    const [sent] = server.requests;
    expect(sent!.headers.authorization).toBe("Bearer sk-env-key-0123456789");
    expect(sent!.body).toMatchObject({ model: "llama3.1:8b", temperature: 0.3, max_tokens: 100 });
  });

  it("applies MEMORY_SUMMARY_TIMEOUT_MS", { timeout: 10_000 }, async () => {
    server.setBehaviour({ kind: "hang" });
    const summarizer = summarizerFromEnv({
      MEMORY_SUMMARIZER: "openai",
      OPENAI_BASE_URL: server.url,
      MEMORY_SUMMARY_TIMEOUT_MS: "200",
    });

    const error = await summarizer.summarize(REQUEST).catch((caught: unknown) => caught);

    expect(error).toBeInstanceOf(SummarizerTimeoutError);
    expect((error as SummarizerTimeoutError).timeoutMs).toBe(200);
  });

  it("uses OpenAI's URL and gpt-4o-mini when no base URL or model is set", async () => {
    const calls: string[] = [];
    const fakeFetch: typeof fetch = async (input, init) => {
      calls.push(String(input));
      expect(JSON.parse(String(init?.body)).model).toBe("gpt-4o-mini");
      return new Response(JSON.stringify({ choices: [{ message: { content: "Tent." } }] }), { status: 200 });
    };

    const summarizer = createSummarizer({
      env: { MEMORY_SUMMARIZER: "openai" },
      openai: { fetch: fakeFetch },
    });
    await summarizer.summarize(REQUEST);

    expect(calls).toEqual(["https://api.openai.com/v1/chat/completions"]);
    expect((summarizer as OpenAISummarizer).model).toBe("gpt-4o-mini");
  });

  it("names the variable of an unusable value", () => {
    expect(validationField(() => summarizerFromEnv({ MEMORY_SUMMARIZER: "gpt" }))).toBe("MEMORY_SUMMARIZER");
    const openai = { MEMORY_SUMMARIZER: "openai" };
    expect(validationField(() => summarizerFromEnv({ ...openai, MEMORY_SUMMARY_TIMEOUT_MS: "soon" }))).toBe(
      "MEMORY_SUMMARY_TIMEOUT_MS",
    );
    expect(validationField(() => summarizerFromEnv({ ...openai, MEMORY_SUMMARY_TIMEOUT_MS: "-5" }))).toBe(
      "MEMORY_SUMMARY_TIMEOUT_MS",
    );
    expect(validationField(() => summarizerFromEnv({ ...openai, MEMORY_SUMMARY_TEMPERATURE: "3" }))).toBe(
      "MEMORY_SUMMARY_TEMPERATURE",
    );
    expect(validationField(() => summarizerFromEnv({ ...openai, OPENAI_BASE_URL: "localhost:11434" }))).toBe(
      "OPENAI_BASE_URL",
    );
  });
});

describe("createSummarizer", () => {
  it("lets options choose over the environment", () => {
    const env = { MEMORY_SUMMARIZER: "openai", MEMORY_SUMMARY_MODEL: "from-env" };

    expect(createSummarizer({ kind: "extractive", env })).toBeInstanceOf(ExtractiveSummarizer);
    const openai = createSummarizer({ env, openai: { model: "from-options" } }) as OpenAISummarizer;
    expect(openai.model).toBe("from-options");
    const envModel = createSummarizer({ env, openai: { model: undefined } }) as OpenAISummarizer;
    expect(envModel.model).toBe("from-env");
    // An explicit kind does not trip over an environment it does not use.
    expect(createSummarizer({ kind: "extractive", env: { MEMORY_SUMMARIZER: "nonsense" } }).name).toBe(
      "extractive",
    );
  });

  it("passes extractive options through", () => {
    expect(() => createSummarizer({ kind: "extractive", extractive: { maxLineChars: 1 } })).toThrow(
      ValidationError,
    );
  });
});

describe("readSummarizerEnv", () => {
  it("parses the variables and ignores empty ones", () => {
    expect(
      readSummarizerEnv({
        MEMORY_SUMMARIZER: "openai",
        OPENAI_BASE_URL: "http://localhost:11434/v1",
        OPENAI_API_KEY: "",
        MEMORY_SUMMARY_MODEL: " qwen2.5 ",
        MEMORY_SUMMARY_TIMEOUT_MS: "45000",
        MEMORY_SUMMARY_TEMPERATURE: "0",
      }),
    ).toEqual({
      kind: "openai",
      openai: { baseUrl: "http://localhost:11434/v1", model: "qwen2.5", timeoutMs: 45_000, temperature: 0 },
    });
    expect(readSummarizerEnv({})).toEqual({ kind: "extractive", openai: {} });
  });
});
