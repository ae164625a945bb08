"""Fault tests of the order pipeline (contract D5, D8, D16; architecture "faults"): the broker
goes away or restarts while payments flow, dispatch is killed while it holds orders. The
invariant: every order answered 200 is dispatched (at least once), and an order that was not
placed is not reported as placed and leaves no order history. Every test leaves RabbitMQ and
dispatch running (try/finally).
"""
import os
import re
import signal
import threading
import time
import uuid

import pytest
import requests

from conftest import dispatch_log, dispatched_ids, dispatched_lines, service_url, stack, wait_dispatched, wait_for
from test_dispatch import Dispatch, wait_held


def in_stock_sku():
    products = requests.get(service_url("catalogue") + "/products", timeout=10).json()
    return next(p["sku"] for p in products if p.get("instock", 1) != 0)


def make_cart(http, cart_id, sku):
    r = http.get("%s/add/%s/%s/1" % (service_url("cart"), cart_id, sku), timeout=10)
    assert r.status_code == 200, r.text
    r = http.post("%s/shipping/%s" % (service_url("cart"), cart_id), timeout=10,
                  json={"distance": 100, "cost": 12.5, "location": "Testland Testville"})
    assert r.status_code == 200, r.text
    return r.json()


def pay(http, cart_id, cart):
    return http.post("%s/pay/%s" % (service_url("payment"), cart_id), json=cart, timeout=30)


def sold_count():
    text = requests.get(service_url("payment") + "/metrics", timeout=10).text
    return float(re.search(r"^sold_count_total (\S+)$", text, re.M).group(1))


def rabbit_up():
    try:
        return requests.get(service_url("payment") + "/health", timeout=5).status_code == 200
    except requests.RequestException:
        return False


def restart_broker_and_dispatch():
    """Makes sure RabbitMQ and dispatch run again and payment sees the broker."""
    stack("start", "rabbitmq")
    stack("start", "dispatch")
    assert wait_for(rabbit_up, 30), "payment did not see RabbitMQ again within 30 s"


@pytest.fixture
def restore_rabbitmq():
    """Makes sure RabbitMQ (and dispatch) run again after the test, whatever happened."""
    dispatch_log()
    try:
        yield
    finally:
        restart_broker_and_dispatch()


@pytest.fixture
def dispatch_stopped():
    """Dispatch stopped for the test (orders stay in the queue); afterwards RabbitMQ and dispatch
    run again, whatever happened."""
    dispatch_log()
    stack("stop", "dispatch")
    try:
        yield
    finally:
        restart_broker_and_dispatch()


def test_broker_down_means_503_and_no_order(http, restore_rabbitmq):
    name = "fault-%s" % uuid.uuid4().hex[:12]
    r = http.post(service_url("user") + "/register", timeout=10,
                  json={"name": name, "password": "pw-" + name, "email": name + "@example.com"})
    assert r.status_code == 200, r.text
    cart = make_cart(http, name, in_stock_sku())
    stack("stop", "rabbitmq")

    # health names the broker; dispatch notices it lost its connection
    r = http.get(service_url("payment") + "/health", timeout=10)
    assert (r.status_code, r.text) == (503, "RabbitMQ not available")
    assert wait_for(lambda: http.get(service_url("dispatch") + "/health", timeout=5).status_code == 503, 15)
    assert http.get(service_url("dispatch") + "/health", timeout=5).json() == {"app": "OK", "rabbitmq": False,
                                                                               "redis": True}

    # paying fails fast with 503: not placed, no history written, cart kept, and no sale counted
    # (D21: the counters move only after the broker's confirm; the reference counted first)
    sold = sold_count()
    for _ in range(3):
        r = pay(http, name, cart)
        assert r.status_code == 503, r.text
        assert "RabbitMQ" in r.text
    assert sold_count() == sold
    assert http.get("%s/history/%s" % (service_url("user"), name), timeout=10).status_code == 404
    assert http.get("%s/cart/%s" % (service_url("cart"), name), timeout=10).status_code == 200

    # the broker returns: the same cart pays, the order is recorded and dispatched
    stack("start", "rabbitmq")
    assert wait_for(rabbit_up, 30)
    r = pay(http, name, cart)
    assert r.status_code == 200, r.text
    orderid = r.json()["orderid"]
    hist = http.get("%s/history/%s" % (service_url("user"), name), timeout=10).json()["history"]
    assert [h["orderid"] for h in hist] == [orderid]
    assert wait_for(lambda: http.get(service_url("dispatch") + "/health", timeout=5).status_code == 200, 45)
    assert wait_dispatched([orderid]) == set()


