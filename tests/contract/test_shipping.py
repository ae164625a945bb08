"""Contract tests for shipping (docs/api/shipping.yaml, D1-D3, D8, D9, D12, D14, D16) against the real
service, the real MariaDB with the shop's cities data, and the real cart."""
import gzip
import hashlib
import json
import os
import re
import socket
import subprocess
import tempfile
import time
import unicodedata
import uuid

from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from conftest import (ROOT, listener, service_pid, service_url, stack, start_service, stop_service, url_of,
                      wait_for)

CITY_KEYS = ["uuid", "code", "city", "name", "region", "latitude", "longitude"]
SPRING_KEYS = {"timestamp", "status", "error", "message", "path"}


@pytest.fixture
def ship():
    return service_url("shipping")


def expected_rows():
    """Row counts recorded in the header of the committed data file."""
    with gzip.open(os.path.join(ROOT, "schema", "mysql", "cities.sql.gz"), "rt") as f:
        head = "".join(next(f) for _ in range(10))
    return (int(re.search(r"^-- cities-rows: (\d+)$", head, re.M).group(1)),
            int(re.search(r"^-- codes-rows: (\d+)$", head, re.M).group(1)))


def assert_spring_error(r, status, path):
    assert r.status_code == status
    body = r.json()
    assert SPRING_KEYS <= set(body)
    assert body["status"] == status
    assert body["path"] == path
    assert body["message"] == ""
    assert isinstance(body["timestamp"], int)


def cities_of(http, ship, code):
    r = http.get("%s/cities/%s" % (ship, code))
    assert r.status_code == 200
    return r.json()


# ---- health, count, codes ----------------------------------------------------------------------

def test_health(http, ship):
    r = http.get(ship + "/health")
    assert r.status_code == 200
    assert r.text == "OK"
    assert r.headers["Content-Type"].startswith("text/plain")


def test_actuator(http, ship):
    r = http.get(ship + "/actuator/health")
    assert r.status_code == 200 and r.json() == {"status": "UP"}
    r = http.get(ship + "/actuator/info")
    assert r.status_code == 200 and r.json() == {}
    r = http.get(ship + "/actuator")
    assert r.status_code == 200
    assert r.json()["_links"]["health"]["href"].endswith("/actuator/health")


def test_count_matches_data_file(http, ship):
    r = http.get(ship + "/count")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain")
    assert r.text == str(expected_rows()[0])


def test_codes(http, ship):
    r = http.get(ship + "/codes")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    codes = r.json()
    assert len(codes) == expected_rows()[1]
    for c in codes:
        assert list(c) == ["uuid", "code", "name"]
        assert isinstance(c["uuid"], int) and re.fullmatch(r"[a-z]{2}", c["code"])
    # ORDER BY name in the column's collation: case- and accent-insensitive ("Åland Islands"
    # between "Afghanistan" and "Albania"); uuids were assigned in that order too
    def folded(name):
        decomposed = unicodedata.normalize("NFKD", name)
        return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()
    assert [c["name"] for c in codes] == sorted((c["name"] for c in codes), key=folded)
    assert [c["uuid"] for c in codes] == sorted(c["uuid"] for c in codes)
    names = {c["code"]: c["name"] for c in codes}
    assert names["gb"] == "United Kingdom" and names["ci"] == "Côte d'Ivoire"
    assert http.get(ship + "/codes/").json() == codes  # one trailing slash tolerated


def test_every_code_has_cities(http, ship):
    for c in http.get(ship + "/codes").json():
        rows = cities_of(http, ship, c["code"])
        assert rows, "code %s has no city" % c["code"]


# ---- cities and match ------------------------------------------------------------------------------

def test_cities_shape_and_order(http, ship):
    r = http.get(ship + "/cities/gb")
    assert r.headers["Content-Type"].startswith("application/json")
    rows = r.json()
    assert len(rows) > 100
    for row in rows:
        assert list(row) == CITY_KEYS
        assert row["code"] == "gb"
        assert isinstance(row["latitude"], float) and isinstance(row["longitude"], float)
    uuids = [row["uuid"] for row in rows]
    assert uuids == sorted(uuids)
    london = next(row for row in rows if row["name"] == "London")
    assert london["city"] == "london" and london["region"] == "ENG"
    assert london["latitude"] == 51.50853 and london["longitude"] == -0.12574
    # Java double printing: always a fraction
    assert re.search(r'"latitude":-?\d+\.\d+', r.text)


