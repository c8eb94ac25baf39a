-- Revoke one session and, for the revocation window, its access tokens.
-- KEYS: 1 session hash, 2 sidrev, 3 user epoch, 4 user's markers zset, 5 user not-before
--       (then the markers offered to fold)
-- ARGV: 1-4 as marks.lua, 5 the sidrev marker's member name
-- Returns {1} when an active session was revoked, else {0}; or {-1, member...} to be
-- run again offering those markers (see marks.lua). An unknown sid (never issued, or ended
-- and gone) writes nothing, so no caller can grow the keyspace at will.
local s = redis.call('HMGET', KEYS[1], 'status', 'epoch')
if not s[1] then return {0} end
local to_fold = mark(KEYS[2], KEYS[4], ARGV[5], window, KEYS[5])
if to_fold then return {-1, unpack(to_fold)} end
if s[1] == 'r' then return {0} end
local epoch = tonumber(redis.call('GET', KEYS[3]) or '0')
if tonumber(s[2]) ~= epoch then return {0} end
redis.call('HSET', KEYS[1], 'status', 'r')
return {1}
