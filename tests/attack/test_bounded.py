"""Bounded everything (issue 14 item 5): a user's history answers in pages of 50 whatever its size,
in bounded memory; orders per user and the /users list are bounded; a full Redis answers 503 and
loses nothing.

The history and /users floods are served by user processes of the plain build that the test
starts (its VmHWM is the claim; the stack's own runs under ASan, whose shadow memory and
quarantine would measure the sanitizer) on a database of their own on the stack's MongoDB server:
FerretDB on SQLite reads a whole collection for each query, so thousands of 64 KiB orders in the
shared `users.orders` would slow every later test. The front door's paging is tested on the stack
with small orders."""
import concurrent.futures
import contextlib
import json
import os
import subprocess
import uuid

import pymongo
import pytest
import requests

from conftest import ROOT, listener, sanitizer_reports, service_url, start_service, url_of

TIMEOUT = 120
PAGE = 50
MB = 1024 * 1024
BIG_ORDERS = 2000  # of 64 KiB (issue 14): 125 MiB of history, which a process holding it whole cannot keep in 64 MB
SEEDERS = 4        # parallel calls that store the big history through the service's own order route
USERS = 1100       # more than a /users page (1000)


ORDERS_MAX = 3    # USER_ORDERS_MAX of the small test process


def big_order(i):
    """A 64 KiB order as payment sends it (orderid, user, cart), padded by one long string of the
    order itself: FerretDB decodes each nesting level of a document again, so the padding sits
    as high as it can, which keeps the 2,000 full-collection reads of the paging affordable."""
    line = {"sku": "SKU-%d" % i, "name": "Robot %d" % i, "qty": 1, "price": 1, "subtotal": 1}
    body = {"orderid": "big-%05d" % i, "user": "big", "cart": {"total": 1, "tax": 0.17, "items": [line]}}
    body["note"] = "x" * (64 * 1024 - len(json.dumps(body)) - 16)
    assert 63 * 1024 < len(json.dumps(body)) <= 64 * 1024
    return body


def vm_hwm_mb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def pages(url, path, limit=None):
    """Follows the Link headers from path; returns the answers, each checked 200."""
    out = []
    target = url + path + ("?limit=%d" % limit if limit else "")
    while target:
        r = requests.get(target, timeout=TIMEOUT)
        assert r.status_code == 200, (target, r.status_code, r.text[:200])
        out.append(r)
        nxt = r.links.get("next", {}).get("url")
        target = requests.compat.urljoin(target, nxt) if nxt else None
        assert len(out) < 1000, "pages never end"
    return out


@contextlib.contextmanager
def user_process(orders_max):
    """(url, pid, database) of a plain-build user process on a database of its own, with
    USER_ORDERS_MAX=orders_max; the database is dropped at the end."""
    binary = os.path.join(ROOT, "build", "bin", "user")
    assert os.access(binary, os.X_OK), "no plain build at %s (tests/run builds it)" % binary
    dbname = "attack_bounded_%s" % uuid.uuid4().hex[:8]
    base = os.environ["MONGO_URL"].rstrip("/")
    client = pymongo.MongoClient(base, serverSelectionTimeoutMS=10000)
    env = dict(os.environ, MONGO_URL="%s/%s?socketTimeoutMS=300000" % (base, dbname),
               USER_ORDERS_MAX=str(orders_max), LOG_LEVEL="warn")
    with listener() as sock:
        url = env["SHOP_TEST_URL"] = url_of(sock)
        proc = start_service("user", "/health", env, out=subprocess.PIPE, sock=sock,
                             bin_dir=os.path.dirname(binary), timeout=60)
    try:
        yield url, proc.pid, client[dbname]
    finally:
        proc.terminate()
        err, _ = proc.communicate(timeout=60)
        client.drop_database(dbname)
        client.close()
    assert proc.returncode == 0, err.decode()[-2000:]
    assert not sanitizer_reports(proc.pid)


