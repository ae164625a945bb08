"""Span export (libshop/trace.c) against collectors that misbehave: one that accepts connections and
never reads, and one that is not there. Requests never wait for the exporter, and every span the
bounded queue cannot hold is dropped and counted in /metrics: exactly the overflow. The encoding
itself is checked against a real collector (Jaeger) by the tracing suite (tests/tracing)."""
import os
import re

from conftest import closed_port, listener, start_service, stop_service, url_of, wait_for

QUEUE = 50


def metric(http, url, name):
    text = http.get(url + "/metrics", timeout=30).text
    m = re.search(r"^%s (\S+)$" % re.escape(name), text, re.M)
    assert m, "%s missing from /metrics" % name
    return int(float(m.group(1)))


def traced_catalogue(endpoint, sock):
    env = dict(os.environ, LOG_LEVEL="warn", SHOP_TEST_URL=url_of(sock),
               OTEL_EXPORTER_OTLP_ENDPOINT=endpoint, OTEL_BSP_MAX_QUEUE_SIZE=str(QUEUE),
               OTEL_BSP_MAX_EXPORT_BATCH_SIZE="10", OTEL_BSP_SCHEDULE_DELAY="10",
               OTEL_EXPORTER_OTLP_TIMEOUT="600000")
    env.pop("CATALOGUE_SERVER_PORT", None)
    return start_service("catalogue", "/health", env, sock=sock)


def test_collector_that_never_reads(http):
    """The collector's socket listens but nobody accepts or reads: the first export waits for an
    answer that never comes (timeout 10 min), the queue fills to its 50 spans and stays full. 200
    more requests all succeed, and each of their server spans, plus the one of the /metrics
    request read in between, is counted as dropped; nothing is exported, nothing is lost
    silently. The service still stops cleanly (the exporter gives up at the stop)."""
    with listener() as collector, listener() as sock:
        url = url_of(sock)
        proc = traced_catalogue(url_of(collector), sock)
        try:
            for _ in range(2 * QUEUE):  # fill the queue: one server span per request
                assert http.get(url + "/no/such/route", timeout=30).status_code == 404
            assert metric(http, url, "shop_trace_spans_queued_total") == QUEUE
            before = metric(http, url, "shop_trace_spans_dropped_total")
            n = 200
            for _ in range(n):
                assert http.get(url + "/no/such/route", timeout=30).status_code == 404
            after = metric(http, url, "shop_trace_spans_dropped_total")
            assert after - before == n + 1  # the 200, and the first /metrics read's own span
            assert metric(http, url, "shop_trace_spans_queued_total") == QUEUE
            assert metric(http, url, "shop_trace_spans_exported_total") == 0
        finally:
            stop_service(proc)


def test_collector_down(http):
    """No collector at all (a refused port): exports fail and are counted, requests succeed."""
    with closed_port() as refused, listener() as sock:
        url = url_of(sock)
        proc = traced_catalogue(url_of(refused), sock)
        try:
            for _ in range(20):
                assert http.get(url + "/no/such/route", timeout=30).status_code == 404
            assert wait_for(lambda: metric(http, url, "shop_trace_spans_failed_total") >= 20, 30)
            assert metric(http, url, "shop_trace_spans_exported_total") == 0
        finally:
            stop_service(proc)
