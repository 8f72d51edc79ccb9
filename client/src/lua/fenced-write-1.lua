--[[
  fenced-write-1: write a key of the fenced store on behalf of a lease, unless a newer lease has been seen.

  KEYS[1]  the key's hash  fields: value (the stored string), token (the largest fencing token seen for the key)
  ARGV[1]  fencing token   positive integer ≤ 2^53-1, decimal, validated by FencedStore before the call
  ARGV[2]  value           the new value (a string, at most 1 MiB, checked by FencedStore)

  Returns  {1, max_before}   accepted: value and token are stored. max_before = the largest token seen before
                             this call ("0" if none).
           {0, max}          refused: a larger token (max) was seen for this key, by a write or by a fenced
                             read (see fenced-read-1); nothing was changed.

  The check and the write are one script, so they are atomic: no other command runs between them. A check in
  the client followed by a separate write would let two writers both pass the check and the older one land last.

  The rule is the same as in fenced-read-1: token < max is refused; token >= max is accepted (an equal token is
  the same lease, since every lease gets its own token). Tokens compare as numbers: tonumber is exact for
  integers up to 2^53-1 (Lua numbers are doubles). They travel and are stored as the caller's decimal strings,
  never through tostring, which would print large numbers in exponent notation.
]]
local token = tonumber(ARGV[1])
if token == nil then
  return redis.error_reply('ERR fenced-write: token "' .. ARGV[1] .. '" is not a number')
end

local stored = redis.call('HGET', KEYS[1], 'token')
local max_before = stored or '0'
local max = tonumber(max_before)
if max == nil then
  return redis.error_reply('ERR fenced-write: stored token "' .. max_before .. '" of ' .. KEYS[1] .. ' is not a number')
end

if token < max then
  return {0, max_before}
end
redis.call('HSET', KEYS[1], 'value', ARGV[2], 'token', ARGV[1])
return {1, max_before}
