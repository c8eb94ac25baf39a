-- Start a session at generation 0, first ending the user's sessions beyond the cap.
-- KEYS: 1 session hash, 2 user epoch, 3 user's sessions zset, 4 user not-before,
--       5.. hashes of the sessions the caller expects to end (see ARGV 5..)
-- ARGV: 1 sid, 2 absolute lifetime ms, 3 idle timeout ms (0 = none), 4 most sessions per
--       user, 5 the latest not-before the grant may carry, 6.. the sids whose hashes
--       KEYS 5.. are
-- Returns {abs_exp, not-before}; or, when sessions must end whose keys were not declared
-- (every key a script touches is declared, as strict servers require), {-1, sid...}
-- naming them, having changed nothing: the caller declares them and calls again; or {-2},
-- having changed nothing, when the not-before is past ARGV 5 (store::Grant::not_before).
local nbf = tonumber(redis.call('GET', KEYS[4]) or '0')
if nbf > tonumber(ARGV[5]) then return {-2} end
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local abs_exp = now + tonumber(ARGV[2])
local idle = tonumber(ARGV[3])
local expires = abs_exp
if idle > 0 then expires = math.min(abs_exp, now + idle) end
-- The zset scores each session by when it ends (its hash expires then too): expired ones
-- go first, then those ending soonest make room.
local over = redis.call('ZCOUNT', KEYS[3], '(' .. now, '+inf') - math.max(tonumber(ARGV[4]), 1) + 1
if over > 0 then
  local victims = redis.call('ZRANGEBYSCORE', KEYS[3], '(' .. now, '+inf', 'LIMIT', 0, over)
  local declared = {}
  for i = 6, #ARGV do declared[ARGV[i]] = KEYS[i - 1] end
  for _, sid in ipairs(victims) do
    if not declared[sid] then
      table.insert(victims, 1, -1)
      return victims
    end
  end
  for _, sid in ipairs(victims) do
    redis.call('DEL', declared[sid])
    redis.call('ZREM', KEYS[3], sid)
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
local epoch = tonumber(redis.call('GET', KEYS[2]) or '0')
redis.call('HSET', KEYS[1], 'gen', 0, 'status', 'a', 'created', now, 'abs_exp', abs_exp,
  'idle', idle, 'last_used', now, 'rotated_at', 0, 'epoch', epoch)
redis.call('PEXPIREAT', KEYS[1], expires)
-- The epoch must outlive every session that remembers it (else an old session would match
-- a vanished epoch again); the listing zset likewise.
if epoch > 0 and redis.call('PTTL', KEYS[2]) < abs_exp - now then
  redis.call('PEXPIREAT', KEYS[2], abs_exp)
end
redis.call('ZADD', KEYS[3], expires, ARGV[1])
if redis.call('PTTL', KEYS[3]) < abs_exp - now then
  redis.call('PEXPIREAT', KEYS[3], abs_exp)
end
return {abs_exp, nbf}