@pytest.fixture(scope="module")
def own_user():
    with user_process(ORDERS_MAX) as u:
        yield u


def store_orders(url, name, count):
    """Posts orders 0..count-1 to the user service's own order route (payment's call), SEEDERS at
    a time; each answer must be 200 OK."""
    def post(session, i):
        r = session.post("%s/order/%s" % (url, name), json=big_order(i), timeout=TIMEOUT)
        assert (r.status_code, r.text) == (200, "OK"), (i, r.status_code, r.text[:200])
    sessions = [requests.Session() for _ in range(SEEDERS)]
    try:
        with concurrent.futures.ThreadPoolExecutor(SEEDERS) as pool:
            for f in [pool.submit(post, sessions[i % SEEDERS], i) for i in range(count)]:
                f.result()
    finally:
        for s in sessions:
            s.close()


@pytest.mark.timeout(1500)  # FerretDB (SQLite) reads the whole orders collection for each of the 40 pages
def test_big_history_answers_page_by_page_in_bounded_memory():
    """2,000 orders of 64 KiB, stored through the service's own route by one process (with room
    for exactly that many), read back through the history's Link headers by the same process:
    every page 200, every order once, oldest first, and the process never held more than 64 MB."""
    with user_process(BIG_ORDERS) as (url, pid, db):
        name = "big-%s" % uuid.uuid4().hex[:8]
        db.users.insert_one({"name": name, "password": "x", "email": "big@example.com"})
        store_orders(url, name, BIG_ORDERS)
        answers = pages(url, "/history/" + name)
        got = []
        for a in answers:
            body = a.json()
            assert body["name"] == name and "_id" in body
            assert len(body["history"]) <= PAGE
            got += [o["orderid"] for o in body["history"]]
        hwm = vm_hwm_mb(pid)
        assert sorted(got) == ["big-%05d" % i for i in range(BIG_ORDERS)]  # every order once
        assert len(answers) == (BIG_ORDERS + PAGE - 1) // PAGE
        stored = db.orders.find({}, {"order.orderid": 1}).sort("_id", 1)  # the order they were stored in
        assert got == [d["order"]["orderid"] for d in stored]
        assert hwm < 64, "user service VmHWM %.1f MB after reading a 125 MiB history" % hwm
        # posted 4 at a time, every order took its slot: the 2,001st has none
        r = requests.post("%s/order/%s" % (url, name), json=big_order(BIG_ORDERS), timeout=TIMEOUT)
        assert (r.status_code, r.text) == (409, "order limit reached")


def test_orders_per_user_are_bounded(own_user):
    url, _, db = own_user
    name = "bound-%s" % uuid.uuid4().hex[:8]
    db.users.insert_one({"name": name, "password": "x", "email": "b@example.com"})
    for i in range(ORDERS_MAX):
        r = requests.post("%s/order/%s" % (url, name), json={"orderid": "b-%d" % i}, timeout=TIMEOUT)
        assert (r.status_code, r.text) == (200, "OK")
    r = requests.post("%s/order/%s" % (url, name), json={"orderid": "one-too-many"}, timeout=TIMEOUT)
    assert (r.status_code, r.text) == (409, "order limit reached")
    h = requests.get("%s/history/%s" % (url, name), timeout=TIMEOUT).json()
    assert [o["orderid"] for o in h["history"]] == ["b-%d" % i for i in range(ORDERS_MAX)]
    # the count kept in the user document is never shown
    r = requests.post(url + "/login", json={"name": name, "password": "x"}, timeout=TIMEOUT)
    assert r.status_code == 200 and set(r.json()) == {"_id", "name", "email"}


