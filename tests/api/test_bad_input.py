"""Bad input on every route: malformed JSON, wrong types, huge numbers, negative ids, 10k-char
strings, and hostile strings (a '/', '..', non-ASCII, spaces, NUL, percent-escapes) in every
string field and path parameter. The answer is never a 500, and every error is the JSON error
shape.

Routes, their parameters and their body fields are read from the app's OpenAPI schema, so a
route or a field added later is fuzzed too (a new body route fails `BODIES` until it is given a
valid body to start from).
"""

import json
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import pytest_asyncio

from tests.fixtures.api import assert_error

pytestmark = pytest.mark.asyncio

LONG = "x" * 10_000
BUY = {"side": "buy", "symbol": "AAPL", "order_type": "limit", "quantity": "1", "limit_price": "1"}

# A valid body per route: each case changes one thing in it, so the rest gets through.
BODIES: dict[str, dict[str, Any]] = {
    "POST /api/auth/login": {"email": "fuzz@example.com", "password": "wrong horse battery"},
    "POST /api/connections": {"institution": "Chase", "need_trading": False},
    "POST /api/connections/complete": {
        "state": "e30.e30",
        "status": "SUCCESS",
        "connection_id": "x",
        "public_token": "public-sandbox-x",
    },
    "POST /api/connections/{connection_id}/refresh": {"override": False},
    "POST /api/connections/refresh-all": {"override": False},
    "POST /api/manual-positions": {
        "ticker": "TSLA",
        "quantity": "1",
        "currency": "USD",
        "kind": "equity",
        "cost_basis": "10",
        "price": "10",
    },
    "PATCH /api/manual-positions/{position_id}": {"quantity": "2", "cost_basis": "1", "price": "1"},
    "POST /api/manual-accounts": {"name": "Cold wallet", "currency": "USD"},
    "PUT /api/duplicates/preference": {"keep_account_id": 1},
    "POST /api/accounts/{account_id}/orders/preview": {**BUY, "time_in_force": "day"},
    "POST /api/accounts/{account_id}/orders": {**BUY, "time_in_force": "day"},
    "POST /api/snaptrade/create-connection-url": {
        "institution": "Charles Schwab",
        "broker": "SCHWAB",
        "connectionType": "read",
    },
    "POST /api/snaptrade/refresh-holdings": {"override": False},
    "POST /api/plaid/create-link-token": {"institution": "Chase"},
    "POST /api/plaid/exchange-public-token": {
        "public_token": "public-sandbox-x",
        "state": "e30.e30",
    },
    "POST /api/plaid/refresh-holdings": {"override": False},
}

# Replacements for one body field, by the field's type: wrong types, huge and negative numbers,
# long and odd strings. Raw values are JSON tokens Python's parser accepts and strict ones do not.
TEXT_VALUES: list[Any] = [LONG, 123, None, "a\x00b", "\ud800"]
NUMBER_VALUES: list[Any] = [
    "abc",
    -1,
    10**30,
    True,
    None,
    "9999999999999999.99999999",
    "99999999999.99999999",
    "NaN",
]
INTEGER_VALUES: list[Any] = ["abc", -1, 2**63, 1.5, None]
OTHER_VALUES: list[Any] = [LONG, "maybe", None]
RAW_NUMBERS = ["1e400", "NaN", "1" + "0" * 5000]


def _bad_values(schema: dict[str, Any]) -> tuple[list[Any], list[str]]:
    kinds = {s.get("type") for s in schema.get("anyOf", [schema])}
    if "number" in kinds:
        return NUMBER_VALUES, RAW_NUMBERS
    if "integer" in kinds:
        return INTEGER_VALUES, RAW_NUMBERS[:1]
    if "string" in kinds:
        return TEXT_VALUES, []
    return OTHER_VALUES, []


MALFORMED: list[tuple[bytes, str]] = [
    (b'{"a":', "application/json"),
    (b"[]", "application/json"),
    (b"null", "application/json"),
    (b"\xff\xfe\x00", "application/json"),
    (b"[" * 5000 + b"]" * 5000, "application/json"),
    (b"x" * 100_000, "application/json"),
    (b'{"ticker": "TSLA"}', "text/plain"),
]

# Strings that break a URL path or a provider's id: each must be refused with a 4xx wherever a
# string is taken, most of all where it would end up in a provider's path.
HOSTILE: list[str] = [
    "a/b",
    "../x",
    "..",
    "é",
    "abc def",
    "a\x00b",
    "k" * 5000,
    "%2F",
    "a%2Fb",
    "a?b#c",
]

BAD_IDS = ["-1", "0", "abc", "1.5", str(2**62), str(2**63), "9" * 40, LONG, "%00"]
BAD_QUERY = [LONG, "\x00", "%", "'; drop table users; --", "maybe", "-1", "💩"]
BAD_KEYS = [LONG, "", "short", "k" * 129]


def _operations(api) -> list[tuple[str, str, dict[str, Any]]]:
    spec = api.app.openapi()
    return [
        (method.upper(), path, op)
        for path, ops in spec["paths"].items()
        if path.startswith("/api/")
        for method, op in ops.items()
    ]


