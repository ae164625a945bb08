#!/usr/bin/python3
"""Continuous shop traffic through the web host, counting every failed request (tests/deploy/run).

Usage: traffic.py BASE_URL STOP_FILE MAX_SECONDS [THREADS [MODE [METRICS_URL]]]
MODE browse (the default): each thread loops over the product list, one product, a cart add (cart calls
catalogue), the cart, and catalogue's /metrics (whose shop_build_info says which release answered).
MODE checkout: each thread fills a fresh cart, confirms shipping and pays (POST /api/payment/pay), again and
again, and reads payment's /metrics now and then; every order id that payment gives back is listed, so the caller can
check that each one reached dispatch (no lost orders).
/metrics is internal (the closed gateway, D20, answers 404 for it): it is read from METRICS_URL, the service's own
address (catalogue's in browse mode, payment's in checkout mode, e.g. http://10.213.0.12:8081), on a fresh
connection each time; without METRICS_URL no /metrics is read (and no versions are seen).
A request fails when it gets no answer or a status other than 200. Runs until STOP_FILE exists (or
MAX_SECONDS pass), then prints one JSON line: total, failed, by_path, errors (the first 20), versions seen
in shop_build_info, and orders (checkout mode). Loopback/test-bridge addresses only.
Like a browser, each thread first asks /api/user/uniqueid for an anonymous id and keeps the session cookie it
gets: the gateway answers cart, confirm and pay only for ids the caller's session owns (D18). A thread reuses its
id for cart after cart (pay deletes the cart) and takes a new one when it is refused (401/403).
"""
import http.client
import json
import os
import sys
import threading
import time
import urllib.parse

base = urllib.parse.urlsplit(sys.argv[1])
stop_file = sys.argv[2]
max_s = float(sys.argv[3])
threads = int(sys.argv[4]) if len(sys.argv) > 4 else 4
mode = sys.argv[5] if len(sys.argv) > 5 else "browse"
metrics = urllib.parse.urlsplit(sys.argv[6]) if len(sys.argv) > 6 and sys.argv[6] else None
lock = threading.Lock()
stats = {"total": 0, "failed": 0, "by_path": {}, "errors": [], "versions": {}, "orders": []}
deadline = time.monotonic() + max_s


def record(path, ok, detail=""):
    key = path.split("/")[3] if path.count("/") >= 3 else path
    with lock:
        stats["total"] += 1
        b = stats["by_path"].setdefault(key, [0, 0])
        b[0] += 1
        if not ok:
            stats["failed"] += 1
            b[1] += 1
            if len(stats["errors"]) < 20:
                stats["errors"].append(f"{time.strftime('%H:%M:%S')} {path}: {detail}")


