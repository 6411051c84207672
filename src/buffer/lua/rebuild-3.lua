--[[
  Replaces a session's buffer with entries read from the transcript, unless the buffer is already
  at or past that snapshot (a concurrent rebuild or append got there first).

  KEYS[1] buffer LIST      KEYS[2] meta HASH      KEYS[3] config HASH
  ARGV[1] now (ms)         ARGV[2] buffer TTL (s) for this session
  ARGV[3] the transcript's last seq in the snapshot
  ARGV[4] the seq the latest summary covers in the snapshot
  ARGV[5] config overrides JSON from the same read, cached when the config hash is missing
  ARGV[6..] entries "<seq>:<tokens>:<estimated>:<json>", in seq order, already within the caps

  Returns { status, message_count, total_tokens, first_seq, last_seq }, status "rebuilt" or "kept".
]]
-- @include "includes/buffer.lua"

local buffer_key, meta_key, config_key = KEYS[1], KEYS[2], KEYS[3]
local snapshot_last_seq = tonumber(ARGV[3])

if redis.call("EXISTS", config_key) == 0 then install_config(config_key, ARGV[5]) end

local meta = redis.call("HMGET", meta_key, "last_seq", "message_count", "total_tokens", "first_seq", "covered_seq",
  "outbox_pending")
local current_last_seq = tonumber(meta[1])
-- Writes waiting in the outbox are not in the snapshot: keep the buffer that holds them.
if (current_last_seq and current_last_seq >= snapshot_last_seq) or (tonumber(meta[6]) or 0) > 0 then
  return { "kept", tonumber(meta[2]), tonumber(meta[3]), tonumber(meta[4]), current_last_seq }
end

-- A summary may have committed and trimmed the buffer after the snapshot was read: never bring
-- back what it covers.
local covered_seq = math.max(tonumber(ARGV[4]), tonumber(meta[5]) or 0)
redis.call("DEL", buffer_key)
local count, tokens, estimated = 0, 0, 0
for i = 6, #ARGV do
  local seq, entry_tokens, entry_estimated = entry_header(ARGV[i])
  if seq > covered_seq then
    redis.call("RPUSH", buffer_key, ARGV[i])
    count = count + 1
    tokens = tokens + entry_tokens
    estimated = estimated + entry_estimated
  end
end
local first_seq = first_seq_of(buffer_key)
redis.call("HSET", meta_key, "message_count", count, "total_tokens", tokens, "estimated_count", estimated,
  "first_seq", first_seq, "last_seq", snapshot_last_seq, "covered_seq", covered_seq, "last_updated", ARGV[1])
expire_all(tonumber(ARGV[2]), { buffer_key, meta_key, config_key })
return { "rebuilt", count, tokens, first_seq, snapshot_last_seq }
