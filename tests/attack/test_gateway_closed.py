"""The closed gateway (D20), through the stack's nginx (SHOP_URL): only the calls of the web UI
and the load generator are routed, by method and path; every internal route
answers the gateway's plain 404 there and still answers on the service's own port; cross-site
requests are refused with 403; login, register and uniqueid are rate limited per client (429 with
Retry-After) at thresholds that a normal pace never meets. Thresholds: web/nginx/gen and
web/nginx/roboshop.conf.in (login + register: 5/s, burst 20; uniqueid: 10/s, burst 50)."""
import os
import urllib.parse
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from requests.adapters import HTTPAdapter

from conftest import service_url

TIMEOUT = 15
NO_ROUTE = "no such route\n"
REFUSED = "cross-site request refused\n"
AUTH_BURST, AUTH_RATE = 20, 5  # requests, requests per second (shop_auth zone)
UID_BURST, UID_RATE = 50, 10  # shop_uniqueid zone


def own_origin(web):
    u = urllib.parse.urlsplit(web)
    return "%s://%s" % (u.scheme, u.netloc)


def tag(t):
    return "gwc-%s-%s" % (t, uuid.uuid4().hex[:10])


# ---- internal routes: 404 at the front door, answered on the service's own port ----------------

INTERNAL_GETS = [
    ("catalogue", "/metrics"), ("catalogue", "/health"),
    ("user", "/metrics"), ("user", "/health"), ("user", "/users"), ("user", "/check/user"),
    ("cart", "/metrics"), ("cart", "/health"),
    ("shipping", "/metrics"), ("shipping", "/health"), ("shipping", "/count"), ("shipping", "/free"),
    ("shipping", "/actuator/health"), ("shipping", "/actuator/info"),
    ("payment", "/metrics"), ("payment", "/health"),
    ("ratings", "/metrics"), ("ratings", "/_health"),
]


@pytest.mark.parametrize("svc,path", INTERNAL_GETS, ids=["%s%s" % p for p in INTERNAL_GETS])
def test_internal_get_is_404_at_the_gateway_and_200_on_its_port(web, svc, path):
    r = requests.get(web + "/api/" + svc + path, timeout=TIMEOUT)
    assert (r.status_code, r.text) == (404, NO_ROUTE)
    assert r.headers["Content-Type"].startswith("text/plain")
    assert requests.get(service_url(svc) + path, timeout=TIMEOUT).status_code == 200


def test_shipping_memory_is_404_at_the_gateway(web):
    """/memory keeps 25 MiB per GET: never reachable from outside. Own port: it answers, /free
    gives the memory back."""
    r = requests.get(web + "/api/shipping/memory", timeout=TIMEOUT)
    assert (r.status_code, r.text) == (404, NO_ROUTE)
    assert requests.get(service_url("shipping") + "/memory", timeout=TIMEOUT).status_code == 200
    assert requests.get(service_url("shipping") + "/free", timeout=TIMEOUT).status_code == 200


def test_cart_shipping_is_404_at_the_gateway(web):
    """cart's /shipping/{id} (shipping's call to cart) is internal; its own port still takes it."""
    cid = tag("ship")
    cart = service_url("cart")
    assert requests.get("%s/add/%s/Watson/1" % (cart, cid), timeout=TIMEOUT).status_code == 200
    body = {"location": "London, United Kingdom", "distance": 707, "cost": 35.35}
    r = requests.post("%s/api/cart/shipping/%s" % (web, cid), json=body, timeout=TIMEOUT)
    assert (r.status_code, r.text) == (404, NO_ROUTE)
    items = requests.get("%s/cart/%s" % (cart, cid), timeout=TIMEOUT).json()["items"]
    assert [i["sku"] for i in items] == ["Watson"]  # nothing reached the cart
    r = requests.post("%s/shipping/%s" % (cart, cid), json=body, timeout=TIMEOUT)
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("method,path", [
    ("DELETE", "/api/catalogue/products"), ("GET", "/api/user/login"), ("GET", "/api/user/register"),
    ("POST", "/api/user/uniqueid"), ("POST", "/api/shipping/codes"), ("GET", "/api/payment/pay/x"),
    ("GET", "/api/shipping/confirm/x"), ("POST", "/api/cart/rename/a/b"),
    ("GET", "/api/ratings/api/rate/Watson/5"), ("GET", "/api/catalogue/"),
    ("GET", "/api/catalogue/product/Watson/extra"), ("GET", "/api/user/../cart/health"),
])
def test_wrong_method_or_shape_is_404(web, method, path):
    r = requests.request(method, web + path, timeout=TIMEOUT)
    assert (r.status_code, r.text) == (404, NO_ROUTE)


def test_redirect_of_a_bare_prefix_stays(web):
    """/api/<svc> without the slash is nginx's 301 to /api/<svc>/."""
    r = requests.get(web + "/api/catalogue", timeout=TIMEOUT, allow_redirects=False)
    assert r.status_code == 301 and r.headers["Location"].endswith("/api/catalogue/")


