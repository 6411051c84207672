import { ValidationError } from "../errors.js";
import { cutToTokenBudget } from "./budget.js";
import {
  SummarizerAbortedError,
  SummarizerHttpError,
  SummarizerResponseError,
  SummarizerTimeoutError,
  SummarizerUnavailableError,
} from "./errors.js";
import type { SummarizeRequest, SummarizeResult, Summarizer } from "./summarizer.js";
import { validateSummarizeRequest } from "./summarizer.js";
import { renderTranscript } from "./transcript.js";

export const DEFAULT_OPENAI_BASE_URL = "https://api.openai.com/v1";
export const DEFAULT_OPENAI_SUMMARY_MODEL = "gpt-4o-mini";
export const DEFAULT_OPENAI_TIMEOUT_MS = 30_000;

/** Default system prompt of the summary call. `{max_tokens}` is replaced with the budget. */
export const DEFAULT_SUMMARY_PROMPT =
  "You maintain the rolling summary of a conversation between a user and an assistant. " +
  "Write the new summary that replaces the previous one: carry forward every fact of the previous summary " +
  "that still holds and fold in the new messages. Keep the user's goals, decisions, preferences and " +
  "constraints, named products, brands and models, numbers, prices with their currency, dates, the results " +
  "of tool calls that matter, and the questions that are still open. Drop small talk. Write in the language " +
  "of the conversation, as short lines. Stay within {max_tokens} tokens. Reply with the summary only.";

/** Default system prompt of the second call that shrinks an over-budget summary. */
export const DEFAULT_COMPRESS_PROMPT =
  "Compress the conversation summary you are given to at most {max_tokens} tokens. Keep the user's goals, " +
  "decisions, preferences and constraints, named products, numbers, prices with their currency, dates and " +
  "open questions; drop the least important and oldest details first. Keep the summary's language. " +
  "Reply with the compressed summary only.";

export interface OpenAISummarizerOptions {
  /**
   * Base URL of an OpenAI-compatible API; the summarizer POSTs to `<baseUrl>/chat/completions`.
   * Query parameters are kept, so an Azure OpenAI deployment URL with `?api-version=...` works.
   * Default `"https://api.openai.com/v1"`. Ollama: `http://localhost:11434/v1`.
   */
  baseUrl?: string;
  /** Sent as `Authorization: Bearer <apiKey>`. Default: none (local servers without auth). */
  apiKey?: string;
  /** Model name sent in each request. Default `"gpt-4o-mini"`. */
  model?: string;
  /** Sampling temperature, 0 to 2. Default 0, the most repeatable summaries. */
  temperature?: number;
  /**
   * Time limit of one HTTP request in milliseconds, reading the answer included. A call that has to
   * compress makes two requests, each with this limit. Default 30000.
   */
  timeoutMs?: number;
  /** System prompt of the summary call; `{max_tokens}` becomes the budget. Default `DEFAULT_SUMMARY_PROMPT`. */
  promptTemplate?: string;
  /** System prompt of the compress call; `{max_tokens}` becomes the budget. Default `DEFAULT_COMPRESS_PROMPT`. */
  compressPromptTemplate?: string;
  /**
   * Extra request headers, for example `{ "api-key": "..." }` for Azure OpenAI. They override the
   * defaults of the same name. Their values are redacted from error messages like the API key.
   */
  headers?: Record<string, string>;
  /** The fetch to use. Default the global `fetch`. */
  fetch?: typeof fetch;
}

interface ChatMessagePayload {
  role: "system" | "user";
  content: string;
}

interface Completion {
  text: string;
  /** Prompt tokens as the server reported them, else counted with the request's counter. */
  promptTokens: number;
  model: string;
  /** The server stopped at `max_tokens`: the text is cut mid-sentence. */
  truncated: boolean;
}

const MAX_SNIPPET_CHARS = 200;

/**
 * Summarizes with any OpenAI-compatible chat completions endpoint (OpenAI, Azure OpenAI, Ollama,
 * vLLM). No retries here: the summarization job owns backoff and its circuit breaker.
 *
 * Budget: the request asks for `max_tokens = maxSummaryTokens`. When the answer is still over budget
 * by the request's counter (the server's tokenizer may differ) or the server stopped at the limit,
 * one more call asks the model to compress it (`merged: true`). If that answer is over budget too,
 * it is cut at the last sentence or line end that fits (still `merged: true`).
 */
