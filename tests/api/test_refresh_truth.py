"""Refresh refusals that tell the truth: what the provider itself refuses is never offered as a
billed override."""

import pytest

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
        # A refusal by the provider is void in the ledger: the next try is not "too soon".
        again = await user.post(f"/api/connections/{empower['id']}/refresh")
        assert_error(again, 422, "refresh_not_supported")
