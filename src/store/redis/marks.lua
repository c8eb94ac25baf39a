-- Prepended to every script that writes a revocation: the server's clock, and the two
-- ways a revocation is recorded. Scripts that include it take ARGV 1-4 as:
--   1 most markers per user, 2 not-before candidate (the application's next second),
--   3 revocation window ms, 4 how many markers the caller offers to fold (their members
--   are the last ARGV, their keys the last KEYS; -1 to fold none and raise the not-before
--   to now)
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local max_marks = tonumber(ARGV[1])
local nbf_candidate = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local folds = tonumber(ARGV[4])
-- store::MAX_MINT_AHEAD, in seconds (a unit test keeps them equal).
local lead = 2
-- How many of the oldest markers a run without room offers to fold.
local fold_batch = 8

-- Raises the user's not-before to `nbf` (default: the application's next second, its clock
-- writes iat), never lowered; for a logout-all, past the current one too, up to `past_cap`
-- (see store::not_before_after); kept at least the revocation window.
local function raise_nbf(nbf_key, past_cap, nbf)
  local current = tonumber(redis.call('GET', nbf_key) or '0')
  nbf = nbf or nbf_candidate
  if past_cap then nbf = math.max(nbf, math.min(current + 1, past_cap)) end
  if nbf < current then nbf = current end
  local ttl = redis.call('PTTL', nbf_key)
  if ttl < window then ttl = window end
  redis.call('SET', nbf_key, nbf, 'PX', ttl)
  return nbf
end

-- Records a revocation marker for px ms; its value is the not-before that would end every
-- token it stops: past the application's next second by the lead (a token of the session
-- being minted meanwhile may carry an iat that far ahead). The user's markers are indexed in a
-- zset (member -> when written) that bounds them. With no room for one more, the oldest is
-- folded into the not-before: raised to its value (ending every token it stopped, and only
-- tokens about as old; for a marker younger than the lead, up to its value ahead of the
-- clock, so a mint already waiting for the not-before is caught too), then deleted. Its key must be declared,
-- so a run without an offer still indexed returns the oldest few members to the caller,
-- having written nothing but expiries, and the caller runs the script again offering them
-- (a few, so concurrent revocations of one user do not all wait for the same one).
-- Returns nil, or those members.
local function mark(key, marks_key, member, px, nbf_key)
  redis.call('ZREMRANGEBYSCORE', marks_key, '-inf', now - window)
  if redis.call('PTTL', key) >= px then return nil end
  if not redis.call('ZSCORE', marks_key, member) and redis.call('ZCARD', marks_key) >= max_marks then
    if max_marks > 0 and folds >= 0 then
      local offered = nil
      -- Offered oldest first: fold the oldest still indexed.
      for i = folds - 1, 0, -1 do
        if redis.call('ZSCORE', marks_key, ARGV[#ARGV - i]) then
          offered = i
          break
        end
      end
      if not offered then
        return redis.call('ZRANGE', marks_key, 0, fold_batch - 1)
      end
      local fold_key = KEYS[#KEYS - offered]
      local written = redis.call('GET', fold_key)
      if written then raise_nbf(nbf_key, nil, tonumber(written)) end
      redis.call('DEL', fold_key)
      redis.call('ZREM', marks_key, ARGV[#ARGV - offered])
    end
    -- Still no room (no markers kept at all, the caller gave up folding, or the cap
    -- shrank): end every token of the user issued so far instead, and every one a mint
    -- may be waiting to issue (up to the lead ahead).
    if redis.call('ZCARD', marks_key) >= max_marks then
      raise_nbf(nbf_key, nil, nbf_candidate + lead)
      return nil
    end
  end
  redis.call('SET', key, nbf_candidate + lead, 'PX', px)
  redis.call('ZADD', marks_key, now, member)
  if redis.call('PTTL', marks_key) < window then redis.call('PEXPIRE', marks_key, window) end
  return nil
end
