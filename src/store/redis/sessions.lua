-- Details of the given sessions: active ones of the current epoch only.
-- KEYS: 1 user epoch, 2.. session hashes   ARGV: the sids, in the same order
-- Returns a flat array: sid, created, last_used, expires, generation, per active session.
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local epoch = tonumber(redis.call('GET', KEYS[1]) or '0')
local out = {}
for i = 2, #KEYS do
  local s = redis.call('HMGET', KEYS[i], 'gen', 'status', 'created', 'abs_exp', 'idle', 'last_used', 'epoch')
  if s[1] and s[2] == 'a' and tonumber(s[7]) == epoch then
    local expires = tonumber(s[4])
    local idle = tonumber(s[5])
    if idle > 0 then expires = math.min(expires, tonumber(s[6]) + idle) end
    if expires > now then
      table.insert(out, ARGV[i - 1])
      table.insert(out, tonumber(s[3]))
      table.insert(out, tonumber(s[6]))
      table.insert(out, expires)
      table.insert(out, tonumber(s[1]))
    end
  end
end
return out
