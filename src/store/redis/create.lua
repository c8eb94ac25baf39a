-- Start a session at generation 0.
-- KEYS: 1 session hash, 2 user epoch, 3 user's sessions zset
-- ARGV: 1 sid, 2 absolute lifetime ms, 3 idle timeout ms (0 = none)
-- Returns {now, abs_exp, expires}
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local abs_exp = now + tonumber(ARGV[2])
local idle = tonumber(ARGV[3])
local expires = abs_exp
if idle > 0 then expires = math.min(abs_exp, now + idle) end
local epoch = tonumber(redis.call('GET', KEYS[2]) or '0')
redis.call('HSET', KEYS[1], 'gen', 0, 'status', 'a', 'created', now, 'abs_exp', abs_exp,
  'idle', idle, 'last_used', now, 'rotated_at', 0, 'epoch', epoch)
redis.call('PEXPIREAT', KEYS[1], expires)
-- The epoch must outlive every session that remembers it (else an old session would match
-- a vanished epoch again); the listing zset likewise.
if epoch > 0 and redis.call('PTTL', KEYS[2]) < abs_exp - now then
  redis.call('PEXPIREAT', KEYS[2], abs_exp)
end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
redis.call('ZADD', KEYS[3], abs_exp, ARGV[1])
if redis.call('PTTL', KEYS[3]) < abs_exp - now then
  redis.call('PEXPIREAT', KEYS[3], abs_exp)
end
return {now, abs_exp, expires}
