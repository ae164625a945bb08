-- checkout.lua - the whole shop through nginx: uniqueid -> products -> product -> add -> calc ->
-- confirm -> pay, the anonymous checkout flow. Each wrk thread drives ONE connection
-- through the steps (run with -tN -cN), and counts completed checkouts and failed steps.
-- BENCH_CITY: a city uuid for /calc (bench/run looks one up with /match).
local city = os.getenv("BENCH_CITY") or "1"
local skus = {"Watson", "HPTD", "UHJ", "EPE", "EMM", "SHCE", "RED", "RMC", "STAN-1"}
local json = {["Content-Type"] = "application/json"}
local threads = {}
local step, id, sku, ship, cart, quote = 0, nil, nil, nil, nil, nil
checkouts, errors = 0, 0

setup = function(thread)
    table.insert(threads, thread)
end

request = function()
    if step == 0 then
        return wrk.format("GET", "/api/user/uniqueid")
    elseif step == 1 then
        return wrk.format("GET", "/api/catalogue/products")
    elseif step == 2 then
        return wrk.format("GET", "/api/catalogue/product/" .. sku)
    elseif step == 3 then
        return wrk.format("GET", "/api/cart/add/" .. id .. "/" .. sku .. "/1")
    elseif step == 4 then
        return wrk.format("GET", "/api/shipping/calc/" .. city)
    elseif step == 5 then
        -- the quote cookie /calc set (D19): wrk keeps no cookies, this script does
        local h = {["Content-Type"] = "application/json", ["Cookie"] = quote}
        return wrk.format("POST", "/api/shipping/confirm/" .. id, h, ship)
    end
    return wrk.format("POST", "/api/payment/pay/" .. id, json, cart)
end

response = function(status, headers, body)
    if status ~= 200 then
        errors = errors + 1
        step = 0
        return
    end
    if step == 0 then
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
    for _, t in ipairs(threads) do
        n = n + t:get("checkouts")
        e = e + t:get("errors")
    end
    io.write(string.format('CHECKOUT {"checkouts":%d,"errors":%d,"duration_s":%.3f}\n', n, e,
                           summary.duration / 1e6))
end
