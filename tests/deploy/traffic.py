#!/usr/bin/python3
"""Continuous shop traffic through the web host, counting every failed request (tests/deploy/run).

Usage: traffic.py BASE_URL STOP_FILE MAX_SECONDS [THREADS]
Each thread loops over: the product list, one product, a cart add (cart calls catalogue), the cart, and
catalogue's /metrics (whose shop_build_info says which release answered). A request fails when it gets no answer or a status other than
200. Runs until STOP_FILE exists (or MAX_SECONDS pass), then prints one JSON line: total, failed, by_path,
errors (the first 20), versions seen in shop_build_info of catalogue. Loopback/test-bridge addresses only.
"""
import http.client
import json
import os
import sys
import threading
import time
import urllib.parse
import uuid

base = urllib.parse.urlsplit(sys.argv[1])
stop_file = sys.argv[2]
max_s = float(sys.argv[3])
threads = int(sys.argv[4]) if len(sys.argv) > 4 else 4
lock = threading.Lock()
stats = {"total": 0, "failed": 0, "by_path": {}, "errors": [], "versions": {}}
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


def worker(n):
    conn = None
    cart = f"deploytest-{uuid.uuid4().hex[:8]}-{n}"
    paths = ["/api/catalogue/products", "/api/catalogue/product/Watson", f"/api/cart/add/{cart}/EMM/1",
             f"/api/cart/cart/{cart}", "/api/catalogue/metrics"]
    i = 0
    while not os.path.exists(stop_file) and time.monotonic() < deadline:
        path = paths[i % len(paths)]
        i += 1
        try:
            if conn is None:
                conn = http.client.HTTPConnection(base.hostname, base.port or 80, timeout=30)
            conn.request("GET", path, headers={"X-Request-Id": f"traffic-{n}-{i}"})
            r = conn.getresponse()
            body = r.read()
            ok = r.status == 200
            record(path, ok, f"status {r.status} {body[:80]!r}")
            if ok and path.endswith("/metrics"):
                for line in body.decode("utf-8", "replace").splitlines():
                    if line.startswith("shop_build_info{"):
                        v = line.split('version="', 1)[1].split('"', 1)[0]
                        with lock:
                            stats["versions"][v] = stats["versions"].get(v, 0) + 1
            if r.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = None
        except Exception as e:  # no answer at all: a failed request
            record(path, False, f"{type(e).__name__}: {e}")
            try:
                conn.close()
            except Exception:
                pass
            conn = None
            time.sleep(0.05)
        if path.startswith("/api/cart/add") and i % 50 == 0:
            cart = f"deploytest-{uuid.uuid4().hex[:8]}-{n}"  # keep carts small
            paths[2], paths[3] = f"/api/cart/add/{cart}/EMM/1", f"/api/cart/cart/{cart}"


ts = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(threads)]
for t in ts:
    t.start()
for t in ts:
    t.join()
print(json.dumps(stats, sort_keys=True))
