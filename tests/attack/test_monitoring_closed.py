"""The internal side stays internal (docs/MONITORING.md): the operations page and Prometheus (its UI, its API, its
lifecycle endpoints) are never reachable through the public gateway (SHOP_URL): each of their paths answers 404
there, not the storefront's page and never their content, whatever the method."""
import os

import pytest
import requests

TIMEOUT = 15
FRONT = os.environ.get("SHOP_URL", "").rstrip("/")

PATHS = [
    "/ops", "/ops/", "/ops/index.html", "/ops/ops.js",
    "/prometheus", "/prometheus/", "/prometheus/graph", "/prometheus/api/v1/query?query=up",
    "/prometheus/api/v1/alerts", "/prometheus/api/v1/targets", "/prometheus/-/ready",
    "/graph", "/alerts", "/targets", "/rules", "/-/ready", "/-/healthy", "/-/quit", "/-/reload",
    "/api/v1/query?query=up", "/api/v1/alerts", "/api/v1/targets", "/api/v1/status/config",
    "/api/v1/admin/tsdb/snapshot", "/federate?match[]=up",
]
# what an answer of Prometheus or of the operations page would contain
LEAKS = ['"status":"success"', "Prometheus", "queue-depth", "prometheus_build_info", "scrape_configs"]


@pytest.fixture(scope="module")
def front():
    if not FRONT:
        pytest.fail("SHOP_URL not set: run through tests/run")
    return FRONT


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_internal_side_is_404_at_the_gateway(front, path, method):
    r = requests.request(method, front + path, timeout=TIMEOUT, allow_redirects=False,
                         headers={"Origin": front} if method == "POST" else {})
    assert r.status_code == 404, (method, path, r.status_code, r.text[:200])
    for leak in LEAKS:
        assert leak not in r.text, (method, path, leak)
