"""SQL injection on every SQL-backed path parameter (D2, D3, D23): quote, comment and escape
payloads are data, never SQL. Each answer is checked against the contract's own oracle, not
against what the service printed last time:
* ratings `/api/fetch/{sku}`: an unrated sku answers exactly {"avg_rating":0,"rating_count":0}
  (docs/api/ratings.yaml) - a `' OR '1'='1` that reached SQL would answer some other sku's rating instead;
* ratings `/api/rate/{sku}/{score}`: a sku the catalogue does not know is 500 "{sku} not found"
  (Q-RA1) and stores nothing; a non-numeric score is 500 (docs/api/ratings.yaml) and stores nothing;
* shipping `/cities/{code}`: an unknown code is [] (docs/api/shipping.yaml);
* shipping `/match/{code}/{text}`: exactly the cities of `code` whose search name starts with
  `text` taken literally (D23), computed here from `/cities/{code}`; `'ewa` in the US has rows;
* shipping `/calc/{id}`: a non-numeric id is 400 with the Spring error JSON (docs/api/shipping.yaml).
A payload holding `/` (`/*`) is refused whole with 400 (D2). Every call has a timeout.
"""
import urllib.parse

import pytest
import requests

from conftest import service_url

PAYLOADS = ["'", "' OR '1'='1", "' OR 1=1 -- ", "1;--", '"', '" OR ""="', "\\", "\\'", "*",
            "'; DROP TABLE ratings; --", "') OR ('1'='1", "%27", "%", "_", "' UNION SELECT 1,2 #",
            "1 OR 1=1"]
RATED = "Ewooid"  # a catalogue sku this test rates, so that a leaked row would show
ZERO = '{"avg_rating":0,"rating_count":0}'


def q(text):
    """Percent-encodes a path parameter completely (the service decodes it, D2)."""
    return urllib.parse.quote(text, safe="")


def get(url):
    return requests.get(url, timeout=30)


@pytest.fixture(scope="module")
def rated():
    """RATED has a rating row; returns its fetch body (unchanged by anything below)."""
    rat = service_url("ratings")
    assert requests.put("%s/api/rate/%s/4" % (rat, RATED), timeout=30).status_code == 200
    body = get("%s/api/fetch/%s" % (rat, RATED)).text
    assert body != ZERO
    return body


@pytest.mark.parametrize("payload", PAYLOADS)
def test_ratings_fetch_payload_is_an_unknown_sku(payload, rated):
    rat = service_url("ratings")
    r = get("%s/api/fetch/%s" % (rat, q(payload)))
    assert (r.status_code, r.text) == (200, ZERO)
    r = get("%s/api/fetch/%s%s" % (rat, RATED, q(payload)))
    assert (r.status_code, r.text) == (200, ZERO)
    assert get("%s/api/fetch/%s" % (rat, RATED)).text == rated


@pytest.mark.parametrize("payload", PAYLOADS)
def test_ratings_rate_payload_sku_is_not_found_and_stores_nothing(payload, rated):
    rat = service_url("ratings")
    for sku in (payload, RATED + payload):
        r = requests.put("%s/api/rate/%s/5" % (rat, q(sku)), timeout=30)
        assert (r.status_code, r.text) == (500, sku + " not found")
        assert get("%s/api/fetch/%s" % (rat, q(sku))).text == ZERO
    assert get("%s/api/fetch/%s" % (rat, RATED)).text == rated


@pytest.mark.parametrize("payload", [p for p in PAYLOADS if not p.lstrip().startswith("1")])
def test_ratings_rate_payload_score_is_500_and_stores_nothing(payload, rated):
    # a score that is not a number is PHP's TypeError (500); "1;--" and "1 OR 1=1" are left out,
    # as PHP would take their leading digit
    rat = service_url("ratings")
    r = requests.put("%s/api/rate/%s/%s" % (rat, RATED, q(payload)), timeout=30)
    assert r.status_code == 500, r.text
    assert get("%s/api/fetch/%s" % (rat, RATED)).text == rated


@pytest.mark.parametrize("payload", PAYLOADS)
def test_shipping_cities_payload_is_an_unknown_code(payload):
    ship = service_url("shipping")
    for code in (payload, "gb" + payload):
        r = get("%s/cities/%s" % (ship, q(code)))
        assert (r.status_code, r.json()) == (200, [])


_cities = {}


def cities(code):
    if code not in _cities:
        r = get("%s/cities/%s" % (service_url("shipping"), code))
        assert r.status_code == 200 and r.json()
        _cities[code] = r.json()
    return _cities[code]


def expected_match(code, text):
    """The uuids /match/{code}/{text} may answer and how many: every city of code whose search
    name starts with text, literally and case-insensitively; over 10 rows only 9 are answered."""
    rows = {c["uuid"] for c in cities(code) if c["city"].lower().startswith(text.lower())}
    return rows, (len(rows) if len(rows) <= 10 else 9)


@pytest.mark.parametrize("code,text", [("us", "'ewa"), ("us", "'ewa gentry"), ("ca", "l'a"),
                                        ("it", "capo d'"), ("fr", "bois-d'")])
def test_shipping_match_quote_in_real_names_is_literal(code, text):
    rows, n = expected_match(code, text)
    assert rows, "the data has no %s city starting with %r" % (code, text)
    r = get("%s/match/%s/%s" % (service_url("shipping"), code, q(text)))
    assert r.status_code == 200
    got = {c["uuid"] for c in r.json()}
    assert len(r.json()) == n and got <= rows


@pytest.mark.parametrize("payload", PAYLOADS)
def test_shipping_match_payloads_are_literal(payload):
    ship = service_url("shipping")
    for code, text in (("us", "'ew" + payload), ("gb", "lon" + payload), ("us", payload + "xx")):
        rows, n = expected_match(code, text)
        r = get("%s/match/%s/%s" % (ship, code, q(text)))
        assert r.status_code == 200, (text, r.text)
        got = {c["uuid"] for c in r.json()}
        assert len(r.json()) == n and got <= rows, (text, r.json()[:3])
    r = get("%s/match/%s/lon" % (ship, q("gb" + payload)))
    assert (r.status_code, r.json()) == (200, [])


@pytest.mark.parametrize("payload", PAYLOADS)
def test_shipping_calc_payload_is_a_non_numeric_id(payload):
    ship = service_url("shipping")
    for id_ in (payload, "1" + payload):
        path = "/calc/" + q(id_)
        r = get(ship + path)
        assert r.status_code == 400, r.text
        body = r.json()
        assert (body["status"], body["error"], body["message"], body["path"]) == (400, "Bad Request", "", path)


@pytest.mark.parametrize("route", ["/api/fetch/%s", "/api/rate/%s/3", "/api/rate/EPE/%s"])
@pytest.mark.parametrize("payload", ["/*", "*/ /*", "1/**/OR/**/1=1"])
def test_ratings_slash_payload_is_400(route, payload):
    r = requests.request("PUT" if "rate" in route else "GET",
                         service_url("ratings") + route % q(payload), timeout=30)
    assert r.status_code == 400, r.text


@pytest.mark.parametrize("route", ["/cities/%s", "/match/%s/lon", "/match/gb/lon%s", "/calc/%s"])
@pytest.mark.parametrize("payload", ["/*", "*/ /*", "1/**/OR/**/1=1"])
def test_shipping_slash_payload_is_400(route, payload):
    r = get(service_url("shipping") + route % q(payload))
    assert r.status_code == 400, r.text
