"""Checks every answer a stack service gives during the contract suite against its OpenAPI document.

Enabled from conftest.py (pytest_plugins). Every `requests` call goes through Session.send, which this
plugin wraps: when the URL is one of the stack's services (SHOP_<SERVICE>_URL of the environment, the
document docs/api/<service>.yaml), the answer is validated with openapi-core (status code listed for the
route, Content-Type listed for that status, body valid against its schema). A violation fails the test
that made the request, after it ran (requests made on other threads count too). Answers of processes a
test starts itself on other ports (stub catalogues, TLS servers, the nginx gateway) are not checked: they
are not a service of docs/api/. Streamed answers whose body the test has not read are not checked either,
and of a JSON array of more than 50 elements (a country's cities: up to tens of thousands) the first
and last 25 elements are validated (openapi-core takes about 1.5 ms an element).

Requests the documents do not describe are held to the shared HTTP server's rules (every document's
description): an unknown path answers 404, a known path with another method 405 (OPTIONS 200), HEAD
what GET answers, one trailing slash is ignored, and any route may answer 413, 414 or 431 to an
oversized request.

openapi-core comes from PyPI (tests/api/requirements.txt), installed by tests/api/setup into
build/api-venv; its site-packages are appended to sys.path, so the system's pytest and requests stay.
"""
import glob
import json
import os
import sys
import threading
from urllib.parse import urlsplit

import pytest
import requests

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOCS = os.path.join(ROOT, "docs", "api")
FRAMEWORK_ANY_ROUTE = {413, 414, 431}  # answered before routing, on any path
SAMPLE = 25  # of a JSON array longer than 2 * SAMPLE, SAMPLE elements from each end are validated

for _site in glob.glob(os.path.join(ROOT, "build", "api-venv", "lib", "python3*", "site-packages")):
    if _site not in sys.path:
        sys.path.append(_site)
try:
    import yaml
    from openapi_core import Config, OpenAPI
    from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse
    from openapi_core.templating.paths.exceptions import (OperationNotFound, PathNotFound,
                                                          ServerNotFound)
    from openapi_core.templating.responses.exceptions import ResponseNotFound
    IMPORT_ERROR = None
except ImportError as e:  # reported by pytest_configure: the check must not pass silently
    IMPORT_ERROR = e


def _json_or_text(value, **params):
    """application/json bodies: parsed, or the raw text when they are not JSON (shipping labels its
    text answers JSON when the client asks for JSON, D23); a text never validates as an object or
    array, so a broken JSON body still fails every JSON-shaped schema."""
    text = value.decode(params.get("charset", "utf-8"), "replace") if isinstance(value, bytes) else value
    try:
        return json.loads(text)
    except ValueError:
        return text


def _sampled(response):
    """response, or for a JSON array of more than 2 * SAMPLE elements a copy whose body is its first
    and last SAMPLE elements: the schema is per element, and the status and Content-Type are checked
    as sent."""
    if len(response.content) < 1024 or not response.headers.get("Content-Type", "").startswith("application/json"):
        return response
    try:
        items = json.loads(response.content)
    except ValueError:
        return response
    if not isinstance(items, list) or len(items) <= 2 * SAMPLE:
        return response
    copy = requests.Response()
    copy.__dict__.update(response.__dict__)
    copy._content = json.dumps(items[:SAMPLE] + items[-SAMPLE:]).encode()
    return copy


def _without_trailing_slash(req):
    """A copy of the prepared request req with one trailing slash of its path removed (D2)."""
    parts = urlsplit(req.url)
    copy = req.copy()
    copy.url = parts._replace(path=parts.path[:-1]).geturl()
    return copy


