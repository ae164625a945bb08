-- checkout.lua - the whole shop through nginx: uniqueid -> products -> product -> add -> calc ->
-- confirm -> pay, the anonymous checkout flow. Each wrk thread drives ONE connection
-- through the steps (run with -tN -cN), and counts completed checkouts and failed steps.
-- BENCH_CITY: a city uuid for /calc (bench/run looks one up with /match).
-- Like a browser, each connection keeps the session cookie /uniqueid sets: the session owns the
-- ids it is given, and the gateway refuses cart, confirm and pay calls without it (D18); confirm
-- also carries the quote cookie /calc set (D19).
-- Each step's latency (request written to response read, as this client sees it) is summed per
-- step; done() prints the mean of each with the checkout count (LuaJIT's ffi for a monotonic
-- clock: wrk's Lua has no finer clock of its own).
local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk, bench_timespec *tp);
]]
local ts = ffi.new("bench_timespec")
local function now_us()
    ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
    return tonumber(ts.tv_sec) * 1e6 + tonumber(ts.tv_nsec) / 1e3
end
local names = {"uniqueid", "products", "product", "add", "calc", "confirm", "pay"}
local sent_at = 0
-- per step (1..7): total microseconds and count, read by done() with thread:get
step_us, step_n = {0, 0, 0, 0, 0, 0, 0}, {0, 0, 0, 0, 0, 0, 0}
local city = os.getenv("BENCH_CITY") or "1"
local skus = {"Watson", "HPTD", "UHJ", "EPE", "EMM", "SHCE", "RED", "RMC", "STAN-1"}
local json = {["Content-Type"] = "application/json"}
local threads = {}
local step, id, sku, ship, cart, cookie, quote = 0, nil, nil, nil, nil, nil, nil
checkouts, errors = 0, 0

setup = function(thread)
    table.insert(threads, thread)
end

-- h's headers plus the session cookie, and the quote cookie /calc set when given (D19)
local function with_cookie(h, extra)
    local out = {}
    for k, v in pairs(h or {}) do
        out[k] = v
    end
    local c = cookie
    if extra then
        c = c and (c .. "; " .. extra) or extra
    end
    if c then
        out["Cookie"] = c
    end
    return out
end

request = function()
    sent_at = now_us()
    if step == 0 then
        return wrk.format("GET", "/api/user/uniqueid", with_cookie())
    elseif step == 1 then
        return wrk.format("GET", "/api/catalogue/products")
    elseif step == 2 then
        return wrk.format("GET", "/api/catalogue/product/" .. sku)
    elseif step == 3 then
        return wrk.format("GET", "/api/cart/add/" .. id .. "/" .. sku .. "/1", with_cookie())
    elseif step == 4 then
        return wrk.format("GET", "/api/shipping/calc/" .. city)
    elseif step == 5 then
        return wrk.format("POST", "/api/shipping/confirm/" .. id, with_cookie(json, quote), ship)
    end
    return wrk.format("POST", "/api/payment/pay/" .. id, with_cookie(json), cart)
end

response = function(status, headers, body)
    step_us[step + 1] = step_us[step + 1] + (now_us() - sent_at)
    step_n[step + 1] = step_n[step + 1] + 1
    if status ~= 200 then
        errors = errors + 1
        step = 0
        return
    end
    if step == 0 then
        local set = headers["Set-Cookie"] or headers["set-cookie"]
        local tok = set and set:match("shop_session=([0-9a-f]+)")
        if tok then
            cookie = "shop_session=" .. tok
        end
        id = body:match('"uuid"%s*:%s*"([^"]+)"')
        sku = skus[math.random(#skus)]
        if not id then
            errors = errors + 1
            return
        end
    elseif step == 4 then
        local d = body:match('"distance"%s*:%s*([-%d.eE+]+)')
        local c = body:match('"cost"%s*:%s*([-%d.eE+]+)')
        quote = nil
        for k, v in pairs(headers) do
            if k:lower() == "set-cookie" then
                quote = v:match("^([^;]*)")
            end
        end
        ship = string.format('{"location":"United Kingdom London","distance":%s,"cost":%s}', d, c)
    elseif step == 5 then
        cart = body
    elseif step == 6 then
        checkouts = checkouts + 1
        step = 0
        return
    end
    step = step + 1
end

done = function(summary, latency, requests)
    local n, e = 0, 0
    local us, cnt = {0, 0, 0, 0, 0, 0, 0}, {0, 0, 0, 0, 0, 0, 0}
    for _, t in ipairs(threads) do
        n = n + t:get("checkouts")
        e = e + t:get("errors")
        local tu, tn = t:get("step_us"), t:get("step_n")
        for i = 1, 7 do
            us[i] = us[i] + tu[i]
            cnt[i] = cnt[i] + tn[i]
        end
    end
    local steps = {}
    for i = 1, 7 do
        steps[i] = string.format('"%s":%.3f', names[i], cnt[i] > 0 and us[i] / cnt[i] / 1e3 or 0)
    end
    io.write(string.format('CHECKOUT {"checkouts":%d,"errors":%d,"duration_s":%.3f,' ..
                           '"step_mean_ms":{%s}}\n', n, e, summary.duration / 1e6,
                           table.concat(steps, ",")))
end
