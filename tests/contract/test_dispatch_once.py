"""Dispatch processes each order once and drops nothing (D21, issue 15): the per-order record in Redis
survives dispatch's death between the work and the ack and the broker's redeliveries; messages it
cannot process go to the dead-letter queue `orders.dead`; the `orders` queue a broker already has
from the previous release keeps working.

Duplicates are counted in dispatch_duplicates_total, dead letters in dispatch_dead_letters_total;
the dead-letter queue is read with `shop-amqp-publish -q orders.dead --take N` (one line per body,
bytes outside printable ASCII as \\xHH).
"""
import os
import re
import signal
import uuid

import pytest
import requests

from conftest import (dispatch_log, dispatched_ids, dispatched_lines, rabbitmqctl, service_url, stack,
                      wait_dispatched, wait_for)
from test_dispatch import (Dispatch, metric, order_message, queue_counts, queue_depth,  # noqa: F401
                           stack_dispatch_stopped, tool, wait_held)

DEAD = "orders.dead"


def take_dead_letters():
    """Empties the dead-letter queue; returns the bodies it held (escaped as the tool prints them)."""
    return tool("-q", DEAD, "-k", DEAD, "--take", "100000").stdout.splitlines()


def kill(d):
    """SIGKILL: no drain, no ack; the broker requeues what the process held."""
    d.stop(signal.SIGKILL)
    os.unlink(d.log.name)


def lines_of(oid, *paths):
    return [line for line in dispatched_lines(dispatch_log(), *paths) if "orderid=%s" % oid in line]


def test_killed_between_processing_and_ack_dispatches_once(stack_dispatch_stopped):
    # DISPATCH_ACK_DELAY_MS holds the ack after the work is done and logged: the kill lands there
    d = Dispatch(DISPATCH_DELAY_MS=0, DISPATCH_ACK_DELAY_MS=600000).wait_consuming()
    oid = "killed-%s" % uuid.uuid4()
    try:
        tool(order_message(oid))
        assert wait_for(lambda: oid in dispatched_ids(d.log.name), 20), d.text()
        assert queue_counts() == (0, 1)  # processed, not acked
        first = lines_of(oid, d.log.name)
    finally:
        kill(d)
    assert len(first) == 1
    # the broker redelivers it to the restarted dispatch, which knows it was dispatched
    stack("start", "dispatch")
    assert wait_for(lambda: metric("dispatch_duplicates_total") == 1, 20)
    assert wait_for(lambda: queue_depth() == 0, 10)
    assert lines_of(oid) == []  # not dispatched again
    with open(dispatch_log(), errors="replace") as f:
        assert re.search(r"duplicate orderid=%s skipped \(dispatched before\) redelivered=true" % oid, f.read())


def test_the_same_order_twice_is_dispatched_once():
    # a publisher retry after a lost confirm can store a message twice (at-least-once)
    before = metric("dispatch_duplicates_total")
    oid = "twice-%s" % uuid.uuid4()
    tool(order_message(oid), order_message(oid))
    assert wait_dispatched([oid]) == set()
    assert wait_for(lambda: queue_depth() == 0, 10)
    assert len(lines_of(oid)) == 1
    assert wait_for(lambda: metric("dispatch_duplicates_total") == before + 1, 20)


def test_poison_messages_are_dead_lettered_and_the_queue_keeps_flowing():
    take_dead_letters()
    dead0, bad0 = metric("dispatch_dead_letters_total"), metric("dispatch_bad_messages_total")
    tag = uuid.uuid4().hex
    poison = ["garbage-%s" % tag, '{"orderid": 42, "tag": "%s"}' % tag, '["%s"]' % tag,
              '{"orderid": "", "tag": "%s"}' % tag, '{"orderid": "%s%s"}' % (tag, "x" * 300)]
    good = ["after-poison-%s-%d" % (tag, i) for i in range(3)]
    tool(poison[0], order_message(good[0]), *poison[1:], *[order_message(g) for g in good[1:]])
    assert wait_dispatched(good) == set()
    assert wait_for(lambda: metric("dispatch_dead_letters_total") == dead0 + len(poison), 20)
    assert metric("dispatch_bad_messages_total") == bad0 + len(poison)
    assert wait_for(lambda: queue_depth() == 0, 10)
    assert sorted(take_dead_letters()) == sorted(poison)  # each one, byte for byte


