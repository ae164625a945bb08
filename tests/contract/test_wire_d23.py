"""Wire details settled by D23 (a side-by-side run of the reference and the C shop): bodies over
64 KiB answer 413 through the gateway too, /pay refuses non-JSON bodies with 415, an undecodable
percent-escape in a path parameter is 400, duplicate JSON keys are valid (last value wins), routes
are case-sensitive, /match counts UTF-16 code units and takes % and _ literally, snapshot-backed
GETs carry a strong ETag and answer 304 to a matching If-None-Match, shipping's /health and
/count take their Content-Type from Accept, OPTIONS on shipping and payment has an empty body
and an Allow header, and the cart keeps its D3 checks and GET/POST on /add and /update.
"""
import json
import socket
import urllib.parse
import uuid

import pytest
import requests

from conftest import service_url

BODY_MAX = 64 * 1024
TIMEOUT = 15


def padded(n):
    """A JSON object of exactly n bytes."""
    return b'{"a":"' + b"x" * (n - 8) + b'"}'


def cid(tag):
    return "d23-%s-%s" % (tag, uuid.uuid4().hex[:12])


# ---- bodies over the limit: 413, also through the gateway -----------------------------------------

GATEWAY_POSTS = ["/api/user/login", "/api/shipping/confirm/x", "/api/payment/pay/x",
                 "/api/cart/add/x/RMC/1", "/api/user/register"]


def test_body_over_64k_is_413_through_the_gateway(web):
    """Every try answers 413 with the service's text, never nginx's 502 (the old service answered
    before reading the body, and nginx's send of the rest failed with a broken pipe)."""
    got = []
    for path in GATEWAY_POSTS:
        for _ in range(4):  # a fresh connection each time
            r = requests.post(web + path, data=padded(100 * 1024), timeout=TIMEOUT,
                              headers={"Content-Type": "application/json"})
            got.append((path, r.status_code, r.text))
    bad = [g for g in got if g[1:] != (413, "request body too large")]
    assert not bad, "%d of %d: %s" % (len(bad), len(got), bad[:3])


def test_body_of_exactly_64k_passes_the_gateway(web):
    """The gateway's limit is the services' limit: 64 KiB itself is not refused by either."""
    r = requests.post(web + "/api/user/login", data=padded(BODY_MAX), timeout=TIMEOUT,
                      headers={"Content-Type": "application/json"})
    assert (r.status_code, r.text) == (400, "name or passowrd not supplied")  # read and parsed
    r = requests.post(web + "/api/user/login", data=padded(BODY_MAX + 1), timeout=TIMEOUT,
                      headers={"Content-Type": "application/json"})
    assert (r.status_code, r.text) == (413, "request body too large")


def raw_exchange(sock, data):
    """Sends data and reads one answer: (status, headers, body)."""
    sock.sendall(data)
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError("closed before an answer")
        buf += chunk
    head, body = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    n = int(headers.get("content-length", "0"))
    while len(body) < n:
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError("closed inside the body")
        body += chunk
    return int(lines[0].split()[1]), headers, body


@pytest.mark.parametrize("chunked", [False, True], ids=["length", "chunked"])
def test_refused_body_is_read_and_the_connection_kept(chunked):
    """The service reads (and discards) the body it refuses before answering 413, so the same
    keep-alive connection answers the next request."""
    port = urllib.parse.urlsplit(service_url("user")).port
    body = padded(100 * 1024)
    if chunked:
        framing = b"Transfer-Encoding: chunked\r\n"
        payload = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 8000]), body[i:i + 8000])
                           for i in range(0, len(body), 8000)) + b"0\r\n\r\n"
    else:
        framing, payload = b"Content-Length: %d\r\n" % len(body), body
    req = (b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + framing +
           b"\r\n" + payload)
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as s:
        status, headers, text = raw_exchange(s, req)
        assert (status, text) == (413, b"request body too large")
        assert "close" not in headers.get("connection", "").lower()
        status, _, text = raw_exchange(s, b"GET /check/user HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (status, text) == (200, b"OK")


# ---- POST /pay takes JSON only: 415, nothing placed -----------------------------------------------

def sold_count(http):
    text = http.get(service_url("payment") + "/metrics", timeout=TIMEOUT).text
    return next(float(line.split()[1]) for line in text.splitlines()
                if line.startswith("sold_count_total "))


@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded", None],
                         ids=["text", "form", "none"])