def test_cities_case_insensitive_unknown_and_utf8(http, ship):
    assert cities_of(http, ship, "GB") == cities_of(http, ship, "gb")
    assert cities_of(http, ship, "zz") == []
    ch = cities_of(http, ship, "ch")
    assert any(row["name"] == "Zürich" and row["city"] == "zurich" for row in ch)


def test_cities_rejects_bad_parameter(http, ship):
    assert http.get(ship + "/cities/a%2Fb").status_code == 400


def expected_match(rows, prefix):
    hits = [row for row in rows if row["city"].startswith(prefix)]
    return hits[:9] if len(hits) > 10 else hits


def prefixes_by_count(rows, length=3):
    counts = {}
    for row in rows:
        p = row["city"][:length]
        if len(p) == length and p.isalpha() and p.isascii():
            counts[p] = counts.get(p, 0) + 1
    return counts


def test_match_prefix(http, ship):
    r = http.get(ship + "/match/gb/lon")
    assert r.status_code == 200
    rows = r.json()
    assert rows[0]["name"] == "London"
    assert rows == expected_match(cities_of(http, ship, "gb"), "lon")
    assert http.get(ship + "/match/gb/LON").json() == rows


def test_match_truncation(http, ship):
    gb = cities_of(http, ship, "gb")
    counts = prefixes_by_count(gb)
    many = max(counts, key=counts.get)
    assert counts[many] > 10
    r = http.get("%s/match/gb/%s" % (ship, many))
    assert r.status_code == 200
    assert len(r.json()) == 9
    assert r.json() == expected_match(gb, many)
    # a prefix with exactly 10 (or the largest count <= 10) comes back whole
    small = [p for p, n in counts.items() if n <= 10]
    best = max(small, key=lambda p: counts[p])
    got = http.get("%s/match/gb/%s" % (ship, best)).json()
    assert len(got) == counts[best]
    assert got == expected_match(gb, best)
    # 11 matches -> 9 (the shop's data has US prefixes with exactly 11 cities, "ber" for one)
    us = cities_of(http, ship, "us")
    eleven = [p for p, n in prefixes_by_count(us).items() if n == 11]
    assert eleven, "no US prefix with exactly 11 cities in the data"
    got = http.get("%s/match/us/%s" % (ship, eleven[0])).json()
    assert len(got) == 9 and got == expected_match(us, eleven[0])


def test_match_wildcards_are_literal(http, ship):
    # with LIKE wildcards these would match london / long eaton ...
    for text in ["l%25n", "lo_", "l__", "%25%25%25", "lo%5C", "lo!", "lon%25"]:
        r = http.get("%s/match/gb/%s" % (ship, text))
        assert r.status_code == 200, text
        assert r.json() == [], text
    assert len(http.get(ship + "/match/gb/lon").json()) > 0


def test_match_too_short(http, ship):
    assert_spring_error(http.get(ship + "/match/gb/lo"), 400, "/match/gb/lo")
    assert http.get(ship + "/match/gb/z%C3%BC").status_code == 400  # "zü": 2 characters
    assert http.get(ship + "/match/ch/z%C3%BCr").status_code == 200


def test_match_dot_kept_whole(http, ship):
    # D2: no Spring suffix truncation: "st.al" is searched as typed (no match), not as "st"
    r = http.get(ship + "/match/gb/st.al")
    assert r.status_code == 200 and r.json() == []


# ---- calc ----------------------------------------------------------------------------------------

def uuid_of(http, ship, code, prefix, name):
    rows = http.get("%s/match/%s/%s" % (ship, code, prefix)).json()
    return next(row["uuid"] for row in rows if row["name"] == name)


@pytest.mark.parametrize("code,prefix,name,distance,cost", [
    ("gb", "london", "London", 707, 35.35),
    ("fr", "paris", "Paris", 541, 27.05),
    ("jp", "tokyo", "Tokyo", 8217, 410.85),
    ("nz", "wellington", "Wellington", 11567, 578.35),
])
def test_calc_reference_values(http, ship, code, prefix, name, distance, cost):
    r = http.get("%s/calc/%d" % (ship, uuid_of(http, ship, code, prefix, name)))
    assert r.status_code == 200
    assert r.json() == {"distance": distance, "cost": cost}
    assert '"distance":%d' % distance in r.text


