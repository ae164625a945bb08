-- request.lua - one request shape for wrk, from the environment: BENCH_METHOD (GET), BENCH_BODY,
-- BENCH_CTYPE (application/json). "__N__" in the path or body becomes a per-request counter
-- (BENCH_START + 1, + 2, ...; modulo BENCH_MOD when set), so POSTs can use unique ids.
-- Run with -t1: one Lua state, so the counter is unique across all connections. Headers given to
-- wrk with -H (a session cookie, ...) go with every request. BENCH_COOKIES: Cookie header values
-- separated by "|", sent in turn (one per request: many browsers' sessions).
local method = os.getenv("BENCH_METHOD") or "GET"
local body = os.getenv("BENCH_BODY")
local ctype = os.getenv("BENCH_CTYPE") or "application/json"
local mod = tonumber(os.getenv("BENCH_MOD") or "0")
local n = tonumber(os.getenv("BENCH_START") or "0")
local cookies = {}
for c in (os.getenv("BENCH_COOKIES") or ""):gmatch("[^|]+") do
    table.insert(cookies, c)
end

request = function()
    n = n + 1
    local k = n
    if mod > 0 then
        k = n % mod
    end
    local path = wrk.path:gsub("__N__", tostring(k))
    local headers = {}
    for name, value in pairs(wrk.headers) do
        headers[name] = value
    end
    if #cookies > 0 then
        headers["Cookie"] = cookies[n % #cookies + 1]
    end
    local b = nil
    if body then
        b = body:gsub("__N__", tostring(k))
        headers["Content-Type"] = ctype
    end
    return wrk.format(method, path, headers, b)
end
