"""Shared fixtures for the black-box contract tests.

tests/run exports the local stack's environment (deploy/local/stack env) before pytest
starts, so every test reads service URLs from os.environ: nothing is hard-coded twice.
"""
import os
import re
import socket
import subprocess
import time

import pytest
import requests

pytest_plugins = ["openapi_check"]  # every answer of a stack service is checked against docs/api/

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