class Checker:
    """The documents of the stack's services, by the host:port they listen on."""

    def __init__(self):
        self.by_netloc = {}
        self.violations = []
        self.seen = {}  # (url, method, status, content type, body hash) -> problem or None
        self.lock = threading.Lock()
        config = Config(extra_media_type_deserializers={"application/json": _json_or_text})
        for path in sorted(glob.glob(os.path.join(DOCS, "*.yaml"))):
            service = os.path.basename(path)[:-5]
            url = os.environ.get("SHOP_%s_URL" % service.upper())
            if not url:
                continue
            with open(path) as f:
                spec = yaml.safe_load(f)
            spec["servers"] = [{"url": url}]
            netloc = urlsplit(url).netloc
            self.by_netloc[netloc] = (service, spec, OpenAPI.from_dict(spec, config=config))

    def check(self, response):
        """A description of what in response violates its document, or None."""
        found = self.by_netloc.get(urlsplit(response.url).netloc)
        if not found or response.request is None or response._content is False:
            return None
        service, spec, api = found
        req, status = response.request, response.status_code
        path = urlsplit(req.url).path
        key = (response.url, req.method, status, response.headers.get("Content-Type"), hash(response.content))
        if key in self.seen:  # the same answer to the same request again (load and concurrency tests)
            problem = self.seen[key]
        else:
            problem = self.seen[key] = self._validate(spec, api, req, response)
        if problem is None:
            return None
        return "%s %s %.150s -> %d: %s" % (service, req.method, req.url, status, problem)

    def _validate(self, spec, api, req, response):
        status = response.status_code
        response = _sampled(response)
        try:
            api.validate_response(RequestsOpenAPIRequest(req), RequestsOpenAPIResponse(response))
            return None
        except (PathNotFound, ServerNotFound):
            path = urlsplit(req.url).path
            if path.endswith("/") and not path.endswith("//") and len(path) > 1:
                return self._validate(spec, api, _without_trailing_slash(req), response)
            return None if status == 404 or status in FRAMEWORK_ANY_ROUTE else "not a route of the document, expected 404"
        except OperationNotFound:
            return self._undocumented_method(spec, api, req, status)
        except ResponseNotFound:
            if status in FRAMEWORK_ANY_ROUTE:
                return None
            return "status %d is not listed for this route" % status
        except Exception as e:  # a body, content type or header that violates the document
            detail = "; ".join(str(x) for x in getattr(e, "schema_errors", ()) or ()) or repr(e.__cause__ or e)
            return "%s: %s (body %.200r)" % (type(e).__name__, detail, response.text)

    @staticmethod
    def _undocumented_method(spec, api, req, status):
        if status in FRAMEWORK_ANY_ROUTE:
            return None
        if req.method == "HEAD":  # what GET answers, without a body
            get = req.copy()
            get.method = "GET"
            fake = requests.Response()
            fake.status_code, fake._content, fake.url, fake.request = status, b"", req.url, get
            try:
                api.validate_response(RequestsOpenAPIRequest(get), RequestsOpenAPIResponse(fake))
            except ResponseNotFound:
                return "status %d is not listed for GET of this route" % status
            except Exception:
                pass  # the missing body is what HEAD means
            return None
        if req.method == "OPTIONS":  # 200 with Allow; an empty 204 would say the same
            return None if status in (200, 204) else "OPTIONS of a route answered %d, expected 200" % status
        return None if status == 405 else "method not in the document, expected 405"


CHECKER = None
_original_send = requests.Session.send


def _checked_send(self, request, **kwargs):
    response = _original_send(self, request, **kwargs)
    if CHECKER is not None:
        problem = CHECKER.check(response)
        if problem:
            with CHECKER.lock:
                CHECKER.violations.append(problem)
    return response


def pytest_configure(config):
    global CHECKER
    if IMPORT_ERROR is not None:
        raise pytest.UsageError("openapi_check: %s; run tests/api/setup (tests/run does)" % IMPORT_ERROR)
    CHECKER = Checker()
    requests.Session.send = _checked_send


def pytest_unconfigure(config):
    requests.Session.send = _original_send


def _take_violations():
    with CHECKER.lock:
        found, CHECKER.violations[:] = list(CHECKER.violations), []
    return found


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
    _take_violations()  # what an earlier test's stray threads did is not this test's
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    yield
    found = _take_violations()
    if found:
        raise AssertionError("answers that violate docs/api/ (OpenAPI):\n  " + "\n  ".join(found[:20]))
