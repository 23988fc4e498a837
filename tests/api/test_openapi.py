"""The generated /openapi.json: the error statuses each route can answer, with the error body
schema, and the bearer and cookie security schemes on authenticated routes.

The statuses are checked against the app's own answers: an anonymous call to every
authenticated route, a body over the limit to every body route, a missing id in every path.
"""

from typing import Any

import httpx
import pytest
import pytest_asyncio
from jsonschema import Draft202012Validator

from tests.fixtures.api import ADMIN_ROUTES, BASE, PUBLIC_ROUTES, api_routes

pytestmark = pytest.mark.asyncio

ERROR_REF = {"$ref": "#/components/schemas/ErrorResponse"}
MISSING = {"order_id": "missing-order"}  # every other path id is an integer


@pytest_asyncio.fixture
async def spec(api) -> dict[str, Any]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api.app), base_url=BASE) as c:
        response = await c.get("/openapi.json")
    assert response.status_code == 200
    return dict(response.json())


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, op)
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
        if path.startswith("/api/")
    ]


def _documented(spec, method: str, path: str) -> set[int]:
    return {int(s) for s in spec["paths"][path][method.lower()]["responses"]}


def _check_error(spec, method: str, path: str, response: httpx.Response, wrong: list[str]):
    """The status is documented for the route and the body is the documented error body."""
    label = f"{method} {path} -> {response.status_code}"
    if response.status_code not in _documented(spec, method, path):
        wrong.append(f"{label}: not documented")
        return
    validator = Draft202012Validator({**ERROR_REF, "components": spec["components"]})
    problems = [e.message for e in validator.iter_errors(response.json())]
    if problems:
        wrong.append(f"{label}: {problems[0]}")


def _url(path: str, **ids: str) -> str:
    for part in path.split("/"):
        if part.startswith("{"):
            path = path.replace(part, ids.get(part[1:-1], str(2**61)))
    return path


class TestSchema:
    async def test_security_schemes(self, spec):
        schemes = spec["components"]["securitySchemes"]
        assert schemes["bearerAuth"] == {
            **schemes["bearerAuth"],
            "type": "http",
            "scheme": "bearer",
        }
        cookie = schemes["sessionCookie"]
        assert (cookie["type"], cookie["in"], cookie["name"]) == (
            "apiKey",
            "cookie",
            "brokerlink_session",
        )

    async def test_every_route_is_documented_and_security_applies_per_route(self, api, spec):
        operations = {(m, p): op for m, p, op in _operations(spec)}
        routes = {(r.method, r.path) for r in api_routes(api.app)}
        assert routes == set(operations)
        public = {*PUBLIC_ROUTES, ("POST", "/api/auth/login")}
        for key, op in operations.items():
            if key in public:
                assert "security" not in op, key
                assert 401 not in _documented(spec, *key) or key == ("POST", "/api/auth/login")
            elif key in ADMIN_ROUTES:
                # An admin's token or session; anyone else is answered as if nothing were here.
                assert op["security"] == [{"bearerAuth": []}, {"sessionCookie": []}], key
                assert 404 in _documented(spec, *key), key
                assert 401 not in _documented(spec, *key), key
            else:
                assert op["security"] == [{"bearerAuth": []}, {"sessionCookie": []}], key
                assert 401 in _documented(spec, *key), key
        assert "security" not in spec["paths"]["/health"]["get"]

    async def test_every_error_response_is_the_error_body(self, spec):
        for method, path, op in _operations(spec):
            for status, response in op["responses"].items():
                if int(status) >= 400:
                    content = response["content"]["application/json"]["schema"]
                    assert content == ERROR_REF, (method, path, status)
        assert "HTTPValidationError" not in spec["components"]["schemas"]

    async def test_statuses_follow_the_routes_inputs_and_what_they_call(self, spec):
        for method, path, op in _operations(spec):
            documented = _documented(spec, method, path)
            params = {p["in"] for p in op.get("parameters", [])}
            if "path" in params:
                assert {404, 422} <= documented, (method, path)
            if params & {"query", "header"}:
                assert 422 in documented, (method, path)
            if "requestBody" in op:
                assert {413, 422} <= documented, (method, path)
            else:
                assert 413 not in documented, (method, path)
        refreshes = [p for _, p, _ in _operations(spec) if p.endswith("/refresh")]
        for path in [*refreshes, "/api/snaptrade/refresh-holdings", "/api/plaid/refresh-holdings"]:
            assert 429 in _documented(spec, "POST", path), path
        assert 429 in _documented(spec, "POST", "/api/auth/login")
        for method, path in [
            ("POST", "/api/connections"),
            ("POST", "/api/connections/complete"),
            ("DELETE", "/api/connections/{connection_id}"),
            ("POST", "/api/accounts/{account_id}/orders"),
            ("POST", "/api/plaid/exchange-public-token"),
        ]:
            assert {409, 502, 503} <= _documented(spec, method, path), path
        for method, path in [("GET", "/api/portfolio"), ("GET", "/api/accounts")]:
            assert 502 not in _documented(spec, method, path), path  # reads never call out
        retry_after = spec["paths"]["/api/auth/login"]["post"]["responses"]["429"]["headers"]
        assert "Retry-After" in retry_after


class TestAgainstTheApp:
    async def test_anonymous_calls_answer_a_documented_401(self, api, spec):
        wrong: list[str] = []
        async with api.client() as anonymous:
            for method, path, op in _operations(spec):
                if "security" not in op:
                    continue
                body = {} if "requestBody" in op else None
                response = await anonymous.request(method, _url(path, **MISSING), json=body)
                expected = 404 if (method, path) in ADMIN_ROUTES else 401
                assert response.status_code == expected, (method, path, response.text)
                _check_error(spec, method, path, response, wrong)
        assert not wrong, wrong

    async def test_bodies_over_the_limit_answer_a_documented_413(self, api, spec):
        wrong: list[str] = []
        user = await api.user()
        for method, path, op in _operations(spec):
            if "requestBody" not in op:
                continue
            response = await user.request(
                method,
                _url(path, **MISSING),
                content=b"{}",
                headers={"content-length": str(8 * 1024 * 1024)},
            )
            assert response.status_code == 413, (method, path, response.text)
            _check_error(spec, method, path, response, wrong)
        assert not wrong, wrong

    async def test_missing_ids_and_bad_input_answer_documented_statuses(self, api, spec):
        wrong: list[str] = []
        user = await api.user()
        sent = 0
        for method, path, op in _operations(spec):
            body = {} if "requestBody" in op else None
            headers = {"Idempotency-Key": "openapi-0001"}
            urls = [_url(path, **MISSING)] if "{" in path else []
            if body is not None:
                urls.append(_url(path, **MISSING))  # an empty body: what does validation say
            for url in urls:
                response = await user.request(method, url, json=body, headers=headers)
                sent += 1
                if response.status_code >= 400:
                    _check_error(spec, method, path, response, wrong)
        assert not wrong, wrong
        assert sent >= 30
