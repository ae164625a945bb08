"""Every order once, as the customer sees it (D21), and the sale counted after the fact: a pay
retried after a dropped connection or a 500, two identical pays at once, an Idempotency-Key used
twice or for another cart, a failed publish, MongoDB down at checkout (the history entry is
written later by payment's outbox, across a payment restart).

"One message" is read from the publishing side: payment logs one "order placed orderid=... user=..."
line per order the broker confirmed. Tests that need another configuration start a second payment
process (test_payment.Payment) on the stack's Redis, RabbitMQ, user and cart services.
"""
import contextlib
import os
import re
import socket
import subprocess
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import requests

from conftest import QuietHandler, close_server, closed_port, serve_http, service_url, stack, wait_dispatched, wait_for
from test_payment import Payment, anon_id, cart_status, make_cart, metrics, pay, stop_all


def placed(log_text, cart_id):
    """Order ids payment logged as placed (confirmed by the broker) for cart_id."""
    return re.findall(r"order placed orderid=(\S+) user=%s$" % re.escape(cart_id), log_text, re.M)


def stack_payment_log():
    with open(os.path.join(os.environ["SHOP_LOG_DIR"], "payment.log"), errors="replace") as f:
        return f.read()


class CartProxy:
    """A pass-through proxy in front of the stack's cart service that answers 500 to the first
    fail_deletes DELETE requests instead of forwarding them (a cart service failing after the
    order was published). older=True drops the query string, as a cart service from before
    GET /nonce/{id}?cart=1 (D21) ignores it."""

    def __init__(self, fail_deletes=1, older=False):
        self.fail_deletes = fail_deletes
        self.deletes = 0
        self.cookies = []  # (method, path, Cookie header) of every request
        self.paths = []  # the path of every request, its query string included
        target = service_url("cart")
        proxy = self

        class Handler(QuietHandler):
            protocol_version = "HTTP/1.1"

            def relay(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                proxy.cookies.append((self.command, self.path.split("/")[1], self.headers.get("Cookie")))
                proxy.paths.append(self.path)
                if self.command == "DELETE":
                    proxy.deletes += 1
                    if proxy.deletes <= proxy.fail_deletes:
                        return self.answer(500, b"injected failure", "text/plain")
                path = self.path.split("?")[0] if older else self.path
                r = requests.request(self.command, target + path, data=body or None, timeout=10,
                                     headers={k: v for k, v in self.headers.items()
                                              if k.lower() in ("content-type", "cookie")})
                self.answer(r.status_code, r.content, r.headers.get("Content-Type", "text/plain"))

            do_GET = do_POST = do_DELETE = relay

        self.server = serve_http(Handler)
        self.port = self.server.server_port

    def close(self):
        close_server(self.server)


def test_pay_retried_after_the_connection_dropped_mid_answer(http):
    """The client's connection goes while payment works (PAYMENT_DELAY_MS); the order is placed
    all the same; the client's retry answers that order: one order id, one message."""
    p = Payment(PAYMENT_DELAY_MS=1500).wait_ready()
    try:
        cart_id = anon_id()
        cart = make_cart(http, cart_id)
        host, port = re.match(r"http://([^:/]+):(\d+)", p.url).groups()
        body = requests.models.complexjson.dumps(cart).encode()
        with socket.create_connection((host, int(port)), timeout=10) as s:
            s.sendall(b"POST /pay/%s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: %d\r\n\r\n%s" % (cart_id.encode(), len(body), body))
            time.sleep(0.3)  # the request is read; payment sleeps in PAYMENT_DELAY_MS
        # the connection is gone; the first order goes through regardless
        assert wait_for(lambda: placed(p.text(), cart_id), 30), p.text()[-2000:]
        assert wait_for(lambda: cart_status(http, cart_id) == 404, 30)
        r = pay(requests, cart_id, cart, base=p.url)
        assert r.status_code == 200, r.text
        assert placed(p.text(), cart_id) == [r.json()["orderid"]]
        assert wait_dispatched([r.json()["orderid"]]) == set()
    finally:
        p.stop()


@contextlib.contextmanager
def payment_behind_proxy(**proxy_args):
    """A payment service whose cart service is a CartProxy (made with proxy_args); both end with
    the block."""
    proxy = CartProxy(**proxy_args)
    try:
        p = Payment(CART_HOST="127.0.0.1", CART_PORT=proxy.port).wait_ready()
        try:
            yield p, proxy
        finally:
            p.stop()
    finally:
        proxy.close()


def test_pay_retried_after_a_500_from_the_cart_service(http):
    """The cart service fails the cart's deletion after the order was published (500); the
    client retries: the same order id, one message, and the retry deletes the cart."""
    with payment_behind_proxy(fail_deletes=1) as (p, proxy):
        cart_id = anon_id()
        cart = make_cart(http, cart_id)
        r = pay(requests, cart_id, cart, base=p.url)
        assert r.status_code == 500, r.text
        assert cart_status(http, cart_id) == 200  # not deleted: the failure was injected
        r = pay(requests, cart_id, cart, base=p.url)
        assert r.status_code == 200, r.text
        orderid = r.json()["orderid"]
        assert placed(p.text(), cart_id) == [orderid]
        assert cart_status(http, cart_id) == 404
        m = metrics(requests, base=p.url)
        assert m["sold_count_total"] == 1 and m["payment_replayed_total"] == 1
        assert wait_dispatched([orderid]) == set()


def test_caller_cookie_is_forwarded_to_the_cart_service(http):
    """Payment forwards the caller's Cookie header on each of its calls to the cart service
    (the nonce with the cart, its deletion), so a peer that checks sessions sees the caller's."""
    with payment_behind_proxy(fail_deletes=0) as (p, proxy):
        cart_id = anon_id()
        cart = make_cart(http, cart_id)
        cookie = "shop_session=s-%s; other=1" % uuid.uuid4().hex
        r = requests.post("%s/pay/%s" % (p.url, cart_id), json=cart, headers={"Cookie": cookie}, timeout=30)
        assert r.status_code == 200, r.text
        assert [(m, v) for m, v, _ in proxy.cookies] == [("GET", "nonce"), ("DELETE", "cart")]
        assert {c for _, _, c in proxy.cookies} == {cookie}


def test_pay_reads_the_cart_with_its_nonce(http):
    """One call gives payment the cart's nonce and the cart (GET /nonce/{id}?cart=1): the pay
    charges that cart without a GET /cart/{id} of its own."""
    with payment_behind_proxy(fail_deletes=0) as (p, proxy):
        cart_id = anon_id()
        cart = make_cart(http, cart_id)
        r = pay(requests, cart_id, cart, base=p.url)
        assert r.status_code == 200, r.text
        assert proxy.paths == ["/nonce/%s?cart=1" % cart_id, "/cart/%s" % cart_id]
        assert metrics(requests, base=p.url)["sold_count_total"] == 1
        assert wait_dispatched([r.json()["orderid"]]) == set()


def test_pay_with_a_cart_service_that_sends_no_cart_with_the_nonce(http):
    """A cart service from before ?cart=1 answers the nonce alone: payment asks for the cart
    itself (GET /cart/{id}) and the pay goes through as before."""
    with payment_behind_proxy(fail_deletes=0, older=True) as (p, proxy):
        cart_id = anon_id()
        cart = make_cart(http, cart_id)
        r = pay(requests, cart_id, cart, base=p.url)
        assert r.status_code == 200, r.text
        assert [(m, v) for m, v, _ in proxy.cookies] == [("GET", "nonce"), ("GET", "cart"), ("DELETE", "cart")]
        assert cart_status(http, cart_id) == 404
        assert wait_dispatched([r.json()["orderid"]]) == set()


class FirstHeldGateway:
    """A payment gateway whose first request waits for release() and then answers 503; every
    later one answers 200 at once."""

    def __init__(self):
        self.hits = 0
        self.held = threading.Event()
        self.released = threading.Event()
        gw = self

        class Handler(QuietHandler):
            def do_GET(self):
                gw.hits += 1
                if gw.hits == 1:
                    gw.held.set()
                    gw.released.wait(120)
                    return self.answer(503, b"try later")
                self.answer(200, b"paid")

        self.server = serve_http(Handler)
        self.url = "http://127.0.0.1:%d/" % self.server.server_port

    def close(self):
        self.released.set()
        close_server(self.server)


def test_a_pay_that_waited_charges_the_cart_as_it_is_after_the_wait(http):
    """A pay that found its checkout's name taken (it waited for a duplicate) does not charge
    the cart that came with the nonce before the wait: the first pay fails at the gateway and
    gives the name back, the cart changes meanwhile, the waiting pay reads the cart again and
    charges the changed one."""
    proxy, gw = CartProxy(fail_deletes=0), FirstHeldGateway()
    p = Payment(CART_HOST="127.0.0.1", CART_PORT=proxy.port, PAYMENT_GATEWAY=gw.url).wait_ready()
    try:
        cart_id = anon_id()
        cart = make_cart(http, cart_id)
        key = {"Idempotency-Key": "stale-%s" % uuid.uuid4().hex}
        send = lambda: requests.post("%s/pay/%s" % (p.url, cart_id), json=cart,  # noqa: E731
                                     headers=key, timeout=60)
        with ThreadPoolExecutor(max_workers=2) as pool:
            first = pool.submit(send)
            assert gw.held.wait(30)  # the first pay holds the name, at the gateway
            second = pool.submit(send)
            assert wait_for(lambda: len([x for x in proxy.paths if x.startswith("/nonce/")]) == 2, 30)
            bigger = make_cart(http, cart_id, cost=99.5)  # one more line, another shipping cost
            assert bigger["total"] != cart["total"]
            gw.released.set()
            assert first.result().status_code == 503
            r = second.result()
        assert r.status_code == 200, r.text
        assert proxy.paths[-2:] == ["/cart/%s" % cart_id] * 2  # read again, then deleted
        m = metrics(requests, base=p.url)
        assert m["cart_value_count"] == 1 and abs(m["cart_value_sum"] - bigger["total"]) < 0.01
        assert wait_dispatched([r.json()["orderid"]]) == set()
    finally:
        p.stop()
        gw.close()
        proxy.close()


def test_two_identical_pays_at_once(http):
    """Two identical requests at the same moment: one order, both answered with its id."""
    p = Payment(PAYMENT_DELAY_MS=1000).wait_ready()
    try:
        cart_id = anon_id()
        cart = make_cart(http, cart_id)
        start = threading.Barrier(2)

        def one(_):
            start.wait(10)
            return pay(requests, cart_id, cart, base=p.url)

        with ThreadPoolExecutor(2) as ex:
            rs = list(ex.map(one, range(2)))
        assert [r.status_code for r in rs] == [200, 200], [r.text for r in rs]
        ids = {r.json()["orderid"] for r in rs}
        assert len(ids) == 1
        assert placed(p.text(), cart_id) == list(ids)
        assert metrics(requests, base=p.url)["sold_count_total"] == 1
        assert wait_dispatched(ids) == set()
    finally:
        p.stop()


def test_idempotency_key(http):
    """A client's Idempotency-Key: a retry answers the same order; the same key for another
    cart answers 409; a malformed key is refused (400) before anything happens."""
    base = service_url("payment")
    key = "pay-" + uuid.uuid4().hex
    cart_id, other = anon_id(), anon_id()
    cart = make_cart(http, cart_id)
    make_cart(http, other)
    r1 = http.post("%s/pay/%s" % (base, cart_id), json=cart, headers={"Idempotency-Key": key}, timeout=30)
    assert r1.status_code == 200, r1.text
    r2 = http.post("%s/pay/%s" % (base, cart_id), json=cart, headers={"Idempotency-Key": key}, timeout=30)
    assert (r2.status_code, r2.json()) == (200, r1.json())
    r3 = http.post("%s/pay/%s" % (base, other), json=cart, headers={"Idempotency-Key": key}, timeout=30)
    assert r3.status_code == 409, r3.text
    assert cart_status(http, other) == 200  # nothing paid
    r4 = http.post("%s/pay/%s" % (base, other), json=cart, headers={"Idempotency-Key": "a b"}, timeout=30)
    assert r4.status_code == 400
    assert placed(stack_payment_log(), cart_id) == [r1.json()["orderid"]]
    assert placed(stack_payment_log(), other) == []
    http.delete("%s/cart/%s" % (service_url("cart"), other), timeout=10)


def test_a_new_cart_with_the_same_content_is_a_new_order(http):
    """The natural key names one cart (its nonce), not its content: the same items bought again
    under the same id are a second order."""
    cart_id = anon_id()
    first = pay(http, cart_id, make_cart(http, cart_id))
    assert first.status_code == 200, first.text
    again = pay(http, cart_id, make_cart(http, cart_id))
    assert again.status_code == 200, again.text
    assert first.json()["orderid"] != again.json()["orderid"]
    assert sorted(placed(stack_payment_log(), cart_id)) == sorted(
        [first.json()["orderid"], again.json()["orderid"]])


def test_cart_nonce_lifecycle(http):
    """The cart's nonce (cart service, GET /nonce/{id}): made when an add creates the cart, the
    same for later changes, kept after the cart's deletion (a retried pay finds it), new for a
    cart created again, and carried by a rename to the target id."""
    cart = service_url("cart")

    def nonce(cid):
        r = http.get("%s/nonce/%s" % (cart, cid), timeout=10)
        return r.json()["nonce"] if r.status_code == 200 else r.status_code

    a, b = anon_id(), anon_id()
    assert nonce(a) == 404
    make_cart(http, a)
    first = nonce(a)
    assert re.match(r"^[0-9a-f]{32}$", first)
    make_cart(http, a)  # more of the same: the same cart
    assert nonce(a) == first
    assert http.delete("%s/cart/%s" % (cart, a), timeout=10).status_code == 200
    assert nonce(a) == first
    make_cart(http, a)
    second = nonce(a)
    assert second != first
    assert http.get("%s/rename/%s/%s" % (cart, a, b), timeout=10).status_code == 200
    assert nonce(b) == second
    for cid in (a, b):
        http.delete("%s/cart/%s" % (cart, cid), timeout=10)


def test_cart_nonce_with_the_cart(http):
    """GET /nonce/{id}?cart=1 (payment's one call): the nonce and the cart as GET /cart/{id} has
    it (byte for byte), null once the cart is gone (the nonce stays); 404 with neither; a stored
    value that is not a cart is left out (GET /cart/{id} answers that one)."""
    cart = service_url("cart")
    cid = anon_id()
    assert http.get("%s/nonce/%s?cart=1" % (cart, cid), timeout=10).status_code == 404
    make_cart(http, cid)
    r = http.get("%s/nonce/%s?cart=1" % (cart, cid), timeout=10)
    plain = http.get("%s/cart/%s" % (cart, cid), timeout=10)
    assert r.status_code == 200 and plain.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"nonce", "cart"} and re.match(r"^[0-9a-f]{32}$", body["nonce"])
    assert body["nonce"] == http.get("%s/nonce/%s" % (cart, cid), timeout=10).json()["nonce"]
    assert body["cart"] == plain.json() and plain.content in r.content
    assert http.delete("%s/cart/%s" % (cart, cid), timeout=10).status_code == 200
    assert http.get("%s/nonce/%s?cart=1" % (cart, cid), timeout=10).json() == {
        "nonce": body["nonce"], "cart": None}
    rport = os.environ.get("REDIS_PORT", "6379")
    subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", rport, "SET", cid, "not a cart"],
                   check=True, capture_output=True)
    try:
        assert http.get("%s/nonce/%s?cart=1" % (cart, cid), timeout=10).json() == {
            "nonce": body["nonce"]}
        assert http.get("%s/cart/%s" % (cart, cid), timeout=10).status_code == 500
    finally:
        subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", rport, "DEL", cid],
                       check=True, capture_output=True)


