"""Reloading the seed data changes nothing (D13) and never undoes a password hash that a login
upgraded (D4): the loaders of schema/loaders run again against the live stack, as a redeploy
would. A seed user whose record is legacy plaintext (a database the reference seeded) logs in,
its record becomes a yescrypt hash; after the reload that exact hash is still stored, the user
still logs in, and every seeded collection and table holds what it held, nothing duplicated.
"""
import glob
import json
import os
import subprocess

import pytest
import requests

from conftest import ROOT, service_url

pymongo = pytest.importorskip("pymongo", reason="needs Debian python3-pymongo")

SEED_USER, SEED_PASSWORD = "stan", "bigbrain"  # the reference's seed user (its demo account)


def mariadb(sql):
    sock = os.environ.get("SHOP_MARIADB_SOCKET")
    if not sock:
        pytest.skip("SHOP_MARIADB_SOCKET not set: run through tests/run")
    r = subprocess.run(["mariadb", "--no-defaults", "--socket=" + sock, "-uroot", "-N", "-B", "-e", sql],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


def snapshot(db_client):
    """Everything the loaders write, in a comparable form."""
    users = db_client.users.users
    products = db_client.catalogue.products
    return {
        "products": sorted(json.dumps(d, sort_keys=True, default=str) for d in products.find()),
        "users": sorted(json.dumps(d, sort_keys=True, default=str) for d in users.find()),
        "mariadb": mariadb("SELECT COUNT(*) FROM cities.cities; SELECT COUNT(*), SUM(CRC32(CONCAT(code, name))) "
                           "FROM cities.codes; SELECT COUNT(*) FROM ratings.ratings; "
                           "SELECT user, host FROM mysql.user ORDER BY user, host; "
                           "CHECKSUM TABLE cities.codes, ratings.ratings"),
    }


def login(name, password):
    return requests.post(service_url("user") + "/login", json={"name": name, "password": password}, timeout=30)


def run_loaders():
    loaders = sorted(f for f in glob.glob(os.path.join(ROOT, "schema", "loaders", "*")) if os.access(f, os.X_OK))
    assert loaders
    for f in loaders:
        r = subprocess.run([f], env=os.environ, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, "%s: %s" % (f, r.stderr[-2000:])


def test_seed_reload_keeps_upgraded_hashes_and_duplicates_nothing():
    url = os.environ.get("MONGO_URL")
    if not url:
        pytest.skip("MONGO_URL not set: run through tests/run")
    client = pymongo.MongoClient(url, serverSelectionTimeoutMS=5000)
    try:
        users = client.users.users
        assert login(SEED_USER, SEED_PASSWORD).status_code == 200
        # the record the reference's seed left: plaintext; the login upgrades it
        users.update_one({"name": SEED_USER}, {"$set": {"password": SEED_PASSWORD}})
        assert login(SEED_USER, SEED_PASSWORD).status_code == 200
        upgraded = users.find_one({"name": SEED_USER})["password"]
        assert upgraded.startswith("$y$")
        with open(os.path.join(ROOT, "schema", "mongo", "users.json")) as f:
            assert upgraded not in {u["password"] for u in json.load(f)}

        before = snapshot(client)
        run_loaders()
        assert snapshot(client) == before
        assert users.find_one({"name": SEED_USER})["password"] == upgraded
        assert login(SEED_USER, SEED_PASSWORD).status_code == 200
        for name in ("user", "stan", "partner-57"):
            assert users.count_documents({"name": name}) == 1
        skus = [p["sku"] for p in client.catalogue.products.find()]
        assert len(skus) == len(set(skus)) == 11
    finally:
        if client.users.users.find_one({"name": SEED_USER}).get("password") == SEED_PASSWORD:
            login(SEED_USER, SEED_PASSWORD)  # never leave the plaintext record behind
        client.close()
