"""Contract tests of the catalogue service (docs/api/catalogue.yaml, docs/DECISIONS.md D1-D3, D7, D8, D16, D17)."""
import http.client as httpclient
import os
import re
import signal
import socket
import subprocess
import urllib.parse

import pytest
import requests

import conftest
from conftest import (answered_yet, listener, read_response, sanitizer_reports, self_signed_cert, send_request,
                      service_url, stack, url_of, wait_for)

SEED_ORDER = ["Watson", "Ewooid", "HPTD", "UHJ", "EPE", "EMM", "SHCE", "RED", "RMC", "STAN-1", "CNA"]
ROBOTS_BY_NAME = ["CNA", "EMM", "EPE", "HPTD", "RED", "RMC", "STAN-1", "SHCE", "UHJ"]


def skus(resp):
    return [p["sku"] for p in resp.json()]


def test_health(http, catalogue):
    r = http.get(catalogue + "/health")
    assert r.status_code == 200
    assert r.json() == {"app": "OK", "mongo": True}
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.headers["Access-Control-Allow-Origin"] == "*"


def test_products_all_in_seed_order(http, catalogue):
    r = http.get(catalogue + "/products")
    assert r.status_code == 200
    products = r.json()
    assert [p["sku"] for p in products] == SEED_ORDER
    watson = products[0]
    assert list(watson)[0] == "_id" and re.fullmatch(r"[0-9a-f]{24}", watson["_id"])
    assert watson["name"] == "Watson" and watson["price"] == 2001 and watson["instock"] == 2
    assert watson["categories"] == ["Artificial Intelligence"]
    assert '"price":2001,' in r.text  # an integer, never 2001.000000
    assert all(isinstance(p["price"], (int, float)) and p["description"] for p in products)


def test_product(http, catalogue):
    r = http.get(catalogue + "/product/STAN-1")
    assert r.status_code == 200
    p = r.json()
    assert (p["sku"], p["name"], p["price"], p["instock"]) == ("STAN-1", "Stan", 67, 1000)
    assert p["categories"] == ["Robot", "Artificial Intelligence"]
    assert http.get(catalogue + "/product/CNA").json()["instock"] == 0


@pytest.mark.parametrize("sku", ["nope", "watson", "STAN", "Watson%20"])
def test_product_not_found(http, catalogue, sku):
    r = http.get(catalogue + "/product/" + sku)
    assert r.status_code == 404
    assert r.text == "SKU not found"
    assert r.headers["Content-Type"].startswith("text/html")


def test_products_by_category(http, catalogue):
    assert skus(http.get(catalogue + "/products/Robot")) == ROBOTS_BY_NAME
    r = http.get(catalogue + "/products/Artificial%20Intelligence")
    assert skus(r) == ["Ewooid", "STAN-1", "Watson"]
    for cat in ["robot", "Nothing", "Robot%20"]:
        r = http.get(catalogue + "/products/" + cat)
        assert r.status_code == 200 and r.json() == []


def test_categories(http, catalogue):
    r = http.get(catalogue + "/categories")
    assert r.status_code == 200
    assert r.json() == ["Artificial Intelligence", "Robot"]


@pytest.mark.parametrize("text,expected", [
    ("droid", ["EMM", "HPTD", "RED"]),  # "Android" is another word (reference example)
    ("Droids", ["EMM", "HPTD", "RED"]),
    ("the", []),                        # stop word
    ("zzzz", []),
    ("medical", ["EMM"]),
    ("harvest mining", ["RMC", "UHJ"]),
    ("android", ["CNA"]),
    ("High-Powered", ["HPTD"]),
    ("robot", ["RMC"]),                 # "Robotic" stems to "robot" (reference example)
    ("Robotic", ["RMC"]),
])
def test_search(http, catalogue, text, expected):
    r = http.get(catalogue + "/search/" + urllib.parse.quote(text))
    assert r.status_code == 200
    assert skus(r) == expected


