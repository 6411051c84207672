export type { AppendOutcome, BufferInfo, BufferState } from "./buffer/buffer-store.js";
export { BufferStore } from "./buffer/buffer-store.js";
export { RedisBufferStore } from "./buffer/redis-buffer-store.js";
export { SqlBufferStore } from "./buffer/sql-buffer-store.js";
export * from "./errors.js";
export type { Logger } from "./logger.js";
export type { ModelMessage } from "./manager/context-packing.js";
export {
  createMemoryManager,
  type MemoryManagerOptions,
  type SummarizationOptions,
} from "./manager/create-memory-manager.js";
export {
  type AddMessagesOptions,
  type ContextOptions,
  type EraseUserResult,
  type ExportSessionsOptions,
  type ImportedMessages,
  type ImportSessionsOptions,
  type ImportTotals,
  type ListSessionsOptions,
  type MemoryContext,
  MemoryManager,
  type MemoryStats,
  type RedisStats,
  type SearchOptions,
  type SearchResults,
  type SessionInfo,
  type SessionPage,
  type SessionPatch,
  type TranscriptOptions,
  type TranscriptPage,
} from "./manager/memory-manager.js";
export { DEFAULT_SESSION_CONFIG, type SessionConfig } from "./manager/session-config.js";
export * from "./resilience/index.js";
export { EXPORT_FORMAT, EXPORT_VERSION, type ExportLine } from "./schemas/export.js";
export type { SessionListItem } from "./schemas/sessions.js";
export { splitLines } from "./sessions/import.js";
export type { Database } from "./storage/database.js";
export { PgliteDatabase, PostgresDatabase } from "./storage/database.js";
export { type MigrationResult, type MigrationRun, migrate } from "./storage/migrator.js";
export { connectRedis, type RedisConnection, wrapRedisClient } from "./storage/redis-client.js";
export * from "./summarizer/index.js";
export type { SummaryStats } from "./summary/summary-store.js";
export { SummaryStore } from "./summary/summary-store.js";
export * from "./tokens/index.js";
export type * from "./types.js";
