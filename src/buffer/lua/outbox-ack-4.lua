--[[
  Removes outbox entries that are now in the transcript (or were refused because the session was
  erased). When the outbox is empty, drops the buffer (its seqs were provisional) and moves the
  epoch, so that the next access rebuilds it from the transcript and no rebuild from a snapshot
  read before the last replayed batch is installed.

  KEYS[1] outbox STREAM   KEYS[2] meta HASH   KEYS[3] buffer LIST   KEYS[4] epoch STRING
  ARGV[1..] stream entry ids that were replayed

  Returns the number of entries still pending.
]]
redis.call("XDEL", KEYS[1], unpack(ARGV))
local pending = redis.call("XLEN", KEYS[1])
if pending == 0 then
  redis.call("DEL", KEYS[1], KEYS[2], KEYS[3])
  redis.call("INCR", KEYS[4])
  redis.call("EXPIRE", KEYS[4], 60)
end
return pending
