"""Redis round trips of a cart's first add and of a pay (issue 21), counted on a Redis of the
test's own that only a second cart and a second payment use (the stack's catalogue, user service,
RabbitMQ and dispatch behind them): INFO's total_reads_processed counts the read events of Redis,
and the commands a client pipelines arrive in one. A count is taken between two quiet moments (two
INFO calls in a row differ by the one read of the second INFO only), less that read.

A first add: GET, then the new nonce's SETEX and the cart's SET NX in one round trip (2; a
compare-and-set script and a separate SETEX of the nonce made 3). A pay: cart's nonce and cart in
one round trip, payment's pending record, its done record, cart's DEL with the nonce's EXPIRE in
one round trip (4; two GETs, a DEL then an EXPIRE and a second done record made 7). In both server
modes of cart (SHOP_LOOP=1: the loop's pipelined connection; 0: a blocking one per thread).
"""
import socket
import subprocess
import uuid

import pytest
import requests

from conftest import free_port, wait_for
from test_cart import start_cart, stop_cart
from test_payment import Payment


class OwnRedis:
    """A redis-server of the test's own (no persistence), and a connection to read its INFO."""

    def __init__(self, directory):
        self.port = free_port()
        self.proc = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                                      "--save", "", "--appendonly", "no", "--dir", str(directory)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.sock = None
        assert wait_for(self._connect, 15), "redis-server did not start"

    def _connect(self):
        try:
            self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
            return True
        except OSError:
            return False

    def reads(self):
        """total_reads_processed, by an INFO of its own (one read event more)."""
        self.sock.sendall(b"*2\r\n$4\r\nINFO\r\n$5\r\nstats\r\n")
        data = b""
        while b"\r\n" not in data:
            data += self.sock.recv(65536)
        head, rest = data.split(b"\r\n", 1)
        size = int(head[1:])
        while len(rest) < size + 2:
            rest += self.sock.recv(65536)
        for line in rest[:size].decode().splitlines():
            if line.startswith("total_reads_processed:"):
                return int(line.split(":")[1])
        raise AssertionError("no total_reads_processed in INFO stats")

    def quiet(self):
        """True when nothing but these INFO calls reads from Redis right now."""
        a = self.reads()
        return self.reads() - a == 1

    def round_trips(self, call):
        """The read events of call() (each Redis round trip of its clients is one), taken between
        two quiet moments; retried when something else read meanwhile."""
        for _ in range(5):
            assert wait_for(self.quiet, 15), "a client keeps Redis busy"
            before = self.reads()
            call()
            after = self.reads()
            if self.quiet():
                return after - before - 1
        raise AssertionError("Redis never quiet around the call")

    def stop(self):
        if self.sock:
            self.sock.close()
        self.proc.terminate()
        self.proc.wait(15)


@pytest.fixture(scope="module")
def own_redis(tmp_path_factory):
    r = OwnRedis(tmp_path_factory.mktemp("redis"))
    yield r
    r.stop()


@pytest.fixture(scope="module", params=["1", "0"], ids=["loop", "pool"])
def own_cart(request, own_redis):
    proc, url = start_cart(REDIS_URL="redis://127.0.0.1:%d" % own_redis.port, SHOP_LOOP=request.param)
    yield url
    stop_cart(proc)


@pytest.fixture(scope="module")
def own_payment(own_cart, own_redis):
    port = own_cart.rsplit(":", 1)[1]
    p = Payment(REDIS_URL="redis://127.0.0.1:%d" % own_redis.port, CART_HOST="127.0.0.1", CART_PORT=port,
                PAYMENT_OUTBOX_RETRY_MS="3600000").wait_ready()
    yield p.url
    p.stop()


def new_id():
    return "trips-%s" % uuid.uuid4().hex


def add(cart, cart_id):
    r = requests.get("%s/add/%s/Watson/1" % (cart, cart_id), timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def test_first_add_is_two_round_trips(own_redis, own_cart):
    warm = new_id()
    add(own_cart, warm)  # the catalogue's answer memoised
    add(own_cart, warm)  # the compare-and-set script loaded (EVAL after NOSCRIPT)
    cart_id = new_id()
    assert own_redis.round_trips(lambda: add(own_cart, cart_id)) == 2
    r = requests.get("%s/nonce/%s" % (own_cart, cart_id), timeout=10)
    assert r.status_code == 200 and len(r.json()["nonce"]) == 32  # written with the cart
    assert own_redis.round_trips(lambda: add(own_cart, cart_id)) == 2  # GET, compare-and-set
    assert requests.get("%s/nonce/%s" % (own_cart, cart_id), timeout=10).json() == r.json()


def test_pay_is_four_round_trips(own_redis, own_cart, own_payment):
    cart_id = new_id()
    add(own_cart, cart_id)
    r = requests.post("%s/shipping/%s" % (own_cart, cart_id), timeout=10,
                      json={"distance": 100, "cost": 12.5, "location": "Testland Testville"})
    assert r.status_code == 200, r.text
    cart = r.json()
    answers = []

    def pay():
        answers.append(requests.post("%s/pay/%s" % (own_payment, cart_id), json=cart, timeout=30))
    assert own_redis.round_trips(pay) == 4
    assert answers[0].status_code == 200, answers[0].text
    assert requests.get("%s/cart/%s" % (own_cart, cart_id), timeout=10).status_code == 404
    again = requests.post("%s/pay/%s" % (own_payment, cart_id), json=cart, timeout=30)
    assert again.status_code == 200 and again.json() == answers[0].json()  # the replay (D21)
