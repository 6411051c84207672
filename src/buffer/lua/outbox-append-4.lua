--[[
  Accepts writes while PostgreSQL is away: appends them to the Redis buffer with provisional seqs
  (after the buffer's last seq) and to the session's outbox stream, atomically. The outbox is
  replayed into the transcript, in order, when PostgreSQL answers again; each entry carries the
  session's generation, so that a replay never writes into a session erased meanwhile.

  KEYS[1] buffer LIST   KEYS[2] meta HASH   KEYS[3] config HASH   KEYS[4] outbox STREAM
  ARGV[1] now (ms)
  ARGV[2] default buffer TTL (s)   ARGV[3] default max messages   ARGV[4] default max tokens
  ARGV[5] default summary trigger tokens
  ARGV[6..] pairs: "<tokens>:<estimated>:<json>", idempotency key

  Returns { "ok", message_count, total_tokens, first_seq, last_seq, summary_trigger_tokens,
            covered_seq, max_buffer_messages }, or { "missing" } when the buffer is not whole and
  proven in Redis (no seq to continue from): nothing was changed.
]]
-- @include "includes/buffer.lua"

local buffer_key, meta_key, config_key, outbox_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local defaults = {
  buffer_ttl_seconds = tonumber(ARGV[2]),
  max_buffer_messages = tonumber(ARGV[3]),
  max_buffer_tokens = tonumber(ARGV[4]),
  summary_trigger_tokens = tonumber(ARGV[5]),
}
local state = proven_state(buffer_key, meta_key, config_key)
if not state then return { "missing" } end
local config = read_config(config_key, defaults)

local last_seq, count, tokens, estimated = state.last_seq, state.count, state.tokens, state.estimated
for i = 6, #ARGV, 2 do
  last_seq = last_seq + 1
  local entry = last_seq .. ":" .. ARGV[i]
  local _, entry_tokens, entry_estimated = entry_header(entry)
  redis.call("RPUSH", buffer_key, entry)
  redis.call("XADD", outbox_key, "*", "entry", ARGV[i], "key", ARGV[i + 1], "gen", state.gen or "-")
  count = count + 1
  tokens = tokens + entry_tokens
  estimated = estimated + entry_estimated
end
count, tokens, estimated = enforce_caps(buffer_key, count, tokens, estimated,
  config.max_buffer_messages, config.max_buffer_tokens)
local first_seq = first_seq_of(buffer_key)
redis.call("HSET", meta_key, "message_count", count, "total_tokens", tokens, "estimated_count", estimated,
  "first_seq", first_seq, "last_seq", last_seq, "last_updated", ARGV[1])
-- The outbox has no TTL: it must outlive the buffer until it is replayed.
expire_all(config.buffer_ttl_seconds, { buffer_key, meta_key, config_key })
return { "ok", count, tokens, first_seq, last_seq, config.summary_trigger_tokens, state.covered_seq,
  config.max_buffer_messages }
