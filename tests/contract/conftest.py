"""Shared fixtures for the black-box contract tests.

tests/run exports the local stack's environment (deploy/local/stack env) before pytest
starts, so every test reads service URLs from os.environ: nothing is hard-coded twice.
"""
import os
import subprocess
import time

import pytest
import requests

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STACK = os.path.join(ROOT, "deploy", "local", "stack")


def service_url(name):
    """Base URL of a service, e.g. service_url("catalogue") -> http://127.0.0.1:28001."""
    url = os.environ.get("SHOP_%s_URL" % name.upper())
    if not url:
        pytest.skip("SHOP_%s_URL not set: run through tests/run" % name.upper())
    return url


def stack(*args):
    """Runs deploy/local/stack with args (e.g. stack("stop", "mongo")); raises on failure."""
    subprocess.run([STACK, *args], check=True, stdout=subprocess.DEVNULL)


def wait_for(predicate, timeout=30.0, interval=0.2):
    """Polls predicate() until it returns truthy or timeout seconds pass; returns its value."""
    deadline = time.time() + timeout
    while True:
        value = predicate()
        if value or time.time() > deadline:
            return value
        time.sleep(interval)


@pytest.fixture
def http():
    """A requests session (keep-alive) for one test."""
    with requests.Session() as s:
        yield s


@pytest.fixture
def catalogue():
    return service_url("catalogue")
