"""Shipping's in-memory index (issue 21 item 2; services/shipping/index.h) against today's SQL, on the
whole data set: /match for thousands of random prefixes (case and accent variants, the LIKE wildcards
and the escape character, characters outside the BMP, joiners, odd country codes) must give exactly the
uuids, order and truncation of `SELECT ... WHERE country_code = ? AND city LIKE ? ESCAPE '!' ORDER BY uuid
LIMIT 11` run by MariaDB itself; /calc and /codes the same rows. Also: the index notices a change of
the data (the periodic check, SIGHUP) and keeps answering while MariaDB is away."""
import os
import random
import re
import signal
import subprocess
import uuid

import pytest
import requests

from conftest import listener, service_pid, service_url, start_service, stop_service, url_of, wait_for

SOCK = os.environ.get("SHOP_MARIADB_SOCKET")
needs_db = pytest.mark.skipif(not SOCK or not os.path.exists(SOCK or ""), reason="needs the local stack's MariaDB socket")
MATCH_SQL = ("SELECT uuid FROM cities WHERE country_code = %s AND city LIKE %s ESCAPE '!' "
             "ORDER BY uuid LIMIT 11")
# characters that fold onto letters, or onto nothing, or are LIKE's own
ODD = ["é", "É", "ü", "Ö", "ß", "ø", "æ", "ñ", "ç", "Å", "ł", "ı", "İ", "%", "_", "!", "\\", "'", "-", " ",
       ".", "\u00a0", "\u200d", "\u00ad", "\ufffd", "😀", "𝐚", "ｌ", "Ａ", "ﬁ", "ǆ", "Ⅸ", "ⓐ", "ª", "²", "ʼ"]


def sql(script):
    out = subprocess.run(["mariadb", "--no-defaults", "--socket=" + SOCK, "-uroot", "--batch",
                          "--skip-column-names", "--default-character-set=utf8mb4", "cities"],
                         input=script, capture_output=True, text=True, timeout=900, check=True)
    return out.stdout.splitlines()


def lit(s):
    return "_utf8mb4 X'%s'" % s.encode().hex() if s else "''"


def like_prefix(text):
    return "".join("!" + c if c in "!%_" else c for c in text) + "%"


def sql_matches(queries):
    """Today's SQL for each (code, text): the uuids after the reference's truncation."""
    script = "".join("SELECT 'Q%d';\n%s;\n" % (i, MATCH_SQL % (lit(code), lit(like_prefix(text))))
                     for i, (code, text) in enumerate(queries))
    results, cur = [], None
    for line in sql(script):
        if line.startswith("Q"):
            cur = []
            results.append(cur)
        else:
            cur.append(int(line))
    return [r[:9] if len(r) > 10 else r for r in results]


def index_loads(url):
    m = re.search(r"^shipping_index_loads_total (\S+)$", requests.get(url + "/metrics", timeout=10).text, re.M)
    return float(m.group(1)) if m else 0.0


def mutate(rng, text):
    out = []
    for ch in text:
        r = rng.random()
        if r < 0.15:
            out.append(ch.upper())
        elif r < 0.2:
            out.append(rng.choice(ODD))
        else:
            out.append(ch)
    if rng.random() < 0.1:
        out.insert(rng.randrange(len(out) + 1), rng.choice(ODD))
    return "".join(out)


def random_code(rng, code):
    r = rng.random()
    if r < 0.7:
        return code
    return rng.choice([code.upper(), code[0].upper() + code[1], code + " ", code + "  ", code[0],
                       code + "x", "zz", code[0] + "\u200d" + code[1], "æ", code[0] + "é"])


def utf16_len(s):
    return sum(2 if ord(c) > 0xFFFF else 1 for c in s)


