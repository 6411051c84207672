--[[
  Invalidates a session's Redis copy after the system of record changed (erase, config change,
  buffer cleared, summaries cleared): deletes the keys the change makes wrong and moves the epoch,
  so that a rebuild from a snapshot read before the change is refused.

  KEYS[1] buffer LIST   KEYS[2] meta HASH   KEYS[3] config HASH   KEYS[4] summary HASH
  KEYS[5] outbox STREAM   KEYS[6] lease STRING   KEYS[7] lease fencing counter STRING
  KEYS[8] epoch STRING
  ARGV[1] what changed: "buffer" (buffer and config), "cache" (every cached key) or "session"
          (erased: every key, the outbox, the summarizer lease and the epoch itself: a missing
          epoch equals no token a rebuild holds, and the next miss makes a new one from the clock)

  Returns the new epoch token (0 for "session").
]]
if ARGV[1] == "session" then
  redis.call("DEL", KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8])
  return 0
elseif ARGV[1] == "cache" then
  redis.call("DEL", KEYS[1], KEYS[2], KEYS[3], KEYS[4])
else
  redis.call("DEL", KEYS[1], KEYS[2], KEYS[3])
end
local token = redis.call("INCR", KEYS[8])
redis.call("EXPIRE", KEYS[8], 60)
return token
