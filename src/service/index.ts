export { createMemoryService, type MemoryServiceOptions } from "./app.js";
export {
  ApiKeyring,
  apiKeyringFromEnv,
  MIN_API_KEY_LENGTH,
  type Principal,
  parseApiKeyPairs,
  presentedKey,
} from "./auth.js";
export {
  DEFAULT_BODY_LIMIT_BYTES,
  DEFAULT_RATE_LIMIT_PER_MINUTE,
  isLoopback,
  type ServiceConfig,
  serviceConfigFromEnv,
} from "./config.js";
export {
  type BreakerSnapshots,
  type ComponentReport,
  type ComponentStatus,
  createHealthProvider,
  type HealthProvider,
  type HealthProviderOptions,
  type HealthReport,
} from "./health.js";
export { type ErrorBody, HttpError, mapError } from "./http-errors.js";
export { type RateLimitStoreOptions, redisRateLimitStore } from "./rate-limit-store.js";
export { type RunningService, type StartOptions, startMemoryService } from "./server.js";
