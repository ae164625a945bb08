"""Sessions own ids (D18), attacked through the front door (SHOP_URL): a victim's cart, history,
rename, order and payment cannot be read or changed by a client without a session (401) or with
another session's cookie (403); what the victim owns is untouched afterwards. Also: a session
token a client makes up is never adopted, and a loop of /uniqueid cannot fill Redis (the gateway
rate-limits it per client; a session keeps only its newest anonymous ids)."""
import os
import subprocess
import time
import uuid

import pytest
import requests

from conftest import service_url
from test_gateway_closed import SourceAdapter, own_address

TIMEOUT = 15
JSON = {"Content-Type": "application/json"}


def redis(*args):
    """Runs redis-cli against the stack's Redis and returns its stripped output."""
    cmd = ["redis-cli", "-h", os.environ.get("REDIS_HOST", "127.0.0.1"),
           "-p", os.environ.get("REDIS_PORT", "6379"), *args]
    return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=60).stdout.strip()


def session_keys():
    return set(redis("--scan", "--pattern", "session:*").split())


def used_memory():
    for line in redis("info", "memory").splitlines():
        if line.startswith("used_memory:"):
            return int(line.split(":")[1])
    raise AssertionError("no used_memory in INFO")


def session(web):
    s = requests.Session()
    uid = s.get(web + "/api/user/uniqueid", timeout=TIMEOUT).json()["uuid"]
    return s, uid


