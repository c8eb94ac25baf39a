-- wrk script: forged access tokens for the valid token's header and payload, with a random
-- signature of the right length. FORGED=distinct: a new one for every request (nothing can
-- be cached); FORGED=same: one forgery repeated (the same verify cost, the same answers).
local token = os.getenv("ACCESS_TOKEN") or ""
local head = string.match(token, "^(.*)%.[^.]*$") or ""
local sig_len = #(string.match(token, "[^.]*$") or "")
local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
local distinct = os.getenv("FORGED") == "distinct"

local function forge()
  local sig = {}
  for i = 1, sig_len - 1 do
    local n = math.random(1, 64)
    sig[i] = string.sub(alphabet, n, n)
  end
  -- The last character carries 2 bits of a 2048-bit signature: keep it canonical.
  sig[sig_len] = "A"
  return head .. "." .. table.concat(sig)
end

local same = forge()

request = function()
  local t = distinct and forge() or same
  return wrk.format("GET", "/me", {["authorization"] = "Bearer " .. t})
end
