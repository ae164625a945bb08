"""D22: with AMQP_DECLARE=passive, payment and dispatch only check the broker topology, so that
their users need no "configure" permission (the deploy tool declares it). Against the local
stack's RabbitMQ, in a vhost of the test's own with users shaped like the deploy tool's
(payment: write on the exchange only; dispatch: read on the queue, write on its dead-letter
exchange only): with the topology absent, payment answers 503 and both say why in their log and
keep running; once shop-amqp-publish (the tool the deploy tool runs) declared it, both recover by
themselves and an order goes from payment to dispatch. The stack's own vhost is never touched.
"""
import os
import re
import subprocess
import tempfile
import uuid

import pytest

from conftest import (listener, rabbitmqctl, sanitizer_reports, spawn, start_service, url_of,
                      wait_for)
from test_orders_faults import in_stock_sku, make_cart

BIN = os.environ.get("SHOP_BIN_DIR", "build/bin")


@pytest.fixture
def vhost():
    """A vhost with the deploy tool's two users (and the stack's user as its administrator, who
    declares the topology); deleted afterwards with everything in it."""
    tag = uuid.uuid4().hex[:8]
    name, users = "d22-" + tag, {"payment": "pay-" + tag, "dispatch": "disp-" + tag}
    admin = os.environ.get("AMQP_USER", "roboshop")
    rabbitmqctl("add_vhost", name)
    try:
        rabbitmqctl("set_permissions", "-p", name, admin, ".*", ".*", ".*")
        for user in users.values():
            rabbitmqctl("add_user", user, "pw-" + user)
        rabbitmqctl("set_permissions", "-p", name, users["payment"], "^$", "^robot-shop$", "^$")
        rabbitmqctl("set_permissions", "-p", name, users["dispatch"], "^$", "^orders\\.dead$", "^orders$")
        yield name, users
    finally:
        rabbitmqctl("delete_vhost", name)
        for user in users.values():  # (delete_user fails for a user add_user never made)
            try:
                rabbitmqctl("delete_user", user)
            except AssertionError:
                pass


def service_env(vh, user, **more):
    env = dict(os.environ, AMQP_VHOST=vh, AMQP_USER=user, AMQP_PASS="pw-" + user, AMQP_DECLARE="passive")
    env.update(more)
    return env


def declare(vh, *args):
    """The deploy tool's way: shop-amqp-publish --count declares what it names (active)."""
    env = dict(os.environ, AMQP_VHOST=vh)
    env.pop("AMQP_DECLARE", None)
    r = subprocess.run([os.path.join(BIN, "shop-amqp-publish"), *args, "--count"], env=env,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr


def test_passive_declares_503_until_the_topology_exists_then_recover(http, vhost):
    vh, users = vhost
    plog = tempfile.NamedTemporaryFile(prefix="payment-passive-", suffix=".log", delete=False)
    dlog = tempfile.NamedTemporaryFile(prefix="dispatch-passive-", suffix=".log", delete=False)
    with listener() as sock:
        env = service_env(vh, users["payment"], SHOP_TEST_URL=url_of(sock))
        pay = start_service("payment", "/metrics", env, out=plog, sock=sock)
        purl = env["SHOP_TEST_URL"]
    with listener() as sock:
        denv = service_env(vh, users["dispatch"], DISPATCH_DEAD_LETTER_EXCHANGE="orders.dead")
        disp = spawn([os.path.join(BIN, "dispatch")], sock, env=denv, stdout=dlog, stderr=subprocess.STDOUT)
        durl = url_of(sock)
    try:
        cid = "passive-" + uuid.uuid4().hex
        cart = make_cart(http, cid, in_stock_sku())
        r = http.post("%s/pay/%s" % (purl, cid), json=cart, timeout=30)
        assert (r.status_code, r.text) == (503, "order not placed: RabbitMQ not available")
        assert http.get(purl + "/health", timeout=10).status_code == 503
        assert wait_for(lambda: http.get(durl + "/health", timeout=5).status_code == 503, 30)
        with open(plog.name, errors="replace") as f:
            text = f.read()
        assert re.search(r"exchange\.declare robot-shop \(passive: the deploy tool declares it\).*404", text), text
        assert pay.poll() is None and disp.poll() is None, "a missing topology must not end a process"

        declare(vh)  # robot-shop, orders, the binding
        declare(vh, "-e", "orders.dead", "-q", "orders.dead", "-k", "orders.dead")

        def paid():
            r = http.post("%s/pay/%s" % (purl, cid), json=cart, timeout=30)
            return r.json()["orderid"] if r.status_code == 200 else None
        oid = wait_for(paid, 60, interval=1)
        assert oid, "payment did not recover once the topology was declared"
        assert wait_for(lambda: http.get(durl + "/health", timeout=5).status_code == 200, 60)

        def dispatched():
            with open(dlog.name, errors="replace") as f:
                return "dispatched orderid=%s" % oid in f.read()
        assert wait_for(dispatched, 60), "dispatch (passive) did not consume the order"
    finally:
        for proc in (pay, disp):
            proc.terminate()
            assert proc.wait(30) == 0
            assert not sanitizer_reports(proc.pid)
        for f in (plog, dlog):
            os.unlink(f.name)


def test_a_bad_amqp_declare_value_is_refused_at_start():
    env = dict(os.environ, AMQP_DECLARE="lazy")
    r = subprocess.run([os.path.join(BIN, "payment")], env=env, capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert "AMQP_DECLARE must be active or passive, not 'lazy'" in r.stdout + r.stderr
