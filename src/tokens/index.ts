export {
  type CacheStats,
  IMAGE_PART_TOKENS,
  REPLY_PRIMING_TOKENS,
  type SwisperContextLike,
  TOKENS_PER_MESSAGE,
  TOKENS_PER_NAME,
  TOKENS_PER_TOOL_CALL,
  TokenCounter,
  type TokenCounterOptions,
} from "./counter.js";
export { BytePairEncoder, getEncoder, type TokenEncoder } from "./encoder.js";
export { encodingForModel } from "./models.js";
export { adoptVocabulary, type EncodingName, type SharedVocabulary, shareVocabulary } from "./vocabulary.js";
