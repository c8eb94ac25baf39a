-- Denylist one access token (logout) for ARGV 5 ms.
-- KEYS: 1 deny marker, 2 user's markers zset, 3 user not-before (then the markers offered
--       to fold)
-- ARGV: 1-4 as marks.lua, 5 ttl ms, 6 the marker's member name
-- Returns {1}, or {-1, member...} to be run again offering those markers (see marks.lua).
local to_fold = mark(KEYS[1], KEYS[2], ARGV[6], tonumber(ARGV[5]), KEYS[3])
if to_fold then return {-1, unpack(to_fold)} end
return {1}
