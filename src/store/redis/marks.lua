-- Prepended to every script that writes a revocation: the server's clock, and the two
-- ways a revocation is recorded. Scripts that include it take ARGV 1-4 as:
--   1 most markers per user, 2 not-before candidate (the application's next second),
--   3 not-before cap (the application's now + the most it may lead), 4 revocation window ms
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local max_marks = tonumber(ARGV[1])
local nbf_candidate = tonumber(ARGV[2])
local nbf_cap = tonumber(ARGV[3])
local window = tonumber(ARGV[4])

-- Raises the user's not-before so every access token issued so far dies (see
-- store::not_before_after): past the current one, at most the cap, never lowered; kept at
-- least the revocation window. The value comes from the application's clock, the one that
-- writes iat.
local function raise_nbf(nbf_key)
  local current = tonumber(redis.call('GET', nbf_key) or '0')
  local nbf = math.min(math.max(nbf_candidate, current + 1), nbf_cap)
  if nbf < current then nbf = current end
  local ttl = redis.call('PTTL', nbf_key)
  if ttl < window then ttl = window end
  redis.call('SET', nbf_key, nbf, 'PX', ttl)
  return nbf
end

-- Records a revocation marker for px ms. The user's markers are indexed in a zset
-- (member -> when it ends) that bounds them: with no room for one more, the not-before is
-- raised instead, which rejects every token the marker would have.
local function mark(key, marks_key, member, px, nbf_key)
  redis.call('ZREMRANGEBYSCORE', marks_key, '-inf', now)
  if redis.call('PTTL', key) >= px then return end
  if not redis.call('ZSCORE', marks_key, member) and redis.call('ZCARD', marks_key) >= max_marks then
    raise_nbf(nbf_key)
    return
  end
  redis.call('SET', key, 1, 'PX', px)
  redis.call('ZADD', marks_key, now + px, member)
  if redis.call('PTTL', marks_key) < px then redis.call('PEXPIRE', marks_key, px) end
end