def test_broker_restart_while_payments_flow(restore_rabbitmq):
    """Three payers work through a list of carts, each cart paid until it is placed (a 503
    leaves the cart, so the payer polls it again). Carts are handed out in three batches: before
    the outage, while the broker is down (each of them meets 503 first), and after the restart."""
    sku = in_stock_sku()
    carts = {}
    with requests.Session() as s:
        for _ in range(90):
            cid = "flow-%s" % uuid.uuid4().hex
            carts[cid] = make_cart(s, cid, sku)
    batches = [list(carts)[:30], list(carts)[30:60], list(carts)[60:]]
    todo = list(batches[0])
    all_given = threading.Event()
    lock = threading.Lock()
    results = []  # (status, orderid or None, time)

    def attempt(s, cid):
        try:
            r = pay(s, cid, carts[cid])
            status = r.status_code
            oid = r.json()["orderid"] if status == 200 else None
        except requests.RequestException:
            status, oid = 0, None
        with lock:
            results.append((status, oid, time.time()))
        return status != 503  # a 503 keeps the cart: poll it again

    def next_cart():
        with lock:
            return todo.pop(0) if todo else None

    def payer():
        with requests.Session() as s:
            while True:
                cid = wait_for(lambda: next_cart() or all_given.is_set(), 120, interval=0.05)
                if cid is True or not cid:
                    return
                assert wait_for(lambda: attempt(s, cid), 60), "cart %s never paid" % cid

    threads = [threading.Thread(target=payer) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        assert wait_for(lambda: len(results) >= 20, 30), "only %d payments before the outage" % len(results)
        t_stop = time.time()
        stack("stop", "rabbitmq")
        with lock:
            todo.extend(batches[1])
        assert wait_for(lambda: any(st == 503 for st, _, _ in results), 30), "the outage was not observed"
        stack("start", "rabbitmq")
        t_start = time.time()
    finally:
        with lock:
            todo.extend(batches[2])
        all_given.set()
        for t in threads:
            t.join(150)

    ok = [oid for st, oid, _ in results if st == 200]
    assert any(st == 200 and ts < t_stop for st, _, ts in results), "no payment before the restart"
    assert any(st == 200 and ts > t_start for st, _, ts in results), "no payment after the restart"
    assert all(st in (200, 503) for st, _, _ in results), {st for st, _, _ in results}
    assert not todo, "%d carts never handed out" % len(todo)
    assert len(ok) == len(carts), "%d of %d carts paid" % (len(ok), len(carts))
    assert len(set(ok)) == len(ok)
    missing = wait_dispatched(ok, timeout=90)
    assert missing == set(), "%d of %d orders answered 200 were never dispatched" % (len(missing), len(ok))


def test_dispatch_killed_with_orders_in_flight_loses_nothing(http, restore_rabbitmq):
    sku = in_stock_sku()
    carts = {}
    for _ in range(5):
        cid = "kill-%s" % uuid.uuid4().hex
        carts[cid] = make_cart(http, cid, sku)
    stack("stop", "dispatch")
    d = Dispatch(DISPATCH_DELAY_MS=5000)
    try:
        d.wait_consuming()
        orderids = []
        for cid, cart in carts.items():
            r = pay(http, cid, cart)
            assert r.status_code == 200, r.text
            orderids.append(r.json()["orderid"])
        wait_held(len(orderids))  # delivered to the doomed dispatch, not yet acked
        d.proc.send_signal(signal.SIGKILL)
        d.proc.wait(10)
        assert not (dispatched_ids(d.log.name) & set(orderids))
    finally:
        if d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait(10)
        os.unlink(d.log.name)
    stack("start", "dispatch")
    assert wait_dispatched(orderids, timeout=30) == set()
    # the broker handed them out again: they were in flight, not simply waiting in the queue
    lines = [l for l in dispatched_lines(dispatch_log()) if any(o in l for o in orderids)]
    assert len(lines) == len(orderids) and all("redelivered=true" in l for l in lines), lines
