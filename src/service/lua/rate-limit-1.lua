--[[
  Adds one instance's requests to a shared fixed rate-limit window.

  KEYS[1]  the window's counter (a string holding an integer)
  ARGV[1]  window length in milliseconds
  ARGV[2]  how many requests to add (counted by the instance since its last call)

  Returns {count, ttl}: requests counted in the window by every instance, these included, and the
  milliseconds until the window ends. The first call of a window starts its timer.
]]
local count = redis.call("INCRBY", KEYS[1], ARGV[2])
local ttl = redis.call("PTTL", KEYS[1])
if ttl < 0 then
  redis.call("PEXPIRE", KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
