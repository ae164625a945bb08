"""Cart's and user's contract tests on the Redis paths, run against a second cart and user of our
own in each server mode: SHOP_LOOP=1 (handlers in coroutines of event loops, Redis commands of
concurrent requests pipelined on one connection per loop: libshop/redis.c) and SHOP_LOOP=0
(libmicrohttpd's thread pool, a blocking connection per thread). Whichever mode the services
default to, both stay covered by the contract suite.

The tests are test_cart.py's and test_user.py's own (imported, so collected here too), with the
`cart` and `user` fixtures pointing at the second processes: reads, adds, updates and their
concurrency, the counter, logins (which write a session), Redis stopped and frozen (503, then
recovery). A session test of this file's own covers the session paths (/uniqueid's cookie,
/auth, a login carrying the session's ids over, /logout). Each second process must stop cleanly at the end
(SIGTERM: exit 0, no sanitizer report, no leak).
"""
import re
import uuid

import pytest
import requests

import test_cart
import test_user
from conftest import SecondService, wait_for

# Collected in this order, within each mode: test_cart.py's, the Redis outages last (as there), so
# that no other test meets a worker still in its fail-fast window after Redis came back (the user
# tests get a process of their own, started after the cart's outages).
from test_cart import (test_reference_cart_bytes, test_get_missing_cart, test_add_parse_int,  # noqa: F401,E501,I001
                       test_add_and_update_by_post, test_update_rules, test_shipping_replaced_in_place,
                       test_rename, test_delete, test_ttl_set_and_refreshed_on_writes, test_corrupt_values_answer_500,
                       test_parallel_adds_never_lose_an_update, test_parallel_reads_each_get_their_own_cart,
                       test_parallel_mixed_writes, test_redis_down_fails_fast_then_recovers,
                       test_hung_redis_times_out_then_recovers)
from test_user import (db, no_secret_in_responses, test_health, test_login_seed_users,  # noqa: F401,I001
                       test_login_errors, test_register_then_login, test_uniqueid_parallel_all_distinct,
                       test_uniqueid_parallel_in_one_session_all_owned, test_uniqueid_session_keeps_the_newest_ids,
                       test_uniqueid_expired_session_gets_a_new_one, test_uniqueid_with_a_session_takes_one_round_trip)


@pytest.fixture(scope="module", params=["1", "0"], ids=["loop", "pool"])
def mode(request):
    return request.param


def second(name, mode):
    svc = SecondService(name, SHOP_LOOP=mode, LOG_LEVEL="info").wait_ready()
    assert wait_for(lambda: "listening port=" in svc.text(), 30), svc.text()
    assert (" loop=yes " in svc.text()) == (mode == "1"), svc.text()  # the mode asked for
    yield svc.url
    svc.assert_clean_exit(svc.signal_and_wait())


@pytest.fixture(scope="module")
def cart(mode):
    yield from second("cart", mode)


@pytest.fixture(scope="module")
def user(mode):
    yield from second("user", mode)


@pytest.fixture(autouse=True)
def fresh_ids(monkeypatch):
    """The imported tests name their carts and users after their module's RUN: a fresh one per
    test, so that a test already run there (or in the other mode) starts from nothing."""
    run = uuid.uuid4().hex[:8]
    monkeypatch.setattr(test_cart, "RUN", run)
    monkeypatch.setattr(test_user, "RUN", run)


def owns(user, cookie, call):
    r = requests.get(user + "/auth", headers={"Cookie": cookie, "X-Shop-Call": call}, timeout=15)
    return r.status_code


def session_cookie(r):
    m = re.match(r"([^=;]+=[^;]+)", r.headers.get("Set-Cookie", ""))
    assert m, r.headers
    return m.group(1)


def test_session_paths(user):
    """/uniqueid gives a session owning the id; /auth checks calls against it; a login in that
    session moves its ids to a new session that also owns the user (the old cookie stops
    working); /logout forgets it."""
    r = requests.get(user + "/uniqueid", timeout=15)
    assert r.status_code == 200
    anon, cookie = r.json()["uuid"], session_cookie(r)
    assert owns(user, cookie, "GET /api/cart/cart/%s" % anon) == 204
    assert owns(user, cookie, "GET /api/cart/cart/anonymous-0") == 403
    assert owns(user, "", "GET /api/cart/cart/%s" % anon) == 401
    r = requests.post(user + "/login", json={"name": "stan", "password": "bigbrain"},
                      headers={"Cookie": cookie}, timeout=15)
    assert r.status_code == 200
    logged_in = session_cookie(r)
    assert owns(user, logged_in, "GET /api/user/history/stan") == 204
    assert owns(user, logged_in, "GET /api/cart/cart/%s" % anon) == 204
    assert owns(user, cookie, "GET /api/cart/cart/%s" % anon) == 401
    assert requests.post(user + "/logout", headers={"Cookie": logged_in}, timeout=15).status_code == 200
    assert owns(user, logged_in, "GET /api/cart/cart/%s" % anon) == 401


# last, after this file's own test: an outage
from test_user import test_redis_down_uniqueid_fails_fast_then_recovers  # noqa: E402,F401
