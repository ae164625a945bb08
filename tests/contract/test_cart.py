"""Contract tests of the cart service (docs/api/cart.yaml; docs/DECISIONS.md D3, D10, D11, D16).

Real Redis, real catalogue, real cart. Stored values are read and planted with redis-cli.
A second cart process (started here) talks to a small local HTTP server standing in for a
misbehaving catalogue, to reach the error paths the real catalogue never produces.
"""
import concurrent.futures
import json
import os
import re
import socket
import subprocess
import threading
import time
import uuid

import pytest
import requests

from conftest import (QuietHandler, SecondService, close_server, free_port, listener, sanitizer_reports, serve_http,
                      service_url, spawn, stack, url_of, wait_for)

RUN = uuid.uuid4().hex[:8]
CONTRACT_CART = (
    '{"total":2170.35,"tax":361.7249999999999,"items":['
    '{"qty":1,"sku":"Watson","name":"Watson","price":2001,"subtotal":2001},'
    '{"qty":2,"sku":"STAN-1","name":"Stan","price":67,"subtotal":134},'
    '{"qty":1,"sku":"SHIP","name":"shipping to United Kingdom London","price":35.35,"subtotal":35.35}]}'
)
LONDON = {"distance": 707, "cost": 35.35, "location": "United Kingdom London"}


def cid(name):
    return "t-%s-%s" % (name, RUN)


@pytest.fixture
def cart():
    return service_url("cart")


def redis(*args):
    """Runs redis-cli against the stack's Redis and returns its stripped output."""
    cmd = ["redis-cli", "-h", os.environ.get("REDIS_HOST", "127.0.0.1"),
           "-p", os.environ.get("REDIS_PORT", "6379"), *args]
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip()


def items_added(http, cart):
    r = http.get(cart + "/metrics")
    for line in r.text.splitlines():
        if line.startswith("items_added "):
            return float(line.split()[1])
    raise AssertionError("no items_added in /metrics")


# ---- health, metrics ---------------------------------------------------------------------

def test_health(http, cart):
    r = http.get(cart + "/health")
    assert r.status_code == 200
    assert r.json() == {"app": "OK", "redis": True}
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    assert r.headers["Timing-Allow-Origin"] == "*"


def test_metrics_items_added_first(http, cart):
    r = http.get(cart + "/metrics")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain")
    lines = r.text.splitlines()
    assert lines[0] == "# HELP items_added running count of items added to cart"
    assert lines[1] == "# TYPE items_added counter"
    assert lines[2].startswith("items_added ")
    float(lines[2].split()[1])


# ---- add, get, the reference cart ---------------------------------------------------------

def test_reference_cart_bytes(http, cart):
    c = cid("ref")
    before = items_added(http, cart)
    r = http.get("%s/add/%s/Watson/1" % (cart, c))
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json; charset=utf-8"
    assert r.text == '{"total":2001,"tax":333.5,"items":[{"qty":1,"sku":"Watson","name":"Watson","price":2001,"subtotal":2001}]}'
    assert http.get("%s/add/%s/STAN-1/1" % (cart, c)).status_code == 200
    r = http.get("%s/add/%s/STAN-1/1" % (cart, c))
    assert r.json()["items"][1] == {"qty": 2, "sku": "STAN-1", "name": "Stan", "price": 67, "subtotal": 134}
    assert r.json()["tax"] == 355.83333333333326
    r = http.post("%s/shipping/%s" % (cart, c), json=LONDON)
    assert r.status_code == 200
    assert r.text == CONTRACT_CART
    g = http.get("%s/cart/%s" % (cart, c))
    assert g.status_code == 200
    assert g.headers["Content-Type"] == "application/json; charset=utf-8"
    assert g.text == CONTRACT_CART
    assert redis("GET", c) == CONTRACT_CART  # the stored bytes are the API's bytes
    assert items_added(http, cart) - before == 3


def test_get_missing_cart(http, cart):
    r = http.get("%s/cart/%s" % (cart, cid("none")))
    assert r.status_code == 404
    assert r.text == "cart not found"
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"  # Express's res.send(text), docs/api/cart.yaml


@pytest.mark.parametrize("qty,expect", [("2abc", 2), ("1.9", 1), ("0x10", 16), ("%203", 3),
                                        ("+4", 4), ("010", 10), ("1e3", 1)])
def test_add_parse_int(http, cart, qty, expect):
    c = cid("pi")
    http.delete("%s/cart/%s" % (cart, c))
    r = http.get("%s/add/%s/RMC/%s" % (cart, c, qty))
    assert r.status_code == 200
    item = r.json()["items"][0]
    assert item["qty"] == expect
    assert item["subtotal"] == 42 * expect


@pytest.mark.parametrize("qty,status,text", [
    ("abc", 400, "quantity must be a number"),
    ("0x", 400, "quantity must be a number"),
    ("0", 400, "quantity has to be greater than zero"),
    ("-1", 400, "quantity has to be greater than zero"),
    ("0.5", 400, "quantity has to be greater than zero"),
])
def test_add_bad_quantity(http, cart, qty, status, text):
    r = http.get("%s/add/%s/RMC/%s" % (cart, cid("bq"), qty))
    assert (r.status_code, r.text) == (status, text)
    assert http.get("%s/cart/%s" % (cart, cid("bq"))).status_code == 404


def test_minus_zero(http, cart):
    """parseInt("-0") is -0: not >= 1 for add, not < 0 for update, where it removes the item."""
    c = cid("m0")
    r = http.get("%s/add/%s/RMC/-0" % (cart, c))
    assert (r.status_code, r.text) == (400, "quantity has to be greater than zero")
    http.get("%s/add/%s/RMC/2" % (cart, c))
    r = http.get("%s/update/%s/RMC/-0" % (cart, c))
    assert r.status_code == 200 and r.text == '{"total":0,"tax":0,"items":[]}'


