"""Shared fixtures for the black-box contract tests.

tests/run exports the local stack's environment (deploy/local/stack env) before pytest
starts, so every test reads service URLs from os.environ: nothing is hard-coded twice.

Rules these tests keep: no test asserts a duration (speed is bench/'s); a wait polls for its
condition with a generous deadline (wait_for); a process a test starts gets a listening socket
the test bound (listener, spawn), a server of the test's own binds port 0 and keeps its socket,
and a refused port is a bound socket that does not listen (closed_port); every test runs alone
and in any order; every HTTP call has a timeout (HTTP_TIMEOUT when it names none).
"""
import glob
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

pytest_plugins = ["openapi_check"]  # every answer of a stack service is checked against docs/api/

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STACK = os.path.join(ROOT, "deploy", "local", "stack")
HTTP_TIMEOUT = 60  # seconds: the default of every requests call that names none

_request = requests.Session.request


def _request_with_timeout(self, method, url, *args, **kw):
    """Session.request with a default timeout: requests waits forever without one, and every call
    of these tests (requests.get, a Session's get, the http fixture) goes through here."""
    if len(args) < 7 and kw.get("timeout") is None:
        kw["timeout"] = HTTP_TIMEOUT
    return _request(self, method, url, *args, **kw)


requests.Session.request = _request_with_timeout


def service_url(name):
    """Base URL of a service, e.g. service_url("catalogue") -> http://127.0.0.1:28001."""
    url = os.environ.get("SHOP_%s_URL" % name.upper())
    if not url:
        pytest.skip("SHOP_%s_URL not set: run through tests/run" % name.upper())
    return url


def stack(*args):
    """Runs deploy/local/stack with args (e.g. stack("stop", "mongo")); raises on failure."""
    subprocess.run([STACK, *args], check=True, stdout=subprocess.DEVNULL)


def wait_for(predicate, timeout=30.0, interval=0.2):
    """Polls predicate() until it returns truthy or timeout seconds pass; returns its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


@pytest.fixture
def http():
    """A requests session (keep-alive) for one test."""
    with requests.Session() as s:
        yield s


@pytest.fixture
def web():
    """The front door: the stack's nginx (SHOP_URL), without a trailing slash."""
    url = os.environ.get("SHOP_URL")
    if not url:
        pytest.skip("SHOP_URL not set: run through tests/run")
    return url.rstrip("/")


@pytest.fixture
def catalogue():
    return service_url("catalogue")


def self_signed_cert(directory):
    """A one-day certificate for 127.0.0.1 (CN and subjectAltName) made with the openssl command,
    and its ssl server context. Returns (cert_path, context)."""
    import ssl
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return cert, ctx


class QuietHandler(BaseHTTPRequestHandler):
    """The request handler of a test's own HTTP server (serve_http): answer() writes a whole reply;
    nothing is logged."""

    def answer(self, status, body=b"OK", ctype="text/plain"):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def serve_http(handler, tls=None):
    """A test's own HTTP server: handler (a QuietHandler class) on 127.0.0.1 at a port of its own
    (server.server_port), each request in a thread, served from a daemon thread; with tls (an
    ssl.SSLContext) over HTTPS. Stop it with close_server."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    if tls:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def close_server(server):
    server.shutdown()
    server.server_close()


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now (another process may take it
    before it is used). Only for a program that can neither be handed a socket nor bind port 0 and
    say which it got (redis-server); a service gets a listener() (spawn) or binds port 0."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listener():
    """A listening TCP socket on 127.0.0.1 with a port of its own, bound here: no other process
    can take the port between choosing it and using it (spawn() hands it to a service)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(128)
    return s


def url_of(sock):
    return "http://127.0.0.1:%d" % sock.getsockname()[1]


# bash puts the socket on fd 3 and exports LISTEN_PID=its own pid, which the service keeps when bash
# execs it: systemd's socket activation, which every service accepts (libshop/server.c).
_ACTIVATE = ('fd=$1; shift; exec 3<&"$fd" || exit 99; [ "$fd" = 3 ] || eval "exec $fd<&-"; '
             'export LISTEN_FDS=1 LISTEN_PID=$$; exec "$@"')


def spawn(argv, sock, **kw):
    """subprocess.Popen(argv, **kw) with sock as the process's listening socket (fd 3, LISTEN_FDS=1,
    LISTEN_PID=the process's pid). The process answers on sock's port (url_of(sock)) whatever its
    port variable says; the caller may close its copy of sock once the process runs."""
    fd = sock.fileno()
    return subprocess.Popen(["bash", "-c", _ACTIVATE, "activate", str(fd), *argv], pass_fds=(fd,), **kw)


