-- Denylist one access token (logout) for ARGV 5 ms, its exp + leeway from now.
-- KEYS: 1 deny marker, 2 user's markers zset, 3 user not-before
-- ARGV: 1-4 as marks.lua, 5 ttl ms, 6 the marker's member name
mark(KEYS[1], KEYS[2], ARGV[6], tonumber(ARGV[5]), KEYS[3])
return 1
