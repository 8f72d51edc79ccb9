--[[
  inspect-2: read one node's view of a lock, atomically. Changes nothing.

  KEYS[1]  lock key     KEYS[2]  holder key

  Returns  {lock id, pttl, holder}   held; pttl -1 means a key without expiry (written by a foreign client);
                                     holder is "<token>:<client id>" or '' when the holder key is missing
           {'', -2, ''}              not held here
]]
local id = redis.call('GET', KEYS[1])
if not id then
  return {'', -2, ''}
end
return {id, redis.call('PTTL', KEYS[1]), redis.call('GET', KEYS[2]) or ''}