def sanitizer_reports(pid):
    """The AddressSanitizer/UBSan report files of process pid. tests/run sets log_path, so a report
    goes to PATH.PID, not to the process's output, and a test must look there."""
    found = []
    for var in ("ASAN_OPTIONS", "UBSAN_OPTIONS"):
        m = re.search(r"(?:^|:)log_path=([^:]+)", os.environ.get(var, ""))
        if m:
            found += glob.glob("%s.%d" % (m.group(1), pid)) + glob.glob("%s.%d.*" % (m.group(1), pid))
    return found


SANITIZER = re.compile(r"AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:")


class SecondService:
    """A second process of service NAME beside the stack's own, with extra environment, on a
    listening socket bound here and handed over (nothing probed), its output in a temporary log.
    Talk to it without a keep-alive session (plain requests.get/post), so that nothing holds a
    connection when it is told to stop."""

    def __init__(self, name, health="/health", **env):
        """env: NAME=value adds or replaces a variable, NAME=None removes it."""
        self.log = tempfile.NamedTemporaryFile(prefix=name + "-", suffix=".log", delete=False)
        e = dict(os.environ)
        for k, v in env.items():
            if v is None:
                e.pop(k, None)
            else:
                e[k] = str(v)
        binary = os.path.join(os.environ.get("SHOP_BIN_DIR", "build/bin"), name)
        with listener() as sock:
            self.proc = spawn([binary], sock, env=e, stdout=self.log, stderr=subprocess.STDOUT)
            self.url = url_of(sock)
        self.health = health

    def wait_ready(self, timeout=30):
        """Waits for its health route to answer 200; fails with its log if it exits instead."""
        def up():
            try:
                return requests.get(self.url + self.health, timeout=10).status_code == 200
            except requests.RequestException:
                return self.proc.poll() is not None
        assert wait_for(up, timeout) and self.proc.poll() is None, self.text()
        return self

    def text(self):
        with open(self.log.name, errors="replace") as f:
            return f.read()

    def signal_and_wait(self, sig=signal.SIGTERM):
        """Sends sig unless it has exited already; its exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(60)

    def assert_clean_exit(self, rc):
        """rc is 0 and no sanitizer reported anything (in its output or in log_path's files);
        removes the log."""
        text = self.text()
        os.unlink(self.log.name)
        assert rc == 0, text[-3000:]
        assert not SANITIZER.search(text), text[-6000:]
        assert not sanitizer_reports(self.proc.pid)

    def assert_stops_naming(self, var):
        """It refused its configuration: exit status 1, and its output names var."""
        rc = self.proc.wait(30)
        text = self.text()
        os.unlink(self.log.name)
        assert rc == 1, text[-3000:]
        assert var in text, text[-3000:]


def _tcp_table():
    """{(local port, remote port): (state, tx_queue, rx_queue)} of the IPv4 TCP sockets in this
    network namespace (/proc/net/tcp)."""
    out = {}
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            local, remote, state, queues = fields[1], fields[2], fields[3], fields[4]
            tx, rx = (int(q, 16) for q in queues.split(":"))
            out[(int(local.split(":")[1], 16), int(remote.split(":")[1], 16))] = (state, tx, rx)
    return out


def request_read(client):
    """Whether the server at the other end of the connected socket client has read everything sent
    on it so far (the kernel acked it and the server's receive queue is empty)."""
    mine, theirs = client.getsockname()[1], client.getpeername()[1]
    table = _tcp_table()
    me, peer = table.get((mine, theirs)), table.get((theirs, mine))
    return me is not None and peer is not None and me[1] == 0 and peer[2] == 0


def wait_request_read(client, timeout=30.0):
    """Waits until request_read(client): a request written with client.sendall() is then in the
    server's hands. Returns whether it happened in time."""
    return wait_for(lambda: request_read(client), timeout, interval=0.01)


def service_pid(name):
    """The pid the local stack recorded for a component, or None."""
    path = os.path.join(os.environ.get("SHOP_STATE_DIR", ""), "run", name + ".pid")
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def dispatch_log():
    """Path of the stack's dispatch log (one "dispatched orderid=..." line per order)."""
    path = os.path.join(os.environ.get("SHOP_LOG_DIR", ""), "dispatch.log")
    if not os.path.exists(path):
        pytest.fail("no dispatch log at %s: run through tests/run" % path)
    return path


def dispatched_lines(*paths):
    lines = []
    for path in paths:
        with open(path, errors="replace") as f:
            lines += [line for line in f if "dispatched orderid=" in line]
    return lines


def dispatched_ids(*paths):
    """The order ids dispatch logged as dispatched in the given log files."""
    return {re.search(r"dispatched orderid=(\S*)", line).group(1)
            for line in dispatched_lines(*paths)}


def wait_dispatched(ids, timeout=30.0, paths=()):
    """Waits until every id appears in the dispatch log(s); returns the ids still missing."""
    files = [dispatch_log(), *paths]
    wait_for(lambda: set(ids) <= dispatched_ids(*files), timeout, interval=0.3)
    return set(ids) - dispatched_ids(*files)


def start_service(name, ready_path, env, out=subprocess.DEVNULL, sock=None, bin_dir=None, timeout=30):
    """Starts a second process of a service binary (SHOP_BIN_DIR) with env (complete: the
    caller decides what it keeps of os.environ), waits until ready_path of env["SHOP_TEST_URL"]
    answers 200 and returns the process. With sock (a listener()), the process is given that
    socket (spawn) and SHOP_TEST_URL should be url_of(sock). Stop it with stop_service."""
    binary = os.path.join(bin_dir or os.environ.get("SHOP_BIN_DIR", os.path.join(ROOT, "build", "bin")), name)
    if sock is not None:
        proc = spawn([binary], sock, env=env, stdout=out, stderr=subprocess.STDOUT)
    else:
        proc = subprocess.Popen([binary], env=env, stdout=out, stderr=subprocess.STDOUT)

    def ready():
        try:
            return requests.get(env["SHOP_TEST_URL"] + ready_path, timeout=5).status_code == 200
        except requests.RequestException:
            return proc.poll() is not None  # died: stop waiting
    answered = wait_for(ready, timeout)
    if proc.poll() is not None:
        pytest.fail("%s exited with %d at start" % (name, proc.returncode))
    if not answered:
        proc.kill()
        proc.wait()
        pytest.fail("%s: %s did not answer 200 within %d s" % (name, ready_path, timeout))
    return proc


def stop_service(proc):
    """SIGTERM, and the exit status must be 0 (a clean drain) with no sanitizer report."""
    proc.terminate()
    assert proc.wait(30) == 0
    assert not sanitizer_reports(proc.pid)


def send_request(url, path):
    """Writes GET path on a new connection to url (http://host:port) and waits until the server has
    read it (wait_request_read); returns the connected socket. read_response() reads the answer."""
    u = requests.utils.urlparse(url)
    client = socket.create_connection((u.hostname, u.port), timeout=HTTP_TIMEOUT)
    client.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % (path, u.netloc)).encode())
    assert wait_request_read(client), "the server did not read the request"
    return client


