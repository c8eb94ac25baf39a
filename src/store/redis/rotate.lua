-- Rotate a refresh token (the state machine of DESIGN.md "Rotation"), atomically.
-- KEYS: 1 session hash, 2 user epoch, 3 sidrev, 4 user's sessions zset, 5 user not-before,
--       6 user's markers zset (then the markers offered to fold)
-- ARGV: 1-4 as marks.lua, 5 sid, 6 presented generation, 7 grace ms, 8 the sidrev marker's
--       member name, 9 the latest not-before a grant may carry
-- Returns {code, generation, abs_exp, not-before}: code 0 missing, 1 revoked, 2 expired,
-- 3 idle, 4 user logged out, 5 future generation, 6 held back (the not-before is past
-- ARGV 9: nothing changed, store::Grant::not_before), 10 rotated, 11 grace, 12 reuse detected;
-- or {-1, member...} to be run again offering those markers (see marks.lua).
local s = redis.call('HMGET', KEYS[1], 'gen', 'status', 'abs_exp', 'idle', 'last_used', 'rotated_at', 'epoch')
if not s[1] then return {0, 0, 0, 0} end
if s[2] == 'r' then return {1, 0, 0, 0} end
local epoch = tonumber(redis.call('GET', KEYS[2]) or '0')
if tonumber(s[7]) ~= epoch then return {4, 0, 0, 0} end
local gen = tonumber(s[1])
local abs_exp = tonumber(s[3])
local idle = tonumber(s[4])
local expires = abs_exp
if idle > 0 then expires = math.min(abs_exp, tonumber(s[5]) + idle) end
if now >= expires then
  redis.call('HSET', KEYS[1], 'status', 'r')
  if now >= abs_exp then return {2, 0, 0, 0} end
  return {3, 0, 0, 0}
end
local nbf = tonumber(redis.call('GET', KEYS[5]) or '0')
local g = tonumber(ARGV[6])
local held = nbf > tonumber(ARGV[9])
if g == gen then
  if held then return {6, 0, 0, 0} end
  local next_expires = abs_exp
  if idle > 0 then next_expires = math.min(abs_exp, now + idle) end
  redis.call('HSET', KEYS[1], 'gen', gen + 1, 'rotated_at', now, 'last_used', now)
  redis.call('PEXPIREAT', KEYS[1], next_expires)
  redis.call('ZADD', KEYS[4], 'XX', next_expires, ARGV[5])
  return {10, gen + 1, abs_exp, nbf}
end
if g > gen then return {5, 0, 0, 0} end
local grace = tonumber(ARGV[7])
if g + 1 == gen and grace > 0 and now - tonumber(s[6]) <= grace then
  if held then return {6, 0, 0, 0} end
  return {11, gen, abs_exp, nbf}
end
-- Reuse: revoke the session (kept as a tombstone until it would have expired) and its
-- live access tokens.
local to_fold = mark(KEYS[3], KEYS[6], ARGV[8], window, KEYS[5])
if to_fold then return {-1, unpack(to_fold)} end
redis.call('HSET', KEYS[1], 'status', 'r')
return {12, 0, 0, 0}