def test_an_order_that_never_finishes_is_dead_lettered(stack_dispatch_stopped):
    # a delivery that dies mid-work (a crash, a kill) comes back; past DISPATCH_MAX_ATTEMPTS it is
    # moved to the dead-letter queue instead of being tried forever
    take_dead_letters()
    oid = "crashy-%s" % uuid.uuid4()
    d = Dispatch(DISPATCH_DELAY_MS=600000).wait_consuming()
    try:
        tool(order_message(oid))
        wait_held(1)
    finally:
        kill(d)
    d = Dispatch(DISPATCH_DELAY_MS=0, DISPATCH_MAX_ATTEMPTS=1).wait_consuming()
    try:
        assert wait_for(lambda: metric("dispatch_dead_letters_total", base=d.url) == 1, 20), d.text()
        assert wait_for(lambda: queue_depth() == 0, 10)
        assert oid not in dispatched_ids(d.log.name)
        assert "1 deliveries never finished" in d.text()
    finally:
        d.finish()
    assert take_dead_letters() == [order_message(oid)]


def test_redis_down_holds_orders_until_it_returns(stack_dispatch_stopped):
    d = Dispatch(DISPATCH_DELAY_MS=0).wait_consuming()
    oid = "redisdown-%s" % uuid.uuid4()
    try:
        stack("stop", "redis")
        try:
            h = requests.get(d.url + "/health", timeout=10)
            assert h.status_code == 503 and h.json() == {"app": "OK", "rabbitmq": True, "redis": False}
            tool(order_message(oid))
            wait_held(1)  # neither dispatched nor dropped: waiting, unacked
            assert oid not in dispatched_ids(d.log.name)
        finally:
            stack("start", "redis")
        assert wait_dispatched([oid], paths=[d.log.name]) == set()
        assert wait_for(lambda: queue_depth() == 0, 10)
        assert len(lines_of(oid, d.log.name)) == 1
        assert metric("dispatch_record_errors_total", base=d.url) >= 1
    finally:
        d.finish()


def amqp_channel():
    pika = pytest.importorskip("pika")
    creds = pika.PlainCredentials(os.environ["AMQP_USER"], os.environ["AMQP_PASS"])
    params = pika.ConnectionParameters(host=os.environ["AMQP_HOST"], port=int(os.environ["AMQP_PORT"]),
                                       credentials=creds, socket_timeout=10, blocked_connection_timeout=10)
    conn = pika.BlockingConnection(params)
    return pika, conn, conn.channel()


def test_a_broker_with_the_previous_release_queue_keeps_working(stack_dispatch_stopped):
    # the previous release's topology, as its dispatch and payment declared it: a durable `orders`
    # queue without arguments, bound to robot-shop, holding persistent messages (one unreadable)
    take_dead_letters()
    assert queue_depth() == 0
    rabbitmqctl("delete_queue", "orders")
    pika, conn, ch = amqp_channel()
    tag = uuid.uuid4().hex
    oids = ["upgrade-%s-%d" % (tag, i) for i in range(3)]
    try:
        ch.exchange_declare("robot-shop", "direct", durable=True)
        ch.queue_declare("orders", durable=True)
        ch.queue_bind("orders", "robot-shop", "orders")
        persistent = pika.BasicProperties(delivery_mode=2)
        for body in [order_message(oids[0]), "old-garbage-" + tag, order_message(oids[1])]:
            ch.basic_publish("robot-shop", "orders", body.encode(), persistent)
        # dead-lettering by queue arguments would need a redeclaration the broker refuses
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
            ch.queue_declare("orders", durable=True, arguments={"x-dead-letter-exchange": "robot-shop"})
        assert refused.value.reply_code == 406  # PRECONDITION_FAILED
    finally:
        conn.close()
    stack("start", "dispatch")  # this release, on that broker
    tool(order_message(oids[2]))
    assert wait_dispatched(oids) == set()
    assert wait_for(lambda: queue_depth() == 0, 10)
    assert take_dead_letters() == ["old-garbage-" + tag]
    out = rabbitmqctl("list_queues", "name", "durable", "arguments")
    assert re.search(r"^orders\ttrue\t\[\]$", out, re.M), out