def test_add_unknown_product_and_out_of_stock(http, cart):
    c = cid("stock")
    r = http.get("%s/add/%s/NOSUCH-%s/1" % (cart, c, RUN))
    assert (r.status_code, r.text) == (404, "product not found")
    r = http.get("%s/add/%s/Ewooid/1" % (cart, c))  # instock 0
    assert (r.status_code, r.text) == (404, "out of stock")
    r = http.get("%s/add/%s/CNA/5" % (cart, c))
    assert (r.status_code, r.text) == (404, "out of stock")
    assert http.get("%s/cart/%s" % (cart, c)).status_code == 404
    r = http.get("%s/add/%s/EPE/5" % (cart, c))  # stock 1: quantity is not compared
    assert r.status_code == 200 and r.json()["items"][0]["qty"] == 5


def test_add_and_update_by_post(http, cart):
    c = cid("post")
    r = http.post("%s/add/%s/HPTD/2" % (cart, c))
    assert r.status_code == 200 and r.json()["total"] == 2400
    r = http.post("%s/update/%s/HPTD/1" % (cart, c))
    assert r.status_code == 200 and r.json()["total"] == 1200


def test_add_after_ship_goes_last(http, cart):
    c = cid("order")
    http.get("%s/add/%s/RED/1" % (cart, c))
    http.post("%s/shipping/%s" % (cart, c), json=LONDON)
    r = http.get("%s/add/%s/UHJ/1" % (cart, c))
    assert [i["sku"] for i in r.json()["items"]] == ["RED", "SHIP", "UHJ"]
    r = http.get("%s/add/%s/RED/2" % (cart, c))  # merged in place, stored price reused
    assert r.json()["items"][0] == {"qty": 3, "sku": "RED", "name": "Responsive Enforcer Droid",
                                    "price": 700, "subtotal": 2100}
    assert r.json()["total"] == 2100 + 35.35 + 5000


# ---- update -------------------------------------------------------------------------------

def test_update_rules(http, cart):
    c = cid("upd")
    r = http.get("%s/update/%s/RMC/1" % (cart, c))
    assert (r.status_code, r.text) == (404, "cart not found")
    http.get("%s/add/%s/RMC/1" % (cart, c))
    http.get("%s/add/%s/Watson/1" % (cart, c))
    http.post("%s/shipping/%s" % (cart, c), json=LONDON)
    r = http.get("%s/update/%s/RMC/5" % (cart, c))
    assert r.status_code == 200
    assert r.json()["items"][0] == {"qty": 5, "sku": "RMC", "name": "Robotic Mining Cyborg",
                                    "price": 42, "subtotal": 210}
    before = items_added(http, cart)
    r = http.get("%s/update/%s/SHIP/2" % (cart, c))  # Q-CA4: shipping can be doubled
    assert r.json()["items"][2]["subtotal"] == 70.7
    assert items_added(http, cart) == before  # update never counts
    r = http.get("%s/update/%s/SHIP/0" % (cart, c))
    assert [i["sku"] for i in r.json()["items"]] == ["RMC", "Watson"]
    assert r.json()["total"] == 2211
    r = http.get("%s/update/%s/NOPE/1" % (cart, c))
    assert (r.status_code, r.text) == (404, "not in cart")
    r = http.get("%s/update/%s/RMC/-1" % (cart, c))
    assert (r.status_code, r.text) == (400, "negative quantity not allowed")
    r = http.get("%s/update/%s/RMC/x" % (cart, c))
    assert (r.status_code, r.text) == (400, "quantity must be a number")
    http.get("%s/update/%s/RMC/0" % (cart, c))
    r = http.get("%s/update/%s/Watson/0" % (cart, c))
    assert r.text == '{"total":0,"tax":0,"items":[]}'
    g = http.get("%s/cart/%s" % (cart, c))  # an emptied cart is kept
    assert g.status_code == 200 and g.json() == {"total": 0, "tax": 0, "items": []}


# ---- shipping -----------------------------------------------------------------------------

@pytest.mark.parametrize("body", [
    {}, {"distance": 1, "cost": 2}, {"distance": 1, "location": "x"},
    {"cost": 2, "location": "x"}, {"distance": 1, "cost": 2, "location": None},
    {"distance": 1, "cost": "2", "location": "x"}, {"distance": "1", "cost": 2, "location": "x"},
])
def test_shipping_data_missing(http, cart, body):
    c = cid("shipbad")
    http.get("%s/add/%s/RMC/1" % (cart, c))
    r = http.post("%s/shipping/%s" % (cart, c), json=body)
    assert (r.status_code, r.text) == (400, "shipping data missing")