def test_unknown_route_and_method(http, catalogue):
    assert http.get(catalogue + "/nope").status_code == 404
    assert http.get(catalogue + "/").status_code == 404
    assert http.get(catalogue + "/product").status_code == 404
    r = http.post(catalogue + "/products")
    assert r.status_code == 405
    assert "GET" in r.headers["Allow"]
    assert http.delete(catalogue + "/product/Watson").status_code == 405


def test_express_path_rules(http, catalogue):
    assert http.get(catalogue + "/PRODUCTS").status_code == 404  # case-sensitive (D23)
    assert http.get(catalogue + "/products/").status_code == 200
    assert http.get(catalogue + "/product/Watson/").json()["sku"] == "Watson"
    assert http.get(catalogue + "/products//").status_code == 404
    r = http.head(catalogue + "/products")
    assert r.status_code == 200 and r.text == ""
    r = http.options(catalogue + "/products")
    assert r.status_code == 200 and "GET" in r.text


@pytest.mark.parametrize("path", ["/product/a%2Fb", "/product/%zz", "/product/a%00b",
                                  "/product/a%0Ab", "/product/" + "x" * 257])
def test_malformed_path_parameters(catalogue, path):
    # http.client sends the path as written (requests would re-quote "%zz" to "%25zz")
    host, port = urllib.parse.urlsplit(catalogue).netloc.split(":")
    conn = httpclient.HTTPConnection(host, int(port), timeout=5)
    conn.request("GET", path)
    r = conn.getresponse()
    assert r.status == 400
    assert r.read() == b"bad path parameter"
    conn.close()
    assert requests.get(catalogue + "/health").status_code == 200


