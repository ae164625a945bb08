"""Quoted shipping costs (D19), through the front door (the stack's nginx): a shipping line reaches a cart
only with the distance, cost and destination that shipping's /calc quoted to this client (the signed
cookie shop_ship_quote). Each attack is refused and leaves the cart as it was; the honest flow of the
web UI (calc, then confirm with the body it got, cookies kept) still works."""
import requests

TIMEOUT = 15
NO_ROUTE = "no such route\n"


def fresh_cart(s, web):
    """A cart under an id the session s owns (D18: /uniqueid gives it, the session cookie proves it)."""
    cid = s.get(web + "/api/user/uniqueid", timeout=TIMEOUT).json()["uuid"]
    r = s.get("%s/api/cart/add/%s/Watson/1" % (web, cid), timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    return cid


def items(s, web, cid):
    return [(i["sku"], i["price"]) for i in s.get("%s/api/cart/cart/%s" % (web, cid), timeout=TIMEOUT).json()["items"]]


def quote(s, web, code, prefix, name):
    """/calc as the UI calls it; the /confirm body it then sends."""
    country = next(c["name"] for c in s.get(web + "/api/shipping/codes", timeout=TIMEOUT).json() if c["code"] == code)
    city = next(c for c in s.get("%s/api/shipping/match/%s/%s" % (web, code, prefix), timeout=TIMEOUT).json()
                if c["name"] == name)
    r = s.get("%s/api/shipping/calc/%d" % (web, city["uuid"]), timeout=TIMEOUT)
    assert r.status_code == 200
    return dict(r.json(), location="%s %s" % (country, name))


def test_honest_confirm_adds_the_quoted_line(web):
    s = requests.Session()
    cid = fresh_cart(s, web)
    body = quote(s, web, "gb", "london", "London")
    r = s.post("%s/api/shipping/confirm/%s" % (web, cid), json=body, timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    assert items(s, web, cid) == [("Watson", 2001), ("SHIP", 35.35)]


def test_negative_cost_via_confirm_is_refused(web):
    """The attack of issue 14: -2000.99 brought a 2,001 cart down to 0.01."""
    s = requests.Session()
    cid = fresh_cart(s, web)
    body = dict(quote(s, web, "gb", "london", "London"), cost=-2000.99)
    r = s.post("%s/api/shipping/confirm/%s" % (web, cid), json=body, timeout=TIMEOUT)
    assert 400 <= r.status_code < 500, r.text
    assert items(s, web, cid) == [("Watson", 2001)]
    # nor without any quote at all
    r = requests.post("%s/api/shipping/confirm/%s" % (web, cid), timeout=TIMEOUT,
                      json={"distance": 707, "cost": 0.01, "location": "United Kingdom London"})
    assert 400 <= r.status_code < 500, r.text
    assert items(s, web, cid) == [("Watson", 2001)]


def test_cost_quoted_for_another_destination_is_refused(web):
    """A cheap city's quote (Paris) sent with an expensive destination (Tokyo), and the expensive
    city's distance with the cheap cost."""
    s = requests.Session()
    cid = fresh_cart(s, web)
    paris = quote(s, web, "fr", "paris", "Paris")
    tokyo = quote(s, web, "jp", "tokyo", "Tokyo")
    for body in (dict(paris, location=tokyo["location"]), dict(tokyo, cost=paris["cost"])):
        r = s.post("%s/api/shipping/confirm/%s" % (web, cid), json=body, timeout=TIMEOUT)
        assert 400 <= r.status_code < 500, (body, r.text)
    assert items(s, web, cid) == [("Watson", 2001)]
    # another client's quote cookie is not this one's: a session without the quote is refused
    r = requests.post("%s/api/shipping/confirm/%s" % (web, cid), json=tokyo, timeout=TIMEOUT)
    assert 400 <= r.status_code < 500
    assert items(s, web, cid) == [("Watson", 2001)]


def test_forged_quote_cookie_is_refused(web):
    s = requests.Session()
    cid = fresh_cart(s, web)
    body = quote(s, web, "gb", "london", "London")
    value = s.cookies.get("shop_ship_quote")
    v, exp, ids, mac = value.split(".")
    paris = quote(requests.Session(), web, "fr", "paris", "Paris")
    paris_id = next(c["uuid"] for c in s.get(web + "/api/shipping/match/fr/paris", timeout=TIMEOUT).json()
                    if c["name"] == "Paris")
    forged = ".".join([v, exp, str(paris_id), mac])  # another city under London's signature
    r = requests.post("%s/api/shipping/confirm/%s" % (web, cid), json=paris, timeout=TIMEOUT,
                      cookies={"shop_ship_quote": forged})
    assert 400 <= r.status_code < 500
    assert items(s, web, cid) == [("Watson", 2001)]
    assert body["cost"] == 35.35


def test_cost_via_carts_shipping_route_is_404(web):
    """cart's POST /shipping/{id} is internal: the front door does not route it (D20)."""
    s = requests.Session()
    cid = fresh_cart(s, web)
    r = s.post("%s/api/cart/shipping/%s" % (web, cid), timeout=TIMEOUT,
               json={"distance": 1, "cost": -2000.99, "location": "x"})
    assert (r.status_code, r.text) == (404, NO_ROUTE)
    assert items(s, web, cid) == [("Watson", 2001)]