# ---- every call the UI makes is still routed (with its method), as the browser sends it ----------

def test_every_ui_call_is_routed(web):
    """The storefront's calls (web/static/js/api.js) in a browser's manner: POST and PUT carry
    the page's own Origin and every call Sec-Fetch-Site: same-origin."""
    s = requests.Session()
    s.headers.update({"Sec-Fetch-Site": "same-origin", "Accept": "application/json, text/plain, */*"})
    origin = {"Origin": own_origin(web)}

    def call(method, path, want=200, **kw):
        hdr = origin if method != "GET" else {}
        r = s.request(method, web + path, timeout=TIMEOUT, headers=hdr, **kw)
        assert r.status_code == want, (method, path, r.status_code, r.text[:200])
        return r

    assert call("GET", "/api/catalogue/categories").json()
    assert call("GET", "/api/catalogue/products").json()
    call("GET", "/api/catalogue/products/Robot")
    call("GET", "/api/catalogue/search/robot")
    call("GET", "/api/catalogue/product/Watson")
    uid = call("GET", "/api/user/uniqueid").json()["uuid"]
    call("GET", "/api/ratings/api/fetch/Watson")
    call("PUT", "/api/ratings/api/rate/Watson/5")
    call("GET", "/api/cart/add/%s/Watson/1" % uid)
    call("GET", "/api/cart/cart/%s" % uid)
    call("GET", "/api/cart/update/%s/Watson/2" % uid)
    codes = call("GET", "/api/shipping/codes").json()
    assert any(c["code"] == "gb" or c["code"] == "GB" for c in codes)
    gb = [c["code"] for c in codes if c["code"].lower() == "gb"][0]
    cities = call("GET", "/api/shipping/cities/%s" % gb).json()
    assert cities
    city = call("GET", "/api/shipping/match/%s/lon" % gb).json()[0]
    ship = call("GET", "/api/shipping/calc/%s" % city["uuid"]).json()
    ship["location"] = "United Kingdom " + city["name"]
    cart = call("POST", "/api/shipping/confirm/%s" % uid, json=ship).json()
    assert call("POST", "/api/payment/pay/%s" % uid, json=cart).json()["orderid"]
    name = tag("u")
    call("POST", "/api/user/register", json={"name": name, "email": name + "@example.com",
                                             "password": "pw-" + name})
    call("POST", "/api/user/login", json={"name": name, "password": "pw-" + name})
    call("GET", "/api/cart/rename/%s/%s" % (uid, name), want=404)  # the paid cart is gone: 404 from cart
    call("GET", "/api/user/history/%s" % name, want=404)  # no orders under that name: user's 404
    # the v4 frontend's POST add/update (D23)
    call("POST", "/api/cart/add/%s/EMM/1" % name)
    call("POST", "/api/cart/update/%s/EMM/3" % name)


# ---- cross-site requests: 403 at the gateway ---------------------------------------------------

def test_cross_site_post_is_refused(web):
    cid = tag("xs")
    cart = service_url("cart")
    assert requests.get("%s/add/%s/Watson/1" % (cart, cid), timeout=TIMEOUT).status_code == 200
    body = {"location": "London, United Kingdom", "distance": 707, "cost": 35.35}
    for path, b in [("/api/shipping/confirm/" + cid, body), ("/api/payment/pay/" + cid, {"total": 1}),
                    ("/api/user/login", {"name": "user", "password": "password"}),
                    ("/api/cart/add/%s/EMM/1" % cid, None)]:
        r = requests.post(web + path, json=b, headers={"Origin": "http://evil.example"}, timeout=TIMEOUT)
        assert (r.status_code, r.text) == (403, REFUSED), path
    r = requests.put(web + "/api/ratings/api/rate/Watson/1", headers={"Origin": "null"}, timeout=TIMEOUT)
    assert (r.status_code, r.text) == (403, REFUSED)
    items = requests.get("%s/cart/%s" % (cart, cid), timeout=TIMEOUT).json()["items"]
    assert [i["sku"] for i in items] == ["Watson"]  # nothing reached the cart


def test_cross_site_get_add_is_refused(web):
    cid = tag("xg")
    cart = service_url("cart")
    xs = {"Sec-Fetch-Site": "cross-site"}
    for path in ["/api/cart/add/%s/Watson/1" % cid, "/api/cart/update/%s/Watson/3" % cid,
                 "/api/cart/rename/%s/%s" % (cid, tag("to"))]:
        r = requests.get(web + path, headers=xs, timeout=TIMEOUT)
        assert (r.status_code, r.text) == (403, REFUSED), path
    assert requests.get("%s/cart/%s" % (cart, cid), timeout=TIMEOUT).status_code == 404  # no cart made
    # a page on another site may still read the catalogue (a read changes nothing)
    assert requests.get(web + "/api/catalogue/categories", headers=xs, timeout=TIMEOUT).status_code == 200


