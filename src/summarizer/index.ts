import { ValidationError } from "../errors.js";
import { ExtractiveSummarizer, type ExtractiveSummarizerOptions } from "./extractive-summarizer.js";
import { OpenAISummarizer, type OpenAISummarizerOptions } from "./openai-summarizer.js";
import type { Summarizer, SummarizerName } from "./summarizer.js";

export { cutToTokenBudget } from "./budget.js";
export {
  isSummarizerError,
  SummarizerAbortedError,
  SummarizerError,
  SummarizerHttpError,
  SummarizerResponseError,
  SummarizerTimeoutError,
  SummarizerUnavailableError,
  SummarizerWorkerError,
} from "./errors.js";
export { ExtractiveSummarizer, type ExtractiveSummarizerOptions } from "./extractive-summarizer.js";
export {
  DEFAULT_COMPRESS_PROMPT,
  DEFAULT_OPENAI_BASE_URL,
  DEFAULT_OPENAI_SUMMARY_MODEL,
  DEFAULT_OPENAI_TIMEOUT_MS,
  DEFAULT_SUMMARY_PROMPT,
  OpenAISummarizer,
  type OpenAISummarizerOptions,
} from "./openai-summarizer.js";
export type { SummarizeRequest, SummarizeResult, Summarizer, SummarizerName } from "./summarizer.js";
export { renderTranscript } from "./transcript.js";
export { WorkerSummarizer, type WorkerSummarizerOptions } from "./worker-summarizer.js";

export type SummarizerEnv = Readonly<Record<string, string | undefined>>;

export interface CreateSummarizerOptions {
  /** Which summarizer to build. Default: `MEMORY_SUMMARIZER` from `env`, else `"extractive"`. */
  kind?: SummarizerName;
  /** Settings of the OpenAI summarizer; a field left out is read from `env`, then defaults. */
  openai?: OpenAISummarizerOptions;
  /** Settings of the extractive summarizer (it reads no environment). */
  extractive?: ExtractiveSummarizerOptions;
  /** Environment to read. Default `process.env`; pass `{}` to ignore the environment. */
  env?: SummarizerEnv;
}

/** What the environment selects: `MEMORY_SUMMARIZER` and the OpenAI settings it sets. */
export interface SummarizerEnvSettings {
  kind: SummarizerName;
  openai: OpenAISummarizerOptions;
}

/**
 * Reads the summarizer settings from the environment (empty values count as unset):
 * `MEMORY_SUMMARIZER` (`extractive` | `openai`, default `extractive`), `OPENAI_BASE_URL`,
 * `OPENAI_API_KEY`, `MEMORY_SUMMARY_MODEL`, `MEMORY_SUMMARY_TIMEOUT_MS`, `MEMORY_SUMMARY_TEMPERATURE`.
 * Throws a `ValidationError` naming the variable for a value it cannot use.
 */
export function readSummarizerEnv(env: SummarizerEnv = process.env): SummarizerEnvSettings {
  const kindValue = setting(env, "MEMORY_SUMMARIZER")?.toLowerCase() ?? "extractive";
  if (kindValue !== "extractive" && kindValue !== "openai") {
    throw new ValidationError("MEMORY_SUMMARIZER", `must be "extractive" or "openai", got "${kindValue}"`);
  }
  const openai: OpenAISummarizerOptions = {};
  const baseUrl = setting(env, "OPENAI_BASE_URL");
  if (baseUrl !== undefined) openai.baseUrl = baseUrl;
  const apiKey = setting(env, "OPENAI_API_KEY");
  if (apiKey !== undefined) openai.apiKey = apiKey;
  const model = setting(env, "MEMORY_SUMMARY_MODEL");
  if (model !== undefined) openai.model = model;
  const timeoutMs = setting(env, "MEMORY_SUMMARY_TIMEOUT_MS");
  if (timeoutMs !== undefined) {
    const parsed = Number(timeoutMs);
    if (!Number.isSafeInteger(parsed) || parsed < 1) {
      throw new ValidationError(
        "MEMORY_SUMMARY_TIMEOUT_MS",
        `must be a positive integer (milliseconds), got "${timeoutMs}"`,
      );
    }
    openai.timeoutMs = parsed;
  }
  const temperature = setting(env, "MEMORY_SUMMARY_TEMPERATURE");
  if (temperature !== undefined) {
    const parsed = Number(temperature);
    if (!Number.isFinite(parsed) || parsed < 0 || parsed > 2) {
      throw new ValidationError(
        "MEMORY_SUMMARY_TEMPERATURE",
        `must be a number from 0 to 2, got "${temperature}"`,
      );
    }
    openai.temperature = parsed;
  }
  return { kind: kindValue, openai };
}

/**
 * Builds the summarizer chosen in `options.kind`, else by `MEMORY_SUMMARIZER`. OpenAI settings
 * given in `options.openai` win over the environment's. The environment is validated only as far
 * as it is used: with `kind` given, an unknown `MEMORY_SUMMARIZER` is ignored.
 */
export function createSummarizer(options: CreateSummarizerOptions = {}): Summarizer {
  const env = options.env ?? process.env;
  const kind = options.kind ?? readSummarizerEnv(env).kind;
  if (kind === "extractive") return new ExtractiveSummarizer(options.extractive);
  if (kind === "openai") {
    const fromEnv = readSummarizerEnv({ ...env, MEMORY_SUMMARIZER: "openai" }).openai;
    return new OpenAISummarizer({ ...fromEnv, ...definedFields(options.openai ?? {}) });
  }
  throw new ValidationError("summarizer.kind", `must be "extractive" or "openai", got "${String(kind)}"`);
}

/** The summarizer the environment selects (see `readSummarizerEnv`). */
export function summarizerFromEnv(env: SummarizerEnv = process.env): Summarizer {
  return createSummarizer({ env });
}

function setting(env: SummarizerEnv, name: string): string | undefined {
  const value = env[name]?.trim();
  return value ? value : undefined;
}

/** An explicit `undefined` in the options must not erase a value the environment set. */
function definedFields<T extends object>(options: T): Partial<T> {
  return Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)) as Partial<T>;
}
