"""GET /check/{id} of an anonymous id without MongoDB (D26): with sessions on, no name starting
with "anonymous-" can be registered, so while no stored user holds such a name (one query tells,
asked again at most every minute) the user service answers an anonymous id's check itself, the
check every anonymous pay makes. A user that does hold one (a lab-mode registration, a legacy
database) is still found. Each test runs a user service of its own on a database of its own."""
import os
import uuid

import pytest
import requests

from conftest import SecondService, paused

pymongo = pytest.importorskip("pymongo", reason="needs Debian python3-pymongo")

TIMEOUT = 30


@pytest.fixture
def database():
    """The MONGO_URL of a database of this test's own; dropped after."""
    name = "check_anon_" + uuid.uuid4().hex[:8]
    yield os.environ["MONGO_URL"].rstrip("/") + "/" + name
    pymongo.MongoClient(os.environ["MONGO_URL"]).drop_database(name)


def check(url, name):
    r = requests.get(url + "/check/" + name, timeout=TIMEOUT)
    return r.status_code, r.text


def test_anonymous_id_checked_while_mongodb_hangs(database):
    svc = SecondService("user", MONGO_URL=database, SHOP_AUTH=None).wait_ready()
    try:
        assert check(svc.url, "anonymous-1") == (404, "user not found")  # the namespace asked
        with paused("mongo"):
            assert check(svc.url, "anonymous-2") == (404, "user not found")
            assert check(svc.url, "anonymous-424242") == (404, "user not found")
    finally:
        svc.assert_clean_exit(svc.signal_and_wait())


def test_a_stored_anonymous_name_is_still_found(database):
    lab = SecondService("user", MONGO_URL=database, SHOP_AUTH="off").wait_ready()
    name = "anonymous-legacy-" + uuid.uuid4().hex[:8]
    try:  # lab mode registers any name (D18), as the reference did
        r = requests.post(lab.url + "/register", timeout=TIMEOUT,
                          json={"name": name, "password": "pw-" + name, "email": "e@x"})
        assert (r.status_code, r.text) == (200, "OK")
    finally:
        lab.assert_clean_exit(lab.signal_and_wait())
    svc = SecondService("user", MONGO_URL=database, SHOP_AUTH=None).wait_ready()
    try:
        assert check(svc.url, name) == (200, "OK")
        assert check(svc.url, "anonymous-1") == (404, "user not found")
    finally:
        svc.assert_clean_exit(svc.signal_and_wait())
