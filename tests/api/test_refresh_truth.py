"""Refresh refusals that tell the truth: what the provider itself refuses is never offered as a
billed override."""

from importlib import resources
from pathlib import Path

import pytest

from brokerlink.repositories import RefreshLogRepository
from brokerlink.routing.coverage import CoverageMap, CoverageRegistry, load_coverage
from tests.fixtures.api import assert_error

pytestmark = pytest.mark.asyncio


class TestRefreshNotSupported:
    async def test_empower_says_plaid_cannot_refresh_it_and_charges_nothing(self, api):
        user = await api.user()
        empower = await api.connect(user, "Empower")
        response = await user.post(f"/api/connections/{empower['id']}/refresh")
        error = assert_error(response, 422, "refresh_not_supported")
        assert "Plaid cannot refresh Empower Retirement on demand" in error["message"]
        assert "Nothing was charged" in error["message"]
        again = await user.post(f"/api/connections/{empower['id']}/refresh")
        assert_error(again, 422, "refresh_not_supported")

    async def test_the_coverage_map_refuses_it_before_anything_is_sent_or_recorded(self, api):
        user = await api.user()
        empower = await api.connect(user, "Empower")
        sent = api.stack.plaid_wire.paths["/investments/refresh"]

        response = await user.post(f"/api/connections/{empower['id']}/refresh")

        assert_error(response, 422, "refresh_not_supported")
        assert api.stack.plaid_wire.paths["/investments/refresh"] == sent
        async with api.state.sessionmaker() as session:
            logged = await RefreshLogRepository.from_session(session).latest(empower["id"])
        assert logged is None

    async def test_a_provider_that_refuses_anyway_is_void_and_not_too_soon(self, api, tmp_path):
        # An institution the map does not mark: the provider's own refusal says the same.
        api.state.coverage = CoverageRegistry(_without_refresh_flag(tmp_path))
        user = await api.user()
        empower = await api.connect(user, "Empower")
        first = await user.post(f"/api/connections/{empower['id']}/refresh")
        assert_error(first, 422, "refresh_not_supported")
        again = await user.post(f"/api/connections/{empower['id']}/refresh")
        assert_error(again, 422, "refresh_not_supported")


def _without_refresh_flag(tmp_path: Path) -> CoverageMap:
    shipped = resources.files("brokerlink.routing").joinpath("coverage.toml").read_text("utf-8")
    path = tmp_path / "coverage.toml"
    path.write_text(shipped.replace("on_demand_refresh = false\n", ""), encoding="utf-8")
    return load_coverage(path)
