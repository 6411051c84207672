--[[
  Publishes a committed summary version: caches it as the current summary and trims exactly the
  range it covers from the head of the buffer, atomically, so that a reader never sees a summary
  and a buffer that overlap or leave a gap. An older version never replaces a newer one.

  KEYS[1] buffer LIST      KEYS[2] meta HASH      KEYS[3] summary HASH
  ARGV[1] summary cache TTL (s)
  ARGV[2] version   ARGV[3] summary text   ARGV[4] first seq   ARGV[5] last seq (covered)
  ARGV[6] tokens    ARGV[7] created at (ISO 8601)   ARGV[8] metadata JSON

  Returns { status, trimmed } with status "published" or "stale".
]]
-- @include "includes/buffer.lua"

local buffer_key, meta_key, summary_key = KEYS[1], KEYS[2], KEYS[3]
local version = tonumber(ARGV[2])
local covered_seq = tonumber(ARGV[5])

local cached_version = tonumber(redis.call("HGET", summary_key, "version"))
if cached_version and cached_version > version then return { "stale", 0 } end

redis.call("HSET", summary_key, "version", ARGV[2], "summary_text", ARGV[3], "first_seq", ARGV[4],
  "last_seq", ARGV[5], "tokens", ARGV[6], "created_at", ARGV[7], "metadata", ARGV[8])
redis.call("EXPIRE", summary_key, tonumber(ARGV[1]))

local meta = redis.call("HMGET", meta_key, "last_seq", "message_count", "total_tokens", "estimated_count", "covered_seq")
if not meta[1] then return { "published", 0 } end

local count, tokens, estimated = tonumber(meta[2]), tonumber(meta[3]), tonumber(meta[4])
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
  "first_seq", first_seq_of(buffer_key), "covered_seq", math.max(covered_seq, tonumber(meta[5]) or 0))
return { "published", trimmed }
