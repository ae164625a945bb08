"""Prometheus on the test stack, as `SHOP_MONITORING=1 make run` runs it (tests/monitoring/run starts it): its
generated configuration, its targets, its rules, a stopped service's alert, the operations page, make demo-async."""
import json
import os
import re
import subprocess
import time

import requests

from conftest import MON, ROOT, TIMEOUT, stack, wait_for

SERVICES = ["catalogue", "user", "cart", "shipping", "payment", "ratings", "dispatch"]
OTHER_JOBS = ["nginx", "redis", "mariadb", "rabbitmq", "prometheus"]


def test_generated_config_passes_promtool(env):
    conf = os.path.join(env["SHOP_STATE_DIR"], "prometheus", "prometheus.yml")
    r = subprocess.run(["promtool", "check", "config", conf], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout + r.stderr


def test_every_service_and_backend_is_scraped(prom):
    def all_up():
        targets = prom.get("/api/v1/targets")["activeTargets"]
        seen = {(t["labels"]["job"], t["labels"].get("service")): t["health"] for t in targets}
        want = [("shop", s) for s in SERVICES] + [(j, None) for j in OTHER_JOBS]
        return all(seen.get(w) == "up" for w in want) and seen
    wait_for("every target up", all_up, deadline=90)
    # and each exporter reaches its backend
    for metric in ["nginx_up", "redis_up", "mysql_up"]:
        wait_for(metric + " == 1", lambda: [r for r in prom.query(metric) if r["value"][1] == "1"], deadline=60)
    wait_for("the orders queue seen through rabbitmq_prometheus",
             lambda: prom.query('queue:rabbitmq_queue_consumers:sum{queue="orders"} > 0'), deadline=90)
    versions = {r["metric"]["service"]: r["metric"]["version"] for r in prom.query('shop_build_info{job="shop"}')}
    assert set(versions) == set(SERVICES), versions


def test_rules_are_loaded(prom):
    groups = prom.get("/api/v1/rules")["groups"]
    loaded = {r["name"] for g in groups for r in g["rules"] if r["type"] == "alerting"}
    import test_rules
    assert set(test_rules.alert_names()) <= loaded, loaded
    assert all(r.get("health") != "err" for g in groups for r in g["rules"]), groups


def test_dashboard_queries_are_valid_promql(prom):
    d = json.load(open(os.path.join(MON, "grafana", "roboshop.json")))
    for p in d["panels"]:
        for t in p.get("targets", []):
            prom.query(t["expr"])  # status success, or the assertion names the query


def test_a_stopped_service_raises_its_alert(prom):
    def ratings_alert():
        return [a for a in prom.alerts() if a["labels"].get("alertname") == "ShopServiceDown"
                and a["labels"].get("service") == "ratings" and a["state"] in ("pending", "firing")]
    wait_for("ratings scraped", lambda: prom.query('up{job="shop",service="ratings"} == 1'), deadline=60)
    assert not ratings_alert()
    stack("stop", "ratings")
    try:
        alert = wait_for("ShopServiceDown{service=ratings} pending", ratings_alert, deadline=90)
        assert alert[0]["annotations"]["summary"] == "ratings is down"
    finally:
        stack("start", "ratings")
    wait_for("the alert gone once ratings is back", lambda: not ratings_alert(), deadline=90)


def test_ops_page_serves_prometheus_read_only(env, ops_prom):
    ops = env["SHOP_OPS_URL"]
    page = requests.get(ops + "/", timeout=TIMEOUT)
    assert page.status_code == 200 and 'id="queue-depth"' in page.text
    for asset in ["/ops.js", "/ops.css", "/css/app.css", "/logo.svg"]:
        assert requests.get(ops + asset, timeout=TIMEOUT).status_code == 200, asset
    js = requests.get(ops + "/ops.js", timeout=TIMEOUT).text
    for q in ['up{job="shop"}', "shop_build_info", "service:http_requests:rate1m", "rabbitmq_queue_messages_ready",
              "rabbitmq_queue_consumers", "orders_dispatched_total", "setTimeout(refresh, 1000)"]:
        assert q in js, q
    assert {r["metric"]["service"] for r in ops_prom.query('up{job="shop"}')} == set(SERVICES)
    # nothing but GETs of the query API goes through
    assert requests.post(ops + "/prometheus/api/v1/query", data={"query": "up"}, timeout=TIMEOUT).status_code == 403
    for path in ["/prometheus/-/quit", "/prometheus/-/reload", "/prometheus/graph", "/prometheus/federate", "/nope"]:
        assert requests.get(ops + path, timeout=TIMEOUT).status_code == 404, path


def test_demo_async_accounts_for_every_order(env, ops_prom):
    n = 8
    started = time.time()
    r = subprocess.run([os.path.join(ROOT, "deploy", "local", "demo-async"), "--orders", str(n)],
                       capture_output=True, text=True, timeout=280)
    print(r.stdout[-4000:], r.stderr[-2000:])
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    placed = re.findall(r"paid: (\S+)", r.stdout)
    assert len(placed) == n and len(set(placed)) == n
    assert "all %d orders placed while dispatch was offline were dispatched" % n in r.stdout
    with open(os.path.join(env["SHOP_STATE_DIR"], "logs", "dispatch.log"), errors="replace") as f:
        log = f.read()
    for o in placed:
        assert "dispatched orderid=" + o in log, o
    # what the operations page plots: the backlog reached n, then drained to 0
    q = 'queue:rabbitmq_queue_messages_ready:sum{queue="orders"}'

    def grew_then_drained():
        series = ops_prom.get("/api/v1/query_range", query=q, start=started, end=time.time(), step=1)["result"]
        values = [float(v) for _, v in series[0]["values"]] if series else []
        peak = values.index(max(values)) if values else 0
        return values and max(values) >= n and 0 in values[peak:] and values
    wait_for("the queue's backlog of %d, then 0, in Prometheus" % n, grew_then_drained, deadline=60)
    # and the page itself, rendered by a headless browser, shows the drained queue and the backlog's peak
    def page_shows():
        dom = rendered(env["SHOP_OPS_URL"] + "/")
        depth = re.search(r'id="queue-depth"[^>]*>([^<]*)<', dom)
        top = re.search(r'id="queue-peak"[^>]*>([^<]*)<', dom)
        ok = depth and top and depth.group(1) == "0" and top.group(1).isdigit() and int(top.group(1)) >= n
        return ok or None
    wait_for("the operations page showing the backlog's peak and an empty queue", page_shows, deadline=120)


def rendered(url):
    """The page's DOM after its scripts ran for a few seconds (headless Chromium, as the browser suite uses)."""
    r = subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000",
                        "--dump-dom", url], capture_output=True, text=True, timeout=60)
    return r.stdout
