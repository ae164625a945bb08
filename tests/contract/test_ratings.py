"""Contract tests for ratings (docs/api/ratings.yaml, D8-D10, D16) against the real service, the real
MariaDB and the real catalogue. Each test resets the rating row of the catalogue SKU it uses
(over SQL, as the ratings user), so reruns start from the same state."""
import concurrent.futures
import os
import subprocess
import uuid

import pytest
import requests

from conftest import service_pid, service_url, stack, wait_for


@pytest.fixture
def rat():
    return service_url("ratings")


def sql(statement):
    """Runs one statement in database `ratings` as the service's own user, over TCP."""
    host = os.environ.get("DB_HOST", "127.0.0.1")
    port = os.environ.get("DB_PORT", "3306")
    env = dict(os.environ, MYSQL_PWD=os.environ.get("DB_PASSWORD", "iloveit"))
    out = subprocess.run(["mariadb", "--no-defaults", "--protocol=TCP", "-h", host, "-P", port,
                          "-u", os.environ.get("DB_USER", "ratings"), "-N", "-B", "ratings",
                          "-e", statement], env=env, check=True, capture_output=True, text=True)
    return out.stdout


def reset(sku):
    sql("DELETE FROM ratings WHERE sku = '%s'" % sku)


def catalogue_skus(http):
    r = http.get(service_url("catalogue") + "/products")
    assert r.status_code == 200
    return [p["sku"] for p in r.json()]


def fetch(http, rat, sku):
    r = http.get("%s/api/fetch/%s" % (rat, sku))
    assert r.status_code == 200
    return r


def put(http, rat, sku, score):
    return http.put("%s/api/rate/%s/%s" % (rat, sku, score))


def test_health(http, rat):
    r = http.get(rat + "/_health")
    assert r.status_code == 200
    assert r.json() == {"pdo_connectivity": True}
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    assert r.headers["Access-Control-Allow-Methods"] == "*"
    for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS"):  # the route takes ANY method
        r = http.request(method, rat + "/_health")
        assert (r.status_code, r.json()) == (200, {"pdo_connectivity": True}), method


def test_fetch_unrated_is_integer_zeros(http, rat):
    r = fetch(http, rat, "never-rated-sku")
    assert r.text == '{"avg_rating":0,"rating_count":0}'


def test_rating_sequence_drift(http, rat):
    sku = "EPE"
    assert sku in catalogue_skus(http)
    reset(sku)
    want = [(4, "4"), (5, "4.5"), (3, "4"), (5, "4.25"), (1, "3.6"), (2, "3.33"), (5, "3.57")]
    for n, (score, avg) in enumerate(want, 1):
        r = put(http, rat, sku, score)
        assert r.status_code == 200 and r.json() == {"success": True}
        r = fetch(http, rat, sku)
        # PHP prints floats shortest, without a forced ".0"
        assert r.text == '{"avg_rating":%s,"rating_count":%d}' % (avg, n)
    assert sql("SELECT avg_rating, rating_count FROM ratings WHERE sku = 'EPE'").split() == [
        "3.57", "7"]


def test_score_coercion_and_clamp(http, rat):
    sku = "EMM"
    reset(sku)
    assert put(http, rat, sku, "9").status_code == 200     # -> 5
    assert put(http, rat, sku, "0").status_code == 200     # -> 1: (5 + 1) / 2 = 3
    assert put(http, rat, sku, "3.7").status_code == 200   # -> 3: (3*2 + 3) / 3 = 3
    assert put(http, rat, sku, "-2").status_code == 200    # -> 1: (3*3 + 1) / 4 = 2.5
    assert fetch(http, rat, sku).json() == {"avg_rating": 2.5, "rating_count": 4}
    r = put(http, rat, sku, "abc")                         # PHP TypeError: 500 (D1)
    assert r.status_code == 500
    assert fetch(http, rat, sku).json() == {"avg_rating": 2.5, "rating_count": 4}


def test_unknown_sku_is_500_and_stores_nothing(http, rat):
    sku = "no-such-sku-%s" % uuid.uuid4().hex
    r = put(http, rat, sku, 4)
    assert r.status_code == 500  # Q-RA1: not 404
    assert sku in r.text
    assert fetch(http, rat, sku).text == '{"avg_rating":0,"rating_count":0}'


def test_catalogue_down_is_500(http, rat):
    sku = "SHCE"
    try:
        stack("stop", "catalogue")
        r = put(http, rat, sku, 3)
        assert r.status_code == 500
        assert r.text == "Failed to connect to catalogue"
    finally:
        stack("start", "catalogue")
    assert wait_for(lambda: put(http, rat, sku, 3).status_code == 200, 20)


def test_parallel_first_ratings_all_counted(rat):
    sku = "RMC"
    reset(sku)

    def one(_):
        with requests.Session() as s:
            return s.put("%s/api/rate/%s/4" % (rat, sku), timeout=30).status_code

    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        codes = list(pool.map(one, range(20)))
    assert codes == [200] * 20
    with requests.Session() as s:
        assert s.get("%s/api/fetch/%s" % (rat, sku)).json() == {"avg_rating": 4,
                                                                 "rating_count": 20}


def test_routing_errors(http, rat):
    assert http.get(rat + "/api/rate/EPE/4").status_code == 405
    assert http.get(rat + "/nope").status_code == 404
    assert http.get(rat + "/api/fetch/a%2Fb").status_code == 400


def test_cors_headers_on_every_reply(http, rat):
    """docs/api/ratings.yaml: the reference kernel's listener adds both CORS headers to every response, the
    router's own errors, the preflight and the handlers' errors included."""
    cases = [("GET", "/nope", 404), ("GET", "/api/rate/EPE/4", 405), ("OPTIONS", "/api/rate/EPE/4", 200),
             ("GET", "/api/fetch/a%2Fb", 400), ("PUT", "/api/rate/NO-SUCH-SKU/3", 500),
             ("GET", "/api/fetch/Watson", 200)]
    for method, path, status in cases:
        r = http.request(method, rat + path)
        assert r.status_code == status, (method, path, r.status_code)
        assert r.headers.get("Access-Control-Allow-Origin") == "*", (method, path)
        assert r.headers.get("Access-Control-Allow-Methods") == "*", (method, path)


def test_mariadb_outage_gives_503_then_recovers(http, rat):
    pid = service_pid("ratings")
    assert http.get(rat + "/_health").status_code == 200
    try:
        stack("stop", "mariadb")
        r = http.get(rat + "/_health")  # the service's own answer while MariaDB is away
        assert r.status_code == 503
        assert r.json() == {"pdo_connectivity": False}
        assert http.get(rat + "/api/fetch/EPE", timeout=10).status_code == 503
        assert http.put(rat + "/api/rate/EPE/4", timeout=10).status_code == 503
    finally:
        stack("start", "mariadb")
    assert wait_for(lambda: http.get(rat + "/_health").status_code == 200, 30)
    for _ in range(12):
        assert http.get(rat + "/api/fetch/EPE").status_code == 200
    # writes too: every worker's connection (and its cached statements) died with the server
    reset("EPE")
    for _ in range(12):
        assert http.put(rat + "/api/rate/EPE/4", timeout=10).status_code == 200
    assert http.get(rat + "/api/fetch/EPE").json() == {"avg_rating": 4, "rating_count": 12}
    assert service_pid("ratings") == pid
