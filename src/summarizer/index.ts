import { readMemoryEnvironment } from "../environment.js";
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
  const settings = readMemoryEnvironment(env);
  const openai: OpenAISummarizerOptions = {};
  if (settings.OPENAI_BASE_URL !== undefined) openai.baseUrl = settings.OPENAI_BASE_URL;
  if (settings.OPENAI_API_KEY !== undefined) openai.apiKey = settings.OPENAI_API_KEY;
  if (settings.MEMORY_SUMMARY_MODEL !== undefined) openai.model = settings.MEMORY_SUMMARY_MODEL;
  if (settings.MEMORY_SUMMARY_TIMEOUT_MS !== undefined) openai.timeoutMs = settings.MEMORY_SUMMARY_TIMEOUT_MS;
  if (settings.MEMORY_SUMMARY_TEMPERATURE !== undefined) {
    openai.temperature = settings.MEMORY_SUMMARY_TEMPERATURE;
  }
  return { kind: settings.MEMORY_SUMMARIZER ?? "extractive", openai };
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

/** An explicit `undefined` in the options must not erase a value the environment set. */
function definedFields<T extends object>(options: T): Partial<T> {
  return Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)) as Partial<T>;
}
