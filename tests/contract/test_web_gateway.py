"""The nginx gateway in front of the services (web/nginx/roboshop.conf.in, D14, D15), reached through SHOP_URL:
unknown /api/ paths are a plain 404 (never the SPA's index.html), product images carry
`expires 5s`, and the reference's ratings debug pages are gone.
"""
import http.client
import os
import urllib.parse

import pytest
import requests

from conftest import service_url

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
IMAGES = os.path.join(ROOT, "web", "static", "images")


def test_unknown_api_path_is_plain_404(web):
    """D15: /api/<no such service>/… is nginx's plain 404 "no such service", not index.html."""
    r = requests.get(web + "/api/nosuch/x", timeout=10)
    assert r.status_code == 404
    assert r.headers["Content-Type"].startswith("text/plain")
    assert r.text == "no such service\n"
    assert "<html" not in r.text.lower()


def raw_get(web, path):
    """GET path exactly as written (no client-side normalisation of '..' or '//')."""
    u = urllib.parse.urlsplit(web)
    conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=10)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.read().decode(errors="replace")
    finally:
        conn.close()


def test_proxy_prefix_is_replaced_by_root(web):
    """/api/catalogue/ itself is no call of the UI: the closed gateway's 404 (D20), not
    the "no such service" of an unknown prefix and not index.html."""
    status, body = raw_get(web, "/api/catalogue/")
    assert status == 404
    assert body == "no such route\n"


def test_proxy_uri_is_normalised_and_query_kept(web):
    """nginx resolves '..' before matching a location; a query string does not disturb
    the routing (the services ignore it, so its passing through is not visible here)."""
    status, body = raw_get(web, "/api/user/../catalogue/categories")
    assert status == 200 and body.startswith("[")
    status, body = raw_get(web, "/api/catalogue/products?x=1&y=%2F")
    assert status == 200 and body.startswith("[{")


def test_unknown_page_path_is_index_html(web):
    """D15 (Q-WE1 fixed): an unknown non-API path serves index.html; the API 404 above is the exception."""
    r = requests.get(web + "/product/Watson", timeout=10)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/html")
    with open(os.path.join(ROOT, "web", "static", "index.html"), "rb") as f:
        assert r.content == f.read()


def test_product_image_expires_in_5s(web):
    """/images/ is static with `expires 5s` (Cache-Control: max-age=5 and an Expires header)."""
    r = requests.get(web + "/images/Watson.png", timeout=10)
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "image/png"
    assert r.headers["Cache-Control"] == "max-age=5"
    assert r.headers.get("Expires", "").endswith(" GMT")
    with open(os.path.join(IMAGES, "Watson.png"), "rb") as f:
        assert r.content == f.read()


def test_missing_image_is_placeholder(web):
    """D15: a missing image is answered 200 with /images/placeholder.png."""
    r = requests.get(web + "/images/NoSuchRobot.png", timeout=10)
    assert r.status_code == 200
    with open(os.path.join(IMAGES, "placeholder.png"), "rb") as f:
        assert r.content == f.read()


@pytest.mark.parametrize("path", ["/info.php", "/server-status"])
def test_ratings_debug_pages_are_gone(web, path):
    """D14 (Q-RA4): ratings' /info.php and /server-status are not reproduced: 404 directly and via web."""
    direct = requests.get(service_url("ratings") + path, timeout=10)
    assert direct.status_code == 404
    gw = requests.get(web + "/api/ratings" + path, timeout=10)
    assert gw.status_code == 404
    for r in (direct, gw):
        assert "phpinfo" not in r.text.lower() and "server status" not in r.text.lower()
