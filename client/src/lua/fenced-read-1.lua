--[[
  fenced-read-1: read a key of the fenced store on behalf of a lease, and register that lease's fencing token.

  KEYS[1]  the key's hash  fields: value (the stored string), token (the largest fencing token seen for the key)
  ARGV[1]  fencing token   positive integer ≤ 2^53-1, decimal, validated by FencedStore before the call

  Returns  {1, value, max_before}   accepted. value is the stored value, or nil (Lua false) when none was
                                    written yet. max_before = the largest token seen before this call ("0" if
                                    none). If ARGV[1] is larger, it is now recorded as the largest token.
           {0, max}                 refused: a larger token (max) was seen for this key; nothing was changed.

  Why a read is fenced too: the read registers the reader's token, so once the holder of token 11 has read the
  key, a stale holder (token 10) that paused past its lease is refused when it later writes — even if the
  holder of 11 has not written yet. Read-modify-write by the current holder therefore stays safe: nobody with an
  older token can slip a write in between its read and its write.

  The rule is the same as in fenced-write-1: token < max is refused; token >= max is accepted (an equal token
  is the same lease, since every lease gets its own token). Tokens compare as numbers: tonumber is exact for
  integers up to 2^53-1 (Lua numbers are doubles). They travel and are stored as the caller's decimal strings,
  never through tostring, which would print large numbers in exponent notation.
]]
local token = tonumber(ARGV[1])
if token == nil then
  return redis.error_reply('ERR fenced-read: token "' .. ARGV[1] .. '" is not a number')
end

local stored = redis.call('HGET', KEYS[1], 'token')
local max_before = stored or '0'
local max = tonumber(max_before)
if max == nil then
  return redis.error_reply('ERR fenced-read: stored token "' .. max_before .. '" of ' .. KEYS[1] .. ' is not a number')
end

if token < max then
  return {0, max_before}
end
-- An equal token is already recorded; writing it again would only cost a write (and an AOF entry) per read.
if token > max then
  redis.call('HSET', KEYS[1], 'token', ARGV[1])
end
return {1, redis.call('HGET', KEYS[1], 'value'), max_before}
