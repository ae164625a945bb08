"""The nginx gateway in front of the services (contract §2.2, D14, D15), reached through SHOP_URL:
unknown /api/ paths are a plain 404 (never the SPA's index.html), product images carry
`expires 5s`, and the reference's ratings debug pages are gone.
"""
import os

import pytest
import requests

from conftest import service_url

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
IMAGES = os.path.join(ROOT, "web", "static", "images")


@pytest.fixture
def web():
    url = os.environ.get("SHOP_URL")
    if not url:
        pytest.skip("SHOP_URL not set: run through tests/run")
    return url.rstrip("/")


def test_unknown_api_path_is_plain_404(web):
    """§2.2/D15: /api/<no such service>/… is nginx's plain 404 "no such service", not index.html."""
    r = requests.get(web + "/api/nosuch/x", timeout=10)
    assert r.status_code == 404
    assert r.headers["Content-Type"].startswith("text/plain")
    assert r.text == "no such service\n"
    assert "<html" not in r.text.lower()


def test_unknown_page_path_is_index_html(web):
    """D15 (Q-WE1 fixed): an unknown non-API path serves index.html; the API 404 above is the exception."""
    r = requests.get(web + "/product/Watson", timeout=10)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/html")
    with open(os.path.join(ROOT, "web", "static", "index.html"), "rb") as f:
        assert r.content == f.read()


def test_product_image_expires_in_5s(web):
    """§2.2: /images/ is static with `expires 5s` (Cache-Control: max-age=5 and an Expires header)."""
    r = requests.get(web + "/images/Watson.png", timeout=10)
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "image/png"
    assert r.headers["Cache-Control"] == "max-age=5"
    assert r.headers.get("Expires", "").endswith(" GMT")
    with open(os.path.join(IMAGES, "Watson.png"), "rb") as f:
        assert r.content == f.read()


def test_missing_image_is_placeholder(web):
    """§2.2/D15: a missing image is answered 200 with /images/placeholder.png."""
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
