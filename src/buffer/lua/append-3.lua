--[[
  Appends transcript entries to a session's buffer, keeping its running totals, checking seq
  continuity and enforcing the caps, atomically.

  KEYS[1] buffer LIST      KEYS[2] meta HASH      KEYS[3] config HASH
  ARGV[1] now (ms)
  ARGV[2] default buffer TTL (s)     ARGV[3] default max messages
  ARGV[4] default max tokens         ARGV[5] default summary trigger tokens
  ARGV[6] config overrides JSON to cache when the config hash is missing, or "-" when not loaded
  ARGV[7..] entries "<seq>:<tokens>:<estimated>:<json>", in seq order

  Returns { status, message_count, total_tokens, first_seq, last_seq, summary_trigger_tokens,
            covered_seq, max_buffer_messages }
  status: "ok"; "need_config" (config not cached: call again with ARGV[6] from the database);
  "gap" (the buffer missed a seq, or is gone: rebuild it from the transcript); "outbox" (writes
  accepted while the database was away are not replayed yet: replay them, then rebuild). On
  anything but "ok" nothing was changed.
]]
-- @include "includes/buffer.lua"

local buffer_key, meta_key, config_key = KEYS[1], KEYS[2], KEYS[3]
local now = ARGV[1]
local defaults = {
  buffer_ttl_seconds = tonumber(ARGV[2]),
  max_buffer_messages = tonumber(ARGV[3]),
  max_buffer_tokens = tonumber(ARGV[4]),
  summary_trigger_tokens = tonumber(ARGV[5]),
}

local config = read_config(config_key, defaults)
if not config then
  if ARGV[6] == "-" then return { "need_config", 0, 0, 0, 0, 0, 0, 0 } end
  install_config(config_key, ARGV[6])
  config = read_config(config_key, defaults)
end

local meta = redis.call("HMGET", meta_key, "last_seq", "message_count", "total_tokens", "estimated_count",
  "covered_seq", "outbox_pending")
-- Provisional seqs in the buffer would collide with the transcript's.
if (tonumber(meta[6]) or 0) > 0 then return { "outbox", 0, 0, 0, 0, 0, 0, 0 } end
local last_seq = tonumber(meta[1])
local count = tonumber(meta[2]) or 0
local tokens = tonumber(meta[3]) or 0
local estimated = tonumber(meta[4]) or 0
local covered_seq = tonumber(meta[5]) or 0

-- Continuity check first, so that a gap changes nothing. A missing buffer is only new when the
-- entries start the transcript at seq 1; otherwise it expired or was evicted and is rebuilt.
if not last_seq then
  if entry_header(ARGV[7]) ~= 1 then return { "gap", 0, 0, 0, 0, 0, 0, 0 } end
  last_seq = 0
end
local expected = last_seq + 1
local to_push = {}
for i = 7, #ARGV do
  local seq = entry_header(ARGV[i])
  if seq == expected then
    to_push[#to_push + 1] = ARGV[i]
    expected = expected + 1
  elseif seq > expected then
    return { "gap", 0, 0, 0, 0, 0, 0, 0 }
  end
  -- seq < expected: already in the buffer or summarized (a retried or late write).
end

for _, entry in ipairs(to_push) do
  local _, entry_tokens, entry_estimated = entry_header(entry)
  redis.call("RPUSH", buffer_key, entry)
  count = count + 1
  tokens = tokens + entry_tokens
  estimated = estimated + entry_estimated
end
count, tokens, estimated = enforce_caps(buffer_key, count, tokens, estimated,
  config.max_buffer_messages, config.max_buffer_tokens)

local first_seq = first_seq_of(buffer_key)
last_seq = expected - 1
redis.call("HSET", meta_key, "message_count", count, "total_tokens", tokens, "estimated_count", estimated,
  "first_seq", first_seq, "last_seq", last_seq, "last_updated", now)
expire_all(config.buffer_ttl_seconds, { buffer_key, meta_key, config_key })
return { "ok", count, tokens, first_seq, last_seq, config.summary_trigger_tokens, covered_seq,
  config.max_buffer_messages }
