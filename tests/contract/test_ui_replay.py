"""Replays the reference web UI (every call its controller makes: catalogue, ids, ratings, cart,
shipping, payment, login, register, history) through the front door (SHOP_URL) as a browser sends
it: one cookie jar per browser, Angular's Accept header, JSON bodies with
`application/json;charset=utf-8`, the page's own Origin on POST and PUT, `Sec-Fetch-Site:
same-origin` on every call. With sessions (D18) every flow works unchanged: the UI never sees the
cookie, it only keeps ids it was given (/uniqueid, once per page load) or logged in / registered as."""
import json
import urllib.parse
import uuid

import pytest
import requests

TIMEOUT = 30


class Browser:
    """One browser: a cookie jar shared by its tabs, and the reference UI's way of calling."""

    def __init__(self, web):
        self.web = web
        u = urllib.parse.urlsplit(web)
        self.origin = "%s://%s" % (u.scheme, u.netloc)
        self.s = requests.Session()
        self.s.headers.update({"Accept": "application/json, text/plain, */*", "Sec-Fetch-Site": "same-origin"})

    def call(self, method, path, body=None, want=200):
        hdr = {}
        data = None
        if method in ("POST", "PUT"):
            hdr["Origin"] = self.origin
        if body is not None:
            hdr["Content-Type"] = "application/json;charset=utf-8"
            data = json.dumps(body)
        r = self.s.request(method, self.web + path, data=data, headers=hdr, timeout=TIMEOUT)
        assert r.status_code in (want if isinstance(want, tuple) else (want,)), \
            (method, path, r.status_code, r.text[:200])
        return r

    def page_load(self):
        """shopform init: the categories, then /uniqueid."""
        assert self.call("GET", "/api/catalogue/categories").json()
        return self.call("GET", "/api/user/uniqueid").json()["uuid"]

    def close(self):
        self.s.close()


@pytest.fixture
def browser(web):
    b = Browser(web)
    yield b
    b.close()


def new_name():
    return "replay-%s" % uuid.uuid4().hex[:10]


def checkout(b, uid):
    """Cart view, shipping, confirm, pay. Returns the order id."""
    cart = b.call("GET", "/api/cart/cart/" + uid).json()
    if cart["items"] and cart["items"][-1]["sku"] == "SHIP":
        b.call("GET", "/api/cart/update/%s/SHIP/0" % uid)
    codes = b.call("GET", "/api/shipping/codes").json()
    gb = [c for c in codes if c["code"].lower() == "gb"][0]
    city = b.call("GET", "/api/shipping/match/%s/lon" % gb["code"]).json()[0]
    ship = b.call("GET", "/api/shipping/calc/%s" % city["uuid"]).json()
    ship["location"] = "%s %s" % (gb["name"], city["name"])
    cart = b.call("POST", "/api/shipping/confirm/" + uid, ship).json()
    assert cart["items"][-1]["sku"] == "SHIP"
    return b.call("POST", "/api/payment/pay/" + uid, cart).json()["orderid"]


def test_anonymous_shopper_browses_and_pays(browser):
    b = browser
    uid = b.page_load()
    cat = b.call("GET", "/api/catalogue/categories").json()[0]
    products = b.call("GET", "/api/catalogue/products/" + urllib.parse.quote(cat)).json()
    b.call("GET", "/api/catalogue/search/robot")
    sku = [p for p in products][0]["sku"]
    assert b.call("GET", "/api/catalogue/product/" + sku).json()["sku"] == sku
    b.call("GET", "/api/ratings/api/fetch/" + sku)
    b.call("PUT", "/api/ratings/api/rate/%s/4" % sku)
    assert b.call("GET", "/api/cart/add/%s/Watson/1" % uid).json()["total"] > 0
    b.call("GET", "/api/cart/update/%s/Watson/2" % uid)
    assert len(checkout(b, uid)) == 36


def test_anonymous_add_then_login_rename_history(browser):
    """Add, login, rename, history: the anonymous cart follows the user, who then pays and sees the order."""
    b = browser
    name = new_name()
    requests.post(b.web + "/api/user/register", json={"name": name, "email": name + "@example.com",
                                                      "password": "pw"}, timeout=TIMEOUT)  # elsewhere
    uid = b.page_load()
    b.call("GET", "/api/cart/add/%s/Watson/1" % uid)
    user = b.call("POST", "/api/user/login", {"name": name, "password": "pw"}).json()
    assert user["name"] == name and "password" not in user
    cart = b.call("GET", "/api/cart/rename/%s/%s" % (uid, name)).json()
    assert [i["sku"] for i in cart["items"]] == ["Watson"]
    b.call("GET", "/api/user/history/" + name, want=404)  # no orders yet
    orderid = checkout(b, name)
    history = b.call("GET", "/api/user/history/" + name).json()["history"]
    assert [h["orderid"] for h in history] == [orderid]


