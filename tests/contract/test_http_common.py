"""What libshop's HTTP layer gives every service alike (issue 2): the request id (X-Request-Id taken
from the client when it is safe, made up otherwise, always echoed) and exactly one access-log line per
request, `<6>svc=NAME rid=ID method=M path="P" status=S ms=T`, in the service's log.
"""
import os
import re
import socket
import subprocess
import urllib.parse
import uuid

import pytest
import requests

from conftest import listener, service_url, spawn, wait_for

SERVICES = ["catalogue", "user", "cart", "shipping", "ratings", "payment", "dispatch"]
HEALTH = {"ratings": "/_health"}  # ratings answers /_health for every method; 405 is shown on /api/fetch
WRONG_METHOD = {"ratings": ("DELETE", "/api/fetch/Watson")}
LINE = re.compile(r'^<6>svc=(\S+) rid=(\S+) method=(\S+) path="([^"]*)" status=(\d+) ms=(\d+\.\d{3}) trace=([0-9a-f]{32}|-)$')


def log_path(name):
    path = os.path.join(os.environ.get("SHOP_LOG_DIR", ""), name + ".log")
    if not os.path.exists(path):
        pytest.skip("no log for %s at %s: run through tests/run" % (name, path))
    return path


def access_lines(name, rid):
    with open(log_path(name), errors="replace") as f:
        return [m for m in map(LINE.match, f.read().splitlines()) if m and m.group(2) == rid]


@pytest.mark.parametrize("name", SERVICES)
def test_one_access_line_per_request(name):
    base = service_url(name)
    s = requests.Session()
    want = []
    health = HEALTH.get(name, "/health")
    wrong = WRONG_METHOD.get(name, ("DELETE", health))
    for method, path, status in [("GET", health, 200), ("GET", "/no/such/route", 404),
                                 (wrong[0], wrong[1], 405)]:
        rid = "acc-%s-%s" % (name, uuid.uuid4().hex[:12])
        r = s.request(method, base + path, headers={"X-Request-Id": rid}, timeout=10)
        if status == 200:  # health may say 503 while a backend recovers from an earlier test
            status = r.status_code if r.status_code == 503 else status
        assert r.status_code == status, (method, path, r.text)
        assert r.headers.get("X-Request-Id") == rid
        want.append((rid, method, path, status))
    for rid, method, path, status in want:
        lines = wait_for(lambda: access_lines(name, rid), timeout=5)
        assert len(lines) == 1, "%s %s: %d access lines for rid %s" % (method, path, len(lines), rid)
        m = lines[0]
        assert (m.group(1), m.group(3), m.group(4), int(m.group(5))) == (name, method, path, status)


@pytest.mark.parametrize("name", ["catalogue", "cart"])
def test_request_id_made_up_when_missing_or_unsafe(name):
    base = service_url(name)
    r = requests.get(base + "/health", timeout=10)
    made = r.headers.get("X-Request-Id", "")
    assert re.fullmatch(r"[0-9a-f]{16}", made), made
    assert requests.get(base + "/health", timeout=10).headers["X-Request-Id"] != made
    for unsafe in ["a b", "x" * 100, "id\"quote", "<script>"]:
        r = requests.get(base + "/health", headers={"X-Request-Id": unsafe}, timeout=10)
        got = r.headers.get("X-Request-Id", "")
        assert re.fullmatch(r"[0-9a-f]{16}", got), (unsafe, got)
        assert wait_for(lambda: access_lines(name, got), timeout=5), "no access line for %s" % got


def test_quotes_and_raw_bytes_in_the_path_stay_out_of_the_log():
    """A request line with a quote and bytes outside printable ASCII is logged with '?' in their place,
    so the path can neither end the quoted field early nor smuggle a fake line into the log."""
    url = urllib.parse.urlsplit(service_url("catalogue"))
    rid = "acc-forge-%s" % uuid.uuid4().hex[:12]
    with socket.create_connection((url.hostname, url.port), timeout=10) as c:
        c.sendall(b'GET /no"such\xc3\xa9\x7fpath HTTP/1.1\r\nHost: x\r\nX-Request-Id: ' + rid.encode() +
                  b"\r\nConnection: close\r\n\r\n")
        head = c.recv(4096)
    assert head.startswith(b"HTTP/1.1 404"), head[:80]
    lines = wait_for(lambda: access_lines("catalogue", rid), timeout=5)
    assert len(lines) == 1
    assert lines[0].group(4) == "/no?such???path"