def test_calc_java_double_printing(http, ship):
    # find a city whose distance is a multiple of 20 km: its cost prints as "N.0"
    for row in cities_of(http, ship, "de")[:400]:
        r = http.get("%s/calc/%d" % (ship, row["uuid"]))
        body = r.json()
        assert body["cost"] == body["distance"] / 20
        if body["distance"] % 20 == 0:
            assert re.fullmatch(r'\{"distance":\d+,"cost":\d+\.0\}', r.text), r.text
            return
    pytest.fail("no German city at a multiple of 20 km")


def test_calc_errors(http, ship):
    assert_spring_error(http.get(ship + "/calc/0"), 404, "/calc/0")
    assert_spring_error(http.get(ship + "/calc/999999999"), 404, "/calc/999999999")
    assert_spring_error(http.get(ship + "/calc/abc"), 400, "/calc/abc")
    assert http.get(ship + "/calc/1.5").status_code == 400
    assert http.get(ship + "/calc/99999999999999999999").status_code == 400


def test_routing_errors(http, ship):
    assert http.get(ship + "/nope").status_code == 404
    assert http.post(ship + "/count").status_code == 405
    assert http.get(ship + "/confirm/x").status_code == 405


# ---- confirm ----------------------------------------------------------------------------------------

def quote(http, ship, code, prefix, name):
    """/calc as the UI calls it (the session keeps the quote cookie); the /confirm body for it."""
    country = next(c["name"] for c in http.get(ship + "/codes").json() if c["code"] == code)
    r = http.get("%s/calc/%d" % (ship, uuid_of(http, ship, code, prefix, name)))
    assert r.status_code == 200
    return dict(r.json(), location="%s %s" % (country, name))


