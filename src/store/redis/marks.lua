-- Prepended to every script that writes a revocation: the server's clock, and the two
-- ways a revocation is recorded. Scripts that include it take ARGV 1-3 as:
--   1 most markers per user, 2 not-before candidate (the application's next second),
--   3 revocation window ms
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local max_marks = tonumber(ARGV[1])
local nbf_candidate = tonumber(ARGV[2])
local window = tonumber(ARGV[3])

-- Raises the user's not-before so every access token issued so far dies (see
-- store::not_before_after): to the application's next second (its clock writes iat), never
-- lowered; for a logout-all, past the current one too, up to `past_cap`; kept at least the
-- revocation window.
local function raise_nbf(nbf_key, past_cap)
  local current = tonumber(redis.call('GET', nbf_key) or '0')
  local nbf = nbf_candidate
  if past_cap then nbf = math.max(nbf, math.min(current + 1, past_cap)) end
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
    raise_nbf(nbf_key, nil)
    return
  end
  redis.call('SET', key, 1, 'PX', px)
  redis.call('ZADD', marks_key, now + px, member)
  if redis.call('PTTL', marks_key) < px then redis.call('PEXPIRE', marks_key, px) end
end