def test_renamed_cart_is_a_new_order_for_a_user_who_paid_before(http):
    """The UI's login flow: a registered user paid a cart; later an anonymous cart with the same
    content is renamed to the user's name and paid: a second order, not the first one's answer
    (the rename brings the anonymous cart's nonce)."""
    name = register(http)
    first = pay(http, name, make_cart(http, name))
    assert first.status_code == 200, first.text
    anon = anon_id()
    make_cart(http, anon)
    r = http.get("%s/rename/%s/%s" % (service_url("cart"), anon, name), timeout=10)
    assert r.status_code == 200, r.text
    second = pay(http, name, r.json())
    assert second.status_code == 200, second.text
    assert second.json()["orderid"] != first.json()["orderid"]
    assert wait_for(lambda: history_ids(http, name) == [first.json()["orderid"], second.json()["orderid"]], 30)


def test_failed_publish_counts_nothing(http):
    """The broker unreachable (a closed port): 503, and no sale counter moved (they move only
    after the broker's confirm); the cart is kept."""
    with closed_port() as refusing:
        p = Payment(AMQP_HOST="127.0.0.1", AMQP_PORT=refusing.getsockname()[1])
        try:
            cart_id = anon_id()
            cart = make_cart(http, cart_id, qty=2)
            for _ in range(2):
                r = pay(requests, cart_id, cart, base=p.url)
                assert r.status_code == 503, r.text
            m = metrics(requests, base=p.url)
            assert m["sold_count_total"] == 0
            assert m["units_sold_count"] == 0 and m["cart_value_count"] == 0
            assert cart_status(http, cart_id) == 200
        finally:
            stop_all([p])


def register(http):
    name = "once-%s" % uuid.uuid4().hex[:12]
    r = http.post(service_url("user") + "/register", timeout=10,
                  json={"name": name, "password": "pw-" + name, "email": name + "@example.com"})
    assert r.status_code == 200, r.text
    return name


def history_ids(http, name):
    try:
        r = http.get("%s/history/%s" % (service_url("user"), name), timeout=10)
    except requests.RequestException:
        return []
    return [h["orderid"] for h in r.json()["history"]] if r.status_code == 200 else []


def test_history_written_after_mongodb_returns(http):
    """MongoDB stopped during a registered user's checkout: the order is placed (200) and its
    history entry waits in payment's outbox (in Redis); payment is restarted meanwhile; once
    MongoDB is back the entry appears in the history without any further pay."""
    name = register(http)
    cart = make_cart(http, name)
    stack("stop", "mongo")
    try:
        r = pay(http, name, cart)
        assert r.status_code == 200, r.text
        orderid = r.json()["orderid"]
        stack("stop", "payment")
        stack("start", "payment")
    finally:
        stack("start", "mongo")
    assert wait_for(lambda: history_ids(http, name) == [orderid], 60), history_ids(http, name)
    assert wait_dispatched([orderid]) == set()
