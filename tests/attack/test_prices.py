"""Server-side prices (D19), attacked through the front door (the stack's nginx, SHOP_URL) as a
browser would call it (a cookie jar, the UI's calls): a forged cart in the /pay body is never
charged (the order carries the cart service's cart), an empty or missing cart is never paid and
nothing is published or counted, a quantity <= 0 or an unknown SKU cannot be added, and payment's
internal call to the cart service (/nonce) is not a public route. The sale counters are read on
payment's own port (/metrics is internal)."""
import re
import uuid

import pytest
import requests

from conftest import service_url

TIMEOUT = 30


def sold(counter="sold_count_total"):
    text = requests.get(service_url("payment") + "/metrics", timeout=TIMEOUT).text
    return float(re.search(r"^%s (\S+)$" % counter, text, re.M).group(1))


def sku_in_stock(s, web):
    products = s.get(web + "/api/catalogue/products", timeout=TIMEOUT).json()
    return next(p for p in products if p.get("instock", 1) != 0)


def ship(s, web, cart_id):
    """Shipping chosen as the UI does: codes, cities, calc, confirm."""
    code = s.get(web + "/api/shipping/codes", timeout=TIMEOUT).json()[0]
    city = s.get("%s/api/shipping/cities/%s" % (web, code["code"]), timeout=TIMEOUT).json()[0]
    calc = s.get("%s/api/shipping/calc/%s" % (web, city["uuid"]), timeout=TIMEOUT).json()
    r = s.post("%s/api/shipping/confirm/%s" % (web, cart_id), timeout=TIMEOUT,
               json={"distance": calc["distance"], "cost": calc["cost"],
                     "location": "%s %s" % (code["name"], city["name"])})
    assert r.status_code == 200, r.text
    return r.json()


def pay(s, web, cart_id, body):
    return s.post("%s/api/payment/pay/%s" % (web, cart_id), json=body, timeout=TIMEOUT)


def test_forged_total_is_not_charged(web):
    """1,000 of a product for 0.01 in the body: the order (and the history) carry the server's
    cart: one item at the catalogue's price and the shipping the shipping service quoted."""
    with requests.Session() as s:
        name = "atk-%s" % uuid.uuid4().hex[:12]
        r = s.post(web + "/api/user/register", timeout=TIMEOUT,
                   json={"name": name, "password": "pw-" + name, "email": name + "@example.com"})
        assert r.status_code == 200, r.text
        product = sku_in_stock(s, web)
        r = s.get("%s/api/cart/add/%s/%s/1" % (web, name, product["sku"]), timeout=TIMEOUT)
        assert r.status_code == 200, r.text
        cart = ship(s, web, name)
        forged = {"total": 0.01, "tax": 0,
                  "items": [{"qty": 1000, "sku": product["sku"], "price": 0.00001, "subtotal": 0.01},
                            {"qty": 1, "sku": "SHIP", "price": 0, "subtotal": 0}]}
        before = sold("cart_value_sum")
        r = pay(s, web, name, forged)
        assert r.status_code == 200, r.text
        orderid = r.json()["orderid"]
        assert sold("cart_value_sum") - before == pytest.approx(cart["total"])
        hist = s.get("%s/api/user/history/%s" % (web, name), timeout=TIMEOUT).json()["history"]
        assert [h["orderid"] for h in hist] == [orderid]
        charged = hist[0]["cart"]
        assert charged["total"] == pytest.approx(cart["total"]) and charged["total"] > 1
        assert [(i["sku"], i["qty"]) for i in charged["items"]] == [(product["sku"], 1), ("SHIP", 1)]


def test_empty_or_missing_cart_is_not_paid(web):
    """A cart emptied with /update/.../0 (the UI's remove) and an id with no cart at all: a
    plausible cart in the body is refused with 400 and nothing is published or counted."""
    with requests.Session() as s:
        cart_id = s.get(web + "/api/user/uniqueid", timeout=TIMEOUT).json()["uuid"]
        sku = sku_in_stock(s, web)["sku"]
        assert s.get("%s/api/cart/add/%s/%s/2" % (web, cart_id, sku), timeout=TIMEOUT).status_code == 200
        r = s.get("%s/api/cart/update/%s/%s/0" % (web, cart_id, sku), timeout=TIMEOUT)
        assert r.status_code == 200 and r.json()["items"] == []  # /update/.../0 still removes the line
        body = {"total": 2013.5, "tax": 335.58,
                "items": [{"qty": 1, "sku": sku, "price": 2001, "subtotal": 2001},
                          {"qty": 1, "sku": "SHIP", "price": 12.5, "subtotal": 12.5}]}
        count, value = sold(), sold("cart_value_count")
        r = pay(s, web, cart_id, body)
        assert (r.status_code, r.text) == (400, "cart not valid")
        nobody = s.get(web + "/api/user/uniqueid", timeout=TIMEOUT).json()["uuid"]
        r = pay(s, web, nobody, body)
        assert (r.status_code, r.text) == (400, "cart not valid")
        assert (sold(), sold("cart_value_count")) == (count, value)


@pytest.mark.parametrize("sku_qty", [("{sku}", "0"), ("{sku}", "-3"), ("NO-SUCH-SKU-%s" % uuid.uuid4().hex[:6], "1")],
                         ids=["qty-0", "qty-negative", "unknown-sku"])
def test_add_refuses_what_cannot_be_sold(web, sku_qty):
    with requests.Session() as s:
        cart_id = s.get(web + "/api/user/uniqueid", timeout=TIMEOUT).json()["uuid"]
        sku = sku_qty[0].format(sku=sku_in_stock(s, web)["sku"])
        r = s.get("%s/api/cart/add/%s/%s/%s" % (web, cart_id, sku, sku_qty[1]), timeout=TIMEOUT)
        assert 400 <= r.status_code < 500
        assert s.get("%s/api/cart/cart/%s" % (web, cart_id), timeout=TIMEOUT).status_code == 404


def test_cart_nonce_is_not_a_public_route(web):
    r = requests.get(web + "/api/cart/nonce/anonymous-1", timeout=TIMEOUT)
    assert r.status_code == 404