def test_shipping_other_bodies(http, cart):
    c = cid("shipbody")
    http.get("%s/add/%s/RMC/1" % (cart, c))
    r = http.post("%s/shipping/%s" % (cart, c), data=json.dumps(LONDON),
                  headers={"Content-Type": "text/plain"})
    assert (r.status_code, r.text) == (400, "shipping data missing")
    r = http.post("%s/shipping/%s" % (cart, c), data="{bad",
                  headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    r = http.post("%s/shipping/%s" % (cart, cid("noship")), json=LONDON)
    assert (r.status_code, r.text) == (404, "cart not found")


def test_shipping_replaced_in_place(http, cart):
    c = cid("shipre")
    http.get("%s/add/%s/RMC/1" % (cart, c))
    http.post("%s/shipping/%s" % (cart, c), json=LONDON)
    http.get("%s/add/%s/Watson/1" % (cart, c))
    r = http.post("%s/shipping/%s" % (cart, c),
                  json={"distance": 541, "cost": 27.05, "location": "France Paris"})
    assert r.status_code == 200
    items = r.json()["items"]
    assert [i["sku"] for i in items] == ["RMC", "SHIP", "Watson"]
    assert items[1] == {"qty": 1, "sku": "SHIP", "name": "shipping to France Paris",
                        "price": 27.05, "subtotal": 27.05}
    assert r.json()["total"] == 42 + 27.05 + 2001


# ---- rename, delete, reserved id ------------------------------------------------------------

def test_rename(http, cart):
    a, b = cid("from"), cid("to")
    r = http.get("%s/rename/%s/%s" % (cart, a, b))
    assert (r.status_code, r.text) == (404, "cart not found")
    http.get("%s/add/%s/RMC/1" % (cart, b))  # the destination is overwritten (Q-CA1)
    src = http.get("%s/add/%s/STAN-1/3" % (cart, a)).text
    r = http.get("%s/rename/%s/%s" % (cart, a, b))
    assert r.status_code == 200 and r.text == src
    assert http.get("%s/cart/%s" % (cart, b)).text == src
    assert http.get("%s/cart/%s" % (cart, a)).text == src  # the source stays
    assert 3500 < int(redis("TTL", b)) <= 3600
    redis("EXPIRE", a, "100")
    assert http.get("%s/rename/%s/%s" % (cart, a, b)).status_code == 200
    assert int(redis("TTL", a)) <= 100  # the source is only read: its TTL is not refreshed
    assert 3500 < int(redis("TTL", b)) <= 3600


def test_delete(http, cart):
    c = cid("del")
    http.get("%s/add/%s/RMC/1" % (cart, c))
    r = http.delete("%s/cart/%s" % (cart, c))
    assert (r.status_code, r.text) == (200, "OK")
    r = http.delete("%s/cart/%s" % (cart, c))
    assert (r.status_code, r.text) == (404, "cart not found")


def test_counter_key_refused(http, cart):
    before = redis("GET", "anonymous-counter")
    k = "anonymous-counter"
    for r in (http.get("%s/cart/%s" % (cart, k)), http.delete("%s/cart/%s" % (cart, k)),
              http.get("%s/add/%s/RMC/1" % (cart, k)), http.get("%s/update/%s/RMC/1" % (cart, k)),
              http.get("%s/rename/%s/%s" % (cart, k, cid("x"))),
              http.get("%s/rename/%s/%s" % (cart, cid("x"), k)),
              http.post("%s/shipping/%s" % (cart, k), json=LONDON)):
        assert r.status_code == 400
    assert redis("GET", "anonymous-counter") == before


def test_path_parameters_checked(http, cart):
    r = http.get("%s/cart/a%%2Fb" % cart)  # decoded '/' (D2)
    assert r.status_code == 400
    r = http.get("%s/cart/%s" % (cart, "x" * 300))
    assert r.status_code == 400
    c = "t-space %s" % RUN  # a percent-decoded id is the Redis key as is
    r = http.get("%s/add/%s/RMC/1" % (cart, requests.utils.quote(c)))
    assert r.status_code == 200
    assert redis("EXISTS", c) == "1"


# ---- TTL ---------------------------------------------------------------------------------

def test_ttl_set_and_refreshed_on_writes(http, cart):
    c = cid("ttl")
    http.get("%s/add/%s/RMC/1" % (cart, c))
    assert 3500 < int(redis("TTL", c)) <= 3600
    for write in (lambda: http.get("%s/add/%s/RMC/1" % (cart, c)),
                  lambda: http.get("%s/update/%s/RMC/4" % (cart, c)),
                  lambda: http.post("%s/shipping/%s" % (cart, c), json=LONDON)):
        redis("EXPIRE", c, "100")
        assert write().status_code == 200
        assert 3500 < int(redis("TTL", c)) <= 3600
    redis("EXPIRE", c, "100")
    http.get("%s/cart/%s" % (cart, c))  # reads do not refresh
    assert int(redis("TTL", c)) <= 100


# ---- corrupt stored values (Q-CA6 / D3) ----------------------------------------------------

@pytest.mark.parametrize("value", ["not json", "[1,2]", '{"total":0}', '{"items":{}}',
                                   '{"items":[{"sku":"RMC","qty":1,"price":42,"subtotal":42},'
                                   '{"sku":"X","qty":1,"price":1,"subtotal":"x"}]}'])
def test_corrupt_values_answer_500(http, cart, value):
    c = cid("bad")
    redis("SET", c, value)
    if value.startswith("{\"items\":[{"):  # a valid shape: readable, but not updatable
        assert http.get("%s/cart/%s" % (cart, c)).status_code == 200
    else:
        assert http.get("%s/cart/%s" % (cart, c)).status_code == 500
        assert http.get("%s/rename/%s/%s" % (cart, c, cid("bad2"))).status_code == 500
    assert http.get("%s/add/%s/RMC/1" % (cart, c)).status_code == 500
    assert http.get("%s/update/%s/RMC/2" % (cart, c)).status_code == 500
    assert http.post("%s/shipping/%s" % (cart, c), json=LONDON).status_code == 500
    assert redis("GET", c) == value  # never overwritten
    assert http.get(cart + "/health").status_code == 200


def test_wrong_redis_type_answers_500(http, cart):
    c = cid("list")
    redis("RPUSH", c, "x")
    assert http.get("%s/cart/%s" % (cart, c)).status_code == 500
    assert http.get("%s/add/%s/RMC/1" % (cart, c)).status_code == 500
    assert redis("TYPE", c) == "list"


# ---- concurrency (D10) ---------------------------------------------------------------------

def test_parallel_adds_never_lose_an_update(cart):
    c = cid("race")
    url = "%s/add/%s/RMC/1" % (cart, c)

    def add(_):
        with requests.Session() as s:
            return s.get(url, timeout=30).status_code

    with concurrent.futures.ThreadPoolExecutor(max_workers=50) as pool:
        codes = list(pool.map(add, range(50)))
    assert codes == [200] * 50
    body = requests.get("%s/cart/%s" % (cart, c)).json()
    assert body["items"][0]["qty"] == 50
    assert body["total"] == 50 * 42


def test_parallel_reads_each_get_their_own_cart(cart):
    """Many carts read at once, each over its own keep-alive connection many times: every
    answer is that cart's (on an event loop the reads of concurrent requests share one Redis
    connection, and each reply must reach the request that sent its command)."""
    carts = [cid("own%d" % i) for i in range(32)]
    for i, c in enumerate(carts):
        assert requests.get("%s/add/%s/RMC/%d" % (cart, c, i + 1), timeout=30).status_code == 200

    def read(i):
        with requests.Session() as s:
            return [s.get("%s/cart/%s" % (cart, carts[i]), timeout=30).json()["items"][0]["qty"]
                    for _ in range(16)]

    with concurrent.futures.ThreadPoolExecutor(max_workers=32) as pool:
        got = list(pool.map(read, range(32)))
    assert got == [[i + 1] * 16 for i in range(32)]


def test_parallel_mixed_writes(cart):
    c = cid("race2")
    requests.get("%s/add/%s/Watson/1" % (cart, c))

    def work(i):
        with requests.Session() as s:
            if i % 2:
                return s.get("%s/add/%s/RMC/1" % (cart, c), timeout=30).status_code
            return s.post("%s/shipping/%s" % (cart, c), timeout=30,
                          json={"distance": i, "cost": 1.5, "location": "L%d" % i}).status_code

    with concurrent.futures.ThreadPoolExecutor(max_workers=30) as pool:
        codes = list(pool.map(work, range(60)))
    assert codes == [200] * 60
    body = requests.get("%s/cart/%s" % (cart, c)).json()
    skus = [i["sku"] for i in body["items"]]
    assert skus.count("SHIP") == 1 and skus.count("RMC") == 1
    assert body["items"][skus.index("RMC")]["qty"] == 30
    assert body["total"] == 2001 + 30 * 42 + 1.5


# ---- the checkout half of the shop's flow over HTTP ----------------------------------------------------

def test_checkout_half(http, cart):
    user = service_url("user")
    anon = http.get(user + "/uniqueid").json()["uuid"]
    assert anon.startswith("anonymous-")
    assert http.get("%s/add/%s/Watson/1" % (cart, anon)).status_code == 200
    assert http.get("%s/add/%s/STAN-1/2" % (cart, anon)).status_code == 200
    view = http.get("%s/cart/%s" % (cart, anon)).json()
    assert [i["sku"] for i in view["items"]] == ["Watson", "STAN-1"]
    assert http.get("%s/update/%s/STAN-1/1" % (cart, anon)).json()["total"] == 2068
    shipped = http.post("%s/shipping/%s" % (cart, anon), json=LONDON).json()
    name, pw = "chk-" + RUN, "pw-" + RUN
    assert http.post(user + "/register", json={"name": name, "password": pw,
                                               "email": "c@x"}).status_code == 200
    login = http.post(user + "/login", json={"name": name, "password": pw})
    assert login.status_code == 200 and login.json()["name"] == name
    renamed = http.get("%s/rename/%s/%s" % (cart, anon, name))
    assert renamed.status_code == 200 and renamed.json() == shipped
    assert http.get("%s/history/%s" % (user, name)).status_code == 404
    assert http.get("%s/check/%s" % (user, name)).text == "OK"
    order = {"orderid": str(uuid.uuid4()), "cart": renamed.json()}
    assert http.post("%s/order/%s" % (user, name), json=order).text == "OK"
    assert http.delete("%s/cart/%s" % (cart, name)).text == "OK"
    hist = http.get("%s/history/%s" % (user, name)).json()
    assert hist["name"] == name and hist["history"] == [order]


# ---- Redis down / back (D16) ---------------------------------------------------------------

def read_cart(cart, c):
    """The cart's body, read once every worker is out of its fail-fast window (a worker still in
    it answers 503 for a while after Redis is back)."""
    got = []

    def ok():
        r = requests.get("%s/cart/%s" % (cart, c))
        got.append(r)
        return r.status_code == 200
    assert wait_for(ok, 30), got[-1].text
    return got[-1].json()


def test_redis_down_fails_fast_then_recovers(cart):
    c = cid("down")
    requests.get("%s/add/%s/RMC/1" % (cart, c))
    stack("stop", "redis")
    try:
        for _ in range(3):
            for method, url in (("GET", "%s/cart/%s" % (cart, c)), ("GET", "%s/add/%s/RMC/1" % (cart, c)),
                                ("GET", "%s/update/%s/RMC/3" % (cart, c)),
                                ("DELETE", "%s/cart/%s" % (cart, c)),
                                ("GET", "%s/rename/%s/%s" % (cart, c, cid("down2"))),
                                ("POST", "%s/shipping/%s" % (cart, c))):
                r = requests.request(method, url, timeout=30, json=LONDON if method == "POST" else None)
                assert r.status_code == 503, url  # the service's own answer while Redis is away
            h = requests.get(cart + "/health", timeout=10)
            assert h.status_code == 503 and h.json() == {"app": "OK", "redis": False}
    finally:
        stack("start", "redis")
    assert wait_for(lambda: requests.get("%s/cart/%s" % (cart, c)).status_code == 200, 30)
    # a thread whose connection failed reconnects only after the 250 ms fail-fast window (a 503
    # meanwhile changes nothing): the first add that succeeds is the only one
    added = wait_for(lambda: requests.get("%s/add/%s/RMC/1" % (cart, c)).status_code == 200, 30)
    assert added and read_cart(cart, c)["items"][0]["qty"] == 2
    assert wait_for(lambda: requests.get(cart + "/health").status_code == 200, 30)
    # a restart between two requests: every worker's socket is stale, none may fail
    url = "%s/cart/%s" % (cart, c)
    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(lambda _: requests.get(url, timeout=30), range(32)))
    stack("stop", "redis")
    stack("start", "redis")
    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        codes = list(pool.map(lambda i: requests.get("%s/add/%s/RMC/1" % (cart, c) if i % 2 else url,
                                                     timeout=30).status_code, range(32)))
    assert codes == [200] * 32
    assert requests.get(url).json()["items"][0]["qty"] == 18


