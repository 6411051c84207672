import { RedisBufferStore } from "../../src/buffer/redis-buffer-store.js";
import { SqlBufferStore } from "../../src/buffer/sql-buffer-store.js";
import type { Logger } from "../../src/logger.js";
import type { Database } from "../../src/storage/database.js";
import type { RedisConnection } from "../../src/storage/redis-client.js";
import { Transcript } from "../../src/storage/transcript.js";
import { TokenCounter } from "../../src/tokens/index.js";
import type { ChatMessage } from "../../src/types.js";

/** A logger that keeps what it is told, for tests that assert a line was logged. */
export function recordingLogger(): Logger & {
  infos: string[];
  warnings: string[];
  errors: string[];
  /** Every line with its details, in order. */
  lines: { level: "info" | "warn" | "error"; message: string; details: Record<string, unknown> }[];
} {
  const infos: string[] = [];
  const warnings: string[] = [];
  const errors: string[] = [];
  const lines: { level: "info" | "warn" | "error"; message: string; details: Record<string, unknown> }[] = [];
  return {
    infos,
    warnings,
    errors,
    lines,
    info: (details, message) => {
      infos.push(message);
      lines.push({ level: "info", message, details });
    },
    warn: (details, message) => {
      warnings.push(message);
      lines.push({ level: "warn", message, details });
    },
    error: (details, message) => {
      errors.push(message);
      lines.push({ level: "error", message, details });
    },
  };
}

export interface StoreCaps {
  maxMessages: number;
  maxTokens: number;
  summaryTriggerTokens: number;
}

export function bufferDependencies(db: Database, caps: StoreCaps, tokenCounter = new TokenCounter()) {
  return {
    transcript: new Transcript(db),
    measurer: tokenCounter,
    defaults: { ...caps, ttlSeconds: 3600 },
    limits: { maxContentBytes: 64 * 1024, maxMessageBytes: 128 * 1024 },
    logger: recordingLogger(),
  };
}

export function redisStore(db: Database, redis: RedisConnection, keyPrefix: string, caps: StoreCaps) {
  return new RedisBufferStore({ ...bufferDependencies(db, caps), redis, keyPrefix });
}

export function sqlStore(db: Database, caps: StoreCaps) {
  return new SqlBufferStore(bufferDependencies(db, caps));
}

/** A deterministic pseudo-random generator, so failures replay. */
export { seededRandom } from "../../src/cli/chat-workload.js";

const WORDS = [
  "laptop",
  "budget",
  "Lenovo",
  "ThinkPad",
  "battery",
  "Preis",
  "CHF",
  "1299",
  "prefer",
  "screen",
  "東京",
  "旅行",
  "Привет",
  "مرحبا",
  "🙂",
  "const x = 42;",
  '{"a": [1, 2]}',
  "weight",
  "under",
  "2kg",
];

/** A chat message of roughly `words` words, user or assistant, from a seeded generator. */
export function randomMessage(random: () => number, words: number): ChatMessage {
  const parts: string[] = [];
  for (let i = 0; i < words; i++) parts.push(WORDS[Math.floor(random() * WORDS.length)]!);
  return { role: random() < 0.5 ? "user" : "assistant", content: parts.join(" ") };
}
