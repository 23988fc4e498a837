"""A rotation whose answer is lost never locks the user out: the connector against the sandbox."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import pytest_asyncio
import structlog

from brokerlink.domain.errors import UserReconnectRequired
from brokerlink.log import _redact_processor
from brokerlink.providers._http import RetryPolicy
from brokerlink.providers.snaptrade import (
    SnapTradeClient,
    SnapTradeConnector,
    SnapTradeServerError,
    UserSecretInvalid,
)
from brokerlink.providers.snaptrade.users import RELINK_REASON, SnapTradeUserReplaced
from brokerlink.sandbox._faults import FaultConfig
from brokerlink.sandbox.snaptrade import create_app
from brokerlink.secrets import MemorySecretStore
from brokerlink.secrets.store import snaptrade_user_secret_name
from tests.fixtures.openapi import SNAPTRADE_SPEC, SpecCheckingTransport, SpecValidator

CLIENT_ID = "LOSTREPLY"
CONSUMER_KEY = "sandbox-consumer-key-for-lost-replies"
APP_USER = "71"
USER_RECORD = snaptrade_user_secret_name(APP_USER, "_user")

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.skipif(not SNAPTRADE_SPEC.exists(), reason="SnapTrade spec not found"),
]


class Recording(httpx.AsyncBaseTransport):
    """Records each request path, and enforces the request's read timeout the way a network
    transport does (the in-process ASGI transport has no clock of its own)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.paths: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        timeout = request.extensions.get("timeout", {}).get("read")
        try:
            return await asyncio.wait_for(self.inner.handle_async_request(request), timeout)
        except TimeoutError:
            raise httpx.ReadTimeout("read timed out", request=request) from None


@pytest.fixture
def app():
    return create_app(client_id=CLIENT_ID, consumer_key=CONSUMER_KEY, rate_limit=0)


@pytest.fixture
def wire(app):
    return Recording(
        SpecCheckingTransport(httpx.ASGITransport(app=app), SpecValidator(SNAPTRADE_SPEC))
    )


@pytest_asyncio.fixture
async def connector(wire):
    async with SnapTradeClient(
        CLIENT_ID,
        CONSUMER_KEY,
        base_url="http://snaptrade.sandbox",
        transport=wire,
        timeout=0.5,
        retry=RetryPolicy(max_retries=2, base_delay=0.01, jitter=0.0),
    ) as client:
        yield SnapTradeConnector(client, MemorySecretStore())


