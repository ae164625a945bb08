"""A backend that hangs (accepts connections, never answers) gives a bounded 503 and the service
recovers by itself once it answers again (README, architecture "faults"). Each backend of this
stack is frozen with SIGSTOP (the kernel still completes TCP handshakes) and always resumed with
SIGCONT. "Bounded" = the request answers 503 within a generous client timeout; no duration is
asserted. Redis has its own test in test_cart.py.
"""
import uuid

import pytest
import requests

from conftest import paused, service_url, wait_for
from test_orders_faults import dispatch_stopped, in_stock_sku, make_cart, pay  # noqa: F401 (a fixture)

BOUND = 60  # s: a hang without a timeout fails here instead of hanging the test run


def status(url):
    try:
        return requests.get(url, timeout=10).status_code
    except requests.RequestException:
        return None


# (component, service, path read from that backend on every request)
CASES = [
    ("mongo", "user", "/check/hung-%s" % uuid.uuid4().hex[:8]),   # user-by-name query, 404 when fine
    ("mariadb", "shipping", "/cities/gb"),  # a country's cities (/calc and /match answer from memory)
    ("mariadb", "ratings", "/api/fetch/hung-%s" % uuid.uuid4().hex[:8]),
]


@pytest.mark.parametrize("component,service,path", CASES, ids=["%s-%s-%s" % (c[0], c[1], c[2].split("/")[1]) for c in CASES])
def test_hung_database_gives_503_and_recovers(component, service, path):
    url = service_url(service) + path
    before = status(url)
    assert before in (200, 404), before  # 404: /check of an unknown name
    with paused(component):
        for _ in range(2):  # a fresh connection and the one the first attempt left behind
            r = requests.get(url, timeout=BOUND)
            assert r.status_code == 503, r.text
    assert wait_for(lambda: status(url) == before, 30), "%s did not recover" % url


def test_hung_broker_gives_503_places_no_order_and_recovers(http, dispatch_stopped):
    from test_dispatch import queue_depth
    name = "hungmq-%s" % uuid.uuid4().hex[:12]
    r = http.post(service_url("user") + "/register", timeout=10,
                  json={"name": name, "password": "pw-" + name, "email": name + "@example.com"})
    assert r.status_code == 200, r.text
    cart = make_cart(http, name, in_stock_sku())
    assert pay(http, "warm-" + name, make_cart(http, "warm-" + name, in_stock_sku())).status_code == 200
    depth0 = queue_depth()
    with paused("rabbitmq"):
        for _ in range(2):
            r = http.post("%s/pay/%s" % (service_url("payment"), name), json=cart, timeout=BOUND)
            assert (r.status_code, r.text) == (503, "order not placed: RabbitMQ not available")
    assert http.get("%s/history/%s" % (service_url("user"), name), timeout=10).status_code == 404
    assert http.get("%s/cart/%s" % (service_url("cart"), name), timeout=10).status_code == 200

    # the customer pays the kept cart again once the broker answers: exactly one order in the
    # queue and in the history (a publish written before the 503 would be a second one: the
    # broker reads it when it resumes)
    orderid = wait_for(lambda: placed(http, name, cart), 30)
    assert orderid, "payment did not recover"
    hist = http.get("%s/history/%s" % (service_url("user"), name), timeout=10).json()["history"]
    assert [h["orderid"] for h in hist] == [orderid]
    assert not wait_for(lambda: queue_depth() > depth0 + 1, 5), \
        "%d messages queued for one order" % (queue_depth() - depth0)
    assert queue_depth() == depth0 + 1


def placed(http, cart_id, cart):
    """Pays; the order id when placed, None on a 503 (the cart is kept: try again)."""
    r = pay(http, cart_id, cart)
    assert r.status_code in (200, 503), r.text
    return r.json()["orderid"] if r.status_code == 200 else None
