"""How many worker threads a service starts with (libshop/server.c): one per core it may run on
(at least 2, at most 16) where handlers answer from memory (shipping, dispatch's HTTP side,
catalogue with its copy of the catalogue), 4 where they wait on backends (payment; catalogue with
CATALOGUE_CACHE_MS=0), and SHOP_THREADS always decides. Read from the start-up line "listening port=... threads=N"."""
import os
import re

import pytest

from conftest import SecondService, wait_for

PER_CORE = min(16, max(2, len(os.sched_getaffinity(0))))


def threads_of(name, **env):
    svc = SecondService(name, LOG_LEVEL="info", **env).wait_ready()
    try:
        assert wait_for(lambda: re.search(r"listening port=\d+ threads=(\d+)", svc.text()), 5)
        return int(re.search(r"listening port=\d+ threads=(\d+)", svc.text()).group(1))
    finally:
        assert svc.signal_and_wait() == 0


@pytest.mark.parametrize("name,env,want", [
    ("shipping", {}, PER_CORE),
    ("dispatch", {}, PER_CORE),
    ("catalogue", {}, PER_CORE),
    ("catalogue", {"CATALOGUE_CACHE_MS": "0"}, 4),
    ("payment", {}, 4),
    ("shipping", {"SHOP_THREADS": "3"}, 3),
    ("payment", {"SHOP_THREADS": "6"}, 6),
])
def test_worker_threads(name, env, want):
    assert threads_of(name, **env) == want
