"""Routing against live reference data: maintenance and degradation fall back, unknown names
are searched in Plaid's institutions, an unreachable provider leaves the map's defaults."""

import pytest

from brokerlink.domain import Provider
from brokerlink.routing.reference import ReferenceSource
from brokerlink.sandbox._faults import FaultConfig

pytestmark = pytest.mark.asyncio


def _source(stack):
    return ReferenceSource(snaptrade=stack.snaptrade.client, plaid=stack.plaid._client)


async def _start(stack, user, institution, *, reference=None, need_trading=False):
    async with stack.sessionmaker() as session:
        service = stack.links(session)
        service.reference = reference if reference is not None else _source(stack)
        return await service.start(user, institution, need_trading=need_trading)


@pytest.mark.parametrize("flag", ["maintenance_mode", "is_degraded"])
async def test_a_brokerage_in_trouble_opens_the_fallback_with_the_reason(stack, flag):
    setattr(stack.snaptrade_app.state.sandbox.brokerages["SCHWAB"], flag, True)
    user = await stack.new_user()
    start = await _start(stack, user, "Schwab")
    assert start.provider is Provider.PLAID
    assert start.decision.fallback_used
    assert "Charles Schwab opens through Plaid instead" in start.decision.reason
    assert "hosted-link" in start.url


async def test_healthy_brokerage_opens_snaptrade(stack):
    user = await stack.new_user()
    start = await _start(stack, user, "Schwab")
    assert start.provider is Provider.SNAPTRADE
    assert not start.decision.fallback_used


async def test_unknown_institution_is_searched_in_plaid(stack):
    data = await _source(stack).for_query("Platypus", known=False)
    assert "ins_109508" in data.plaid_institutions
    assert (await _source(stack).for_query("Schwab", known=True)).plaid_institutions == {}


async def test_snaptrade_unreachable_keeps_the_maps_default(stack):
    stack.snaptrade_app.state.sandbox.faults.configure(
        FaultConfig(error_rate=1.0, error_status=503, path_pattern="^/brokerages")
    )
    source = ReferenceSource(snaptrade=stack.snaptrade.client)
    data = await source.for_query("Schwab", known=True)
    assert data.snaptrade_brokerages == {}