def answered_yet(client):
    """Whether anything (an answer or the end of the connection) has arrived on client."""
    import select
    return bool(select.select([client], [], [], 0)[0])


def read_response(client):
    """The status and body of the answer on client (from send_request); closes it."""
    import http.client
    with client:
        r = http.client.HTTPResponse(client)
        r.begin()
        return r.status, r.read()


def closed_port():
    """A socket bound to a port of 127.0.0.1 that does not listen: a connection to the port is
    refused for as long as the socket is open, and no other process can take the port."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    return s


def rabbitmqctl(*args):
    """Runs rabbitmqctl against the local stack's RabbitMQ node (its own epmd, cookie and
    control ports, as deploy/local/stack starts it); returns stdout, raises on failure."""
    state, base = os.environ.get("SHOP_STATE_DIR", ""), int(os.environ.get("SHOP_PORT_BASE", "0"))
    node = os.environ.get("SHOP_RABBITMQ_NODE")
    if not (state and base and node):
        pytest.skip("no local stack RabbitMQ (SHOP_STATE_DIR, SHOP_PORT_BASE, SHOP_RABBITMQ_NODE)")
    offsets = {}
    with open(os.path.join(ROOT, "deploy", "local", "ports.env")) as f:
        for m in re.finditer(r"^PORT_OFFSET_(\w+)=(\d+)$", f.read(), re.M):
            offsets[m.group(1)] = base + int(m.group(2))
    env = dict(os.environ, HOME=os.path.join(state, "rabbitmq-home"), ERL_EPMD_PORT=str(offsets["EPMD"]),
               ERL_EPMD_ADDRESS="127.0.0.1", RABBITMQ_CTL_DIST_PORT_MIN=str(offsets["RABBITMQ_CTL_MIN"]),
               RABBITMQ_CTL_DIST_PORT_MAX=str(offsets["RABBITMQ_CTL_MAX"]),
               RABBITMQ_CONF_ENV_FILE=os.path.join(state, "rabbitmq", "rabbitmq-env.conf"))
    r = subprocess.run(["/usr/lib/rabbitmq/bin/rabbitmqctl", "-q", "-n", node, *args], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


class paused:
    """with paused("mongo"): the stack's component is frozen by SIGSTOP (it still accepts TCP
    connections, the kernel does that, but never answers) and always resumed by SIGCONT."""

    def __init__(self, name):
        pid = service_pid(name)
        if not pid:
            pytest.skip("no %s.pid of the local stack" % name)
        self.pid = int(pid)

    def __enter__(self):
        os.kill(self.pid, signal.SIGSTOP)
        return self

    def __exit__(self, *exc):
        os.kill(self.pid, signal.SIGCONT)
        return False