@pytest.mark.parametrize("name,var,value", [
    ("cart", "CATALOGUE_HOST", "catalogue:notaport"),
    ("payment", "USER_HOST", "[::1"),
    ("payment", "CART_HOST", "cart:0"),
    ("shipping", "CART_ENDPOINT", "ftp://cart:8080"),
    ("ratings", "CATALOGUE_URL", "ftp://catalogue"),
])
def test_bad_peer_address_stops_at_start_naming_it(name, var, value):
    """The address of a peer service (libshop's shop_conf_peer / shop_conf_base_url) is checked at
    start: a bad one stops the service with exit 1 and a line naming the variable."""
    binary = os.path.join(os.environ.get("SHOP_BIN_DIR", "build/bin"), name)
    env = dict(os.environ, **{var: value})
    with listener() as sock:  # should it start after all, it answers here, on no one's port
        p = spawn([binary], sock, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        _, err = p.communicate(timeout=30)
    assert p.returncode == 1, err.decode(errors="replace")[-500:]
    assert ("config: %s=" % var).encode() in err


def test_port_taken_stops_at_start_naming_it():
    """A service whose port is taken by another program stops at once: exit 1 and a warning with
    the port, so the stack's start (or systemd) reports it instead of a service that never answers."""
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        binary = os.path.join(os.environ.get("SHOP_BIN_DIR", "build/bin"), "catalogue")
        env = dict(os.environ, CATALOGUE_SERVER_PORT=str(port))
        p = subprocess.run([binary], env=env, capture_output=True, timeout=20)
    assert p.returncode == 1, p.stderr.decode(errors="replace")[-500:]
    assert ("cannot listen on port %d" % port).encode() in p.stderr


# ---- /metrics and --version everywhere (D8, D17) ---------------------------------------------------

def expected_version():
    with open(os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                           "VERSION")) as f:
        return f.read().strip()


@pytest.mark.parametrize("name", SERVICES)
def test_metrics_build_info_and_request_counter(name):
    """D8/D17: GET /metrics is Prometheus text with shop_build_info{service,version} 1 and
    http_requests_total{route,code} counting a request just made."""
    base = service_url(name)
    health = HEALTH.get(name, "/health")
    # a backend may still be recovering from another test's outage: wait for a 200
    assert wait_for(lambda: requests.get(base + health, timeout=10).status_code == 200, 30), health
    r = requests.get(base + "/metrics", timeout=10)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain")
    m = re.search(r'^shop_build_info\{service="%s",version="([^"]+)"\} 1$' % name, r.text, re.M)
    assert m, r.text[-500:]
    assert m.group(1) == expected_version()
    route = re.escape(health)
    assert re.search(r'^http_requests_total\{route="%s",code="200"\} [1-9]\d*$' % route, r.text, re.M), \
        [l for l in r.text.splitlines() if l.startswith("http_requests_total")]
    assert re.search(r'^http_request_duration_seconds_bucket\{route="%s",le="\+Inf"\} [1-9]\d*$' % route,
                     r.text, re.M), [l for l in r.text.splitlines() if "duration" in l][:8]


@pytest.mark.parametrize("name", SERVICES)
def test_version_logged_at_start(name):
    """D17: every binary logs its version as it starts."""
    with open(log_path(name), errors="replace") as f:
        text = f.read()
    assert re.search(r"^<6>svc=%s starting version=%s pid=\d+$" % (name, re.escape(expected_version())),
                     text, re.M), text[:300]


@pytest.mark.parametrize("name", SERVICES)
def test_binary_version_flag(name):
    """D17: `<binary> --version` prints "<name> <version>" and exits 0."""
    binary = os.path.join(os.environ.get("SHOP_BIN_DIR", "build/bin"), name)
    p = subprocess.run([binary, "--version"], capture_output=True, timeout=20)
    assert p.returncode == 0, p.stderr.decode(errors="replace")[-500:]
    assert p.stdout.decode() == "%s %s\n" % (name, expected_version())


# ---- path parameters (D2) ------------------------------------------------------------------------

@pytest.mark.parametrize("param,status,text", [
    ("x" * 256, 404, "SKU not found"),
    ("%41" * 256, 404, "SKU not found"),   # 256 bytes once decoded
    ("%41" * 257, 400, "bad path parameter"),
    ("x" * 257, 400, "bad path parameter"),
], ids=["256-raw", "256-decoded", "257-decoded", "257-raw"])
def test_path_parameter_length_limit(param, status, text):
    """D2: a decoded path parameter of up to 256 bytes is used; longer is 400 (docs/api/catalogue.yaml)."""
    r = requests.get(service_url("catalogue") + "/product/" + param, timeout=10)
    assert (r.status_code, r.text) == (status, text)


def test_one_trailing_slash_accepted():
    """D2: the services' routers accept one trailing slash, as Express did."""
    r = requests.get(service_url("user") + "/check/user/", timeout=10)
    assert (r.status_code, r.text) == (200, "OK")
    cart = service_url("cart")
    cart_id = "slash-%s" % uuid.uuid4().hex[:12]
    sku = next(p["sku"] for p in requests.get(service_url("catalogue") + "/products", timeout=10).json()
               if p.get("instock", 1) != 0)
    assert requests.get("%s/add/%s/%s/1" % (cart, cart_id, sku), timeout=10).status_code == 200
    try:
        plain = requests.get("%s/cart/%s" % (cart, cart_id), timeout=10)
        slash = requests.get("%s/cart/%s/" % (cart, cart_id), timeout=10)
        assert plain.status_code == 200
        assert (slash.status_code, slash.json()) == (200, plain.json())
        assert slash.json()["items"][0]["sku"] == sku
    finally:
        requests.delete("%s/cart/%s" % (cart, cart_id), timeout=10)
    plain = requests.get(service_url("ratings") + "/api/fetch/Watson", timeout=10)
    slash = requests.get(service_url("ratings") + "/api/fetch/Watson/", timeout=10)
    assert (slash.status_code, slash.json()) == (200, plain.json())
    assert set(slash.json()) == {"avg_rating", "rating_count"}
