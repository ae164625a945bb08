"""Contract tests of the dispatch service (docs/api/dispatch.yaml, D5, D8, D14) against the real stack.

Dispatch's observable behaviour is the log line `dispatched orderid=…` per order (in
$SHOP_LOG_DIR/dispatch.log), its /health and /metrics, and the state of the `orders` queue
(read with build/bin/shop-amqp-publish --count, which also publishes raw messages).
Tests that need other settings (DISPATCH_DELAY_MS, DISPATCH_ERROR_PERCENT) run a second
dispatch process themselves while the stack's dispatch is stopped.
"""
import os
import re
import signal
import subprocess
import uuid

import pytest
import requests

from conftest import (SecondService, dispatch_log, dispatched_ids, dispatched_lines, rabbitmqctl, service_url, stack,
                      wait_dispatched, wait_for)

BIN = os.environ.get("SHOP_BIN_DIR", "build/bin")


def tool(*args, check=True):
    """Runs shop-amqp-publish (same AMQP_* environment as the services)."""
    r = subprocess.run([os.path.join(BIN, "shop-amqp-publish"), *args], capture_output=True,
                       text=True, timeout=30)
    if check:
        assert r.returncode == 0, r.stderr
    return r


def queue_depth():
    out = tool("--count").stdout
    return int(re.search(r"messages=(\d+)", out).group(1))


def queue_counts():
    """(ready, unacknowledged) messages of the orders queue, as the broker counts them."""
    out = rabbitmqctl("list_queues", "name", "messages_ready", "messages_unacknowledged")
    m = re.search(r"^orders\t(\d+)\t(\d+)$", out, re.M)
    assert m, out
    return int(m.group(1)), int(m.group(2))


def wait_held(n):
    """Waits until n messages are delivered and not yet acked (a dispatch holds them)."""
    assert wait_for(lambda: queue_counts() == (0, n), 20), queue_counts()


def metric(name, base=None):
    text = requests.get((base or service_url("dispatch")) + "/metrics", timeout=10).text
    m = re.search(r"^%s (\S+)$" % re.escape(name), text, re.M)
    return float(m.group(1)) if m else None


def order_message(orderid):
    return '{"orderid": "%s", "user": "dispatch-test", "cart": {"total": 1.0, "items": []}}' % orderid


def in_stock_sku(http):
    products = http.get(service_url("catalogue") + "/products", timeout=10).json()
    return next(p["sku"] for p in products if p.get("instock", 1) != 0)


def make_cart(http, cart_id):
    r = http.get("%s/add/%s/%s/1" % (service_url("cart"), cart_id, in_stock_sku(http)), timeout=10)
    assert r.status_code == 200, r.text
    r = http.post("%s/shipping/%s" % (service_url("cart"), cart_id), timeout=10,
                  json={"distance": 100, "cost": 12.5, "location": "Testland Testville"})
    assert r.status_code == 200, r.text
    return r.json()


class Dispatch(SecondService):
    """A second dispatch process with extra environment and its own HTTP port and log."""

    def __init__(self, **env):
        super().__init__("dispatch", **env)

    def wait_consuming(self):
        return self.wait_ready(15)

    def stop(self, sig=signal.SIGTERM):
        return self.signal_and_wait(sig)

    def finish(self):
        """Stops it (if needed); asserts exit 0 and no sanitizer report; removes the log."""
        self.assert_clean_exit(self.stop())


@pytest.fixture
def stack_dispatch_stopped():
    """Stops the stack's dispatch for the test and always starts it again."""
    dispatch_log()
    stack("stop", "dispatch")
    try:
        yield
    finally:
        stack("start", "dispatch")


# ---- health and metrics -------------------------------------------------------------------------

def test_health_reports_rabbitmq_and_redis(http):
    r = http.get(service_url("dispatch") + "/health", timeout=10)
    assert r.status_code == 200
    assert r.json() == {"app": "OK", "rabbitmq": True, "redis": True}


def test_metrics_and_unknown_routes(http):
    base = service_url("dispatch")
    r = http.get(base + "/metrics", timeout=10)
    assert r.status_code == 200
    assert "# TYPE orders_dispatched_total counter" in r.text
    assert re.search(r"^orders_dispatched_total \d+$", r.text, re.M)
    assert http.get(base + "/nothing", timeout=10).status_code == 404
    assert http.post(base + "/health", timeout=10).status_code == 405


# ---- messages -----------------------------------------------------------------------------------

def test_published_order_is_dispatched_and_counted():
    before = metric("orders_dispatched_total")
    oid = "direct-%s" % uuid.uuid4()
    tool(order_message(oid))
    assert wait_dispatched([oid]) == set()
    assert wait_for(lambda: metric("orders_dispatched_total") >= before + 1, 5)


def test_one_log_line_per_order_even_with_control_characters():
    oid = "nl-%s" % uuid.uuid4()
    tool('{"orderid": "%s\\nforged-%s"}' % (oid, oid))
    assert wait_dispatched([oid + ".forged-" + oid]) == set()
    with open(dispatch_log(), errors="replace") as f:
        assert not any(line.startswith("forged-" + oid) for line in f)


