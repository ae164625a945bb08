"""The access log's budget (D28, libshop/log.c): a service writes at most SHOP_ACCESS_LOG_MAX access
lines a second and counts the others in one line a later second says; 0 writes one per request; a
value that is not a number of lines stops the start with a config error. Against a second catalogue
of our own, whose log is its own."""
import re
import time
import uuid

import requests

from conftest import SecondService, wait_for

RUN = uuid.uuid4().hex[:8]


def burst(svc, tag, n):
    """n GETs on one keep-alive connection, each with its own request id TAG-i."""
    with requests.Session() as s:
        for i in range(n):
            r = s.get(svc.url + "/categories", headers={"X-Request-Id": "%s-%d" % (tag, i)}, timeout=10)
            assert r.status_code == 200, r.text


def logged(text, tag):
    return re.findall(r"rid=%s-(\d+) method=GET" % re.escape(tag), text)


def unlogged(text):
    return sum(int(n) for n in re.findall(r"access log: (\d+) requests not logged", text))


def test_budget_bounds_the_lines_and_counts_the_rest():
    svc = SecondService("catalogue", SHOP_ACCESS_LOG_MAX="5", LOG_LEVEL="info").wait_ready()
    try:
        tag = "budget-" + RUN
        start = time.monotonic()
        burst(svc, tag, 60)
        seconds = time.monotonic() - start
        time.sleep(1.2)  # a new second: its first request reports the ones before
        burst(svc, tag + "-after", 1)
        assert wait_for(lambda: logged(svc.text(), tag + "-after"), 5), svc.text()[-2000:]
        text = svc.text()
        n = len(logged(text, tag))
        # 5 a second: the burst spans at most int(seconds) + 1 seconds (plus the health checks')
        assert 1 <= n <= 5 * (int(seconds) + 2), (n, seconds)
        assert unlogged(text) >= 60 - n, text[-2000:]
    finally:
        assert svc.signal_and_wait() == 0


def test_zero_logs_every_request():
    svc = SecondService("catalogue", SHOP_ACCESS_LOG_MAX="0", LOG_LEVEL="info").wait_ready()
    try:
        tag = "every-" + RUN
        burst(svc, tag, 300)
        assert wait_for(lambda: len(logged(svc.text(), tag)) == 300, 5), len(logged(svc.text(), tag))
        assert "not logged" not in svc.text()
    finally:
        assert svc.signal_and_wait() == 0


def test_a_bad_value_stops_the_start():
    svc = SecondService("catalogue", SHOP_ACCESS_LOG_MAX="lots")
    assert svc.proc.wait(30) != 0
    assert 'config: SHOP_ACCESS_LOG_MAX="lots"' in svc.text(), svc.text()
