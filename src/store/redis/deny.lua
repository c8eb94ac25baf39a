-- Denylist one access token (logout) for ARGV 4 ms.
-- KEYS: 1 deny marker, 2 user's markers zset, 3 user not-before
-- ARGV: 1-3 as marks.lua, 4 ttl ms, 5 the marker's member name
mark(KEYS[1], KEYS[2], ARGV[5], tonumber(ARGV[4]), KEYS[3])
return 1
