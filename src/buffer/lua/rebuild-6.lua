--[[
  Replaces a session's buffer with a snapshot of the transcript, unless the session was
  invalidated since the snapshot was read (its epoch token changed: an erase, a config change, a
  drop), or the buffer is already proven at or past the snapshot.

  KEYS[1] buffer LIST   KEYS[2] meta HASH   KEYS[3] config HASH   KEYS[4] summary HASH
  KEYS[5] outbox STREAM   KEYS[6] epoch STRING
  ARGV[1] the epoch token read before the snapshot
  ARGV[2] now (ms)   ARGV[3] buffer TTL (s) for this session
  ARGV[4] the transcript's last seq in the snapshot
  ARGV[5] the seq the latest summary covers in the snapshot
  ARGV[6] the session's generation in the snapshot
  ARGV[7] config overrides JSON from the same read
  ARGV[8..] entries "<seq>:<tokens>:<estimated>:<json>", in seq order, already within the caps

  Returns { status }: "rebuilt", "kept" or "fenced" (nothing changed: the snapshot may be older
  than an invalidation; serve it without caching it).
]]
-- @include "includes/buffer.lua"

local buffer_key, meta_key, config_key, summary_key, outbox_key, epoch_key =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
if redis.call("GET", epoch_key) ~= ARGV[1] then return { "fenced" } end
local snapshot_last_seq = tonumber(ARGV[4])
local generation = ARGV[6]

local state = proven_state(buffer_key, meta_key, config_key)
local same = state and state.gen == generation
-- Writes waiting in the outbox are not in the snapshot: keep the buffer that holds them.
if same and (state.last_seq >= snapshot_last_seq or redis.call("EXISTS", outbox_key) == 1) then
  return { "kept" }
end

-- A summary may have committed and trimmed the buffer after the snapshot was read: never bring
-- back what it covers. Another generation's (or an unproven) summary cache goes; the caller
-- publishes the snapshot's.
local covered_seq = tonumber(ARGV[5])
if same then
  covered_seq = math.max(covered_seq, state.covered_seq)
else
  redis.call("DEL", summary_key)
end
redis.call("DEL", buffer_key, meta_key, config_key)
install_config(config_key, ARGV[7])
local count, tokens, estimated = 0, 0, 0
for i = 8, #ARGV do
  local seq, entry_tokens, entry_estimated = entry_header(ARGV[i])
  if seq > covered_seq then
    redis.call("RPUSH", buffer_key, ARGV[i])
    count = count + 1
    tokens = tokens + entry_tokens
    estimated = estimated + entry_estimated
  end
end
redis.call("HSET", meta_key, "rid", run_id(), "gen", generation, "message_count", count,
  "total_tokens", tokens, "estimated_count", estimated, "first_seq", first_seq_of(buffer_key),
  "last_seq", snapshot_last_seq, "covered_seq", covered_seq, "last_updated", ARGV[2])
expire_all(tonumber(ARGV[3]), { buffer_key, meta_key, config_key })
return { "rebuilt" }
