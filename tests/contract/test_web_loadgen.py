"""Replays the load generator's request sequence (bench/load/locustfile.py walks the same flows) through the nginx front door,
the way the reference Locust script sends it: the host has a trailing slash, so every path
starts with "//" (nginx must merge slashes, D2), and each request carries x-forwarded-for.
Every answer must be 2xx and every body the script parses must parse. Like Locust's HttpUser, the
session keeps cookies: the load task's /uniqueid gives the session that owns its cart (D18)."""
import os
import random

import pytest
import requests

FRONT = os.environ.get("SHOP_URL", "").rstrip("/")
HOST = FRONT + "/"  # trailing slash as in the K8s/Docker load-gen defaults


@pytest.fixture
def lg():
    if not FRONT:
        pytest.fail("SHOP_URL not set: run through tests/run")
    s = requests.Session()
    s.headers["x-forwarded-for"] = "203.0.113.7"
    yield s
    s.close()


def get(s, path, **kw):
    r = s.get(HOST + path, timeout=30, **kw)
    assert r.status_code == 200, (path, r.status_code, r.text[:200])
    return r


def test_front_page_and_static(lg):
    r = get(lg, "/")
    assert "text/html" in r.headers["Content-Type"]
    assert "<html" in r.text.lower()
    # images, the placeholder and deep links: test_web_gateway.py


def test_health_stub_status(lg):
    for path in ["/health", "/nginx_status"]:
        r = lg.get(FRONT + path)
        assert r.status_code == 200 and "Active connections" in r.text


def test_request_id_passes_through(lg):
    r = lg.get(FRONT + "/api/catalogue/categories", headers={"X-Request-Id": "lg-rid-42"})
    assert r.headers.get("X-Request-Id") == "lg-rid-42"


def test_login_task(lg):
    r = lg.post(HOST + "/api/user/login", json={"name": "user", "password": "password"})
    assert r.status_code == 200
    assert r.json()["name"] == "user" and "password" not in r.json()


def test_load_task_end_to_end(lg):
    get(lg, "/")
    uid = get(lg, "/api/user/uniqueid").json()["uuid"]
    assert uid.startswith("anonymous-")
    assert isinstance(get(lg, "/api/catalogue/categories").json(), list)
    products = get(lg, "/api/catalogue/products").json()
    in_stock = [p for p in products if p["instock"] != 0]
    assert in_stock
    for product in random.sample(in_stock, 2):
        sku = product["sku"]
        r = lg.put(HOST + "/api/ratings/api/rate/%s/%d" % (sku, random.randint(1, 5)), timeout=30)
        assert r.status_code == 200 and r.json() == {"success": True}
        assert get(lg, "/api/catalogue/product/" + sku).json()["sku"] == sku
        rating = get(lg, "/api/ratings/api/fetch/" + sku).json()
        assert rating["rating_count"] >= 1
        get(lg, "/api/cart/add/%s/%s/1" % (uid, sku)).json()
    items = get(lg, "/api/cart/cart/" + uid).json()["items"]
    item = random.choice(items)
    get(lg, "/api/cart/update/%s/%s/2" % (uid, item["sku"])).json()
    code = random.choice(get(lg, "/api/shipping/codes").json())
    cities = get(lg, "/api/shipping/cities/" + code["code"]).json()
    assert cities, "every code has at least one city"
    city = random.choice(cities)
    ship = get(lg, "/api/shipping/calc/%s" % city["uuid"]).json()
    assert set(ship) == {"distance", "cost"}
    ship["location"] = "%s %s" % (code["name"], city["name"])
    r = lg.post(HOST + "/api/shipping/confirm/" + uid, json=ship, timeout=30)
    assert r.status_code == 200
    cart = r.json()
    assert cart["items"][-1]["sku"] == "SHIP"
    r = lg.post(HOST + "/api/payment/pay/" + uid, json=cart, timeout=30)
    assert r.status_code == 200
    assert len(r.json()["orderid"]) == 36
    # the cart is gone after payment
    assert lg.get(HOST + "/api/cart/cart/" + uid).status_code == 404


def test_error_task_fails(lg):
    """The error task pays for "partner-57", an id no session of the load generator owns (D18): the
    gateway refuses it, 401 before the user's first /uniqueid or login (no session cookie yet), 403
    after. Either way it fails, as the script expects, and nothing is paid."""
    r = lg.post(HOST + "/api/payment/pay/partner-57", json={"total": 0, "tax": 0}, timeout=30)
    assert r.status_code == 401
    get(lg, "/api/user/uniqueid")
    r = lg.post(HOST + "/api/payment/pay/partner-57", json={"total": 0, "tax": 0}, timeout=30)
    assert r.status_code == 403


@pytest.mark.parametrize("svc", ["catalogue", "user", "cart", "shipping", "payment", "ratings"])
def test_api_prefix_without_slash_redirects(lg, svc):
    """The gateway: /api/<svc> is answered by nginx with 301 to /api/<svc>/."""
    r = lg.get(FRONT + "/api/" + svc, allow_redirects=False)
    assert r.status_code == 301
    assert r.headers["Location"].endswith("/api/%s/" % svc)
