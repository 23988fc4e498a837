"""A lost answer to SnapTrade's resetUserSecret never locks the user out, through the API.

The sandbox expires the user's secret (the next call gets a 1083, which rotates it) and loses
the answer to the rotation after rotating. The user then sees the connection needing a re-link
with a plain reason, reconnects through the portal, and syncs again with their accounts and
history kept, with no work on the database by hand.
"""

from __future__ import annotations

import httpx
import pytest

from brokerlink.cli.demo import approve_in_portal
from brokerlink.providers.snaptrade.users import RELINK_REASON
from tests.fixtures.api import assert_error

pytestmark = pytest.mark.asyncio


async def _control(api, path: str, **body: object) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=api.stack.snaptrade_app),
        base_url="http://snaptrade.sandbox",
    ) as sandbox:
        answer = await sandbox.post(path, json=body or None)
    assert answer.status_code == 200, answer.text


async def _positions(user) -> dict[int, set[str]]:
    response = await user.get("/api/positions")
    assert response.status_code == 200, response.text
    out: dict[int, set[str]] = {}
    for position in response.json():
        out.setdefault(position["account_id"], set()).add(position["ticker"])
    return out


async def _sync(api, user) -> None:
    started = await user.post("/api/sync")
    assert started.status_code == 202, started.text
    await api.state.syncs.drain()


async def _connection(user, connection_id: int) -> dict:
    listed = (await user.get("/api/connections")).json()
    return next(c for c in listed if c["id"] == connection_id)


async def _lose_the_rotation(api, user) -> dict:
    """A linked, synced user whose secret expires and whose rotation's answer is lost."""
    done = await api.connect(user, "Charles Schwab")
    assert await _positions(user)
    snaptrade_user = str(user.id)
    await _control(api, f"/sandbox/users/{snaptrade_user}/expire-secret")
    await _control(api, f"/sandbox/users/{snaptrade_user}/lose-next-reset-reply", mode="502")
    return done


class TestLostRotation:
    async def test_relink_needed_then_reconnect_brings_the_positions_back(self, api):
        user = await api.user()
        done = await _lose_the_rotation(api, user)
        before = await _positions(user)
        accounts_before = {a["id"] for a in done["accounts"]}

        # The 1083 rotates the secret, the answer is lost, the sync resolves it: the old
        # secret is refused, so the user is registered again and the link must be redone.
        await _sync(api, user)
        broken = await _connection(user, done["id"])
        assert broken["status"] == "broken"
        assert broken["status_reason"] == RELINK_REASON
        assert await _positions(user) == before  # nothing is lost while it waits

        await _sync(api, user)  # never a loop: still waiting for the re-link, no new user
        assert set(api.stack.snaptrade_app.state.sandbox.users) == {
            str(user.id),
            f"{user.id}-r1",
        }
        assert (await _connection(user, done["id"]))["status"] == "broken"

        flow = await user.post(f"/api/connections/{done['id']}/reconnect")
        assert flow.status_code == 201, flow.text
        start = flow.json()
        assert start["provider"] == "snaptrade"
        assert "history" in start["reason"]
        new_authorization = await approve_in_portal(api.browser(), start["url"], "")
        sandbox = api.stack.snaptrade_app.state.sandbox
        assert sandbox.authorizations[new_authorization].user_id == f"{user.id}-r1"
        completed = await user.post(
            "/api/connections/complete",
            json={"state": start["state"], "status": "SUCCESS", "connection_id": new_authorization},
        )
        assert completed.status_code == 200, completed.text
        assert completed.json()["id"] == done["id"]
        await api.state.syncs.drain()

        await _sync(api, user)
        repaired = await _connection(user, done["id"])
        assert repaired["status"] == "active"
        assert repaired["status_reason"] is None
        assert {a["id"] for a in repaired["accounts"]} == accounts_before  # same accounts
        assert all(a["status"] == "fresh" for a in repaired["accounts"])
        assert await _positions(user) == before  # positions back, on the same accounts
        assert len((await user.get("/api/connections")).json()) == 1

    async def test_a_new_link_works_at_once_after_the_recovery(self, api):
        user = await api.user()
        schwab = await _lose_the_rotation(api, user)
        await _sync(api, user)
        assert (await _connection(user, schwab["id"]))["status"] == "broken"
        fidelity = await api.connect(user, "Fidelity")
        assert fidelity["status"] == "active"
        await _sync(api, user)
        assert (await _connection(user, fidelity["id"]))["status"] == "active"
        positions = await _positions(user)
        assert any(a["id"] in positions for a in fidelity["accounts"])

    async def test_a_relink_onto_another_connection_is_refused(self, api):
        user = await api.user()
        schwab = await _lose_the_rotation(api, user)
        await _sync(api, user)
        fidelity = await api.connect(user, "Fidelity")
        assert fidelity["status"] == "active"
        flow = (await user.post(f"/api/connections/{schwab['id']}/reconnect")).json()
        sandbox = api.stack.snaptrade_app.state.sandbox
        (fidelity_auth,) = [a.id for a in sandbox.authorizations.values() if a.slug == "FIDELITY"]
        answer = await user.post(
            "/api/connections/complete",
            json={"state": flow["state"], "status": "SUCCESS", "connection_id": fidelity_auth},
        )
        assert_error(answer, 422, "validation_error", field="connection_id")
        assert (await _connection(user, schwab["id"]))["status"] == "broken"
        assert (await _connection(user, fidelity["id"]))["status"] == "active"
