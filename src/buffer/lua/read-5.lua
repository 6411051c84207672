--[[
  Reads everything a context needs in one round trip.

  KEYS[1] buffer LIST   KEYS[2] meta HASH   KEYS[3] config HASH   KEYS[4] summary HASH
  KEYS[5] epoch STRING
  ARGV[1] how many newest entries to return: a number (0 for none) or "all"

  Returns { "ok", meta fields (flat), config fields (flat), summary fields (flat), entries,
  buffer PTTL }, or { "miss", epoch token } when the buffer is not whole and proven (never
  written, expired, evicted in part or whole, or built before the server restarted): rebuild it
  from the transcript with that token.
]]
-- @include "includes/buffer.lua"

if not proven_state(KEYS[1], KEYS[2], KEYS[3]) then return { "miss", epoch_token(KEYS[5]) } end
return context_reply(KEYS, ARGV[1])
