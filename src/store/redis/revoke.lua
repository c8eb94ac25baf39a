-- Revoke one session and, for the access window, its access tokens.
-- KEYS: 1 session hash, 2 sidrev, 3 user epoch
-- ARGV: 1 access window ms
-- Returns 1 when an active session was revoked, else 0. An unknown sid (never issued, or
-- ended and gone) writes nothing, so no caller can grow the keyspace at will.
local s = redis.call('HMGET', KEYS[1], 'status', 'epoch')
if not s[1] then return 0 end
local window = tonumber(ARGV[1])
if redis.call('PTTL', KEYS[2]) < window then redis.call('SET', KEYS[2], 1, 'PX', window) end
if s[1] == 'r' then return 0 end
local epoch = tonumber(redis.call('GET', KEYS[3]) or '0')
if tonumber(s[2]) ~= epoch then return 0 end
redis.call('HSET', KEYS[1], 'status', 'r')
return 1