def test_pay_without_json_content_type_is_415_and_places_nothing(http, ctype):
    cart = service_url("cart")
    c = cid("pay415")
    assert http.get("%s/add/%s/RMC/1" % (cart, c), timeout=TIMEOUT).status_code == 200
    r = http.post("%s/shipping/%s" % (cart, c), timeout=TIMEOUT,
                  json={"distance": 100, "cost": 5, "location": "Testland Testville"})
    assert r.status_code == 200
    body = r.text  # a valid cart: the old service placed an order from it
    before = sold_count(http)
    headers = {"Content-Type": ctype} if ctype else {}
    r = http.post("%s/pay/%s" % (service_url("payment"), c), data=body.encode(), headers=headers,
                  timeout=TIMEOUT)
    assert r.status_code == 415, r.text
    assert "orderid" not in r.text
    assert http.get("%s/cart/%s" % (cart, c), timeout=TIMEOUT).status_code == 200  # not deleted
    assert sold_count(http) == before


# ---- %FF in a path parameter: 400 on every service -------------------------------------------------

BAD_PARAM = [("catalogue", "GET", "/product/%FF"), ("catalogue", "GET", "/products/%FF"),
             ("catalogue", "GET", "/search/ab%FFcd"), ("user", "GET", "/check/%FF"),
             ("user", "GET", "/history/%C3"), ("cart", "GET", "/cart/%FF"),
             ("cart", "GET", "/add/x/%FF/1"), ("shipping", "GET", "/cities/%FF"),
             ("shipping", "GET", "/match/gb/%FFabc"), ("shipping", "GET", "/calc/%FF"),
             ("payment", "POST", "/pay/%FF"), ("ratings", "GET", "/api/fetch/%FF"),
             ("catalogue", "GET", "/product/%ED%A0%80"),  # an encoded UTF-16 surrogate
             ("catalogue", "GET", "/product/%C0%AF")]     # an overlong '/'


@pytest.mark.parametrize("service,method,path", BAD_PARAM)
def test_undecodable_escape_in_a_parameter_is_400(http, service, method, path):
    r = http.request(method, service_url(service) + path, timeout=TIMEOUT, json={})
    assert r.status_code == 400, (r.status_code, r.text)


def test_undecodable_escape_through_the_gateway_is_400(web):
    r = requests.get(web + "/api/catalogue/product/%FF", timeout=TIMEOUT)
    assert r.status_code == 400
    r = requests.get(web + "/api/catalogue/products/Artificial%20Intelligence", timeout=TIMEOUT)
    assert r.status_code == 200 and r.json()  # valid UTF-8 escapes still decode


# ---- duplicate JSON keys: the last value wins -------------------------------------------------------

def test_duplicate_keys_last_value_wins(http):
    user = service_url("user") + "/login"
    for body in (b'{"name":"nobody","name":"user","password":"password"}',
                 b'{"name":"user","password":"wrong","password":"password"}'):
        r = http.post(user, data=body, headers={"Content-Type": "application/json"}, timeout=TIMEOUT)
        assert r.status_code == 200, (body, r.status_code, r.text)
        assert r.json()["name"] == "user"
    cart = service_url("cart")
    c = cid("dup")
    http.get("%s/add/%s/RMC/1" % (cart, c), timeout=TIMEOUT)
    r = http.post("%s/shipping/%s" % (cart, c), timeout=TIMEOUT,
                  headers={"Content-Type": "application/json"},
                  data=b'{"distance":1,"cost":2,"location":"a","cost":3,"location":"b"}')
    assert r.status_code == 200, r.text
    assert r.json()["items"][-1] == {"qty": 1, "sku": "SHIP", "name": "shipping to b",
                                     "price": 3, "subtotal": 3}


