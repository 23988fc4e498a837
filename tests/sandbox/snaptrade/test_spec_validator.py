"""The generic OpenAPI response validator (tests/fixtures/openapi.py), and the sandbox's surface."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import httpx
import pytest

from tests.fixtures.openapi import SNAPTRADE_SPEC, SpecCheckingTransport, SpecValidator

_MINI = textwrap.dedent(
    """
    openapi: 3.0.0
    info: {title: mini, version: "1"}
    paths:
      /things/{id}:
        get:
          operationId: getThing
          parameters: [{name: id, in: path, required: true, schema: {type: string}}]
          responses:
            "200":
              description: ok
              content:
                application/json:
                  schema: {$ref: "#/components/schemas/Thing"}
      /things/special:
        get:
          operationId: getSpecial
          responses:
            default:
              description: anything
              content:
                application/json:
                  schema: {type: object, required: [special]}
    components:
      schemas:
        Thing:
          type: object
          required: [id, size]
          properties:
            id: {type: string}
            size: {type: integer}
            owner:
              nullable: true
              allOf: [{$ref: "#/components/schemas/Owner"}]
            kind: {type: string, nullable: true, enum: [a, b]}
        Owner:
          type: object
          required: [name]
          properties: {name: {type: string}}
    """
)


@pytest.fixture
def mini(tmp_path) -> SpecValidator:
    path = tmp_path / "mini.yaml"
    path.write_text(_MINI)
    return SpecValidator(path, strip_prefixes=("/v9",))


class TestSpecValidator:
    def test_valid_body_passes(self, mini):
        mini.validate("GET", "/things/1", 200, {"id": "1", "size": 2, "owner": None, "kind": None})
        mini.validate("GET", "/v9/things/1?x=1", 200, {"id": "1", "size": 2})

    def test_wrong_field_names_operation_and_field(self, mini):
        with pytest.raises(AssertionError, match=r"getThing .*field size"):
            mini.validate("GET", "/things/1", 200, {"id": "1", "size": "big"})

    def test_ref_is_resolved(self, mini):
        with pytest.raises(AssertionError, match="owner"):
            mini.validate("GET", "/things/1", 200, {"id": "1", "size": 1, "owner": {}})

    def test_undocumented_status_fails(self, mini):
        with pytest.raises(AssertionError, match="status 404 is not documented"):
            mini.validate("GET", "/things/1", 404, {"detail": "x"})

    def test_default_covers_any_status(self, mini):
        mini.validate("GET", "/things/special", 503, {"special": 1})

    def test_literal_path_wins_over_template(self, mini):
        with pytest.raises(AssertionError, match="getSpecial"):
            mini.validate("GET", "/things/special", 200, {})

    def test_unknown_operation_fails(self, mini):
        assert not mini.has_operation("POST", "/things/1")
        with pytest.raises(AssertionError, match="not an operation"):
            mini.validate("POST", "/things/1", 200, {})

    @pytest.mark.asyncio
    async def test_transport_validates_json_responses(self, mini):
        def handler(request: httpx.Request) -> httpx.Response:
            return httpx.Response(200, json={"id": "1"})

        transport = SpecCheckingTransport(httpx.MockTransport(handler), mini)
        async with httpx.AsyncClient(transport=transport, base_url="http://x") as client:
            with pytest.raises(AssertionError, match="size"):
                await client.get("/things/1")
            r = await client.get("/elsewhere")  # undocumented paths pass unchecked
            assert r.json() == {"id": "1"}

    def test_snaptrade_spec_is_found_and_cached(self):
        a, b = SpecValidator(SNAPTRADE_SPEC), SpecValidator(SNAPTRADE_SPEC)
        assert a.spec is b.spec
        assert a.find_operation("GET", "/api/v1/accounts/abc/positions/all")[0] == (
            "/accounts/{accountId}/positions/all"
        )


class TestSurface:
    def test_exports(self):
        import brokerlink.sandbox.snaptrade as pkg

        assert sorted(pkg.__all__) == ["SandboxState", "create_app"]

    def test_sandbox_never_imports_providers(self):
        code = (
            "import sys, brokerlink.sandbox.snaptrade;"
            "bad = [m for m in sys.modules if m.startswith('brokerlink.providers')];"
            "assert not bad, bad"
        )
        subprocess.run([sys.executable, "-c", code], check=True)