def test_hung_redis_times_out_then_recovers(cart):
    """SIGSTOP freezes this stack's own redis-server: connects still succeed (the kernel
    accepts), commands time out (after about 2 s) and answer 503 while Redis is still frozen;
    SIGCONT brings it back."""
    pidfile = os.path.join(os.environ.get("SHOP_STATE_DIR", ""), "run", "redis.pid")
    if not os.path.exists(pidfile):
        pytest.skip("no redis.pid of the local stack")
    pid = int(open(pidfile).read().split()[0])
    c = cid("hung")
    requests.get("%s/add/%s/RMC/1" % (cart, c))
    os.kill(pid, 19)  # SIGSTOP
    try:
        for _ in range(2):  # answered before SIGCONT: the service gave up by itself
            r = requests.get("%s/cart/%s" % (cart, c), timeout=60)
            assert r.status_code == 503
    finally:
        os.kill(pid, 18)  # SIGCONT
    assert wait_for(lambda: requests.get("%s/cart/%s" % (cart, c)).status_code == 200, 30)
    # a thread whose connection timed out reconnects only after the 250 ms fail-fast window
    added = wait_for(lambda: requests.get("%s/add/%s/RMC/1" % (cart, c)).status_code == 200, 30)
    assert added and read_cart(cart, c)["items"][0]["qty"] == 2