# ---- routes are case-sensitive --------------------------------------------------------------------

def test_routes_are_case_sensitive(http, web):
    assert http.get(service_url("shipping") + "/CODES", timeout=TIMEOUT).status_code == 404
    assert http.get(service_url("catalogue") + "/Products", timeout=TIMEOUT).status_code == 404
    assert http.get(service_url("user") + "/Check/user", timeout=TIMEOUT).status_code == 404
    assert http.get(service_url("cart") + "/CART/x", timeout=TIMEOUT).status_code == 404
    assert http.get(service_url("ratings") + "/API/fetch/RMC", timeout=TIMEOUT).status_code == 404
    r = http.post(service_url("payment") + "/PAY/x", json={}, timeout=TIMEOUT)
    assert r.status_code == 404
    assert requests.get(web + "/api/shipping/CODES", timeout=TIMEOUT).status_code == 404
    r = requests.post(web + "/api/payment/PAY/x", json={}, timeout=TIMEOUT)
    assert r.status_code == 404
    assert requests.get(web + "/api/shipping/codes", timeout=TIMEOUT).status_code == 200


# ---- /match: UTF-16 length, % and _ literal ----------------------------------------------------------

def match(http, text):
    return http.get("%s/match/gb/%s" % (service_url("shipping"), urllib.parse.quote(text)),
                    timeout=TIMEOUT)


def test_match_counts_utf16_code_units(http):
    r = match(http, "\U0001F600a")  # two code units + one: 3, as Java counts
    assert (r.status_code, r.json()) == (200, [])
    r = match(http, "\U0001F600")  # 2
    assert r.status_code == 400 and r.json()["status"] == 400
    r = match(http, "\u00e9a")  # 2 (two bytes in UTF-8 count once)
    assert r.status_code == 400
    r = match(http, "lon")
    assert r.status_code == 200 and r.json()


def test_match_percent_and_underscore_are_literal(http):
    assert match(http, "lo_").json() == []   # as a wildcard it would match "london"
    assert match(http, "%%%").json() == []
    assert match(http, "l%n").json() == []
    assert match(http, "lon").json()


# ---- ETag / If-None-Match on snapshot-backed GETs ----------------------------------------------------

def etag_paths():
    return [("catalogue", "/products"), ("catalogue", "/categories"),
            ("catalogue", "/product/RMC"), ("catalogue", "/products/Robot"),
            ("catalogue", "/search/robot"), ("shipping", "/codes")]


@pytest.mark.parametrize("service,path", etag_paths())
def test_strong_etag_and_304(http, service, path):
    url = service_url(service) + path
    r = http.get(url, timeout=TIMEOUT)
    assert r.status_code == 200
    tag = r.headers.get("ETag")
    assert tag and tag.startswith('"') and tag.endswith('"') and len(tag) > 2, tag
    assert http.get(url, timeout=TIMEOUT).headers["ETag"] == tag  # the same while unchanged
    for inm in (tag, "W/" + tag, '"nope", ' + tag, "*"):
        r = http.get(url, headers={"If-None-Match": inm}, timeout=TIMEOUT)
        assert r.status_code == 304, inm
        assert r.content == b""
        assert r.headers["ETag"] == tag
    r = http.get(url, headers={"If-None-Match": '"nope"'}, timeout=TIMEOUT)
    assert r.status_code == 200 and r.content and r.headers["ETag"] == tag


def test_etag_304_through_the_gateway(web):
    r = requests.get(web + "/api/catalogue/products", timeout=TIMEOUT)
    tag = r.headers["ETag"]
    r = requests.get(web + "/api/catalogue/products", headers={"If-None-Match": tag},
                     timeout=TIMEOUT)
    assert r.status_code == 304 and r.content == b""


def test_no_etag_on_a_miss(http):
    r = http.get(service_url("catalogue") + "/product/NOPE-D23", timeout=TIMEOUT)
    assert r.status_code == 404 and "ETag" not in r.headers


