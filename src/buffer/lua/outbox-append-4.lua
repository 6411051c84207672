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
local defaults = argv_defaults()
local state = proven_state(buffer_key, meta_key, config_key)
if not state then return { "missing" } end
local config = read_config(config_key, defaults)

local last_seq = state.last_seq
local entries = {}
for i = 6, #ARGV, 2 do
  last_seq = last_seq + 1
  entries[#entries + 1] = last_seq .. ":" .. ARGV[i]
  -- The outbox has no TTL: it must outlive the buffer until it is replayed.
  redis.call("XADD", outbox_key, "*", "entry", ARGV[i], "key", ARGV[i + 1], "gen", state.gen or "-")
end
local keys = { buffer = buffer_key, meta = meta_key, config = config_key }
return push_entries(keys, state, config, entries, last_seq, ARGV[1])
