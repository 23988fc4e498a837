"""`GET /api/portfolios/{id}/analysis?sync_if_stale=true`: the one read that may wait on the
providers, and only when the stored data is older than the analysis max age."""

from datetime import timedelta

import pytest


async def _portfolio_id(user) -> int:
    return (await user.get("/api/portfolios")).json()[0]["id"]


@pytest.mark.asyncio
async def test_fresh_data_is_answered_without_a_provider_call(api):
    user = await api.user()
    await api.connect(user, "Chase")
    pid = await _portfolio_id(user)
    before = api.stack.plaid_wire.total

    answer = await user.get(f"/api/portfolios/{pid}/analysis", params={"sync_if_stale": "true"})

    assert answer.status_code == 200, answer.text
    assert api.stack.plaid_wire.total == before


@pytest.mark.asyncio
async def test_stale_data_is_synced_before_the_answer(api):
    user = await api.user()
    await api.connect(user, "Chase")
    pid = await _portfolio_id(user)
    api.state.analysis_max_age = timedelta(0)  # everything is older than that
    before = api.stack.plaid_wire.total

    answer = await user.get(f"/api/portfolios/{pid}/analysis", params={"sync_if_stale": "true"})

    assert answer.status_code == 200, answer.text
    assert api.stack.plaid_wire.total > before
    lines = {line["ticker"]: line for line in answer.json()}
    assert lines["AAPL"]["shares"] == "100.00000000"


@pytest.mark.asyncio
async def test_without_the_flag_stale_data_is_answered_from_the_store(api):
    user = await api.user()
    await api.connect(user, "Chase")
    pid = await _portfolio_id(user)
    api.state.analysis_max_age = timedelta(0)
    before = api.stack.plaid_wire.total

    answer = await user.get(f"/api/portfolios/{pid}/analysis")

    assert answer.status_code == 200
    assert api.stack.plaid_wire.total == before
