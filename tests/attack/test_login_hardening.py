"""Login hardening (issue 14 item 4), attacked through the front door (the stack's nginx, SHOP_URL):
a login flood meets the gateway's 429 and cannot take every worker thread of the user service
(at most SHOP_THREADS - 1 hashes at once, 503 with Retry-After beyond); password guessing is
backed off per (account, client address); an unknown name and a wrong password each cost one
password hash. Observations (the hash counters of /metrics, /uniqueid during the flood) are made
on the user service's own port, where the gateway's connection reuse plays no part.
No test asserts a duration: the flood test orders events by the service's own counters."""
import os
import re
import uuid
from concurrent.futures import ThreadPoolExecutor

import pymongo
import pytest
import requests

from conftest import service_url, wait_for
from test_gateway_closed import SourceAdapter, own_address

TIMEOUT = 60
BACKOFF_TEXT = "too many failed logins, try again later"
FREE_FAILURES = 5  # USER_LOGIN_FREE_FAILURES' default
GATEWAY_429 = "too many requests, try again in a second\n"


def metric(name):
    """The value of a counter in the user service's /metrics (its own port, a new connection)."""
    text = requests.get(service_url("user") + "/metrics", timeout=TIMEOUT).text
    m = re.search(r"^%s (\S+)$" % re.escape(name), text, re.M)
    assert m, "%s missing from the user service's /metrics" % name
    return float(m.group(1))


def hashes():
    return metric("user_password_hashes_total")


@pytest.fixture
def client():
    """A requests session reaching the gateway from a loopback address of its own (own rate-limit
    bucket at nginx, own back-off records at the user service)."""
    with requests.Session() as s:
        s.mount("http://", SourceAdapter(own_address(), pool_maxsize=40))
        yield s


@pytest.fixture
def users():
    client = pymongo.MongoClient(os.environ["MONGO_URL"], serverSelectionTimeoutMS=10000)
    db = client.get_database("users")
    yield db.users
    client.close()


def register(session, web, name, password):
    r = session.post(web + "/api/user/register", json={"name": name, "password": password,
                                                       "email": name + "@example.com"}, timeout=TIMEOUT)
    assert (r.status_code, r.text) == (200, "OK")


def login(session, web, name, password, **kw):
    return session.post(web + "/api/user/login", json={"name": name, "password": password},
                        timeout=TIMEOUT, **kw)


def test_unknown_name_and_wrong_password_both_compute_a_hash(web, client):
    """The two failures keep the reference's texts (the UI shows them) and cost the same: one
    hash each, the unknown name's against a dummy record."""
    name = "hash-%s" % uuid.uuid4().hex[:10]
    register(client, web, name, "right-" + name)
    before = hashes()
    r = login(client, web, "nobody-" + uuid.uuid4().hex[:10], "whatever")
    assert (r.status_code, r.text) == (404, "name not found")
    assert hashes() - before == 1
    before = hashes()
    r = login(client, web, name, "wrong")
    assert (r.status_code, r.text) == (404, "incorrect password")
    assert hashes() - before == 1


def test_password_guessing_is_backed_off(web, client):
    """After a few wrong passwords in a row, this (name, address) pair gets 429 with Retry-After -
    even with the right password, and whatever client-address headers it forges - while the
    owner, from another address, still logs in."""
    name = "guess-%s" % uuid.uuid4().hex[:10]
    password = "right-" + name
    register(client, web, name, password)
    for i in range(FREE_FAILURES):
        r = login(client, web, name, "guess-%d" % i)
        assert (r.status_code, r.text) == (404, "incorrect password"), i
    before = hashes()
    forged = {"X-Real-IP": "203.0.113.%d" % (os.getpid() % 250), "X-Forwarded-For": "198.51.100.7"}
    for headers in ({}, forged):
        r = login(client, web, name, password, headers=headers)
        assert (r.status_code, r.text) == (429, BACKOFF_TEXT), headers
        assert int(r.headers["Retry-After"]) >= 1
    assert hashes() == before  # refused before any hash
    # the owner elsewhere (127.0.0.1, every other test's address) is not locked out
    r = login(requests, web, name, password)
    assert r.status_code == 200 and r.json()["name"] == name


# A legacy bcrypt record of cost 13 (2^13 rounds, half a second a check or more): the hashes of the
# flood below run long enough that their order against /uniqueid is plain to see. Well-formed
# (the salt of OpenBSD's test vector), matches no password the test sends.
SLOW_BCRYPT = "$2b$13$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"


def test_login_flood_gets_429_and_uniqueid_keeps_answering_while_hashes_run(web, client, users):
    name = "flood-%s" % uuid.uuid4().hex[:10]
    users.insert_one({"name": name, "password": SLOW_BCRYPT, "email": "f@example.com"})
    try:
        done0, begun0 = hashes(), metric("user_password_hashes_begun_total")

        def one(i):
            return login(client, web, name, "guess-%d" % i)

        with ThreadPoolExecutor(40) as ex:
            flood = [ex.submit(one, i) for i in range(40)]
            # hashes are running: every thread the service lets hash is taken ...
            assert wait_for(lambda: metric("user_password_hashes_begun_total") - begun0 >= 2, 60, 0.02)
            # ... and /uniqueid, on a fresh connection, is answered before any of them ends
            r = requests.get(service_url("user") + "/uniqueid", timeout=TIMEOUT)
            assert r.status_code == 200 and r.json()["uuid"].startswith("anonymous-")
            assert hashes() == done0, "/uniqueid waited for a password hash to end"
            answers = [f.result() for f in flood]
        codes = [a.status_code for a in answers]
        # the gateway's limit (burst 20) met by the flood
        assert any(a.status_code == 429 and a.text == GATEWAY_429 for a in answers), codes
        busy = [a for a in answers if a.status_code == 503]
        assert busy, codes  # more logins than hash slots at once: refused at once, not queued
        assert all(b.text == "busy, try again in a second" and b.headers["Retry-After"] == "1" for b in busy)
        assert set(codes) <= {404, 429, 503}, codes
        # the front door serves /uniqueid too, from this very address
        assert client.get(web + "/api/user/uniqueid", timeout=TIMEOUT).status_code == 200
    finally:
        users.delete_one({"name": name})
