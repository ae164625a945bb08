"""The monitoring suite's helpers: the stack's URLs (deploy/local/stack env), Prometheus's API, polling."""
import json
import os
import subprocess
import time
import urllib.parse

import pytest
import requests

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MON = os.path.join(ROOT, "deploy", "monitoring")
STACK = os.path.join(ROOT, "deploy", "local", "stack")
TIMEOUT = 15


def stack(*args):
    return subprocess.run([STACK, *args], check=True, capture_output=True, text=True, timeout=240)


def wait_for(what, check, deadline=120, every=0.5):
    """Polls check() until it returns something true; fails after deadline seconds."""
    end = time.monotonic() + deadline
    last = None
    while time.monotonic() < end:
        last = check()
        if last:
            return last
        time.sleep(every)
    pytest.fail("%s: not seen within %d s (last: %r)" % (what, deadline, last))


class Prom:
    def __init__(self, base):
        self.base = base.rstrip("/")

    def get(self, path, **params):
        r = requests.get(self.base + path, params=params, timeout=TIMEOUT)
        assert r.status_code == 200, (path, params, r.status_code, r.text[:300])
        body = r.json()
        assert body["status"] == "success", body
        return body["data"]

    def query(self, q):
        return self.get("/api/v1/query", query=q)["result"]

    def alerts(self):
        return self.get("/api/v1/alerts")["alerts"]


@pytest.fixture(scope="session")
def env():
    e = {k: os.environ.get(k) for k in ("SHOP_URL", "SHOP_PROMETHEUS_URL", "SHOP_OPS_URL", "SHOP_STATE_DIR")}
    missing = [k for k, v in e.items() if not v]
    if missing:
        pytest.fail("not set: %s: run through tests/run (tests/monitoring/run)" % " ".join(missing))
    return e


@pytest.fixture(scope="session")
def prom(env):
    return Prom(env["SHOP_PROMETHEUS_URL"])


@pytest.fixture(scope="session")
def ops_prom(env):
    """Prometheus's API as the operations page reads it (through the ops nginx)."""
    return Prom(env["SHOP_OPS_URL"] + "/prometheus")
