"""D5's headline claims triggered for real: orders waiting in the queue survive a RabbitMQ
restart (durable queue, persistent messages), and payment answers 200 only after the broker
confirmed the message (a nack gives 503 and no order anywhere). Every test leaves RabbitMQ,
dispatch and the broker's policies as it found them.
"""
import uuid

import pytest

from conftest import dispatch_log, dispatched_lines, rabbitmqctl, service_url, stack, wait_dispatched, wait_for
from test_dispatch import queue_depth
from test_orders_faults import dispatch_stopped, in_stock_sku, make_cart, pay  # noqa: F401 (a fixture)

N = 20


def test_orders_queued_while_dispatch_is_down_survive_a_broker_restart(http, dispatch_stopped):
    sku = in_stock_sku()
    carts = {}
    for _ in range(N):
        cid = "durable-%s" % uuid.uuid4().hex
        carts[cid] = make_cart(http, cid, sku)
    depth0 = queue_depth()
    orderids = []
    for cid, cart in carts.items():
        r = pay(http, cid, cart)
        assert r.status_code == 200, r.text
        orderids.append(r.json()["orderid"])
    assert len(set(orderids)) == N
    assert queue_depth() == depth0 + N

    stack("stop", "rabbitmq")
    stack("start", "rabbitmq")
    assert queue_depth() == depth0 + N, "the broker restart lost queued orders"

    stack("start", "dispatch")
    assert wait_dispatched(orderids, timeout=60) == set()
    lines = [l for l in dispatched_lines(dispatch_log()) if any(o in l for o in orderids)]
    assert len(lines) == N, "an order was dispatched twice"  # each exactly once, as paid
    assert not [l for l in lines if "redelivered=true" in l or "error=" in l]
    assert wait_for(lambda: queue_depth() == 0, 30)


@pytest.fixture
def queue_refuses_messages():
    """A broker policy that makes the orders queue refuse every new message (max-length 0 with
    overflow reject-publish: the broker nacks the publish); always removed afterwards."""
    policy = "shop-test-reject-%s" % uuid.uuid4().hex[:8]
    rabbitmqctl("set_policy", "--apply-to", "queues", "--priority", "900", policy, "^orders$",
                '{"max-length": 0, "overflow": "reject-publish"}')
    try:
        yield
    finally:
        rabbitmqctl("clear_policy", policy)


def test_a_nacked_order_is_503_and_placed_nowhere(http, queue_refuses_messages):
    name = "nack-%s" % uuid.uuid4().hex[:12]
    r = http.post(service_url("user") + "/register", timeout=10,
                  json={"name": name, "password": "pw-" + name, "email": name + "@example.com"})
    assert r.status_code == 200, r.text
    cart = make_cart(http, name, in_stock_sku())
    assert wait_for(lambda: "shop-test-reject" in rabbitmqctl("list_queues", "name", "policy"), 10)
    for _ in range(2):
        r = pay(http, name, cart)
        assert (r.status_code, r.text) == (503, "order not placed: RabbitMQ not available")
    assert http.get("%s/history/%s" % (service_url("user"), name), timeout=10).status_code == 404
    assert http.get("%s/cart/%s" % (service_url("cart"), name), timeout=10).status_code == 200
    assert queue_depth() == 0
