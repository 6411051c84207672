--[[
  Counts one request in a fixed rate-limit window.

  KEYS[1]  the window's counter (a string holding an integer)
  ARGV[1]  window length in milliseconds

  Returns {count, ttl}: requests counted in the current window, this one included, and the
  milliseconds until the window ends. The first request of a window starts its timer.
]]
local count = redis.call("INCR", KEYS[1])
local ttl = redis.call("PTTL", KEYS[1])
if count == 1 or ttl < 0 then
  redis.call("PEXPIRE", KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
