-- Log a user out everywhere: bump the epoch (sessions die at their next refresh) and set
-- the not-before (access tokens issued up to now die at once).
-- KEYS: 1 user epoch, 2 user not-before, 3 user's sessions zset
-- ARGV: 1 access window ms, 2 not-before (seconds, from the application's clock)
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local window = tonumber(ARGV[1])
redis.call('INCR', KEYS[1])
-- The epoch lives as long as the longest session that could still compare against it.
local last = redis.call('ZRANGE', KEYS[3], -1, -1, 'WITHSCORES')
local keep_until = now + window
if last[2] and tonumber(last[2]) > keep_until then keep_until = tonumber(last[2]) end
if redis.call('PTTL', KEYS[1]) < keep_until - now then redis.call('PEXPIREAT', KEYS[1], keep_until) end
-- The not-before is compared with iat, which the application's clock wrote, so it comes
-- from that clock too (see store::not_before_after): Redis' clock being behind must not let
-- tokens issued just before this call survive it. A token may carry the current not-before
-- as its iat, so the new one moves past it.
local nbf = tonumber(ARGV[2])
local current = tonumber(redis.call('GET', KEYS[2]) or '0')
if current + 1 > nbf then nbf = current + 1 end
local ttl = redis.call('PTTL', KEYS[2])
if ttl < window then ttl = window end
redis.call('SET', KEYS[2], nbf, 'PX', ttl)
return nbf