def test_login_without_a_cart_renames_nothing(browser):
    """Row 17 when the anonymous id has no cart: the rename the UI makes after login answers 404
    (which it ignores), not the gateway's 401 or 403: both ids are the session's."""
    b = browser
    name = new_name()
    requests.post(b.web + "/api/user/register", json={"name": name, "email": name + "@example.com",
                                                      "password": "pw"}, timeout=TIMEOUT)  # elsewhere
    uid = b.page_load()
    b.call("POST", "/api/user/login", {"name": name, "password": "pw"})
    b.call("GET", "/api/cart/rename/%s/%s" % (uid, name), want=404)
    b.call("GET", "/api/user/history/" + name, want=404)


def test_login_failures_keep_their_texts(browser):
    """Login's error path: the UI shows "ERROR " + the text body."""
    b = browser
    b.page_load()
    r = b.call("POST", "/api/user/login", {"name": "user", "password": "wrong"}, want=404)
    assert r.text == "incorrect password"
    r = b.call("POST", "/api/user/login", {"name": new_name(), "password": "x"}, want=404)
    assert r.text == "name not found"


def test_register_then_add_under_the_name(browser):
    """Register: the reference UI uses the name as the cart id right after registering (its
    anonymous cart is not renamed): register logs the session in."""
    b = browser
    b.page_load()
    name = new_name()
    r = b.call("POST", "/api/user/register", {"name": name, "email": name + "@example.com", "password": "pw"})
    assert r.text == "OK"
    assert b.call("GET", "/api/cart/add/%s/EMM/2" % name).json()["items"][0]["qty"] == 2
    assert len(checkout(b, name)) == 36


def test_two_tabs_each_call_uniqueid(browser):
    """/uniqueid runs once per page load, in every tab of the same browser: each tab's id stays usable."""
    b = browser
    tab1 = b.page_load()
    tab2 = b.page_load()
    assert tab1 != tab2
    b.call("GET", "/api/cart/add/%s/Watson/1" % tab1)
    b.call("GET", "/api/cart/add/%s/EMM/1" % tab2)
    assert [i["sku"] for i in b.call("GET", "/api/cart/cart/" + tab1).json()["items"]] == ["Watson"]
    assert [i["sku"] for i in b.call("GET", "/api/cart/cart/" + tab2).json()["items"]] == ["EMM"]
    tab3 = b.page_load()  # a reload of tab 1
    b.call("GET", "/api/cart/cart/" + tab3, want=404)  # a new id: no cart yet
    b.call("GET", "/api/cart/cart/" + tab1)  # the old one is still this browser's


def test_logout_gives_a_new_anonymous_id(browser, web):
    """The shop's own UI signs out with POST /api/user/logout and asks for a new id: the new
    anonymous id works, the user's name and the old ids do not any more."""
    b = browser
    old = b.page_load()
    name = new_name()
    b.call("POST", "/api/user/register", {"name": name, "email": name + "@example.com", "password": "pw"})
    b.call("GET", "/api/cart/add/%s/Watson/1" % name)
    b.call("POST", "/api/user/logout")
    new = b.call("GET", "/api/user/uniqueid").json()["uuid"]
    assert new != old
    b.call("GET", "/api/cart/add/%s/EMM/1" % new)
    b.call("GET", "/api/cart/cart/" + name, want=403)
    b.call("GET", "/api/user/history/" + name, want=403)
    b.call("GET", "/api/cart/cart/" + old, want=403)
    # logging in again gets the name's cart back
    b.call("POST", "/api/user/login", {"name": name, "password": "pw"})
    assert [i["sku"] for i in b.call("GET", "/api/cart/cart/" + name).json()["items"]] == ["Watson"]


def test_a_new_browser_cannot_use_an_old_id(browser, web):
    """The id alone (say, copied from a footer) is not enough: a browser without that session gets 401."""
    uid = browser.page_load()
    browser.call("GET", "/api/cart/add/%s/Watson/1" % uid)
    other = Browser(web)
    try:
        other.call("GET", "/api/cart/cart/" + uid, want=401)
        other.page_load()
        other.call("GET", "/api/cart/cart/" + uid, want=403)
    finally:
        other.close()
