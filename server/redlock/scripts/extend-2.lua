--[[
  extend-2: compare-and-pexpire. Resets the expiry only where the lock holds this lock id.

  KEYS[1]  lock key     KEYS[2]  holder key
  ARGV[1]  lock id      ARGV[2]  new ttl in ms

  Returns  {1, holder}  extended here; holder is "<token>:<client id>" as recorded for the lock ('' if missing)
           {0, ''}      not held by this lock id here: nothing changed
]]
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return {0, ''}
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
local holder = redis.call('GET', KEYS[2])
if not holder then
  return {1, ''}
end
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return {1, holder}
