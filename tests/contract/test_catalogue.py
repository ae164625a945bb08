"""Contract tests of the catalogue service (docs/api/catalogue.yaml, docs/DECISIONS.md D1-D3, D7, D8, D16, D17)."""
import http.client as httpclient
import os
import re
import signal
import socket
import subprocess
import time
import urllib.parse

import pytest
import requests

from conftest import free_port, self_signed_cert, service_url, stack, wait_for

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
    assert http.get(catalogue + "/PRODUCTS").status_code == 200
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
    port = free_port()
    full = dict(os.environ, CATALOGUE_SERVER_PORT=str(port), LOG_LEVEL="warn")
    full.update(env)
    p = subprocess.Popen([binary()], env=full, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    url = "http://127.0.0.1:%d" % port
    return p, url


def first_answer(url, timeout=5.0):
    def probe():
        try:
            return requests.get(url + "/health", timeout=3)
        except requests.ConnectionError:
            return None
    return wait_for(probe, timeout, 0.005)


def stop(p):
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=15)
    return p.returncode, err.decode()


@pytest.mark.parametrize("var,value", [("CATALOGUE_SERVER_PORT", "abc"), ("GO_SLOW", "soon"),
                                       ("MONGO_URL", "http://nope"), ("LOG_LEVEL", "loud")])
def test_bad_config_stops_with_one_line(var, value):
    env = dict(os.environ, **{var: value})
    out = subprocess.run([binary()], env=env, capture_output=True, text=True, timeout=10)
    assert out.returncode == 1
    assert var in out.stderr


def test_go_slow_delays_product_only():
    p, url = spawn(GO_SLOW="300")
    try:
        assert first_answer(url).status_code == 200
        t = time.time()
        assert requests.get(url + "/product/Watson").status_code == 200
        assert time.time() - t >= 0.3
        t = time.time()
        assert requests.get(url + "/products").status_code == 200
        assert time.time() - t < 0.3
    finally:
        assert stop(p)[0] == 0


def test_sigterm_drains_and_exits_zero():
    p, url = spawn(GO_SLOW="500")
    assert first_answer(url).status_code == 200
    import threading
    result = {}
    t = threading.Thread(target=lambda: result.update(r=requests.get(url + "/product/Watson")))
    t.start()
    time.sleep(0.1)
    code, _ = stop(p)
    t.join()
    assert code == 0
    assert result["r"].status_code == 200  # the in-flight request was answered


def test_mongo_down_503_and_recovery(http, catalogue):
    stack("stop", "mongo")
    try:
        p, url = spawn()
        try:
            t = time.time()
            r = first_answer(url)  # starts even though MongoDB is down
            assert r.status_code == 503 and r.json() == {"app": "OK", "mongo": False}
        finally:
            stop(p)
        r = http.get(catalogue + "/health")
        assert r.status_code == 503 and r.json() == {"app": "OK", "mongo": False}
        for path, text in [("/products", "database not avaiable"),
                           ("/products/Robot", "database not avaiable"),
                           ("/product/Watson", "database not available"),
                           ("/categories", "database not available"),
                           ("/search/droid", "database not available")]:
            t = time.time()
            r = http.get(catalogue + path)
            assert (r.status_code, r.text) == (503, text)
            assert time.time() - t < 5  # fails fast, no hang
    finally:
        stack("start", "mongo")
    r = wait_for(lambda: http.get(catalogue + "/products").status_code == 200, 30)
    assert r, "catalogue did not recover after MongoDB came back"
    assert http.get(catalogue + "/health").json() == {"app": "OK", "mongo": True}
    assert len(http.get(catalogue + "/products").json()) == 11


def test_socket_activation():
    """A listening socket passed as systemd does (LISTEN_FDS, fd 3) is used instead of a port
    of its own, and the log names the socket's real port."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        port = s.getsockname()[1]
        env = dict(os.environ, LISTEN_FDS="1", CATALOGUE_SERVER_PORT=str(free_port()))
        p = subprocess.Popen(["bash", "-c", "export LISTEN_PID=$$; exec \"$0\"", binary()], env=env,
                             preexec_fn=lambda: os.dup2(s.fileno(), 3), pass_fds=(3,),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            r = first_answer("http://127.0.0.1:%d" % port)
            assert r is not None and r.status_code == 200
        finally:
            code, err = stop(p)
        assert code == 0
        assert "using the socket passed by systemd" in err
        assert "listening port=%d " % port in err


def test_mongodb_over_tls_with_certificate_check(tmp_path):
    """The MongoDB client speaks TLS (a course may put its database behind tls=true): the
    catalogue completes a verified TLS handshake with a server whose certificate tlsCAFile
    trusts, then sends a MongoDB wire message inside it. This fake server answers nothing, so
    the catalogue itself answers 503."""
    import ssl
    import struct
    import threading
    cert, ctx = self_signed_cert(str(tmp_path))
    srv = socket.create_server(("127.0.0.1", 0))
    srv.settimeout(0.5)
    opcodes = []
    stop_serving = threading.Event()

    def serve():
        while not stop_serving.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                continue
            try:
                with ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.settimeout(5)
                    head = tls.recv(16)
                    if len(head) == 16:
                        opcodes.append(struct.unpack("<iiii", head)[3])
            except (OSError, ssl.SSLError):
                conn.close()
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    url = "mongodb://127.0.0.1:%d/catalogue?tls=true&tlsCAFile=%s&serverSelectionTimeoutMS=1500" % (
        srv.getsockname()[1], cert)
    p, base = spawn(MONGO_URL=url, CATALOGUE_CACHE_MS="0")
    try:
        assert first_answer(base) is not None
        assert requests.get(base + "/products", timeout=10).status_code == 503
        # 2013 OP_MSG, 2004 OP_QUERY (the legacy hello): a MongoDB message, sent encrypted
        assert wait_for(lambda: opcodes, 10) and set(opcodes) <= {2013, 2004}, opcodes
    finally:
        rc, err = stop(p)
        stop_serving.set()
        t.join(5)
        srv.close()
    assert rc == 0, err