@needs_db
def test_match_equals_sql_on_random_prefixes(http):
    ship = service_url("shipping")
    assert wait_for(lambda: index_loads(ship) >= 1, 120), "the index never loaded"
    rows = [line.split("\t") for line in sql("SELECT country_code, city FROM cities;")]
    rng = random.Random(int(os.environ.get("SHOP_TEST_SEED", "21")))
    queries = []
    while len(queries) < 3000:
        code, city = rng.choice(rows)
        text = mutate(rng, city[:rng.randint(3, min(len(city), 12))] if len(city) >= 3 else city + "xx")
        if rng.random() < 0.05:
            text = "".join(rng.choice(ODD + list("aeilnorst")) for _ in range(rng.randint(3, 6)))
        if utf16_len(text) >= 3 and "/" not in text and len(text.encode()) <= 200:
            queries.append((random_code(rng, code), text))
    want = sql_matches(queries)
    nonempty = 0
    for (code, text), expect in zip(queries, want):
        r = http.get("%s/match/%s/%s" % (ship, requests.utils.quote(code, safe=""),
                                          requests.utils.quote(text, safe="")), timeout=10)
        assert r.status_code == 200, (code, text, r.text)
        got = [c["uuid"] for c in r.json()]
        assert got == expect, (code, text)
        nonempty += bool(got)
    assert nonempty > 1000  # the prefixes mostly hit cities: the comparison is not of empty lists


@needs_db
def test_match_and_calc_rows_equal_the_tables(http):
    """Every city's row as /match gives it equals its /cities row (SQL), and /calc agrees."""
    ship = service_url("shipping")
    assert wait_for(lambda: index_loads(ship) >= 1, 120)
    rng = random.Random(7)
    codes = http.get(ship + "/codes", timeout=10).json()
    names = [line.split("\t") for line in sql("SELECT uuid, code, name FROM codes ORDER BY name, uuid;")]
    assert [[str(c["uuid"]), c["code"], c["name"]] for c in codes] == names
    for code in rng.sample([c["code"] for c in codes], 25):
        for row in http.get("%s/cities/%s" % (ship, code), timeout=30).json()[:40]:
            if len(row["city"]) < 3 or "/" in row["city"]:  # D2: no "/" in a parameter
                continue
            got = http.get("%s/match/%s/%s" % (ship, code, requests.utils.quote(row["city"], safe="")),
                           timeout=10).json()
            assert row in got or len(got) == 9
            calc = http.get("%s/calc/%d" % (ship, row["uuid"]), timeout=10).json()
            assert calc["cost"] == calc["distance"] / 20


@needs_db
def test_index_notices_changes_periodically_and_on_sighup(http):
    """A private shipping checking every second sees a new city; one checking hourly sees the
    removal only when told with SIGHUP."""
    uid, name = 99900000 + random.randrange(99999), "zzidx" + uuid.uuid4().hex[:6]
    procs = []
    try:
        for period in ("1", "3600"):
            with listener() as sock:
                url = url_of(sock)
                env = dict(os.environ, LOG_LEVEL="warn", SHIPPING_INDEX_CHECK_S=period, SHOP_TEST_URL=url)
                env.pop("SERVER_PORT", None)
                procs.append((start_service("shipping", "/actuator/info", env, sock=sock), url))
        fast, slow = procs[0][1], procs[1][1]
        for url in (fast, slow):
            assert wait_for(lambda: index_loads(url) >= 1, 120)
        sql("INSERT INTO cities (uuid, country_code, city, name, region, latitude, longitude) "
            "VALUES (%d, 'gb', '%s', 'Zz', '', 51.5, -0.1);" % (uid, name))
        assert wait_for(lambda: [c["uuid"] for c in requests.get(fast + "/match/gb/" + name, timeout=10).json()] == [uid], 60)
        assert requests.get(fast + "/calc/%d" % uid, timeout=10).status_code == 200
        assert requests.get(slow + "/match/gb/" + name, timeout=10).json() == []  # not checked yet
        loads = index_loads(slow)
        procs[1][0].send_signal(signal.SIGHUP)
        assert wait_for(lambda: index_loads(slow) > loads, 120)
        assert [c["uuid"] for c in requests.get(slow + "/match/gb/" + name, timeout=10).json()] == [uid]
    finally:
        sql("DELETE FROM cities WHERE uuid = %d;" % uid)
        for proc, _ in procs:
            stop_service(proc)
        # the stack's own shipping may have loaded the row meanwhile: have it read the tables again
        # (a periodic check that read them before the DELETE may end first: the load SIGHUP forces
        # comes after it)
        ship = service_url("shipping")
        loads = index_loads(ship)
        os.kill(int(service_pid("shipping")), signal.SIGHUP)
        assert wait_for(lambda: index_loads(ship) > loads, 120)
        assert wait_for(lambda: requests.get(ship + "/match/gb/" + name, timeout=10).json() == [], 120)