# ---- shipping's text endpoints follow Accept ------------------------------------------------------

LATIN1_TEXT = "text/plain;charset=ISO-8859-1"


@pytest.mark.parametrize("accept,ctype", [
    (None, LATIN1_TEXT), ("*/*", LATIN1_TEXT), ("text/plain", LATIN1_TEXT),
    ("application/json", "application/json"),
    ("application/json, text/plain, */*", "application/json"),
    ("text/plain;q=0.5, application/json", "application/json"),
    ("application/json;q=0.2, text/plain", LATIN1_TEXT),
    ("application/*, text/plain;q=0.1", LATIN1_TEXT),
    ("application/problem+json", "application/json"),
    ("text/plain;q=0, application/json;q=0.3", "application/json"),
])
def test_shipping_text_routes_follow_accept(http, accept, ctype):
    for path in ("/health", "/count"):
        if accept is None:
            r = raw_get(service_url("shipping"), path)
        else:
            r = requests.get(service_url("shipping") + path, headers={"Accept": accept},
                             timeout=TIMEOUT)
        assert r.status_code == 200
        assert r.headers["Content-Type"] == ctype, (path, accept)
        assert r.text == "OK" or (path == "/count" and r.text.isdigit()), r.text


def raw_get(base, path):
    """GET without any Accept header (requests sends Accept: */* unless told not to)."""
    with requests.Session() as s:
        s.headers.pop("Accept", None)
        return s.get(base + path, timeout=TIMEOUT)


# ---- OPTIONS on shipping and payment ----------------------------------------------------------------

@pytest.mark.parametrize("service,path,allow", [
    ("shipping", "/codes", {"GET", "HEAD", "OPTIONS"}),
    ("shipping", "/confirm/x", {"POST", "OPTIONS"}),
    ("payment", "/pay/x", {"POST", "OPTIONS"}),
    ("payment", "/health", {"GET", "HEAD", "OPTIONS"}),
])
def test_options_empty_body_and_allow(http, service, path, allow):
    r = http.options(service_url(service) + path, timeout=TIMEOUT)
    assert r.status_code == 200
    assert r.content == b""
    assert set(r.headers["Allow"].replace(" ", "").split(",")) == allow


def test_options_elsewhere_keeps_the_express_body(http):
    """The Node services answered OPTIONS with the method list as the body (D23); unchanged."""
    r = http.options(service_url("catalogue") + "/products", timeout=TIMEOUT)
    assert (r.status_code, r.text, r.headers["Allow"]) == (200, "GET,HEAD", "GET,HEAD")


# ---- cart: D3's location check stays, GET and POST on /add and /update -----------------------------

@pytest.mark.parametrize("location", [5, {"a": 1}, ["x"], True])
def test_cart_location_not_a_string_is_400(http, location):
    cart = service_url("cart")
    c = cid("loc")
    http.get("%s/add/%s/RMC/1" % (cart, c), timeout=TIMEOUT)
    r = http.post("%s/shipping/%s" % (cart, c), json={"distance": 1, "cost": 2,
                                                     "location": location}, timeout=TIMEOUT)
    assert (r.status_code, r.text) == (400, "shipping data missing")


def test_cart_add_and_update_take_get_and_post(http):
    cart = service_url("cart")
    c = cid("methods")
    assert http.get("%s/add/%s/RMC/1" % (cart, c), timeout=TIMEOUT).json()["items"][0]["qty"] == 1
    assert http.post("%s/add/%s/RMC/1" % (cart, c), timeout=TIMEOUT).json()["items"][0]["qty"] == 2
    assert http.get("%s/update/%s/RMC/5" % (cart, c), timeout=TIMEOUT).json()["items"][0]["qty"] == 5
    assert http.post("%s/update/%s/RMC/3" % (cart, c), timeout=TIMEOUT).json()["items"][0]["qty"] == 3
    body = json.loads(http.get("%s/cart/%s" % (cart, c), timeout=TIMEOUT).text)
    assert body["items"][0]["qty"] == 3