def test_malformed_messages_do_not_stop_dispatch(http):
    pid_file = os.path.join(os.environ["SHOP_STATE_DIR"], "run", "dispatch.pid")
    pid = open(pid_file).read().strip() if os.path.exists(pid_file) else None
    bad_before = metric("dispatch_bad_messages_total")
    bad = ["garbage", "", "[1, 2]", "42", '"orderid"', '{"orderid": 7}', '{"orderid": null}',
           '{"user": "x"}', "{\"orderid\": \"\xff", '{"orderid": ["a"]}']
    tool(*bad)
    oid = "after-bad-%s" % uuid.uuid4()
    tool(order_message(oid))
    assert wait_dispatched([oid]) == set()
    assert wait_for(lambda: metric("dispatch_bad_messages_total") >= bad_before + len(bad), 5)
    # same process, still healthy, nothing left behind (bad messages are acked, not requeued)
    if pid:
        assert open(pid_file).read().strip() == pid
    assert http.get(service_url("dispatch") + "/health", timeout=10).json()["rabbitmq"] is True
    assert wait_for(lambda: queue_depth() == 0, 10)


# ---- dispatch down: orders wait in the queue (D5) -----------------------------------------------

def test_orders_wait_while_dispatch_is_down(http, stack_dispatch_stopped):
    carts = {}
    for _ in range(50):
        cid = "dtest-%s" % uuid.uuid4().hex
        carts[cid] = make_cart(http, cid)
    depth0 = queue_depth()
    orderids = []
    for cid, cart in carts.items():
        r = http.post("%s/pay/%s" % (service_url("payment"), cid), json=cart, timeout=30)
        assert r.status_code == 200, r.text
        orderids.append(r.json()["orderid"])
    assert len(set(orderids)) == 50
    assert queue_depth() == depth0 + 50  # persisted in the queue, nobody consuming
    assert dispatched_ids(dispatch_log()).isdisjoint(orderids)
    stack("start", "dispatch")
    missing = wait_dispatched(orderids, timeout=60)
    assert missing == set(), "%d of 50 orders never dispatched" % len(missing)
    assert wait_for(lambda: queue_depth() == 0, 10)


def test_error_percent_and_fixed_delay(stack_dispatch_stopped):
    # any integer is clamped to 0..100, as the reference did (not refused)
    d = Dispatch(DISPATCH_ERROR_PERCENT=10**12, DISPATCH_DELAY_MS=0).wait_consuming()
    try:
        ids = ["err-%s" % uuid.uuid4() for _ in range(3)]
        tool(*[order_message(i) for i in ids])
        assert wait_dispatched(ids, paths=[d.log.name], timeout=10) == set()
        lines = [l for l in dispatched_lines(d.log.name) if any(i in l for i in ids)]
        assert len(lines) == 3
        assert all('error="Failed to dispatch to SOP"' in l for l in lines)
        assert metric("orders_dispatch_failed_total", base=d.url) == 3
        assert metric("orders_dispatched_total", base=d.url) == 3
    finally:
        d.finish()


def test_sigterm_finishes_in_flight_orders(stack_dispatch_stopped):
    # each order takes 2 x 5 s (long enough to see them held), within the 30 s drain: SIGTERM
    # while they are in flight lets them finish and be acked
    d = Dispatch(DISPATCH_DELAY_MS=5000, SHOP_DRAIN_MS=30000).wait_consuming()
    ids = ["term-%s" % uuid.uuid4() for _ in range(3)]
    try:
        tool(*[order_message(i) for i in ids])
        wait_held(3)
        assert d.stop() == 0
        assert dispatched_ids(d.log.name) >= set(ids)
    finally:
        d.finish()
    assert queue_depth() == 0


def test_sigterm_leaves_unfinished_orders_to_the_broker(stack_dispatch_stopped):
    # each order takes 2 x 5 s, longer than the 1 s drain: they are not acked, the broker
    # requeues them and the next dispatch delivers them (redelivered)
    d = Dispatch(DISPATCH_DELAY_MS=5000, SHOP_DRAIN_MS=1000).wait_consuming()
    ids = ["slow-%s" % uuid.uuid4() for _ in range(2)]
    try:
        tool(*[order_message(i) for i in ids])
        wait_held(2)
        assert d.stop() == 0
        assert not (dispatched_ids(d.log.name) & set(ids))
    finally:
        d.finish()
    assert queue_depth() >= 2
    stack("start", "dispatch")
    assert wait_dispatched(ids, timeout=30) == set()
    lines = [l for l in dispatched_lines(dispatch_log()) if any(i in l for i in ids)]
    assert len(lines) == 2 and all("redelivered=true" in l for l in lines), lines


@pytest.mark.parametrize("env,name", [
    ({"DISPATCH_DELAY_MS": "fast"}, "DISPATCH_DELAY_MS"),
    ({"DISPATCH_ERROR_PERCENT": "ten"}, "DISPATCH_ERROR_PERCENT"),
    ({"AMQP_PORT": "70000"}, "AMQP_PORT"),
    ({"DISPATCH_SERVER_PORT": "x"}, "DISPATCH_SERVER_PORT"),
])
def test_bad_configuration_stops_at_start(env, name):
    Dispatch(**env).assert_stops_naming(name)