@pytest_asyncio.fixture
async def control(app):
    """The sandbox's own control plane (unsigned routes)."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://snaptrade.sandbox"
    ) as client:
        yield client


async def _linked(connector: SnapTradeConnector) -> str:
    await connector.register_user(APP_USER)
    creds = await connector._credentials(APP_USER)
    auth = await connector.client.sandbox_create_connection(
        creds.snaptrade_user_id, creds.secret, "SCHWAB", "read"
    )
    await connector.record_connection(APP_USER, "charles-schwab", auth["id"])
    return str(auth["id"])


async def _expire_and_lose(control: httpx.AsyncClient, **lose: object) -> None:
    expired = await control.post(f"/sandbox/users/{APP_USER}/expire-secret")
    assert expired.status_code == 200, expired.text
    armed = await control.post(f"/sandbox/users/{APP_USER}/lose-next-reset-reply", json=lose)
    assert armed.status_code == 200, armed.text


class TestLostReply:
    async def test_a_502_after_rotating_replaces_the_user_once(self, connector, control, app):
        await _linked(connector)
        await _expire_and_lose(control, mode="502")
        old_secret = app.state.sandbox.users[APP_USER].secret
        with structlog.testing.capture_logs(processors=[_redact_processor]) as logs:
            with pytest.raises(SnapTradeUserReplaced) as replaced:
                await connector.list_accounts(APP_USER)
        assert app.state.sandbox.users[APP_USER].secret != old_secret  # it did rotate
        assert isinstance(replaced.value, UserReconnectRequired)
        assert replaced.value.message == RELINK_REASON
        record = await connector.secrets.get(USER_RECORD)
        assert "pending_rotation" not in record
        assert record["snaptrade_user_id"] == f"{APP_USER}-r1"
        assert [u["snaptrade_user_id"] for u in record["replaced_users"]] == [APP_USER]
        new_user = app.state.sandbox.users[f"{APP_USER}-r1"]
        assert record["user_secret"] == new_user.secret
        for name in await connector.secrets.list(snaptrade_user_secret_name(APP_USER, "")):
            assert (await connector.secrets.get(name))["snaptrade_user_id"] == f"{APP_USER}-r1"
        events = [e["event"] for e in logs]
        assert "snaptrade.user_secret.reset_lost" in events
        recovered = [e for e in logs if e["event"] == "snaptrade.user_secret.recovered"]
        assert [e["outcome"] for e in recovered] == ["new_user"]
        assert new_user.secret not in repr(logs)
        assert old_secret not in repr(logs)

        # Never a loop: the next uses run as the new user, with nothing to recover.
        assert await connector.list_accounts(APP_USER) == []
        assert await connector.list_accounts(APP_USER) == []
        assert set(app.state.sandbox.users) == {APP_USER, f"{APP_USER}-r1"}
        assert connector.users.recoveries == 1

    async def test_a_reply_hanging_past_the_timeout_is_recovered_too(self, connector, control):
        await _linked(connector)
        await _expire_and_lose(control, mode="hang", seconds=30)
        with pytest.raises(SnapTradeUserReplaced):
            await connector.list_accounts(APP_USER)
        assert (await connector.secrets.get(USER_RECORD))["snaptrade_user_id"] == "71-r1"

    async def test_the_next_use_resolves_a_mark_the_provider_left_unresolved(
        self, connector, control, app, wire
    ):
        await _linked(connector)
        account_id = next(iter(app.state.sandbox.accounts))
        await _expire_and_lose(control, mode="502")
        # The provider stays down for the first check of the old secret (3 attempts).
        app.state.sandbox.faults.configure(
            FaultConfig(fail_next=[500, 500, 500], path_pattern="^/authorizations$")
        )
        with pytest.raises(SnapTradeServerError):
            await connector.get_balances(APP_USER, account_id)
        record = await connector.secrets.get(USER_RECORD)
        assert record["pending_rotation"]["generation"] == 1
        assert record["snaptrade_user_id"] == APP_USER
        # A fresh process (nothing cached) finds the mark in the store and resolves it.
        fresh = SnapTradeConnector(connector.client, connector.secrets)
        with pytest.raises(SnapTradeUserReplaced):
            await fresh.get_balances(APP_USER, account_id)
        assert (await connector.secrets.get(USER_RECORD))["snaptrade_user_id"] == "71-r1"
        assert wire.paths.count("/snapTrade/registerUser") == 2  # the first one, and the new

    async def test_a_new_link_works_at_once_after_the_replacement(self, connector, control, app):
        await _linked(connector)
        account_id = next(iter(app.state.sandbox.accounts))
        await _expire_and_lose(control, mode="502")
        app.state.sandbox.faults.configure(
            FaultConfig(fail_next=[500, 500, 500], path_pattern="^/authorizations$")
        )
        with pytest.raises(SnapTradeServerError):
            await connector.get_balances(APP_USER, account_id)  # the mark is left pending
        # The link start resolves it (a new SnapTrade user) and opens that user's portal.
        url = await connector.connection_link(APP_USER, broker="SCHWAB")
        assert url.startswith("http://snaptrade.sandbox/portal/")
        (session,) = app.state.sandbox.sessions.values()
        assert session.user_id == f"{APP_USER}-r1"

    async def test_the_old_authorization_is_unknown_to_the_new_user(self, connector, control):
        auth_id = await _linked(connector)
        assert await connector.knows_authorization(APP_USER, auth_id)
        await _expire_and_lose(control, mode="502")
        assert not await connector.knows_authorization(APP_USER, auth_id)
        assert not await connector.knows_authorization(APP_USER, auth_id)
        assert connector.users.recoveries == 1


class TestNotRotated:
    async def _reset_fails_before_rotating(self, connector, control, app) -> str:
        await _linked(connector)
        expired = await control.post(f"/sandbox/users/{APP_USER}/expire-secret")
        assert expired.status_code == 200
        app.state.sandbox.faults.configure(
            # The rotation and the immediate retry of it both fail before rotating.
            FaultConfig(fail_next=[500, 500], path_pattern="resetUserSecret")
        )
        old_secret = app.state.sandbox.users[APP_USER].secret
        with pytest.raises(SnapTradeServerError):
            await connector.list_accounts(APP_USER)
        assert app.state.sandbox.users[APP_USER].secret == old_secret  # nothing rotated
        assert "pending_rotation" in await connector.secrets.get(USER_RECORD)
        return old_secret

    async def test_the_old_secret_still_valid_clears_the_mark(self, connector, control, app, wire):
        old_secret = await self._reset_fails_before_rotating(connector, control, app)
        app.state.sandbox.users[APP_USER].secret_expired = False  # the 1083 was transient
        wire.paths.clear()
        with structlog.testing.capture_logs() as logs:
            accounts = await connector.list_accounts(APP_USER)
        assert len(accounts) == 2
        assert "/snapTrade/resetUserSecret" not in wire.paths
        assert "/snapTrade/registerUser" not in wire.paths
        record = await connector.secrets.get(USER_RECORD)
        assert "pending_rotation" not in record
        assert record["user_secret"] == old_secret
        assert [e.get("outcome") for e in logs if "recovered" in e["event"]] == ["not_rotated"]

    async def test_an_expired_old_secret_is_rotated_on_the_same_user(
        self, connector, control, app, wire
    ):
        old_secret = await self._reset_fails_before_rotating(connector, control, app)
        accounts = await connector.list_accounts(APP_USER)
        assert len(accounts) == 2  # same SnapTrade user, same connection
        record = await connector.secrets.get(USER_RECORD)
        assert "pending_rotation" not in record
        assert record["snaptrade_user_id"] == APP_USER
        assert record["user_secret"] == app.state.sandbox.users[APP_USER].secret != old_secret
        assert "/snapTrade/registerUser" not in wire.paths[1:]
        assert set(app.state.sandbox.users) == {APP_USER}

    async def test_a_refused_reset_clears_the_mark_and_never_reregisters(
        self, connector, app, wire
    ):
        await _linked(connector)
        app.state.sandbox.users[APP_USER].secret = "changed-elsewhere-not-a-secret"
        # One call at a time (list_accounts makes two at once), so the record is settled.
        with pytest.raises(UserSecretInvalid):
            await connector.list_connections(APP_USER)
        assert "pending_rotation" not in await connector.secrets.get(USER_RECORD)
        with pytest.raises(UserSecretInvalid):
            await connector.list_connections(APP_USER)
        assert wire.paths.count("/snapTrade/registerUser") == 1
        assert set(app.state.sandbox.users) == {APP_USER}


class TestSandboxRoute:
    async def test_only_one_reset_loses_its_reply(self, connector, control, app):
        await connector.register_user(APP_USER)
        armed = await control.post(f"/sandbox/users/{APP_USER}/lose-next-reset-reply")
        assert armed.json() == {"userId": APP_USER, "mode": "502", "seconds": 3600}
        secret = app.state.sandbox.users[APP_USER].secret
        with pytest.raises(SnapTradeServerError):
            await connector.client.reset_user_secret(APP_USER, secret)
        rotated = app.state.sandbox.users[APP_USER].secret
        assert rotated != secret
        assert await connector.client.reset_user_secret(APP_USER, rotated) == (
            APP_USER,
            app.state.sandbox.users[APP_USER].secret,
        )

    @pytest.mark.parametrize(
        ("user", "body", "status"),
        [
            ("nobody", {"mode": "502"}, 404),
            (APP_USER, {"mode": "drop"}, 400),
            (APP_USER, {"mode": "hang", "seconds": -1}, 400),
            (APP_USER, {"mode": "hang", "seconds": "soon"}, 400),
        ],
    )
    async def test_bad_requests_are_refused(self, connector, control, user, body, status):
        await connector.register_user(APP_USER)
        answer = await control.post(f"/sandbox/users/{user}/lose-next-reset-reply", json=body)
        assert answer.status_code == status, answer.text
