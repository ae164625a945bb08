"""MongoDB users on an authenticating FerretDB, the way deploy/roboshop keeps them on the database
host (deploy/tool/agent.sh, docs/DEPLOY.md): the shop's own FerretDB build (tools/ferretdb/build)
with its SCRAM "new authentication" and a setup user, and the release's client shop-mongo-seed:
--login tells allowed (0) from refused for want of credentials (3) and from no answer (1),
--user creates a service's user or changes its password (updateUser), and the seed form takes
a URL holding a password from the environment (MONGO_URL, "-"), never from argv.
"""
import json
import os
import shutil
import subprocess
import tempfile
import urllib.parse

import pytest

from conftest import ROOT, closed_port, free_port, wait_for

FERRETDB = os.path.join(ROOT, "build", "tools", "ferretdb")
ADMIN_PW = "adm1n-Pw"
ODD_PW = "p@ss/w:rd%?#&"  # every character a URL's userinfo must escape


def seed_tool():
    for d in (os.environ.get("SHOP_BIN_DIR", ""), os.path.join(ROOT, "build", "bin")):
        path = os.path.join(d, "shop-mongo-seed")
        if d and os.access(path, os.X_OK):
            return path
    pytest.fail("shop-mongo-seed is not built (make tools)")


def url(port, user=None, password=None, db="admin"):
    if user is None:
        return "mongodb://127.0.0.1:%d/" % port
    return "mongodb://%s:%s@127.0.0.1:%d/%s?authSource=%s" % (
        user, urllib.parse.quote(password, safe=""), port, db, db)


def tool(mongo_url, *args, password=None):
    env = {k: v for k, v in os.environ.items() if k not in ("MONGO_URL", "SHOP_MONGO_PASSWORD")}
    env["MONGO_URL"] = mongo_url
    if password is not None:
        env["SHOP_MONGO_PASSWORD"] = password
    r = subprocess.run([seed_tool(), *args], env=env, capture_output=True, text=True, timeout=120)
    return r.returncode, (r.stdout + r.stderr).strip()


@pytest.fixture(scope="module")
def ferret():
    """An authenticating FerretDB of its own (SQLite in a temporary directory) with setup user admin."""
    assert os.access(FERRETDB, os.X_OK), "build/tools/ferretdb is missing (tools/ferretdb/build)"
    with tempfile.TemporaryDirectory(prefix="shop-ferret-auth-") as data:
        port = free_port()
        env = dict(os.environ, FERRETDB_SETUP_PASSWORD=ADMIN_PW)
        log = open(os.path.join(data, "ferretdb.log"), "w")
        proc = subprocess.Popen([FERRETDB, "--handler=sqlite", "--sqlite-url=file:%s/" % data, "--state-dir=" + data,
                                 "--listen-addr=127.0.0.1:%d" % port, "--telemetry=disable", "--debug-addr=-",
                                 "--log-level=warn", "--test-enable-new-auth", "--setup-database=admin",
                                 "--setup-username=admin"], env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: proc.poll() is not None or tool(url(port), "--login", "admin")[0] == 3, timeout=60)
            assert proc.poll() is None, open(os.path.join(data, "ferretdb.log")).read()[-2000:]
            yield port
        finally:
            proc.terminate()
            proc.wait(timeout=30)
            log.close()


def test_a_client_without_credentials_is_refused(ferret):
    rc, out = tool(url(ferret), "--login", "catalogue")
    assert rc == 3, out
    assert "requires authentication" in out


def test_setup_user_logs_in_and_a_wrong_password_is_refused(ferret):
    assert tool(url(ferret, "admin", ADMIN_PW), "--login", "admin")[0] == 0
    rc, out = tool(url(ferret, "admin", "RoboShop@1"), "--login", "admin")
    assert rc == 3, out


def test_no_server_is_not_a_refusal():
    closed = closed_port()
    try:
        rc, out = tool("mongodb://127.0.0.1:%d/" % closed.getsockname()[1], "--login", "admin")
    finally:
        closed.close()
    assert rc == 1, out


def test_user_is_created_then_its_password_changed(ferret):
    admin = url(ferret, "admin", ADMIN_PW)
    rc, out = tool(admin, "--user", "users", "user", password=ODD_PW)
    assert (rc, out) == (0, "users: user user created")
    assert tool(url(ferret, "user", ODD_PW, "users"), "--login", "users")[0] == 0
    rc, out = tool(admin, "--user", "users", "user", password="second-Pw")
    assert (rc, out) == (0, "users: user user updated")
    assert tool(url(ferret, "user", ODD_PW, "users"), "--login", "users")[0] == 3
    assert tool(url(ferret, "user", "second-Pw", "users"), "--login", "users")[0] == 0


def test_user_needs_a_password_from_the_environment(ferret):
    rc, out = tool(url(ferret, "admin", ADMIN_PW), "--user", "users", "nopw")
    assert rc == 1 and "SHOP_MONGO_PASSWORD" in out


def test_seeding_takes_the_url_from_the_environment(ferret):
    rc, out = tool(url(ferret, "admin", ADMIN_PW), "--user", "catalogue", "catalogue", password=ODD_PW)
    assert rc == 0, out
    src = os.path.join(ROOT, "schema", "mongo", "catalogue.json")
    n = len(json.load(open(src, encoding="utf-8")))
    as_catalogue = url(ferret, "catalogue", ODD_PW, "catalogue")
    rc, out = tool(as_catalogue, "-", "catalogue", "products", "sku", src)
    assert (rc, out) == (0, "catalogue.products: %d inserted, 0 already present" % n)
    rc, out = tool(url(ferret), "-", "catalogue", "products", "sku", src)
    assert rc == 1 and "requires authentication" in out


def test_ferretdb_built_on_the_newer_json_decoder():
    """tools/ferretdb/build builds FerretDB with GOEXPERIMENT=jsonv2 whenever the Go toolchain that builds
    it has the experiment: FerretDB decodes every stored document as JSON on each scan, and the newer
    decoder halves that (the big-history attack test: 289 -> 164 s). Asked of the toolchain as the script
    asks it, in a module of go 1.24 (tools/ferretdb's go.mod) with GOTOOLCHAIN=auto."""
    go = shutil.which("go")
    if go is None:
        pytest.skip("no Go on this machine: FerretDB came from a cache")
    probe = subprocess.run([go, "env", "GOVERSION"], cwd=os.path.join(ROOT, "tools", "ferretdb"),
                           env=dict(os.environ, GOEXPERIMENT="jsonv2", GOTOOLCHAIN="auto"),
                           capture_output=True, text=True, timeout=300)
    info = subprocess.run([go, "version", "-m", FERRETDB], capture_output=True, text=True, timeout=60)
    assert info.returncode == 0, info.stderr
    built_with = "GOEXPERIMENT=jsonv2" in info.stdout
    assert built_with == (probe.returncode == 0), (probe.stdout + probe.stderr, info.stdout[-400:])
