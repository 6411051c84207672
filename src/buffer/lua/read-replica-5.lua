#!lua flags=no-writes
--[[
  read-5.lua's read on a replica (EVALSHA_RO, Redis 7): writes nothing, proves the buffer by the
  primary's run id (the replica has its own), and says when the replica is behind the caller.

  KEYS[1] buffer LIST   KEYS[2] meta HASH   KEYS[3] config HASH   KEYS[4] summary HASH
  KEYS[5] epoch STRING (unused: a miss is rebuilt on the primary)
  ARGV[1] how many newest entries to return: a number (0 for none) or "all"
  ARGV[2] the primary's run id   ARGV[3] the seq the caller must see (0 for none)

  Returns { "ok", meta, config, summary, entries, buffer PTTL } as read-5.lua does; { "miss" }
  when the buffer is not whole and proven here; { "behind", last_seq } when it ends before
  ARGV[3]. Either of the last two: read from the primary.
]]
-- @include "includes/buffer.lua"

local state = proven_state(KEYS[1], KEYS[2], KEYS[3], ARGV[2])
if not state then return { "miss" } end
if state.last_seq < tonumber(ARGV[3]) then return { "behind", state.last_seq } end
return context_reply(KEYS, ARGV[1])
