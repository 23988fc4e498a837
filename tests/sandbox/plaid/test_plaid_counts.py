"""Requests counted at the Plaid sandbox per operation, and faults that lose a processed answer."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.asyncio


async def _counts(http) -> dict:
    r = await http.get("/sandbox-admin/requests")
    assert r.status_code == 200
    return r.json()


async def test_counted_per_operation_whatever_the_answer(api, http):
    item = await api.link_item()
    token = {"access_token": item["access_token"]}
    assert (await http.delete("/sandbox-admin/requests")).json() == {
        "counts": {},
        "total": 0,
        "rate_limited": 0,
    }
    await api.ok("/accounts/get", token)
    await api.error("/accounts/get", token, status=500, headers={"X-Sandbox-Fault": "status=500"})
    await http.post("/accounts/get", json=token)  # no credentials: refused, but it arrived
    await http.get("/sandbox-admin/status")
    assert await _counts(http) == {
        "counts": {"POST /accounts/get": 3},
        "total": 3,
        "rate_limited": 0,
    }


async def test_item_removed_though_the_answer_was_lost(api, http):
    item = await api.link_item()
    token = {"access_token": item["access_token"]}
    err = await api.error(
        "/item/remove", token, status=502, headers={"X-Sandbox-Fault": "status=502; after"}
    )
    assert err["error_code"] == "INSTITUTION_NOT_RESPONDING"
    assert (await api.error("/item/get", token))["error_code"] in (
        "ITEM_NOT_FOUND",
        "INVALID_ACCESS_TOKEN",
    )


async def test_public_token_kept_when_the_fault_comes_first(api, http):
    public = await api.ok(
        "/sandbox/public_token/create",
        {"institution_id": "ins_109508", "initial_products": ["investments"]},
    )
    body = {"public_token": public["public_token"]}
    await api.error(
        "/item/public_token/exchange", body, status=502, headers={"X-Sandbox-Fault": "status=502"}
    )
    await api.ok("/item/public_token/exchange", body)  # never consumed by the failed attempt


async def test_public_token_consumed_when_the_answer_is_lost(api, http, state):
    state.faults.timeout_seconds = 0.01
    public = await api.ok(
        "/sandbox/public_token/create",
        {"institution_id": "ins_109508", "initial_products": ["investments"]},
    )
    body = {"public_token": public["public_token"]}
    await api.error(
        "/item/public_token/exchange",
        body,
        status=504,
        headers={"X-Sandbox-Fault": "timeout; after"},
    )
    err = await api.error("/item/public_token/exchange", body)
    assert err["error_code"] == "INVALID_PUBLIC_TOKEN"


async def test_app_wide_after(api, http):
    put = await http.put(
        "/sandbox-admin/faults",
        json={"fail_next": [500], "after": True, "path_pattern": "^/investments/refresh$"},
    )
    assert put.json()["after"] is True
    item = await api.link_item()
    await api.error("/investments/refresh", {"access_token": item["access_token"]}, status=500)
