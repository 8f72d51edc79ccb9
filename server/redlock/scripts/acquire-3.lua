--[[
  acquire-3: take a lock on this node and hand back this node's provisional fencing token.

  KEYS[1]  lock key    value: the lock id, with PX ttl (plain SET NX PX, so other Redlock clients interoperate)
  KEYS[2]  holder key  value: "<token>:<client id>", same expiry as the lock key
  KEYS[3]  fence key   value: this node's fence counter for the resource (integer)
  ARGV[1]  lock id (32 lowercase hex chars)
  ARGV[2]  ttl in ms
  ARGV[3]  client id (may be empty)
  ARGV[4]  fence key expiry in ms (a missing counter is re-seeded from TIME, so expiry is safe)

  Returns  {1, token, ttl}     granted now. token = the counter after INCR; a missing counter is first seeded
                               from this node's TIME in microseconds, so it starts above every token ever issued.
           {2, token, pttl}    this lock id already holds the lock here: its expiry is reset to ARGV[2] and the
                               token recorded for it is returned (an Acquire re-sent after a lost answer).
           {0, holder, pttl}   held by another lock id. holder is used only to count votes; it never leaves
                               the engine.
  Tokens travel as strings: they exceed 2^31 and Lua's tostring would round them.
]]
local function seed_and_increment()
  if redis.call('EXISTS', KEYS[3]) == 0 then
    local t = redis.call('TIME')
    redis.call('SET', KEYS[3], t[1] .. string.rep('0', 6 - #t[2]) .. t[2])
  end
  redis.call('INCR', KEYS[3])
  redis.call('PEXPIRE', KEYS[3], ARGV[4])
  local token = redis.call('GET', KEYS[3])
  redis.call('SET', KEYS[2], token .. ':' .. ARGV[3], 'PX', ARGV[2])
  return token
end

local current = redis.call('GET', KEYS[1])
if current == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  local holder = redis.call('GET', KEYS[2])
  local token = holder and string.match(holder, '^(%d+):')
  if token then
    redis.call('PEXPIRE', KEYS[2], ARGV[2])
  else
    token = seed_and_increment()
  end
  return {2, token, tonumber(ARGV[2])}
end
if current then
  return {0, current, redis.call('PTTL', KEYS[1])}
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return {1, seed_and_increment(), tonumber(ARGV[2])}
