-- wrk script: rotate refresh tokens. Each connection takes a token from the pool, and the
-- rotated token from the answer goes back, so no two requests in flight share a token.
local pool = {}
for t in string.gmatch(os.getenv("REFRESH_TOKENS") or "", "[^,]+") do
  table.insert(pool, t)
end
local last = pool[1]

request = function()
  local t = table.remove(pool) or last
  return wrk.format("POST", "/auth/refresh", {["content-type"] = "application/json"},
    '{"refresh_token":"' .. t .. '"}')
end

response = function(status, headers, body)
  local t = body and string.match(body, '"refresh_token":"([^"]+)"')
  if t then
    last = t
    table.insert(pool, t)
  end
end