export class OpenAISummarizer implements Summarizer {
  readonly name = "openai" as const;
  readonly model: string;
  readonly #endpoint: URL;
  /** The endpoint without query or credentials, for error messages. */
  readonly #publicEndpoint: string;
  readonly #temperature: number;
  readonly #timeoutMs: number;
  readonly #promptTemplate: string;
  readonly #compressPromptTemplate: string;
  readonly #headers: Record<string, string>;
  readonly #secrets: string[];
  readonly #fetch: typeof fetch;

  constructor(options: OpenAISummarizerOptions = {}) {
    const {
      baseUrl = DEFAULT_OPENAI_BASE_URL,
      apiKey,
      model = DEFAULT_OPENAI_SUMMARY_MODEL,
      temperature = 0,
      timeoutMs = DEFAULT_OPENAI_TIMEOUT_MS,
      promptTemplate = DEFAULT_SUMMARY_PROMPT,
      compressPromptTemplate = DEFAULT_COMPRESS_PROMPT,
      headers = {},
      fetch: fetchImplementation = globalThis.fetch,
    } = options;
    this.#endpoint = chatCompletionsUrl(baseUrl);
    this.#publicEndpoint = `${this.#endpoint.origin}${this.#endpoint.pathname}`;
    if (model.trim().length === 0) throw new ValidationError("summarizer.model", "must not be empty");
    if (!Number.isFinite(temperature) || temperature < 0 || temperature > 2) {
      throw new ValidationError("summarizer.temperature", "must be a number from 0 to 2");
    }
    if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 1) {
      throw new ValidationError("summarizer.timeoutMs", "must be a positive integer (milliseconds)");
    }
    if (promptTemplate.trim().length === 0) {
      throw new ValidationError("summarizer.promptTemplate", "must not be empty");
    }
    this.model = model;
    this.#temperature = temperature;
    this.#timeoutMs = timeoutMs;
    this.#promptTemplate = promptTemplate;
    this.#compressPromptTemplate = compressPromptTemplate;
    this.#headers = {
      "content-type": "application/json",
      accept: "application/json",
      ...(apiKey ? { authorization: `Bearer ${apiKey}` } : {}),
      ...lowerCaseKeys(headers),
    };
    // Short values (such as "2024-06-01") cannot be credentials and would garble redacted text.
    this.#secrets = [apiKey ?? "", ...Object.values(headers)].filter((value) => value.length >= 8);
    this.#fetch = fetchImplementation;
  }

  async summarize(request: SummarizeRequest): Promise<SummarizeResult> {
    const started = performance.now();
    validateSummarizeRequest(request);
    const { maxSummaryTokens, countTokens } = request;
    const userMessage =
      `Previous summary:\n${request.previousSummary?.trim() || "(none)"}\n\n` +
      `New messages:\n${renderTranscript(request.messages)}`;
    const first = await this.#complete(this.#promptTemplate, userMessage, request);
    let { text, model } = first;
    let inputTokens = first.promptTokens;
    let merged = false;

    if (first.truncated || countTokens(text) > maxSummaryTokens) {
      merged = true;
      const second = await this.#complete(this.#compressPromptTemplate, text, request);
      inputTokens += second.promptTokens;
      model = second.model;
      text = second.text;
      const tokens = countTokens(text);
      if (tokens > maxSummaryTokens) {
        text = cutToTokenBudget(text, maxSummaryTokens, countTokens);
      } else if (second.truncated && tokens > 1) {
        // Within budget but cut mid-sentence by the server: drop the unfinished tail.
        text = cutToTokenBudget(text, tokens - 1, countTokens);
      }
    }
    return {
      text,
      summarizer: "openai",
      model,
      inputTokens,
      outputTokens: countTokens(text),
      merged,
      latencyMs: performance.now() - started,
    };
  }

  async #complete(
    promptTemplate: string,
    userMessage: string,
    request: SummarizeRequest,
  ): Promise<Completion> {
    const systemPrompt = promptTemplate.replaceAll("{max_tokens}", String(request.maxSummaryTokens));
    const messages: ChatMessagePayload[] = [
      { role: "system", content: systemPrompt },
      { role: "user", content: userMessage },
    ];
    const timeout = AbortSignal.timeout(this.#timeoutMs);
    const signal = request.signal ? AbortSignal.any([timeout, request.signal]) : timeout;
    let status: number;
    let retryAfter: string | null;
    let body: string;
    try {
      const response = await this.#fetch(this.#endpoint, {
        method: "POST",
        headers: this.#headers,
        body: JSON.stringify({
          model: this.model,
          messages,
          temperature: this.#temperature,
          max_tokens: request.maxSummaryTokens,
        }),
        signal,
      });
      status = response.status;
      retryAfter = response.headers.get("retry-after");
      body = await response.text();
    } catch (error) {
      throw this.#transportFailure(error, timeout, request.signal);
    }

    if (status < 200 || status > 299) {
      throw new SummarizerHttpError(
        status,
        this.#snippet(body),
        parseRetryAfter(retryAfter),
        this.#publicEndpoint,
      );
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch (error) {
      throw new SummarizerResponseError(
        `summarizer endpoint ${this.#publicEndpoint} returned invalid JSON: ${this.#snippet(body)}`,
        { cause: error },
      );
    }
    const completion = readCompletion(parsed);
    if (completion === null) {
      throw new SummarizerResponseError(
        `summarizer endpoint ${this.#publicEndpoint} returned no choices[0].message.content: ${this.#snippet(body)}`,
      );
    }
    const text = completion.content.trim();
    if (text.length === 0) {
      throw new SummarizerResponseError(
        `summarizer endpoint ${this.#publicEndpoint} returned an empty summary`,
      );
    }
    return {
      text,
      promptTokens: completion.promptTokens ?? request.countTokens(`${systemPrompt}\n${userMessage}`),
      model: completion.model ?? this.model,
      truncated: completion.finishReason === "length",
    };
  }

  /** The caller's abort wins over our timeout: a cancelled job must not look like a slow server. */
  #transportFailure(error: unknown, timeout: AbortSignal, callerSignal: AbortSignal | undefined): Error {
    if (callerSignal?.aborted) return new SummarizerAbortedError({ cause: callerSignal.reason });
    if (timeout.aborted) return new SummarizerTimeoutError(this.#timeoutMs, { cause: error });
    const cause = error instanceof Error && error.cause instanceof Error ? `: ${error.cause.message}` : "";
    const message = error instanceof Error ? error.message : String(error);
    return new SummarizerUnavailableError(
      this.#redact(`summarizer endpoint ${this.#publicEndpoint} unreachable: ${message}${cause}`),
      { cause: error },
    );
  }

  /** Redacts before cutting, so that half a key cannot survive at the cut. */
  #snippet(body: string): string {
    return Array.from(this.#redact(body).replace(/\s+/gu, " ").trim()).slice(0, MAX_SNIPPET_CHARS).join("");
  }

  #redact(text: string): string {
    return this.#secrets.reduce((redacted, secret) => redacted.replaceAll(secret, "[redacted]"), text);
  }
}