def test_huge_url_and_body(http, catalogue):
    r = http.get(catalogue + "/product/" + "x" * 20000)
    assert 400 <= r.status_code < 500
    r = requests.post(catalogue + "/products", data=b"x" * (70 * 1024),
                      headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    assert http.get(catalogue + "/health").status_code == 200


def test_raw_garbage_does_not_crash(catalogue):
    host, port = urllib.parse.urlsplit(catalogue).netloc.split(":")
    for junk in [b"\x00\x01\x02\r\n\r\n", b"GET /products HTTP/9.9\r\n\r\n",
                 b"GET " + b"/" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
                 b"POST /products HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n"]:
        with socket.create_connection((host, int(port)), timeout=5) as s:
            s.sendall(junk)
            try:
                s.recv(4096)
            except socket.timeout:
                pass
    assert requests.get(catalogue + "/health").status_code == 200


def test_keep_alive_holds(catalogue):
    """Express keep-alive: one connection serves 200s and 404s alike without being closed."""
    host, port = urllib.parse.urlsplit(catalogue).netloc.split(":")
    conn = httpclient.HTTPConnection(host, int(port), timeout=5)
    conn.connect()
    first = conn.sock
    try:
        for path in ["/health", "/products", "/product/nope", "/nope", "/categories"]:
            conn.request("GET", path)
            r = conn.getresponse()
            r.read()
            assert (r.getheader("Connection") or "").lower() != "close", path
            assert not r.will_close, path
            # http.client silently reconnects when the server closed: the socket must be the same
            assert conn.sock is first, path
    finally:
        conn.close()


def test_metrics(http, catalogue):
    http.get(catalogue + "/product/Watson")
    r = http.get(catalogue + "/metrics")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain")
    assert re.search(r'^http_requests_total\{route="/product/:sku",code="200"\} \d+$', r.text, re.M)
    assert 'http_request_duration_seconds_bucket{route="/product/:sku",le="+Inf"}' in r.text


# ---- processes of our own: version, config errors, GO_SLOW, start with MongoDB down, SIGTERM

def binary():
    return os.path.join(os.environ["SHOP_BIN_DIR"], "catalogue")


def spawn(**env):
    """A catalogue of our own on a socket of the test's; returns (process, url)."""
    full = dict(os.environ, LOG_LEVEL="warn")
    full.update(env)
    with listener() as sock:
        p = conftest.spawn([binary()], sock, env=full, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        return p, url_of(sock)


def first_answer(url, timeout=30.0):
    """The first answer of url's /health (whatever its status), or None."""
    got = []

    def probe():
        try:
            got.append(requests.get(url + "/health", timeout=10))
            return True
        except requests.ConnectionError:
            return False
    wait_for(probe, timeout, 0.005)
    return got[-1] if got else None


def stop(p):
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=30)
    assert not sanitizer_reports(p.pid)
    return p.returncode, err.decode()


@pytest.mark.parametrize("var,value", [("CATALOGUE_SERVER_PORT", "abc"), ("GO_SLOW", "soon"),
                                       ("MONGO_URL", "http://nope"), ("LOG_LEVEL", "loud")])
def test_bad_config_stops_with_one_line(var, value):
    p, _ = spawn(**{var: value})  # should it start after all, it answers on no one's port
    out, err = p.communicate(timeout=30)
    assert p.returncode == 1
    assert var in err.decode()


def test_go_slow_delays_product_only():
    """GO_SLOW=ms delays /product/:sku only: a /product request the service has read is still
    unanswered after /products and /categories, sent after it, were answered."""
    p, url = spawn(GO_SLOW="4000")
    try:
        assert first_answer(url).status_code == 200
        slow = send_request(url, "/product/Watson")
        assert requests.get(url + "/products").status_code == 200
        assert requests.get(url + "/categories").status_code == 200
        assert not answered_yet(slow)
        status, body = read_response(slow)
        assert status == 200 and b'"sku":"Watson"' in body
    finally:
        assert stop(p)[0] == 0


def test_sigterm_drains_and_exits_zero():
    p, url = spawn(GO_SLOW="2000")
    assert first_answer(url).status_code == 200
    slow = send_request(url, "/product/Watson")  # read by the service: in flight at the SIGTERM
    code, _ = stop(p)
    assert read_response(slow)[0] == 200  # the in-flight request was answered
    assert code == 0


def test_mongo_down_503_and_recovery(http, catalogue):
    stack("stop", "mongo")
    try:
        p, url = spawn()
        try:
            r = first_answer(url)  # starts even though MongoDB is down
            assert r.status_code == 503 and r.json() == {"app": "OK", "mongo": False}
        finally:
            stop(p)
        # the stack's catalogue notices when its next health check fails
        assert wait_for(lambda: http.get(catalogue + "/health").status_code == 503, 30)
        r = http.get(catalogue + "/health")
        assert r.status_code == 503 and r.json() == {"app": "OK", "mongo": False}
        for path, text in [("/products", "database not avaiable"),
                           ("/products/Robot", "database not avaiable"),
                           ("/product/Watson", "database not available"),
                           ("/categories", "database not available"),
                           ("/search/droid", "database not available")]:
            r = http.get(catalogue + path)
            assert (r.status_code, r.text) == (503, text)  # the service's own answer, no hang
    finally:
        stack("start", "mongo")
    r = wait_for(lambda: http.get(catalogue + "/products").status_code == 200, 30)
    assert r, "catalogue did not recover after MongoDB came back"
    assert http.get(catalogue + "/health").json() == {"app": "OK", "mongo": True}
    assert len(http.get(catalogue + "/products").json()) == 11


def test_socket_activation():
    """A listening socket passed as systemd does (LISTEN_FDS, fd 3) is used instead of a port
    of its own, and the log names the socket's real port."""
    with listener() as s, listener() as taken:
        port = s.getsockname()[1]
        # the port variable names a port that is taken (by us): a bind of its own would fail
        env = dict(os.environ, CATALOGUE_SERVER_PORT=str(taken.getsockname()[1]))
        p = conftest.spawn([binary()], s, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            r = first_answer("http://127.0.0.1:%d" % port)
            assert r is not None and r.status_code == 200
        finally:
            code, err = stop(p)
        assert code == 0
        assert "using the socket passed by systemd" in err
        assert "listening port=%d " % port in err


class FakeTlsMongo:
    """A TLS server with a self-signed certificate for 127.0.0.1 that records the opcode of the
    first MongoDB wire message each connection sends inside TLS (2013 OP_MSG, 2004 OP_QUERY: the
    legacy hello), and the handshakes the client broke off. It answers nothing."""

    def __init__(self, directory):
        import threading
        self.cert, self.ctx = self_signed_cert(directory)
        self.srv = socket.create_server(("127.0.0.1", 0))
        self.srv.settimeout(0.5)
        self.port = self.srv.getsockname()[1]
        self.opcodes, self.refused = [], []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        import ssl
        import struct
        while not self.stopping.is_set():
            try:
                conn, _ = self.srv.accept()
            except OSError:
                continue
            try:
                with self.ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.settimeout(5)
                    head = tls.recv(16)
                    if len(head) == 16:
                        self.opcodes.append(struct.unpack("<iiii", head)[3])
            except ssl.SSLError as e:
                self.refused.append(e)
                conn.close()
            except OSError:
                conn.close()

    def url(self, ca_file):
        return "mongodb://127.0.0.1:%d/catalogue?tls=true&tlsCAFile=%s&serverSelectionTimeoutMS=1500" % (
            self.port, ca_file)

    def close(self):
        self.stopping.set()
        self.thread.join(5)
        self.srv.close()


def catalogue_against(url):
    """A catalogue on url (no cache) that answers /products; returns (status, exit code, stderr)."""
    p, base = spawn(MONGO_URL=url, CATALOGUE_CACHE_MS="0")
    try:
        assert first_answer(base) is not None
        code = requests.get(base + "/products", timeout=10).status_code
    finally:
        rc, err = stop(p)
    return code, rc, err


def test_mongodb_over_tls_with_certificate_check(tmp_path):
    """The MongoDB client speaks TLS (a course may put its database behind tls=true): the
    catalogue completes a verified TLS handshake with a server whose certificate tlsCAFile
    trusts, then sends a MongoDB wire message inside it. This fake server answers nothing, so
    the catalogue itself answers 503."""
    server = FakeTlsMongo(str(tmp_path))
    try:
        code, rc, err = catalogue_against(server.url(server.cert))
        assert code == 503
        assert wait_for(lambda: server.opcodes, 10) and set(server.opcodes) <= {2013, 2004}, server.opcodes
    finally:
        server.close()
    assert rc == 0, err


def test_mongodb_over_tls_refuses_an_unverifiable_server(tmp_path):
    """The same server, but tlsCAFile names another CA: the catalogue breaks off the handshake
    (the server sees the refusal) and never sends a MongoDB message to it; /products is 503."""
    os.mkdir(str(tmp_path / "other"))
    other_ca, _ = self_signed_cert(str(tmp_path / "other"))
    server = FakeTlsMongo(str(tmp_path))
    try:
        code, rc, err = catalogue_against(server.url(other_ca))
        assert code == 503
        assert wait_for(lambda: server.refused or server.opcodes, 10), "no TLS handshake was attempted"
        assert server.opcodes == [], "a MongoDB message was sent to an unverified server"
        assert server.refused
    finally:
        server.close()
    assert rc == 0, err


def test_product_without_the_cache_reads_mongodb():
    """CATALOGUE_CACHE_MS=0 turns the snapshot cache off: /product/:sku is one MongoDB query per
    request (its own code path), with the same answers as the cached service: the product, or
    404 for an unknown SKU."""
    p, url = spawn(CATALOGUE_CACHE_MS="0")
    try:
        assert first_answer(url).status_code == 200
        cached = requests.get(service_url("catalogue") + "/product/Watson", timeout=5)
        r = requests.get(url + "/product/Watson", timeout=5)
        assert r.status_code == 200 and r.json() == cached.json()
        assert r.json()["sku"] == "Watson"
        r = requests.get(url + "/product/NO-SUCH-SKU", timeout=5)
        assert r.status_code == 404 and r.text == "SKU not found"
    finally:
        rc, err = stop(p)
    assert rc == 0, err