# ---- a second cart in front of a misbehaving catalogue ------------------------------------

class FakeCatalogue(QuietHandler):
    """Answers /product/<case> with the odd replies a broken catalogue could give."""
    replies = {
        "GARBAGE": (200, "this is not json"),
        "ARRAY": (200, "[1,2]"),
        "BROKEN": (500, '{"error":"x"}'),
        "NOPRICE": (200, '{"sku":"NOPRICE","name":"n","instock":1}'),
        "ZEROSTR": (200, '{"sku":"ZEROSTR","name":"z","price":5,"instock":"0"}'),
        "NOSTOCK": (200, '{"sku":"NOSTOCK","name":"Odd","price":5}'),
        "FALSESTOCK": (200, '{"sku":"FALSESTOCK","name":"f","price":5,"instock":false}'),
        "NULLSTOCK": (200, '{"sku":"NULLSTOCK","name":"n","price":5,"instock":null}'),
    }
    rising = 0  # RISING costs 10 more on every fetch
    held = 0  # SLOW requests being held
    # a SLOW request is held until this is set (at most 2 minutes, longer than a test waits)
    release = threading.Event()

    fetches = {}  # SKU -> how many times the cart asked for it

    def do_GET(self):
        key = self.path.rsplit("/", 1)[-1]
        FakeCatalogue.fetches[key] = FakeCatalogue.fetches.get(key, 0) + 1
        if key == "SLOW":
            FakeCatalogue.held += 1
            FakeCatalogue.release.wait(120)
            FakeCatalogue.held -= 1
            self.close_connection = True  # the cart gave up long ago: no reply
            return
        if key.startswith("LAGGING-"):
            time.sleep(0.5)  # a slow catalogue: concurrent adds of the SKU come meanwhile
        if key == "RISING":
            FakeCatalogue.rising += 10
            self.replies[key] = (200, '{"sku":"RISING","name":"r","price":%d,"instock":1}' % self.rising)
        status, body = self.replies.get(key, (404, "SKU not found"))
        self.answer(status, body.encode(), "application/json")


@pytest.fixture(scope="module")
def fake_catalogue():
    fake = serve_http(FakeCatalogue)
    yield fake.server_port
    close_server(fake)


