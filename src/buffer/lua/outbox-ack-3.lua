--[[
  Removes outbox entries that are now in the transcript. When the outbox is empty, drops the
  buffer (its seqs were provisional) so that the next access rebuilds it from the transcript.

  KEYS[1] outbox STREAM   KEYS[2] meta HASH   KEYS[3] buffer LIST
  ARGV[1..] stream entry ids that were replayed

  Returns the number of entries still pending.
]]
redis.call("XDEL", KEYS[1], unpack(ARGV))
local pending = redis.call("XLEN", KEYS[1])
if pending == 0 then
  redis.call("DEL", KEYS[1], KEYS[2], KEYS[3])
else
  redis.call("HSET", KEYS[2], "outbox_pending", pending)
end
return pending