def test_same_origin_and_no_origin_are_allowed(web):
    s = requests.Session()  # keeps the session cookie that owns the id (D18)
    cid = s.get(web + "/api/user/uniqueid", timeout=TIMEOUT).json()["uuid"]
    same = {"Origin": own_origin(web), "Sec-Fetch-Site": "same-origin"}
    r = s.get(web + "/api/cart/add/%s/Watson/1" % cid, headers=same, timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    r = s.get(web + "/api/cart/add/%s/EMM/1" % cid, timeout=TIMEOUT)  # curl, Locust: no Origin
    assert r.status_code == 200, r.text
    r = s.post(web + "/api/cart/add/%s/EMM/1" % cid, headers=same, timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    assert r.json()["total"] > 0


# ---- rate limits ------------------------------------------------------------------------------
# nginx counts per client address, and every 127.x.y.z is this machine's loopback: each flooding
# test talks to the gateway from an address of its own, so its bucket starts full and no other
# test (all of them come from 127.0.0.1) ever meets the limit it drained. No refill wait is needed.

class SourceAdapter(HTTPAdapter):
    """An HTTPAdapter whose connections leave from the local address given (port chosen by the kernel)."""

    def __init__(self, address, **kw):
        self.address = address  # before super().__init__, which builds the pool manager
        super().__init__(**kw)

    def init_poolmanager(self, *args, **kw):
        kw["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kw)


def own_address():
    """A loopback address that no earlier test used: 127.a.b.c from 24 random bits (never 127.0.0.x,
    where 127.0.0.1 is every other test's; c never 0 or 255)."""
    n = int.from_bytes(os.urandom(3), "big")
    a, b, c = n >> 16, (n >> 8) & 255, n & 255
    return "127.%d.%d.%d" % (a or 1, b, min(max(c, 1), 254))


@pytest.fixture
def client():
    """A requests session whose calls reach the gateway from a loopback address of its own."""
    with requests.Session() as s:
        s.mount("http://", SourceAdapter(own_address(), pool_maxsize=16))
        yield s


def flood(client, web, method, path, limit, vary=None, **kw):
    """Parallel requests until one answers 429 (at most limit); returns the 429 response or None.
    vary(i), when given, returns more keyword arguments of request i."""
    def one(i):
        return client.request(method, web + path, timeout=TIMEOUT, **kw, **(vary(i) if vary else {}))
    sent = 0
    with ThreadPoolExecutor(8) as ex:
        while sent < limit:
            got = [r for r in ex.map(one, range(16)) if r.status_code == 429]
            sent += 16
            if got:
                return got[0]
    return None


def test_login_flood_gets_429_with_retry_after_and_a_normal_pace_never_does(web, client):
    bad = {"json": {"name": "no-such-user-" + uuid.uuid4().hex[:8], "password": "x"}}
    # a shopper's pace: fewer than the burst in a row never meets the limit, whatever the timing
    # (a name of its own per request: the user service's back-off answers 429 too after a few
    # failures of one name, and this test is about the gateway's limit)
    codes = [client.post(web + "/api/user/login", timeout=TIMEOUT,
                         json={"name": "no-such-user-" + uuid.uuid4().hex[:12], "password": "x"}).status_code
             for _ in range(AUTH_BURST - 5)]
    assert 429 not in codes, codes
    # a name of its own per request: the user service's back-off (tests/attack/test_login_hardening.py)
    # answers 429 too after a few failures of one name, and this test is about the gateway's limit
    r = flood(client, web, "POST", "/api/user/login", 2000,
              vary=lambda i: {"json": {"name": "no-such-user-%s" % uuid.uuid4().hex[:12], "password": "x"}})
    assert r is not None, "2000 logins in parallel never met the limit"
    assert r.text == "too many requests, try again in a second\n"
    assert int(r.headers["Retry-After"]) >= 1
    assert r.headers.get("X-Request-Id")
    # register shares login's bucket: fewer registers than a bucket's burst, sent at once, meet
    # the limit (a bucket of their own would let all of them through; one request at a time
    # could find a token refilled on a busy machine)
    r = flood(client, web, "POST", "/api/user/register", AUTH_BURST - 4, json={})
    assert r is not None and r.headers["Retry-After"], "register does not share login's bucket"
    # the limit is this client's: 127.0.0.1, where every other test comes from, still passes
    r = requests.post(web + "/api/user/login", timeout=TIMEOUT, **bad)
    assert r.status_code == 404, r.text


def test_uniqueid_flood_gets_429_and_a_normal_pace_never_does(web, client):
    codes = [client.get(web + "/api/user/uniqueid", timeout=TIMEOUT).status_code for _ in range(20)]
    assert 429 not in codes, codes
    r = flood(client, web, "GET", "/api/user/uniqueid", 4000)
    assert r is not None, "4000 uniqueid calls in parallel never met the limit"
    assert int(r.headers["Retry-After"]) >= 1
    assert requests.get(web + "/api/user/uniqueid", timeout=TIMEOUT).status_code == 200  # others pass
