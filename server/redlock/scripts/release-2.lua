--[[
  release-2: compare-and-delete. Deletes the lock only where it holds this lock id, then announces the release
  so waiters on any server replica can retry at once.

  KEYS[1]  lock key     KEYS[2]  holder key
  ARGV[1]  lock id      ARGV[2]  release channel     ARGV[3]  resource name (the message)

  Returns  {1, holder}  deleted here; holder is "<token>:<client id>" as recorded for the lock ('' if missing)
           {0, ''}      not held by this lock id here (expired, released, or another holder): nothing changed
]]
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return {0, ''}
end
local holder = redis.call('GET', KEYS[2]) or ''
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('PUBLISH', ARGV[2], ARGV[3])
return {1, holder}
