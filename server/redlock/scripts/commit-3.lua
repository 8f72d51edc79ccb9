--[[
  commit-3: write the chosen fencing token back to a node that still holds the lock (fence = max(fence, token)).
  Run only on granting nodes whose provisional token was below the chosen one; an acquire succeeds only when a
  quorum holds a fence counter >= its token, so any later holder's quorum meets one of them and gets a larger
  token.

  KEYS[1]  lock key     KEYS[2]  holder key     KEYS[3]  fence key
  ARGV[1]  lock id      ARGV[2]  token (decimal string)
  ARGV[3]  client id    ARGV[4]  fence key expiry in ms

  Returns  1  written (the lock id still holds the lock here)
           0  the lock id no longer holds the lock here: nothing written
]]
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
local fence = redis.call('GET', KEYS[3])
if (not fence) or tonumber(fence) < tonumber(ARGV[2]) then
  redis.call('SET', KEYS[3], ARGV[2], 'PX', ARGV[4])
end
local pttl = redis.call('PTTL', KEYS[1])
if pttl > 0 then
  redis.call('SET', KEYS[2], ARGV[2] .. ':' .. ARGV[3], 'PX', pttl)
end
return 1