@pytest.fixture
def victim(web):
    """A registered, logged-in victim with a cart under an anonymous id, a cart under the name and
    one order in the history."""
    s, anon = session(web)
    name = "victim-%s" % uuid.uuid4().hex[:10]
    r = s.post(web + "/api/user/register", json={"name": name, "email": name + "@example.com",
                                                 "password": "pw-" + name}, timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    assert s.get(web + "/api/cart/add/%s/Watson/1" % anon, timeout=TIMEOUT).status_code == 200
    assert s.get(web + "/api/cart/add/%s/EMM/1" % name, timeout=TIMEOUT).status_code == 200
    order = {"orderid": str(uuid.uuid4()), "cart": {"total": 1, "items": []}}
    assert requests.post(service_url("user") + "/order/" + name, json=order, timeout=TIMEOUT).status_code == 200
    return {"s": s, "anon": anon, "name": name}


def attacks(v):
    """(method, path, body) of every id-bearing call of the gateway, aimed at the victim's ids."""
    a, n = v["anon"], v["name"]
    ship = {"distance": 1, "cost": 0.01, "location": "Nowhere"}
    return [("GET", "/api/cart/cart/" + a, None), ("GET", "/api/cart/cart/" + n, None),
            ("GET", "/api/cart/add/%s/RMC/1" % n, None), ("POST", "/api/cart/add/%s/RMC/1" % a, None),
            ("GET", "/api/cart/update/%s/EMM/0" % n, None), ("POST", "/api/cart/update/%s/Watson/5" % a, None),
            ("GET", "/api/cart/rename/%s/%s" % (a, n), None),
            ("GET", "/api/user/history/" + n, None),
            ("POST", "/api/shipping/confirm/" + n, ship),
            ("POST", "/api/payment/pay/" + n, {"total": 0.01, "tax": 0, "items": []}),
            ("POST", "/api/payment/pay/" + a, {"total": 0.01, "tax": 0, "items": []})]


def check_victim_untouched(v):
    cart = service_url("cart")
    items = requests.get("%s/cart/%s" % (cart, v["anon"]), timeout=TIMEOUT).json()["items"]
    assert [(i["sku"], i["qty"]) for i in items] == [("Watson", 1)]
    items = requests.get("%s/cart/%s" % (cart, v["name"]), timeout=TIMEOUT).json()["items"]
    assert [(i["sku"], i["qty"]) for i in items] == [("EMM", 1)]
    # and the victim's own session still works
    r = v["s"].get("%s/api/user/history/%s" % (os.environ["SHOP_URL"].rstrip("/"), v["name"]), timeout=TIMEOUT)
    assert r.status_code == 200 and len(r.json()["history"]) == 1


def test_without_a_session_every_id_call_is_401(web, victim):
    for method, path, body in attacks(victim):
        r = requests.request(method, web + path, json=body, timeout=TIMEOUT)
        assert r.status_code == 401, (method, path, r.status_code, r.text[:80])
    check_victim_untouched(victim)


def test_another_sessions_cookie_is_403(web, victim):
    s, mine = session(web)
    assert s.get(web + "/api/cart/add/%s/Watson/1" % mine, timeout=TIMEOUT).status_code == 200  # own: fine
    for method, path, body in attacks(victim):
        r = s.request(method, web + path, json=body, timeout=TIMEOUT)
        assert r.status_code == 403, (method, path, r.status_code, r.text[:80])
    # rename needs both ids: from my own cart onto the victim's name, and from theirs onto mine
    for path in ["/api/cart/rename/%s/%s" % (mine, victim["name"]),
                 "/api/cart/rename/%s/%s" % (victim["anon"], mine)]:
        assert s.get(web + path, timeout=TIMEOUT).status_code == 403, path
    check_victim_untouched(victim)


def test_a_logged_in_attacker_cannot_reach_another_user(web, victim):
    """Logging in as oneself owns that name only."""
    s, _ = session(web)
    assert s.post(web + "/api/user/login", json={"name": "user", "password": "password"},
                  timeout=TIMEOUT).status_code == 200
    assert s.get(web + "/api/user/history/" + victim["name"], timeout=TIMEOUT).status_code == 403
    assert s.get(web + "/api/cart/rename/user/" + victim["name"], timeout=TIMEOUT).status_code == 403
    check_victim_untouched(victim)


def test_order_is_not_routed_at_all(web, victim):
    """POST /order/{id} (payment's peer call) is not a route of the front door (D20): 404 with or
    without a session, and the history keeps its one order."""
    body = {"orderid": "fake", "cart": {"total": 1}}
    for client in (requests, victim["s"]):
        r = client.post(web + "/api/user/order/" + victim["name"], json=body, timeout=TIMEOUT)
        assert r.status_code == 404
    check_victim_untouched(victim)


def test_made_up_or_stolen_looking_tokens_are_not_sessions(web, victim):
    """A token the client invents (well-formed or not) is no session: 401, and /uniqueid answers it
    with a NEW token, never adopting the one sent (no session fixation)."""
    for tok in ["0" * 64, "f" * 64, "x", "", "A" * 64, "../" * 20]:
        r = requests.get(web + "/api/cart/cart/" + victim["anon"], cookies={"shop_session": tok}, timeout=TIMEOUT)
        assert r.status_code == 401, tok
    made_up = "ab" * 32
    r = requests.get(web + "/api/user/uniqueid", cookies={"shop_session": made_up}, timeout=TIMEOUT)
    assert r.status_code == 200
    assert r.cookies.get("shop_session") not in (None, made_up)


def test_cookie_attributes(web):
    """HttpOnly (no script reads it), SameSite=Lax (no cross-site POST carries it), Path=/, no Domain;
    Secure only when the gateway saw HTTPS: a client claiming X-Forwarded-Proto: https over plain
    HTTP does not get it (nginx sets the header from $scheme), the gateway's word does."""
    r = requests.get(web + "/api/user/uniqueid", headers={"X-Forwarded-Proto": "https"}, timeout=TIMEOUT)
    c = r.headers["Set-Cookie"]
    parts = [p.strip() for p in c.split(";")]
    assert parts[0].startswith("shop_session=") and len(parts[0]) == len("shop_session=") + 64
    assert {"Path=/", "HttpOnly", "SameSite=Lax"} <= set(parts)
    assert not [p for p in parts if p.lower().startswith("domain") or p == "Secure"], c
    r = requests.get(service_url("user") + "/uniqueid", headers={"X-Forwarded-Proto": "https"}, timeout=TIMEOUT)
    assert "Secure" in [p.strip() for p in r.headers["Set-Cookie"].split(";")]


def test_a_user_cannot_take_an_anonymous_id_as_name(web):
    """Registering "anonymous-N" would make the account own the cart of whoever /uniqueid gives that id
    to later: such a name is taken already."""
    s, mine = session(web)
    n = int(mine.split("-")[1]) + 1000
    for name in ["anonymous-%d" % n, "anonymous-x"]:
        r = s.post(web + "/api/user/register", json={"name": name, "email": "a@example.com", "password": "pw"},
                   timeout=TIMEOUT)
        assert (r.status_code, r.text) == (400, "name already exists"), name


def test_login_rotates_the_cookie(web):
    """A cookie from before the login (one an attacker may have planted or read) stops working when
    its session logs in: the ids move to a new cookie, the old one is 401 (no session fixation)."""
    s, anon = session(web)
    s.get(web + "/api/cart/add/%s/Watson/1" % anon, timeout=TIMEOUT)
    before = s.cookies["shop_session"]
    assert s.post(web + "/api/user/login", json={"name": "user", "password": "password"},
                  timeout=TIMEOUT).status_code == 200
    after = s.cookies["shop_session"]
    assert after != before
    assert s.get(web + "/api/cart/cart/" + anon, timeout=TIMEOUT).status_code == 200  # carried over
    r = requests.get(web + "/api/cart/cart/" + anon, cookies={"shop_session": before}, timeout=TIMEOUT)
    assert r.status_code == 401
    r = requests.get(web + "/api/user/history/user", cookies={"shop_session": before}, timeout=TIMEOUT)
    assert r.status_code == 401


def test_ids_with_tricky_bytes_are_checked_as_routed(web, victim):
    """The check sees the path as nginx routes it: an encoded '?', '/', a control character, or a
    dot-segment cannot make it look at one id while the cart service gets another."""
    s, mine = session(web)
    n = victim["name"]
    for path in ["/api/cart/cart/%s%%3Fx" % n, "/api/cart/cart/%s/../%s" % (mine, n),
                 "/api/cart/cart/x/..%%2F%s" % n, "/api/cart/rename/%s/%s%%0A" % (mine, n),
                 "/api/cart/cart/%s%%00" % n, "/api/cart/cart/%s%%2F..%%2F%s" % (mine, n)]:
        r = s.get(web + path, timeout=TIMEOUT)
        assert r.status_code in (400, 403, 404), (path, r.status_code, r.text[:80])
    check_victim_untouched(victim)


def test_uniqueid_loop_cannot_fill_redis(web):
    """A client looping /uniqueid without keeping cookies meets the gateway's rate limit (429), so
    the sessions it can make are bounded, and each expires soon (never used: SHOP_SESSION_NEW_TTL,
    1800 s by default); one that keeps its cookie grows one session, whose id list stays bounded
    (the newest 48)."""
    # from loopback addresses of their own: the rate limit met here is theirs, not other tests'
    loop = requests.Session()
    loop.mount("http://", SourceAdapter(own_address()))
    before_keys, before_mem = session_keys(), used_memory()
    codes = {}
    for _ in range(300):
        c = loop.get(web + "/api/user/uniqueid", cookies={}, timeout=TIMEOUT).status_code
        loop.cookies.clear()  # a client that keeps no cookie: every call a new session
        codes[c] = codes.get(c, 0) + 1
    assert codes.get(429, 0) > 0, codes
    made = session_keys() - before_keys
    assert 0 < len(made) <= codes[200] < 300, codes
    ttls = [int(redis("ttl", k)) for k in list(made)[:20]]
    assert all(0 < t <= 1800 for t in ttls if t != -2), ttls
    s = requests.Session()
    s.mount("http://", SourceAdapter(own_address()))
    got = 0
    while got < 60:
        resp = s.get(web + "/api/user/uniqueid", timeout=TIMEOUT)
        if resp.status_code == 200:
            got += 1
        else:
            assert resp.status_code == 429
            time.sleep(0.05)
    ids = redis("zrange", "session:" + s.cookies["shop_session"], "0", "-1").split()
    assert len(ids) == 48 and ids[-1] == resp.json()["uuid"]
    assert used_memory() - before_mem < 4 * 1024 * 1024