def request(conn, method, path, n, i, body=None, to=None, jar=None):
    """One request on conn (None: open one to `to`, default the web host); returns (conn to reuse or None, status
    or None, body). jar: a dict of cookies sent and updated from Set-Cookie (shipping's quote, D19)."""
    to = to or base
    try:
        if conn is None:
            conn = http.client.HTTPConnection(to.hostname, to.port or 80, timeout=30)
        headers = {"X-Request-Id": f"traffic-{n}-{i}"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if jar:
            headers["Cookie"] = "; ".join("%s=%s" % kv for kv in jar.items())
        conn.request(method, path, body=body, headers=headers)
        r = conn.getresponse()
        data = r.read()
        for c in r.headers.get_all("Set-Cookie") or []:
            if jar is not None and "=" in c:
                k, v = c.split(";", 1)[0].split("=", 1)
                jar[k.strip()] = v.strip()
        record(path, r.status == 200, f"status {r.status} {data[:80]!r}")
        if r.getheader("Connection", "").lower() == "close":
            conn.close()
            conn = None
        return conn, r.status, data
    except Exception as e:  # no answer at all: a failed request
        record(path, False, f"{type(e).__name__}: {e}")
        try:
            conn.close()
        except Exception:
            pass
        time.sleep(0.05)
        return None, None, b""


def read_metrics(n, i):
    """The service's /metrics on its own port (fresh connection, closed after), its version noted."""
    if metrics is None:
        return
    conn, status, body = request(None, "GET", "/metrics", n, i, to=metrics)
    if conn is not None:
        conn.close()
    if status == 200:
        note_version(body)


def note_version(body):
    for line in body.decode("utf-8", "replace").splitlines():
        if line.startswith("shop_build_info{"):
            v = line.split('version="', 1)[1].split('"', 1)[0]
            with lock:
                stats["versions"][v] = stats["versions"].get(v, 0) + 1


def thread_id(conn, cart, n, i, jar):
    """The id a thread shops with: cart while it has one, else a new anonymous id from /api/user/uniqueid, owned by
    the thread's session (jar), the call counted in i; when none came, waits a moment. Returns (conn, id or None,
    i)."""
    if cart is not None:
        return conn, cart, i
    i += 1
    conn, status, body = request(conn, "GET", "/api/user/uniqueid", n, i, jar=jar)
    try:
        cart = json.loads(body)["uuid"] if status == 200 else None
    except (ValueError, KeyError, TypeError):
        cart = None
    if cart is None:
        time.sleep(0.2)
    return conn, cart, i


def running():
    return not os.path.exists(stop_file) and time.monotonic() < deadline


def browse(n):
    conn, jar, cart = None, {}, None
    i = 0
    while running():
        conn, cart, i = thread_id(conn, cart, n, i, jar)
        if cart is None:
            continue
        paths = ["/api/catalogue/products", "/api/catalogue/product/Watson", f"/api/cart/add/{cart}/EMM/1",
                 f"/api/cart/cart/{cart}", "/metrics"]
        path = paths[i % len(paths)]
        i += 1
        if path == "/metrics":
            read_metrics(n, i)
        else:
            conn, status, body = request(conn, "GET", path, n, i, jar=jar)
            if status in (401, 403):
                cart = None
        if i % 250 == 0:
            cart = None  # keep carts small: a new id


def checkout(n):
    conn, jar, cart = None, {}, None
    i = rounds = 0
    while running():
        conn, cart, i = thread_id(conn, cart, n, i, jar)
        if cart is None:
            continue
        i += 1
        conn, status, body = request(conn, "GET", f"/api/cart/add/{cart}/Watson/1", n, i, jar=jar)
        if status in (401, 403):
            cart = None
        if status != 200:
            continue
        i += 1  # shipping, as the web UI does it: calc (the quote cookie, D19), confirm, cart adds the SHIP line
        conn, status, body = request(conn, "GET", "/api/shipping/match/gb/london", n, i)
        london = [c["uuid"] for c in json.loads(body or b"[]") if c.get("name") == "London"] if status == 200 else []
        if not london:
            continue
        i += 1
        conn, status, body = request(conn, "GET", f"/api/shipping/calc/{london[0]}", n, i, jar=jar)
        if status != 200:
            continue
        ship = json.dumps(dict(json.loads(body), location="United Kingdom London"))
        i += 1
        conn, status, body = request(conn, "POST", f"/api/shipping/confirm/{cart}", n, i, ship, jar=jar)
        if status != 200:
            continue
        i += 1
        conn, status, paid = request(conn, "POST", f"/api/payment/pay/{cart}", n, i, body, jar=jar)
        if status == 200:
            try:
                oid = json.loads(paid)["orderid"]
                with lock:
                    stats["orders"].append(oid)
            except (ValueError, KeyError, TypeError):
                record("/api/payment/pay", False, f"200 without an order id: {paid[:80]!r}")
        rounds += 1
        if rounds % 20 == 1:
            i += 1
            read_metrics(n, i)


worker = checkout if mode == "checkout" else browse
ts = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(threads)]
for t in ts:
    t.start()
for t in ts:
    t.join()
print(json.dumps(stats, sort_keys=True))
