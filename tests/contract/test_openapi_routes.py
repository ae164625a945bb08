"""docs/api/ covers every route: each route of a service's route table (services/<name>/main.c,
`struct shop_route routes[]`, plus the GET /metrics libshop adds to every service) is in
docs/api/<name>.yaml, each operation of a document is in that table, and the running service serves it
(its router does not answer the framework's own 404 "not found" or 405)."""
import glob
import os
import re
import subprocess

import pytest
import requests
import yaml

from conftest import ROOT, service_url

DOCS = os.path.join(ROOT, "docs", "api")
SERVICES = sorted(os.path.basename(os.path.dirname(p)) for p in glob.glob(os.path.join(ROOT, "services", "*", "main.c")))
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
ROUTE = re.compile(r'\{\s*"([A-Z]+)"\s*,\s*"([^"]+)"\s*,\s*\w+\s*\}')
FRAMEWORK = {("GET", "/metrics")}  # libshop's shop_server_run adds it to every route table


def table_routes(service):
    """(METHOD, /path/{param}) of the service's route table, as written in its main.c."""
    with open(os.path.join(ROOT, "services", service, "main.c")) as f:
        src = f.read()
    tables = re.findall(r"struct shop_route\s+\w+\[\]\s*=\s*\{(.*?)\n\};", src, re.S)
    assert len(tables) == 1, "%s/main.c: expected one route table" % service
    routes = {(m, re.sub(r":(\w+)", r"{\1}", p)) for m, p in ROUTE.findall(tables[0])}
    assert routes, "%s/main.c: no routes parsed" % service
    return routes | FRAMEWORK


def doc_operations(service):
    """(METHOD, path) -> operation of docs/api/<service>.yaml."""
    with open(os.path.join(DOCS, service + ".yaml")) as f:
        doc = yaml.safe_load(f)
    return {(m.upper(), path): op for path, item in doc["paths"].items() for m, op in item.items() if m in METHODS}


def test_every_service_has_a_document_and_every_document_a_service():
    docs = sorted(os.path.basename(p)[:-5] for p in glob.glob(os.path.join(DOCS, "*.yaml")))
    assert docs == SERVICES


def test_framework_metrics_route_is_still_added_by_libshop():
    with open(os.path.join(ROOT, "libshop", "router.c")) as f:
        assert '{"GET", "/metrics", http_metrics_handler}' in f.read()


@pytest.mark.parametrize("service", SERVICES)
def test_document_matches_route_table(service):
    served, documented = table_routes(service), set(doc_operations(service))
    assert sorted(served - documented) == [], "routes missing from docs/api/%s.yaml" % service
    assert sorted(documented - served) == [], "docs/api/%s.yaml names routes the service does not serve" % service


@pytest.mark.parametrize("service", SERVICES)
def test_running_service_serves_documented_routes(service):
    base = service_url(service)
    for (method, path), op in sorted(doc_operations(service).items()):
        if op.get("x-side-effects"):
            continue  # /memory, /free: in the route table (checked above), not called here
        url = base + re.sub(r"\{\w+\}", "probe-x", path)
        r = requests.request(method, url, timeout=30)
        assert (r.status_code, r.text) != (404, "not found"), "%s %s is not routed" % (method, path)
        assert r.status_code != 405, "%s %s: 405" % (method, path)


def test_nothing_cites_a_file_outside_the_repository():
    """Comments, tests and docs cite docs/api/ and docs/DECISIONS.md, never the spec the project was
    written from (its section signs, its path): a clone must be able to resolve every citation."""
    r = subprocess.run(["git", "grep", "-nI", "-E", "\u00a7|shared/(spec|design)|contract\\.md", "--", "."],
                       cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode in (0, 1), r.stderr
    assert r.stdout == "", "citations of files outside the repository:\n" + r.stdout
