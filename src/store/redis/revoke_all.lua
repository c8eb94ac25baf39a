-- Log a user out everywhere: bump the epoch (sessions die at their next refresh) and raise
-- the not-before (access tokens issued up to now die at once).
-- KEYS: 1 user epoch, 2 user not-before, 3 user's sessions zset
-- ARGV: 1-4 as marks.lua (1 and 4 unused), 5 how far past the current not-before may go
--       (the application's now + MAX_NOT_BEFORE_LEAD)
redis.call('INCR', KEYS[1])
-- The epoch lives as long as the longest session that could still compare against it.
local last = redis.call('ZRANGE', KEYS[3], -1, -1, 'WITHSCORES')
local keep_until = now + window
if last[2] and tonumber(last[2]) > keep_until then keep_until = tonumber(last[2]) end
if redis.call('PTTL', KEYS[1]) < keep_until - now then redis.call('PEXPIREAT', KEYS[1], keep_until) end
return raise_nbf(KEYS[2], tonumber(ARGV[5]))
