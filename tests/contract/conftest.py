"""Shared fixtures for the black-box contract tests.

tests/run exports the local stack's environment (deploy/local/stack env) before pytest
starts, so every test reads service URLs from os.environ: nothing is hard-coded twice.
"""
import os
import re
import signal
import socket
import subprocess
import time

import pytest
import requests

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STACK = os.path.join(ROOT, "deploy", "local", "stack")


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
    deadline = time.time() + timeout
    while True:
        value = predicate()
        if value or time.time() > deadline:
            return value
        time.sleep(interval)


@pytest.fixture
def http():
    """A requests session (keep-alive) for one test."""
    with requests.Session() as s:
        yield s


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


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
    return {re.search(r"dispatched orderid=(\S+)", line).group(1)
            for line in dispatched_lines(*paths)}


def wait_dispatched(ids, timeout=30.0, paths=()):
    """Waits until every id appears in the dispatch log(s); returns the ids still missing."""
    files = [dispatch_log(), *paths]
    wait_for(lambda: set(ids) <= dispatched_ids(*files), timeout, interval=0.3)
    return set(ids) - dispatched_ids(*files)


def start_service(name, ready_path, env, out=subprocess.DEVNULL):
    """Starts a second process of a service binary (SHOP_BIN_DIR) with env (complete: the
    caller decides what it keeps of os.environ), waits until ready_path answers 200 and
    returns the process. Stop it with stop_service."""
    binary = os.path.join(os.environ.get("SHOP_BIN_DIR", os.path.join(ROOT, "build", "bin")), name)
    proc = subprocess.Popen([binary], env=env, stdout=out, stderr=subprocess.STDOUT)

    def ready():
        try:
            return requests.get(env["SHOP_TEST_URL"] + ready_path, timeout=1).status_code == 200
        except requests.RequestException:
            return proc.poll() is not None  # died: stop waiting
    answered = wait_for(ready, 15)
    if proc.poll() is not None:
        pytest.fail("%s exited with %d at start" % (name, proc.returncode))
    if not answered:
        proc.kill()
        proc.wait()
        pytest.fail("%s: %s did not answer 200 within 15 s" % (name, ready_path))
    return proc


def stop_service(proc):
    """SIGTERM, and the exit status must be 0 (a clean drain)."""
    proc.terminate()
    assert proc.wait(15) == 0


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