def start_cart(**env_vars):
    """Starts a second cart with os.environ plus env_vars (None = unset); returns (proc, url)."""
    env = dict(os.environ)
    for k, v in env_vars.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    binary = os.path.join(os.environ.get("SHOP_BIN_DIR", "build/bin"), "cart")
    with listener() as sock:
        proc = spawn([binary], sock, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        url = url_of(sock)

    def up():
        try:
            return requests.get(url + "/health", timeout=5).status_code == 200
        except requests.ConnectionError:
            return proc.poll() is not None

    if not wait_for(up, 30) or proc.poll() is not None:
        proc.kill()
        raise AssertionError(proc.communicate(timeout=30)[1].decode()[-2000:])
    return proc, url


def stop_cart(proc):
    proc.terminate()
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err.decode()[-2000:]
    assert b"ERROR: AddressSanitizer" not in err and b"runtime error" not in err
    assert not sanitizer_reports(proc.pid)


@pytest.fixture(scope="module")
def odd_cart(fake_catalogue):
    # CATALOGUE_HOST host:port wins over CATALOGUE_PORT; REDIS_HOST + REDIS_PORT form
    proc, url = start_cart(CATALOGUE_HOST="127.0.0.1:%d" % fake_catalogue, CATALOGUE_PORT="1",
                           CART_TTL_SECONDS="77", SHOP_CATALOGUE_TIMEOUT_MS="500", REDIS_URL=None)
    yield url
    stop_cart(proc)


def test_course_variables(fake_catalogue):
    """Course v1/v3 units: CATALOGUE_HOST + CATALOGUE_PORT, REDIS_HOST with its port (D9)."""
    proc, url = start_cart(CATALOGUE_HOST="127.0.0.1", CATALOGUE_PORT=str(fake_catalogue),
                           REDIS_URL=None, REDIS_PORT=None,
                           REDIS_HOST="127.0.0.1:%s" % os.environ.get("REDIS_PORT", "6379"))
    try:
        c = cid("course")
        r = requests.get("%s/add/%s/NOSTOCK/1" % (url, c), timeout=10)
        assert r.status_code == 200 and r.json()["items"][0]["name"] == "Odd"
        assert json.loads(redis("GET", c)) == r.json()
    finally:
        stop_cart(proc)


@pytest.mark.parametrize("sku,status,text", [
    ("GARBAGE", 500, None), ("ARRAY", 500, None), ("SLOW", 500, None), ("NOPRICE", 500, None),
    ("BROKEN", 404, "product not found"), ("MISSING", 404, "product not found"),
    ("ZEROSTR", 404, "out of stock"), ("FALSESTOCK", 404, "out of stock"),
])
def test_catalogue_answers(odd_cart, sku, status, text):
    FakeCatalogue.release = threading.Event()
    try:
        r = requests.get("%s/add/%s/%s/1" % (odd_cart, cid("odd"), sku), timeout=60)
        if sku == "SLOW":  # answered while the catalogue still holds the request: cart gave up itself
            assert wait_for(lambda: FakeCatalogue.held == 1, 30)
    finally:
        FakeCatalogue.release.set()
    assert r.status_code == status
    if text is not None:
        assert r.text == text
    else:
        assert r.headers["Content-Type"].startswith("application/json")


def test_catalogue_without_instock_and_ttl_setting(odd_cart):
    c = cid("odd2")
    r = requests.get("%s/add/%s/NOSTOCK/2" % (odd_cart, c), timeout=10)
    assert r.status_code == 200
    assert r.json()["items"] == [{"qty": 2, "sku": "NOSTOCK", "name": "Odd", "price": 5, "subtotal": 10}]
    assert 70 < int(redis("TTL", c)) <= 77  # CART_TTL_SECONDS
    r = requests.get("%s/add/%s/NULLSTOCK/1" % (odd_cart, c), timeout=10)
    assert r.status_code == 200  # JavaScript: null == 0 is false


def test_huge_quantities(odd_cart):
    """parseInt of 22 digits is 1e21; numbers print as JavaScript does (1e+21). Run on the
    second cart: its items_added counter may absorb the 1e21. A digit string long enough to
    overflow to Infinity is over D2's 256-byte parameter limit."""
    r = requests.get("%s/add/%s/NOSTOCK/1%s" % (odd_cart, cid("huge"), "0" * 21), timeout=10)
    assert r.status_code == 200
    assert '"qty":1e+21,' in r.text and '"subtotal":5e+21}' in r.text
    assert json.loads(r.text, parse_int=float) == {"total": 5e21, "tax": 5e21 - 5e21 / 1.2, "items": [
        {"qty": 1e21, "sku": "NOSTOCK", "name": "Odd", "price": 5, "subtotal": 5e21}]}
    r = requests.get("%s/add/%s/NOSTOCK/1%s" % (odd_cart, cid("inf"), "0" * 320), timeout=10)
    assert r.status_code == 400


def test_price_from_the_first_add(odd_cart):
    """docs/api/cart.yaml: later adds of the same SKU reuse the stored price, not the catalogue's new one."""
    c = cid("rising")
    first = requests.get("%s/add/%s/RISING/1" % (odd_cart, c), timeout=10).json()["items"][0]
    r = requests.get("%s/add/%s/RISING/2" % (odd_cart, c), timeout=10)
    assert r.status_code == 200
    assert r.json()["items"] == [dict(first, qty=3, subtotal=3 * first["price"])]


def test_catalogue_unreachable_is_500(http, cart):
    """Without the catalogue an add answers 500 once the product cache's entry for the SKU (at
    most CART_PRODUCT_CACHE_MS old, 1 s by default) has expired; until then the product the
    catalogue gave less than the window ago may still be added."""
    stack("stop", "catalogue")
    try:
        def refused():
            r = http.get("%s/add/%s/RMC/1" % (cart, cid("nocat")), timeout=15)
            return (r,) if r.status_code != 200 else None  # (a 500 Response is falsy)
        got = wait_for(refused, 30)
        assert got, "the catalogue's product was still added 30 s after it stopped"
        r = got[0]
        assert r.status_code == 500
        assert r.headers["Content-Type"].startswith("application/json")
    finally:
        stack("start", "catalogue")
    assert http.get("%s/add/%s/RMC/1" % (cart, cid("nocat"))).status_code == 200


def test_product_cache_bounds_staleness(fake_catalogue):
    """CART_PRODUCT_CACHE_MS (docs/DECISIONS.md): adds of a product the catalogue gave less than
    the window ago take it from the cart's cache (here 4 adds within a 60 s window ask the
    catalogue once); after the catalogue's answer changes, the cart notices it once the window
    has passed (a short window here, polled with a generous deadline); with 0, every add asks."""
    cat = "127.0.0.1:%d" % fake_catalogue
    sku = "CHANGING-%s" % uuid.uuid4().hex[:8]
    FakeCatalogue.replies[sku] = (200, '{"sku":"%s","name":"c","price":10,"instock":1}' % sku)

    def answer(url):
        r = requests.get("%s/add/%s/%s/1" % (url, cid("pc-" + uuid.uuid4().hex[:8]), sku),
                         timeout=10)  # a new cart each time: a cart keeps its first price
        return r.status_code, r.json()["items"][0]["price"] if r.status_code == 200 else r.text

    def price(url):
        status, got = answer(url)
        assert status == 200, got
        return got

    proc, url = start_cart(CATALOGUE_HOST=cat, CART_PRODUCT_CACHE_MS="60000")
    try:
        assert [price(url) for _ in range(4)] == [10] * 4
        assert FakeCatalogue.fetches[sku] == 1
    finally:
        stop_cart(proc)
    proc, url = start_cart(CATALOGUE_HOST=cat, CART_PRODUCT_CACHE_MS="300")
    try:
        assert price(url) == 10
        FakeCatalogue.replies[sku] = (200, '{"sku":"%s","name":"c","price":20,"instock":0}' % sku)
        assert wait_for(lambda: answer(url) == (404, "out of stock"), 30), \
            "the cart kept the product's old answer"
        FakeCatalogue.replies[sku] = (200, '{"sku":"%s","name":"c","price":20,"instock":1}' % sku)
        assert wait_for(lambda: answer(url) == (200, 20), 30), "the cart kept the old price"
    finally:
        stop_cart(proc)
    proc, url = start_cart(CATALOGUE_HOST=cat, CART_PRODUCT_CACHE_MS="0")
    try:
        before = FakeCatalogue.fetches[sku]
        assert [price(url) for _ in range(3)] == [20] * 3
        assert FakeCatalogue.fetches[sku] == before + 3
    finally:
        stop_cart(proc)


def test_concurrent_adds_ask_once_per_loop(fake_catalogue):
    """Concurrent adds of a SKU the cart has not asked for yet make one catalogue call per worker
    loop (D25, D29): the adds that miss while another request of the same loop loads the SKU wait
    for that load as coroutines and share its answer. One loop (SHOP_THREADS=1), 12 adds at once
    while the catalogue takes 0.5 s to answer: one fetch, and every cart has the product."""
    sku = "LAGGING-%s" % uuid.uuid4().hex[:8]
    FakeCatalogue.replies[sku] = (200, '{"sku":"%s","name":"l","price":7,"instock":1}' % sku)
    proc, url = start_cart(CATALOGUE_HOST="127.0.0.1:%d" % fake_catalogue, SHOP_THREADS="1",
                           SHOP_LOOP=None, CART_PRODUCT_CACHE_MS="60000")
    try:
        def add(i):
            return requests.get("%s/add/%s/%s/1" % (url, cid("lag-%d" % i), sku), timeout=30)

        with concurrent.futures.ThreadPoolExecutor(12) as pool:
            answers = list(pool.map(add, range(12)))
        assert [r.status_code for r in answers] == [200] * 12
        assert all(r.json()["items"][0]["price"] == 7 for r in answers)
        assert FakeCatalogue.fetches[sku] == 1
    finally:
        stop_cart(proc)


def read_answers(sock, n):
    """The status lines and bodies of n HTTP/1.1 answers read from sock (Content-Length bodies)."""
    data, answers = b"", []
    while len(answers) < n:
        head_end = data.find(b"\r\n\r\n")
        if head_end >= 0:
            head = data[:head_end].decode()
            length = int(re.search(r"(?im)^content-length: *(\d+)", head).group(1))
            if len(data) >= head_end + 4 + length:
                answers.append((head.split("\r\n")[0], data[head_end + 4:head_end + 4 + length]))
                data = data[head_end + 4 + length:]
                continue
        chunk = sock.recv(65536)
        assert chunk, "the cart closed the connection after %d answers" % len(answers)
        data += chunk
    return answers


def test_suspended_connection_events(fake_catalogue):
    """What a client does while its request waits (the connection suspended, loop mode; the socket
    stays in the loop's epoll set, deps/patches/libmicrohttpd-suspend-keep-epoll.patch) is not
    lost and breaks nothing: a request pipelined behind an add that waits 0.5 s for the catalogue
    is answered after it, in order; a client that sends an add and hangs up at once leaves a cart
    that goes on serving and stops cleanly."""
    sku = "LAGGING-%s" % uuid.uuid4().hex[:8]
    FakeCatalogue.replies[sku] = (200, '{"sku":"%s","name":"l","price":3,"instock":1}' % sku)
    gone = "LAGGING-%s" % uuid.uuid4().hex[:8]
    FakeCatalogue.replies[gone] = (200, '{"sku":"%s","name":"g","price":4,"instock":1}' % gone)
    proc, url = start_cart(CATALOGUE_HOST="127.0.0.1:%d" % fake_catalogue, SHOP_THREADS="1",
                           SHOP_LOOP=None)
    try:
        host, port = url.split("//")[1].split(":")
        c = cid("susp-" + uuid.uuid4().hex[:6])
        with socket.create_connection((host, int(port)), timeout=30) as s:
            s.sendall(("GET /add/%s/%s/1 HTTP/1.1\r\nHost: x\r\n\r\n" % (c, sku)).encode())
            time.sleep(0.2)  # the add waits for the catalogue: its connection is suspended
            s.sendall(("GET /cart/%s HTTP/1.1\r\nHost: x\r\n\r\n" % c).encode())
            (st1, add), (st2, cart) = read_answers(s, 2)
        assert " 200 " in st1 and " 200 " in st2
        assert json.loads(add)["items"][0]["sku"] == sku
        assert json.loads(cart) == json.loads(add)
        with socket.create_connection((host, int(port)), timeout=30) as s:
            s.sendall(("GET /add/%s/%s/1 HTTP/1.1\r\nHost: x\r\n\r\n" % (cid("gone"), gone)).encode())
        time.sleep(0.8)  # the catalogue answers, the cart replies to a closed socket
        r = requests.get("%s/cart/%s" % (url, c), timeout=10)
        assert r.status_code == 200 and r.json() == json.loads(add)
        assert FakeCatalogue.fetches[gone] == 1
    finally:
        stop_cart(proc)


def server_socket_fd(pid, client):
    """The descriptor in process pid of the accepted TCP socket whose peer is the client socket."""
    port = client.getsockname()[1]
    inodes = set()
    for table in ("tcp", "tcp6"):
        with open("/proc/%d/net/%s" % (pid, table)) as f:
            for line in f.readlines()[1:]:
                cols = line.split()
                if int(cols[2].rsplit(":", 1)[1], 16) == port:  # the remote end is the client
                    inodes.add(cols[9])
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            if re.fullmatch(r"socket:\[(\d+)\]", os.readlink("/proc/%d/fd/%s" % (pid, fd))).group(1) in inodes:
                return int(fd)
        except (OSError, AttributeError):
            continue
    raise AssertionError("no socket of %d has the client's port %d as its peer" % (pid, port))


def traced(pid):
    """Every thread of pid has a tracer attached."""
    for task in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/status" % (pid, task)) as f:
            if re.search(r"^TracerPid:\s+0$", f.read(), re.M):
                return False
    return True


def test_resumed_connection_reads_only_what_came(fake_catalogue, tmp_path):
    """A request that waited (its connection suspended, loop mode) costs no read that finds nothing
    once it is answered: the daemon remembers what happened on the socket while it was suspended
    and reads again only when the client sent more (deps/patches/libmicrohttpd-suspend-keep-epoll.patch;
    before, every resumed connection made one recv() that failed with EAGAIN). Six clients add one
    SKU the cart has not seen at once, twice; all but the first of each round wait for the first
    one's catalogue call (0.5 s) with their connections suspended. strace counts the cart's reads
    on the clients' connections that found nothing: none."""
    skus = ["LAGGING-%s" % uuid.uuid4().hex[:8] for _ in range(2)]
    for sku in skus:
        FakeCatalogue.replies[sku] = (200, '{"sku":"%s","name":"l","price":3,"instock":1}' % sku)
    proc, url = start_cart(CATALOGUE_HOST="127.0.0.1:%d" % fake_catalogue, SHOP_THREADS="1",
                           SHOP_LOOP=None)
    log = tmp_path / "strace.txt"
    tracer, socks = None, []
    try:
        host, port = url.split("//")[1].split(":")
        for _ in range(6):
            socks.append(socket.create_connection((host, int(port)), timeout=30))
            socks[-1].sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            assert " 200 " in read_answers(socks[-1], 1)[0][0]
        fds = {server_socket_fd(proc.pid, s) for s in socks}
        tracer = subprocess.Popen(["strace", "-f", "-qq", "-e", "trace=recvfrom,read", "-e", "signal=none",
                                   "-o", str(log), "-p", str(proc.pid)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert wait_for(lambda: traced(proc.pid), 10), "strace did not attach"
        for sku in skus:
            for i, s in enumerate(socks):
                s.sendall(("GET /add/%s/%s/1 HTTP/1.1\r\nHost: x\r\n\r\n" % (cid("resumed-%d" % i), sku)).encode())
            for s in socks:
                assert " 200 " in read_answers(s, 1)[0][0]
        time.sleep(0.2)  # what the cart does after its last answer is in the trace
        tracer.terminate()
        tracer.wait(10)
        reads = [(re.search(r"\b(?:recvfrom|read)\((\d+),", ln), ln) for ln in log.read_text().splitlines()]
        calls = [ln for m, ln in reads if m and int(m.group(1)) in fds]
        assert len(calls) >= 12, "strace saw %d reads of the clients' connections %s" % (len(calls), sorted(fds))
        empty = [ln for ln in calls if "EAGAIN" in ln]
        assert not empty, "reads that found nothing on the clients' connections:\n" + "\n".join(empty)
    finally:
        if tracer and tracer.poll() is None:
            tracer.kill()
            tracer.wait()
        for s in socks:
            s.close()
        stop_cart(proc)


@pytest.mark.parametrize("var,value", [("CART_TTL_SECONDS", "soon"), ("CATALOGUE_PORT", "99999"),
                                       ("REDIS_URL", "http://x"), ("CART_SERVER_PORT", "x")])
def test_bad_configuration_stops_with_its_name(var, value):
    SecondService("cart", **{var: value}).assert_stops_naming(var)


def test_redis_password_and_database_from_the_url(tmp_path):
    """REDIS_URL may carry a password and a database (redis://:password@host:port/db): every new
    connection sends AUTH and SELECT first. Against a password-protected Redis of its own, cart
    stores the cart in that database with the right password; with a wrong one Redis refuses the
    AUTH and cart answers 503 (its health too), never a cart."""
    port = free_port()
    srv = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--requirepass", "s3cret",
                            "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def protected(*args):
        return subprocess.run(["redis-cli", "-p", str(port), "-a", "s3cret", "--no-auth-warning", "-n", "3", *args],
                              capture_output=True, text=True, timeout=10).stdout.strip()
    try:
        assert wait_for(lambda: protected("PING") == "PONG", 10)
        c = cid("auth")
        proc, url = start_cart(REDIS_URL="redis://:s3cret@127.0.0.1:%d/3" % port)
        try:
            r = requests.get("%s/add/%s/RMC/1" % (url, c), timeout=10)
            assert r.status_code == 200 and r.json()["items"][0]["qty"] == 1
            assert protected("EXISTS", c) == "1"
        finally:
            stop_cart(proc)

        env = dict(os.environ, REDIS_URL="redis://:wrong@127.0.0.1:%d/3" % port)
        binary = os.path.join(os.environ.get("SHOP_BIN_DIR", "build/bin"), "cart")
        with listener() as sock:  # the test's own listening socket: nothing to probe, no race
            proc = spawn([binary], sock, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            url = url_of(sock)
        try:
            assert requests.get(url + "/health", timeout=10).status_code == 503
            assert requests.get("%s/cart/%s" % (url, c), timeout=10).status_code == 503
        finally:
            stop_cart(proc)
    finally:
        srv.terminate()
        srv.wait(15)