def cart_up(http):
    try:
        return http.get(service_url("cart") + "/health", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def test_confirm_content_type_and_body(http, ship):
    cid = "ship-test-" + uuid.uuid4().hex[:8]
    body = '{"distance":707,"cost":35.35,"location":"United Kingdom London"}'
    r = http.post("%s/confirm/%s" % (ship, cid), data=body, headers={"Content-Type": "text/plain"})
    assert_spring_error(r, 415, "/confirm/" + cid)
    r = http.post("%s/confirm/%s" % (ship, cid), data=body.encode())  # no Content-Type
    assert r.status_code == 415
    r = http.post("%s/confirm/%s" % (ship, cid), data=b"",
                  headers={"Content-Type": "application/json"})
    assert_spring_error(r, 400, "/confirm/" + cid)
    r = http.post("%s/confirm/%s" % (ship, cid), data=b"x" * (65 * 1024),
                  headers={"Content-Type": "application/json"})
    assert r.status_code == 413


@pytest.mark.parametrize("accept,status", [
    ("text/plain", 406), ("text/html, image/*", 406), ("application/xml;q=0.9", 406),
    ("application/json", 403), ("application/*", 403), ("*/*;q=0.1", 403),
    ("text/html, application/json; q=0.5", 403), ("", 403)])
def test_confirm_accept_header(http, ship, accept, status):
    """docs/api/shipping.yaml: /confirm produces JSON only: an Accept that excludes it is 406 (Spring's answer);
    anything admitting JSON goes on (to the 403 of a cost that was not quoted here)."""
    cid = "ship-test-" + uuid.uuid4().hex[:8]
    r = http.post("%s/confirm/%s" % (ship, cid), data='{"distance":1,"cost":1,"location":"x"}',
                  headers={"Content-Type": "application/json", "Accept": accept})
    assert_spring_error(r, status, "/confirm/" + cid)


def test_confirm_unknown_cart_is_404(http, ship):
    cid = "ship-test-" + uuid.uuid4().hex[:8]
    body = quote(http, ship, "gb", "london", "London")
    assert body == {"distance": 707, "cost": 35.35, "location": "United Kingdom London"}
    r = http.post("%s/confirm/%s" % (ship, cid), json=body)
    assert_spring_error(r, 404, "/confirm/" + cid)


def test_confirm_forwards_to_cart(http, ship):
    if not cart_up(http):
        pytest.skip("cart is not running on this stack (build/bin/cart missing?)")
    cart = service_url("cart")
    cid = "ship.test-" + uuid.uuid4().hex[:8]  # D2: a dot is not a Spring suffix (Q-SH4)
    assert http.get("%s/add/%s/Watson/1" % (cart, cid)).status_code == 200
    body = json.dumps(quote(http, ship, "ch", "zurich", "Zürich"), ensure_ascii=False).encode()
    r = http.post("%s/confirm/%s" % (ship, cid), data=body,
                  headers={"Content-Type": "application/json; charset=UTF-8"})
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    items = r.json()["items"]
    ship_line = [i for i in items if i["sku"] == "SHIP"]
    cost = json.loads(body)["cost"]
    assert ship_line == [{"qty": 1, "sku": "SHIP", "name": "shipping to Switzerland Zürich",
                          "price": cost, "subtotal": cost}]
    assert r.json() == http.get("%s/cart/%s" % (cart, cid)).json()
    # the cart's body is relayed as it is: the same request straight to cart (it replaces the
    # SHIP line, so the cart is the same) gives the same bytes
    direct = http.post("%s/shipping/%s" % (cart, cid), data=body,
                       headers={"Content-Type": "application/json; charset=UTF-8"})
    assert direct.status_code == 200 and direct.content == r.content
    # cart's 400 (shipping data missing) surfaces as shipping's 404 (Q-SH7)
    r = http.post("%s/confirm/%s" % (ship, cid), json={"cost": 1})
    assert r.status_code == 404
    http.delete("%s/cart/%s" % (cart, cid))


def test_confirm_cart_down_is_404(http, ship):
    cid = "ship-test-" + uuid.uuid4().hex[:8]
    was_up = cart_up(http)
    try:
        body = quote(http, ship, "fr", "paris", "Paris")
        stack("stop", "cart")
        r = http.post("%s/confirm/%s" % (ship, cid), json=body, timeout=10)
        assert_spring_error(r, 404, "/confirm/" + cid)
    finally:
        stack("start", "cart")
    bindir = os.environ.get("SHOP_BIN_DIR", os.path.join(ROOT, "build", "bin"))
    if was_up and os.access(os.path.join(bindir, "cart"), os.X_OK):
        assert wait_for(lambda: cart_up(http), 20)


def test_hung_cart_holds_no_worker(http):
    """/confirm's call to cart is driven by the loop and holds no worker (loop mode, D29): while
    cart hangs (it takes the connections and never answers), four /confirm calls wait on a
    shipping of two workers, and /codes and /calc still answer at once. When cart gives up on
    them, each /confirm answers, as a cart that is down gives (404)."""
    hung = listener()  # the kernel completes the handshakes; the test takes them and stays silent
    held = []
    with listener() as sock:
        url = url_of(sock)
        env = dict(os.environ, LOG_LEVEL="warn", SHOP_TEST_URL=url, SHOP_THREADS="2",
                   CART_ENDPOINT="127.0.0.1:%d" % hung.getsockname()[1])
        env.pop("SERVER_PORT", None)
        env.pop("SHOP_LOOP", None)
        proc = start_service("shipping", "/actuator/info", env, sock=sock)
    try:
        assert wait_for(lambda: requests.get(url + "/codes", timeout=10).status_code == 200, 120)
        session = requests.Session()
        body = quote(session, url, "gb", "london", "London")
        cookies = session.cookies.get_dict()
        paris = uuid_of(http, url, "fr", "paris", "Paris")
        with ThreadPoolExecutor(4) as pool:
            confirms = [pool.submit(requests.post, "%s/confirm/ship-hang-%d" % (url, i), json=body,
                                    cookies=cookies, timeout=30) for i in range(4)]
            hung.settimeout(10)
            for _ in range(4):  # every /confirm is at cart: more than shipping has workers
                held.append(hung.accept()[0])
            for path in ("/codes", "/calc/%d" % paris):
                t0 = time.monotonic()
                r = requests.get(url + path, timeout=3)
                assert r.status_code == 200 and time.monotonic() - t0 < 2, path
            assert not any(f.done() for f in confirms)
            for c in held:
                c.close()
            assert [f.result().status_code for f in confirms] == [404] * 4
    finally:
        for c in held:
            c.close()
        hung.close()
        stop_service(proc)


# ---- /memory and /free (D14) -------------------------------------------------------------------------

def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


def test_memory_bounded(http):
    """A second, real shipping process with a 50 MiB cap: two 25 MiB blocks, then 507."""
    with listener() as sock:
        url = url_of(sock)
        env = dict(os.environ, SHIPPING_MEMORY_MAX_MB="50", LOG_LEVEL="warn", SHOP_TEST_URL=url)
        env.pop("SERVER_PORT", None)
        proc = start_service("shipping", "/actuator/info", env, sock=sock)
    try:
        base = rss_kb(proc.pid)
        assert http.get(url + "/memory").json() == 1
        assert rss_kb(proc.pid) - base > 20 * 1024  # really allocated and touched
        assert http.get(url + "/memory").json() == 2
        assert_spring_error(http.get(url + "/memory"), 507, "/memory")
        r = http.get(url + "/free")
        assert r.status_code == 200 and r.json() == 0
        assert http.get(url + "/memory").json() == 1
        assert http.get(url + "/free").json() == 0
    finally:
        stop_service(proc)


def start_replica(secret, period="30"):
    """A second shipping process on its own port; secret: SHIPPING_QUOTE_SECRET (None: unset)."""
    sock = listener()
    url = url_of(sock)
    env = dict(os.environ, LOG_LEVEL="warn", SHOP_TEST_URL=url, SHIPPING_INDEX_CHECK_S=period)
    env.pop("SERVER_PORT", None)
    env.pop("SHIPPING_QUOTE_SECRET", None)
    if secret is not None:
        env["SHIPPING_QUOTE_SECRET"] = secret
    with sock:
        return start_service("shipping", "/actuator/info", env, sock=sock), url


def test_quotes_across_replicas(http):
    """Replicas with one SHIPPING_QUOTE_SECRET take each other's quotes; a replica with its own
    (random, per-process) key does not; a secret under 16 bytes stops the service at start."""
    if not cart_up(http):
        pytest.skip("cart is not running on this stack")
    secret = "replica-secret-" + uuid.uuid4().hex
    procs = [start_replica(secret), start_replica(secret), start_replica(None)]
    try:
        (_, a), (_, b), (_, other) = procs
        loads = lambda u: re.search(r"^shipping_index_loads_total (\S+)$",  # noqa: E731
                                    requests.get(u + "/metrics", timeout=10).text, re.M)
        for u in (a, b, other):
            assert wait_for(lambda: loads(u) and float(loads(u).group(1)) >= 1, 120)
        cid = "ship-rep-" + uuid.uuid4().hex[:8]
        assert http.get("%s/add/%s/Watson/1" % (service_url("cart"), cid)).status_code == 200
        body = quote(http, a, "gb", "london", "London")  # quoted by a, in this session's cookie
        r = http.post("%s/confirm/%s" % (other, cid), json=body)
        assert_spring_error(r, 403, "/confirm/" + cid)
        r = http.post("%s/confirm/%s" % (b, cid), json=body)
        assert r.status_code == 200, r.text
        assert r.json()["items"][-1]["price"] == 35.35
    finally:
        for proc, _ in procs:
            stop_service(proc)
    env = dict(os.environ, SHIPPING_QUOTE_SECRET="short")
    env.pop("SERVER_PORT", None)
    out = subprocess.run([os.path.join(os.environ.get("SHOP_BIN_DIR", os.path.join(ROOT, "build", "bin")),
                                       "shipping")], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "SHIPPING_QUOTE_SECRET" in out.stderr + out.stdout


def test_confirm_without_the_index(http):
    """With the in-memory index off (SHIPPING_INDEX_CHECK_S=0) /confirm checks the quote against
    the database: a quoted city's line reaches the cart, a changed cost, another city's location
    or no quote cookie are 403 and leave the cart as it was."""
    if not cart_up(http):
        pytest.skip("cart is not running on this stack")
    proc, url = start_replica(None, period="0")
    try:
        cart = service_url("cart")
        cid = "ship-noix-" + uuid.uuid4().hex[:8]
        assert http.get("%s/add/%s/Watson/1" % (cart, cid)).status_code == 200
        before = http.get("%s/cart/%s" % (cart, cid)).json()
        body = quote(http, url, "ch", "zurich", "Zürich")
        forged = [dict(body, cost=body["cost"] - 1), dict(body, location="United Kingdom London")]
        for bad in forged:
            assert_spring_error(http.post("%s/confirm/%s" % (url, cid), json=bad), 403, "/confirm/" + cid)
        r = requests.post("%s/confirm/%s" % (url, cid), json=body, timeout=30)  # no quote cookie
        assert_spring_error(r, 403, "/confirm/" + cid)
        assert http.get("%s/cart/%s" % (cart, cid)).json() == before
        r = http.post("%s/confirm/%s" % (url, cid), json=body)
        assert r.status_code == 200, r.text
        assert r.json()["items"][-1] == {"qty": 1, "sku": "SHIP", "name": "shipping to Switzerland Zürich",
                                         "price": body["cost"], "subtotal": body["cost"]}
        loads = re.search(r"^shipping_index_loads_total (\S+)$", http.get(url + "/metrics").text, re.M)
        assert not loads or float(loads.group(1)) == 0  # no index was built: the database answered
        http.delete("%s/cart/%s" % (cart, cid))
    finally:
        stop_service(proc)


def test_course_variables(http):
    """D9: SERVER_PORT is the port when SHIPPING_SERVER_PORT is unset, DB_PASS is the
    password when DB_PASSWORD is unset, CART_ENDPOINT defaults to cart:8080 (Q-SH6)."""
    sock = listener()
    port = sock.getsockname()[1]
    url = url_of(sock)
    env = {k: v for k, v in os.environ.items()
           if k not in ("SHIPPING_SERVER_PORT", "DB_PASSWORD", "CART_ENDPOINT")}
    env.update(SERVER_PORT=str(port), DB_PASS="not-the-password", LOG_LEVEL="info",
               SHOP_TEST_URL=url)
    with tempfile.TemporaryFile() as log, sock:
        proc = start_service("shipping", "/actuator/info", env, out=log, sock=sock)
        try:
            r = http.get(url + "/health", timeout=10)  # the wrong password was used
            assert r.status_code == 503 and "MySQL" in r.text
        finally:
            stop_service(proc)
        log.seek(0)
        text = log.read().decode(errors="replace")
    assert "config SERVER_PORT=%d\n" % port in text  # its port (the test passed the socket for it)
    assert "config CART_ENDPOINT=cart:8080 (default)" in text
    assert "config DB_PASS=******" in text and "not-the-password" not in text


def test_memory_and_free(http, ship):
    assert http.get(ship + "/free").json() == 0
    assert http.get(ship + "/memory").json() == 1
    assert http.get(ship + "/free").json() == 0


# ---- MariaDB outage and reload ---------------------------------------------------------------------

def test_mariadb_outage_gives_503_then_recovers(http, ship):
    pid = service_pid("shipping")
    assert http.get(ship + "/count").status_code == 200
    try:
        stack("stop", "mariadb")
        r = http.get(ship + "/health")  # the service's own answer while MariaDB is away
        assert r.status_code == 503
        assert "MySQL" in r.text
        assert_spring_error(http.get(ship + "/count", timeout=10), 503, "/count")
        assert http.get(ship + "/cities/gb", timeout=10).status_code == 503
        # the reference data answers from memory (issue 21): the checkout goes on
        assert http.get(ship + "/calc/1", timeout=10).status_code == 200
        assert http.get(ship + "/match/gb/lon", timeout=10).json()[0]["name"] == "London"
        assert http.get(ship + "/codes", timeout=10).status_code == 200
        r = http.get(ship + "/actuator/health", timeout=10)
        assert r.status_code == 503 and r.json() == {"status": "DOWN"}
    finally:
        stack("start", "mariadb")
    assert wait_for(lambda: http.get(ship + "/health").status_code == 200, 30)
    # every worker thread's connection recovers, not just one
    for _ in range(12):
        assert http.get(ship + "/count").status_code == 200
        assert http.get(ship + "/codes").status_code == 200
    assert service_pid("shipping") == pid


def test_loading_data_twice_changes_nothing(http, ship):
    def snapshot():
        count = http.get(ship + "/count").text
        codes = hashlib.sha256(http.get(ship + "/codes").content).hexdigest()
        gb = hashlib.sha256(http.get(ship + "/cities/gb").content).hexdigest()
        return count, codes, gb

    before = snapshot()
    loader = os.path.join(ROOT, "schema", "loaders", "30-mysql")
    subprocess.run([loader], check=True, stdout=subprocess.DEVNULL)
    assert snapshot() == before
    sock = os.environ.get("SHOP_MARIADB_SOCKET")
    if sock and os.path.exists(sock):
        # force the full SQL through again (the loader skips it when the counts match)
        with gzip.open(os.path.join(ROOT, "schema", "mysql", "cities.sql.gz"), "rb") as f:
            subprocess.run(["mariadb", "--no-defaults", "--socket=" + sock, "-uroot",
                            "--default-character-set=utf8mb4"], input=f.read(), check=True)
        assert snapshot() == before


def mariadb_root(sock, *args, **kw):
    return subprocess.Popen(["mariadb", "--no-defaults", "--socket=" + sock, "-uroot", "--batch",
                             "--skip-column-names", "--unbuffered", *args], **kw)


def codes_reads_waiting(sock):
    """How many reads of the codes table wait in MariaDB (for the lock the test holds)."""
    p = mariadb_root(sock, "-e", "SELECT COUNT(*) FROM information_schema.PROCESSLIST "
                     "WHERE INFO LIKE 'SELECT uuid, code, name FROM codes%'",
                     stdout=subprocess.PIPE, text=True)
    out, _ = p.communicate(timeout=60)
    return int(out.strip())


def test_codes_answered_while_its_refresh_is_stuck(http):
    """Without the in-memory index (SHIPPING_INDEX_CHECK_S=0, as before it is loaded), /codes is kept 1 s. When it expires, one request reads it again while the others answer
    the kept body (for up to another second), so a slow refresh stalls one worker, not all of
    them. Past 2 s the kept body is not served any more: a request then waits for that refresh.
    The codes table is locked in MariaDB, whose process list shows the reads held by the lock.
    Worker threads without loops (SHOP_LOOP=0): in loop mode a loop never waits for another's
    read, it reads by itself (kmemo.h; D29), so one read may wait per worker loop."""
    sock = os.environ.get("SHOP_MARIADB_SOCKET")
    if not sock or not os.path.exists(sock):
        pytest.skip("needs the local stack's MariaDB socket")
    with listener() as lsock:
        url = url_of(lsock)
        env = dict(os.environ, LOG_LEVEL="warn", SHOP_TEST_URL=url, SHIPPING_INDEX_CHECK_S="0",
                   SHOP_LOOP="0")
        env.pop("SERVER_PORT", None)
        proc = start_service("shipping", "/actuator/info", env, sock=lsock)
    locker = mariadb_root(sock, "cities", stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    pool = ThreadPoolExecutor(64)
    try:
        expected = requests.get(url + "/codes").content  # kept from now on
        locker.stdin.write("LOCK TABLES codes WRITE; SELECT 'locked';\n")
        locker.stdin.flush()
        assert locker.stdout.readline().strip() == "locked"
        assert codes_reads_waiting(sock) == 0

        def get():
            r = requests.get(url + "/codes")
            return r.status_code, r.content

        # requests until one refreshes the expired body: its read waits for the lock
        early = []
        while codes_reads_waiting(sock) == 0:
            assert len(early) < 2000, "no request read the codes again"
            early.append(pool.submit(get))
        # while that refresh is held, every request answers the kept body or, once that is
        # over 2 s old, reads (and waits) too: the first ones are answered
        burst = [pool.submit(get) for _ in range(20)]
        # until every request not answered yet is one of the reads waiting in MariaDB
        assert wait_for(lambda: sum(not f.done() for f in early + burst) == codes_reads_waiting(sock), 60)
        answered = [f.result() for f in burst if f.done()]
        assert answered, "none of 20 requests was answered while the refresh was held"
        assert all(a == (200, expected) for a in answered)
        # the kept body is not served for ever: past 2 s later requests wait for the refresh
        # that is running (they pile up unanswered) instead of getting the kept body, and still
        # only that one read waits in MariaDB (single-flight: no read of their own)
        late = []

        def others_wait():
            late.append(pool.submit(get))
            return sum(not f.done() for f in late) >= 5 and codes_reads_waiting(sock) == 1
        assert wait_for(others_wait, 30, interval=0.1), "the kept body was served past 2 s"
        locker.stdin.write("UNLOCK TABLES;\n")
        locker.stdin.close()
        assert locker.wait(60) == 0
        for f in early + burst + late:
            assert f.result() == (200, expected)
    finally:
        if locker.poll() is None:
            locker.kill()
            locker.wait()
        pool.shutdown(wait=True)
        stop_service(proc)
