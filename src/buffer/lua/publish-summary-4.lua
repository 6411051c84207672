--[[
  Publishes a committed summary version: caches it as the current summary and trims exactly the
  range it covers from the head of the buffer, atomically, so that a reader never sees a summary
  and a buffer that overlap or leave a gap. An older version never replaces a newer one, and a
  version of another generation (the session was erased meanwhile) is never cached. Without a
  whole, proven buffer nothing is cached: the rebuild publishes the transcript's current summary.

  KEYS[1] buffer LIST   KEYS[2] meta HASH   KEYS[3] config HASH   KEYS[4] summary HASH
  ARGV[1] summary cache TTL (s)   ARGV[2] the session's generation the version belongs to
  ARGV[3] version   ARGV[4] summary text   ARGV[5] first seq   ARGV[6] last seq (covered)
  ARGV[7] tokens    ARGV[8] created at (ISO 8601)   ARGV[9] metadata JSON

  Returns { status, trimmed } with status "published" or "stale".
]]
-- @include "includes/buffer.lua"

local buffer_key, meta_key, config_key, summary_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local version = tonumber(ARGV[3])
local covered_seq = tonumber(ARGV[6])

local state = proven_state(buffer_key, meta_key, config_key)
if not state or state.gen ~= ARGV[2] then return { "stale", 0 } end
local cached_version = tonumber(redis.call("HGET", summary_key, "version"))
if cached_version and cached_version > version then return { "stale", 0 } end

redis.call("HSET", summary_key, "version", ARGV[3], "summary_text", ARGV[4], "first_seq", ARGV[5],
  "last_seq", ARGV[6], "tokens", ARGV[7], "created_at", ARGV[8], "metadata", ARGV[9])
redis.call("EXPIRE", summary_key, tonumber(ARGV[1]))

local count, tokens, estimated = state.count, state.tokens, state.estimated
local trimmed = 0
while count > 0 do
  local seq, entry_tokens, entry_estimated = entry_header(redis.call("LINDEX", buffer_key, 0))
  if seq > covered_seq then break end
  redis.call("LPOP", buffer_key)
  count = count - 1
  tokens = tokens - entry_tokens
  estimated = estimated - entry_estimated
  trimmed = trimmed + 1
end
redis.call("HSET", meta_key, "message_count", count, "total_tokens", tokens, "estimated_count", estimated,
  "first_seq", first_seq_of(buffer_key), "covered_seq", math.max(covered_seq, state.covered_seq))
return { "published", trimmed }
