--[[
  Appends transcript entries to a session's buffer, keeping its running totals, checking seq
  continuity and the session's generation, and enforcing the caps, atomically.

  KEYS[1] buffer LIST   KEYS[2] meta HASH   KEYS[3] config HASH   KEYS[4] outbox STREAM
  KEYS[5] epoch STRING
  ARGV[1] now (ms)
  ARGV[2] default buffer TTL (s)     ARGV[3] default max messages
  ARGV[4] default max tokens         ARGV[5] default summary trigger tokens
  ARGV[6] the session's generation in the transcript, or "-" when unknown
  ARGV[7..] entries "<seq>:<tokens>:<estimated>:<json>", in seq order

  Returns { "ok", message_count, total_tokens, first_seq, last_seq, summary_trigger_tokens,
            covered_seq, max_buffer_messages },
  { "miss", epoch token } when the buffer is not whole and proven, belongs to another generation
  or missed a seq (rebuild it from the transcript with that token), or { "outbox" } when writes
  accepted while the database was away are not replayed yet (replay them, then rebuild). On
  anything but "ok" nothing was changed.
]]
-- @include "includes/buffer.lua"

local buffer_key, meta_key, config_key, outbox_key, epoch_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local defaults = argv_defaults()

-- Provisional seqs in the buffer would collide with the transcript's.
if redis.call("EXISTS", outbox_key) == 1 then return { "outbox" } end
local state = proven_state(buffer_key, meta_key, config_key)
if not state or (ARGV[6] ~= "-" and state.gen ~= ARGV[6]) then return { "miss", epoch_token(epoch_key) } end
local config = read_config(config_key, defaults)

-- Continuity check first, so that a gap changes nothing.
local expected = state.last_seq + 1
local to_push = {}
for i = 7, #ARGV do
  local seq = entry_header(ARGV[i])
  if seq == expected then
    to_push[#to_push + 1] = ARGV[i]
    expected = expected + 1
  elseif seq > expected then
    return { "miss", epoch_token(epoch_key) }
  end
  -- seq < expected: already in the buffer or summarized (a retried or late write).
end

local keys = { buffer = buffer_key, meta = meta_key, config = config_key }
return push_entries(keys, state, config, to_push, expected - 1, ARGV[1])