def _body_fields(api, op: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The body's fields and their schemas."""
    schema = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
    if schema is None:
        return {}
    refs = [schema] if "$ref" in schema else schema.get("anyOf", [])
    components = api.app.openapi()["components"]["schemas"]
    fields: dict[str, dict[str, Any]] = {}
    for ref in refs:
        if "$ref" in ref:
            fields.update(components[ref["$ref"].rsplit("/", 1)[1]]["properties"])
    return fields


class Fuzz:
    """A user with data behind every kind of id, and the list of answers that went wrong."""

    def __init__(self, api, user, ids: dict[str, str], states: dict[str, str]) -> None:
        self.api = api
        self.user = user
        self.ids = ids
        # Signed link states the app accepts, so that the other fields of a completion get
        # past the state check and reach the provider's side.
        self.states = states
        self.wrong: list[str] = []
        self.sent = 0

    def path(self, path: str, **override: str) -> str:
        for name, value in {**self.ids, **override}.items():
            path = path.replace("{" + name + "}", value)
        return path

    async def send(self, label: str, method: str, url: str, **kw: Any) -> None:
        try:
            response = await self.user.request(method, url, **kw)
        except (httpx.InvalidURL, httpx.LocalProtocolError, UnicodeEncodeError):
            return  # the client itself cannot send this; nothing reached the app
        except Exception as error:  # the app raised: what a server answers with a 500
            self.sent += 1
            self.wrong.append(f"{label}: 500 (raised {type(error).__name__}: {error})"[:400])
            return
        self.sent += 1
        if response.status_code >= 500:
            self.wrong.append(f"{label}: {response.status_code} {response.text[:300]}")
        elif response.status_code >= 400:
            try:
                assert_error(response, response.status_code)
            except (AssertionError, ValueError, KeyError) as shape:
                self.wrong.append(f"{label}: not the error shape: {shape}")

    def check(self, at_least: int) -> None:
        assert not self.wrong, f"{len(self.wrong)} bad answers:\n" + "\n".join(self.wrong)
        assert self.sent >= at_least


@pytest_asyncio.fixture
async def fuzz(api):
    user = await api.user()
    await api.connect(user, "Charles Schwab", need_trading=True)
    accounts = (await user.get("/api/accounts")).json()
    trading = next(a["id"] for a in accounts if a["capabilities"]["trading"])
    manual = await user.post("/api/manual-positions", json={"ticker": "TSLA", "quantity": "1"})
    connection = (await user.get("/api/connections")).json()[0]["id"]
    ids = {
        "connection_id": str(connection),
        "account_id": str(trading),
        "position_id": str(manual.json()["id"]),
        "portfolio_id": str((await user.get("/api/portfolio")).json()["id"]),
        "user_id": str(user.id),
        "order_id": "fuzz-order-1",
    }
    snaptrade = await user.post("/api/connections", json={"institution": "Charles Schwab"})
    plaid = await user.post("/api/plaid/create-link-token", json={"institution": "Chase"})
    assert snaptrade.json()["provider"] == "snaptrade", snaptrade.text
    states = {"snaptrade": snaptrade.json()["state"], "plaid": plaid.json()["state"]}
    return Fuzz(api, user, ids, states)


def _body_for(method: str, path: str) -> dict[str, Any]:
    key = f"{method} {path}"
    assert key in BODIES, f"{key} takes a body: add a valid one to BODIES"
    return dict(BODIES[key])


def _is_text(schema: dict[str, Any]) -> bool:
    return "string" in {s.get("type") for s in schema.get("anyOf", [schema])}


def _bases_for(fuzz: Fuzz, method: str, path: str) -> list[dict[str, Any]]:
    """Valid bodies to start from; a body with a link state once per provider's real state."""
    base = _body_for(method, path)
    if "state" not in base:
        return [base]
    return [{**base, "state": state} for state in fuzz.states.values()]


def _headers_for(op: dict[str, Any]) -> dict[str, str]:
    names = [p["name"] for p in op.get("parameters", []) if p["in"] == "header"]
    return {name: "fuzz-key-0001" for name in names}


class TestBadInput:
    async def test_every_body_route_has_a_valid_body_to_start_from(self, api):
        for method, path, op in _operations(api):
            if _body_fields(api, op):
                _body_for(method, path)

    async def test_malformed_bodies(self, api, fuzz):
        for method, path, op in _operations(api):
            if not _body_fields(api, op):
                continue
            for content, content_type in MALFORMED:
                await fuzz.send(
                    f"{method} {path} body {content[:30]!r}",
                    method,
                    fuzz.path(path),
                    content=content,
                    headers={"content-type": content_type, **_headers_for(op)},
                )
        fuzz.check(at_least=90)

    async def test_wrong_types_huge_numbers_and_long_strings_in_each_field(self, api, fuzz):
        for method, path, op in _operations(api):
            fields = _body_fields(api, op)
            if not fields:
                continue
            base = _body_for(method, path)
            headers = _headers_for(op)
            cases: list[tuple[str, Any, str | None]] = [("unexpected_field", LONG, None)]
            for field, schema in fields.items():
                values, raws = _bad_values(schema)
                cases += [(field, value, None) for value in values]
                cases += [(field, None, raw) for raw in raws]
            for field, value, raw in cases:
                body = json.dumps({**base, field: "__RAW__" if raw else value})
                if raw:
                    body = body.replace('"__RAW__"', raw)
                await fuzz.send(
                    f"{method} {path} {field}={(raw or str(value))[:30]!r}",
                    method,
                    fuzz.path(path),
                    content=body.encode("utf-8", "surrogatepass"),
                    headers={"content-type": "application/json", **headers},
                )
        fuzz.check(at_least=250)

    async def test_bad_ids_in_the_path(self, api, fuzz):
        for method, path, op in _operations(api):
            params = [p["name"] for p in op.get("parameters", []) if p["in"] == "path"]
            body = BODIES.get(f"{method} {path}")
            for name in params:
                values = BAD_IDS if name != "order_id" else [LONG, "k" * 129]
                for value in values:
                    await fuzz.send(
                        f"{method} {path} {name}={value[:30]}",
                        method,
                        fuzz.path(path, **{name: value}),
                        json=body,
                        headers=_headers_for(op),
                    )
        fuzz.check(at_least=120)

    async def test_bad_query_parameters_and_headers(self, api, fuzz):
        for method, path, op in _operations(api):
            body = BODIES.get(f"{method} {path}")
            for param in op.get("parameters", []):
                if param["in"] == "query":
                    for value in BAD_QUERY:
                        await fuzz.send(
                            f"{method} {path} ?{param['name']}={value[:30]}",
                            method,
                            fuzz.path(path),
                            params={param["name"]: value},
                            json=body,
                        )
                elif param["in"] == "header":
                    for value in BAD_KEYS:
                        await fuzz.send(
                            f"{method} {path} {param['name']}: {value[:30]}",
                            method,
                            fuzz.path(path),
                            json=body,
                            headers={param["name"]: value},
                        )
        fuzz.check(at_least=20)

    async def test_hostile_strings_in_every_string_field(self, api, fuzz):
        for method, path, op in _operations(api):
            fields = _body_fields(api, op)
            headers = _headers_for(op)
            for field in (name for name, schema in fields.items() if _is_text(schema)):
                for base in _bases_for(fuzz, method, path):
                    for value in HOSTILE:
                        await fuzz.send(
                            f"{method} {path} {field}={value[:30]!r}",
                            method,
                            fuzz.path(path),
                            json={**base, field: value},
                            headers=headers,
                        )
        fuzz.check(at_least=250)

    async def test_hostile_strings_in_every_path_and_query_parameter(self, api, fuzz):
        for method, path, op in _operations(api):
            body = BODIES.get(f"{method} {path}")
            headers = _headers_for(op)
            for param in op.get("parameters", []):
                for value in HOSTILE:
                    label = f"{method} {path} {param['in']} {param['name']}={value[:30]!r}"
                    if param["in"] == "path":
                        # As typed, and escaped so that the value stays one path segment.
                        for sent in (value, quote(value, safe="")):
                            url = fuzz.path(path, **{param["name"]: sent})
                            await fuzz.send(label, method, url, json=body, headers=headers)
                    elif param["in"] == "query":
                        await fuzz.send(
                            label,
                            method,
                            fuzz.path(path),
                            params={param["name"]: value},
                            json=body,
                            headers=headers,
                        )
        fuzz.check(at_least=200)


class TestIdsAtTheBoundary:
    @pytest.mark.parametrize("value", ["a/b", "../x", "..", "é", "abc def", "a\x00b", "%2F"])
    async def test_a_snaptrade_connection_id_that_cannot_be_one_names_the_field(self, fuzz, value):
        response = await fuzz.user.post(
            "/api/connections/complete",
            json={"state": fuzz.states["snaptrade"], "status": "SUCCESS", "connection_id": value},
        )
        assert_error(response, 422, "validation_error", field="connection_id")
        assert (await fuzz.user.get("/api/connections")).json()[0]["id"] == int(
            fuzz.ids["connection_id"]
        )

    @pytest.mark.parametrize("value", ["abc def", "é", "a?b", "a%2Fb"])
    async def test_an_order_id_that_cannot_be_one_names_the_field(self, fuzz, value):
        account, order = fuzz.ids["account_id"], quote(value, safe="")
        response = await fuzz.user.delete(f"/api/accounts/{account}/orders/{order}")
        assert_error(response, 422, "validation_error", field="order_id")

    async def test_a_public_token_that_cannot_be_one_names_the_field(self, fuzz):
        response = await fuzz.user.post(
            "/api/plaid/exchange-public-token",
            json={"state": fuzz.states["plaid"], "public_token": "public/../x"},
        )
        assert_error(response, 422, "validation_error", field="public_token")