def test_users_list_is_bounded(own_user):
    url, _, db = own_user
    db.users.insert_many([{"name": "many-%05d" % i, "password": "x", "email": "m%d@example.com" % i}
                          for i in range(USERS)])
    first = requests.get(url + "/users", timeout=TIMEOUT)
    assert first.status_code == 200
    assert len(first.json()) == 1000 and "next" in first.links
    assert all("password" not in u for u in first.json())
    names = [u["name"] for a in pages(url, "/users") for u in a.json()]
    assert len(names) == len(set(names)) == db.users.count_documents({})
    r = requests.get(url + "/users?limit=1001", timeout=TIMEOUT)
    assert (r.status_code, r.text) == (400, "bad limit")


def test_history_pages_through_the_front_door(web):
    """The UI's history call through the gateway, for a user with 120 small orders: the first page
    keeps the reference's shape, the Link header leads to the rest."""
    s = requests.Session()
    name = "pages-%s" % uuid.uuid4().hex[:8]
    r = s.post(web + "/api/user/register", json={"name": name, "password": "p-" + name,
                                                 "email": name + "@example.com"}, timeout=TIMEOUT)
    assert r.status_code == 200
    assert s.post(web + "/api/user/login", json={"name": name, "password": "p-" + name},
                  timeout=TIMEOUT).status_code == 200
    user = service_url("user")  # /order is internal: payment's call
    for i in range(120):
        r = requests.post("%s/order/%s" % (user, name), json={"orderid": "p-%03d" % i}, timeout=TIMEOUT)
        assert r.status_code == 200
    r = s.get("%s/api/user/history/%s" % (web, name), timeout=TIMEOUT)
    assert r.status_code == 200
    first = r.json()
    assert list(first) == ["_id", "name", "history"] and len(first["history"]) == PAGE
    got, target = [], r.url
    while True:
        got += [o["orderid"] for o in r.json()["history"]]
        nxt = r.links.get("next", {}).get("url")
        if not nxt:
            break
        target = requests.compat.urljoin(target, nxt)
        r = s.get(target, timeout=TIMEOUT)
        assert r.status_code == 200
    assert got == ["p-%03d" % i for i in range(120)]


def redis_cli(*args):
    cmd = ["redis-cli", "-h", "127.0.0.1", "-p", os.environ["REDIS_PORT"], *args]
    return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=60).stdout.strip()


def test_full_redis_answers_503_and_loses_nothing(web):
    """maxmemory with noeviction (the local stack's setting, deploy/local/stack): a full Redis
    refuses writes; the services say 503, and every cart is still there once it has room again."""
    assert redis_cli("CONFIG", "GET", "maxmemory-policy").split("\n")[-1] == "noeviction"
    s = requests.Session()
    uid = s.get(web + "/api/user/uniqueid", timeout=TIMEOUT).json()["uuid"]
    r = s.get("%s/api/cart/add/%s/Watson/1" % (web, uid), timeout=TIMEOUT)
    assert r.status_code == 200
    before = s.get("%s/api/cart/cart/%s" % (web, uid), timeout=TIMEOUT).json()
    old = redis_cli("CONFIG", "GET", "maxmemory").split("\n")[-1]
    try:
        redis_cli("CONFIG", "SET", "maxmemory", "1")  # full: every byte in use is over the limit
        r = s.get(web + "/api/user/uniqueid", timeout=TIMEOUT)
        assert r.status_code == 503, r.text
        r = s.get("%s/api/cart/add/%s/EMM/1" % (web, uid), timeout=TIMEOUT)
        assert r.status_code == 503, r.text
        r = s.get("%s/api/cart/cart/%s" % (web, uid), timeout=TIMEOUT)  # reads still work
        assert r.status_code == 200 and r.json() == before
    finally:
        redis_cli("CONFIG", "SET", "maxmemory", old)
    assert s.get("%s/api/cart/cart/%s" % (web, uid), timeout=TIMEOUT).json() == before  # nothing lost
    r = s.get("%s/api/cart/add/%s/EMM/1" % (web, uid), timeout=TIMEOUT)
    assert r.status_code == 200 and len(r.json()["items"]) == 2