function chatCompletionsUrl(baseUrl: string): URL {
  let url: URL;
  try {
    url = new URL(baseUrl);
  } catch {
    throw new ValidationError("summarizer.baseUrl", "must be an absolute http(s) URL");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new ValidationError("summarizer.baseUrl", "must be an absolute http(s) URL");
  }
  url.pathname = `${url.pathname.replace(/\/+$/u, "")}/chat/completions`;
  return url;
}

function lowerCaseKeys(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).map(([name, value]) => [name.toLowerCase(), value]));
}

function readCompletion(body: unknown): {
  content: string;
  promptTokens: number | null;
  model: string | null;
  finishReason: string | null;
} | null {
  if (!isRecord(body) || !Array.isArray(body.choices)) return null;
  const choice: unknown = body.choices[0];
  if (!isRecord(choice) || !isRecord(choice.message) || typeof choice.message.content !== "string")
    return null;
  const promptTokens = isRecord(body.usage) ? body.usage.prompt_tokens : undefined;
  return {
    content: choice.message.content,
    promptTokens: typeof promptTokens === "number" && Number.isFinite(promptTokens) ? promptTokens : null,
    model: typeof body.model === "string" && body.model.length > 0 ? body.model : null,
    finishReason: typeof choice.finish_reason === "string" ? choice.finish_reason : null,
  };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** `Retry-After` as seconds or an HTTP date, in milliseconds; null when absent or unreadable. */
function parseRetryAfter(header: string | null): number | null {
  if (header === null || header.trim() === "") return null;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return Math.max(0, Math.round(seconds * 1000));
  const date = Date.parse(header);
  return Number.isNaN(date) ? null : Math.max(0, date - Date.now());
}
