"""Connections, not the secret store, know the Plaid items.

Every test runs the whole stack (tests/fixtures/stack.py) on SQLite and PostgreSQL with the real
encrypted local secret store, wrapped to count what is read: a connector call reads exactly one
secret and lists none; a webhook finds its connection by index and reads nothing; the
connection's status is the one re-login truth; records of older versions move on first read.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from brokerlink.cli.demo import log_in_hosted_link
from brokerlink.connections.items import ConnectionItems
from brokerlink.domain.enums import Provider
from brokerlink.domain.errors import ReconnectRequired
from brokerlink.models import Connection, ConnectionStatus
from brokerlink.providers.plaid import PlaidConnector
from brokerlink.repositories import AccountRepository, ConnectionRepository
from brokerlink.secrets import LocalSecretStore, SecretValue, generate_key
from brokerlink.secrets.local import decode_key
from brokerlink.secrets.store import (
    plaid_access_token_name,
    plaid_access_token_prefix,
    plaid_slug_access_token_name,
)
from brokerlink.sync.engine import SyncEngine
from tests.fixtures.stack import REDIRECT, Stack, open_stack

pytestmark = pytest.mark.asyncio


@dataclass
class CountingStore:
    """A real secret store, with every read and listing recorded."""

    inner: LocalSecretStore
    gets: list[str] = field(default_factory=list)
    lists: list[str] = field(default_factory=list)

    async def put(self, name: str, value: SecretValue) -> None:
        await self.inner.put(name, value)

    async def get(self, name: str) -> SecretValue:
        self.gets.append(name)
        return await self.inner.get(name)

    async def delete(self, name: str) -> None:
        await self.inner.delete(name)

    async def list(self, prefix: str = "") -> list[str]:
        self.lists.append(prefix)
        return await self.inner.list(prefix)

    def reset(self) -> None:
        self.gets.clear()
        self.lists.clear()


@dataclass
class World:
    stack: Stack
    store: CountingStore

    async def connection(self, item_id: str) -> Connection:
        async with self.stack.sessionmaker() as session:
            found = await ConnectionRepository.from_session(session).get_by_provider_id(
                Provider.PLAID, item_id
            )
            assert found is not None
            return found

    async def accounts(self, connection_id: int) -> list[str]:
        async with self.stack.sessionmaker() as session:
            stored = await AccountRepository.from_session(session).list_for_connection(
                connection_id
            )
            return [a.provider_account_id for a in stored]

    def fresh_connector(self) -> PlaidConnector:
        """Another process's connector: nothing learnt in memory yet."""
        return PlaidConnector(
            self.stack.plaid_client,
            self.store,
            items=ConnectionItems(self.stack.sessionmaker),
        )

    async def sync(self, user_id: int) -> Any:
        engine = SyncEngine(self.stack.sessionmaker, {Provider.PLAID: self.stack.plaid})
        return await engine.sync_user(user_id)


@pytest_asyncio.fixture
async def world(engine: AsyncEngine, tmp_path: Path) -> AsyncIterator[World]:
    store = CountingStore(
        LocalSecretStore(tmp_path / "secrets.json", key=decode_key(generate_key()))
    )
    async with open_stack(engine, store) as stack:
        yield World(stack, store)


async def _two_items(world: World) -> tuple[int, Connection, Connection]:
    user_id = await world.stack.new_user()
    chase = (await world.stack.link(user_id, "chase")).connection
    wells = (await world.stack.link(user_id, "wells fargo")).connection
    assert chase.provider is wells.provider is Provider.PLAID
    return user_id, chase, wells


async def test_the_secret_store_holds_one_token_per_connection(world):
    user_id, chase, wells = await _two_items(world)
    names = await world.store.inner.list(plaid_access_token_prefix(str(user_id)))
    assert names == sorted(
        plaid_access_token_name(str(user_id), c.provider_connection_id) for c in (chase, wells)
    )
    for name in names:
        assert list(await world.store.inner.get(name)) == ["access_token"]
    # The metadata is the connection's.
    stored = await world.connection(chase.provider_connection_id)
    assert (stored.institution_name, stored.provider_institution_id) == ("Chase", "ins_56")


async def test_each_connector_call_reads_exactly_one_secret(world):
    user_id, chase, wells = await _two_items(world)
    user = str(user_id)
    name = {c.id: plaid_access_token_name(user, c.provider_connection_id) for c in (chase, wells)}
    world.store.reset()

    summary = await world.sync(user_id)
    assert summary.connections_ok == 2
    accounts = sum(len(c.accounts) for c in summary.connections)
    # One read per Item for its accounts, one per account for its holdings; no listing.
    assert len(world.store.gets) == 2 + accounts
    assert world.store.lists == []

    # A process that has listed nothing finds an account's Item through the store's accounts.
    connector = world.fresh_connector()
    for connection in (chase, wells):
        for account_id in await world.accounts(connection.id):
            world.store.reset()
            assert await connector.get_holdings(user, account_id)
            assert world.store.gets == [name[connection.id]]
            world.store.reset()
            assert await connector.get_balances(user, account_id)
            assert world.store.gets == [name[connection.id]]
    world.store.reset()
    await connector.create_link(user, update_item_id=wells.provider_connection_id)
    assert world.store.gets == [name[wells.id]]
    world.store.reset()
    assert len(await connector.list_connections(user)) == 2
    assert (world.store.gets, world.store.lists) == ([], [])


async def test_a_webhook_finds_its_connection_by_index_and_reads_no_secret(world):
    user_id, chase, wells = await _two_items(world)
    item = chase.provider_connection_id
    account_id = (await world.accounts(chase.id))[0]
    world.store.reset()
    hook = {
        "webhook_type": "ITEM",
        "webhook_code": "ERROR",
        "item_id": item,
        "error": {"error_type": "ITEM_ERROR", "error_code": "ITEM_LOGIN_REQUIRED"},
    }
    outcome = await world.stack.plaid.handle_webhook(hook)
    assert (outcome.action, outcome.user_id) == ("login_required", str(user_id))
    assert (world.store.gets, world.store.lists) == ([], [])
    assert (await world.connection(item)).status is ConnectionStatus.BROKEN
    assert (await world.connection(wells.provider_connection_id)).status is ConnectionStatus.ACTIVE

    # The status blocks the Item's calls before Plaid is asked (or a secret read).
    before = world.stack.plaid_wire.total
    with pytest.raises(ReconnectRequired):
        await world.stack.plaid.get_holdings(str(user_id), account_id)
    assert world.stack.plaid_wire.total == before
    assert world.store.gets == []

    await world.stack.plaid.handle_webhook({**hook, "webhook_code": "LOGIN_REPAIRED"})
    assert (await world.connection(item)).status is ConnectionStatus.ACTIVE
    await world.stack.plaid.handle_webhook(
        {
            "webhook_type": "ITEM",
            "webhook_code": "PENDING_EXPIRATION",
            "item_id": item,
            "consent_expiration_time": "2026-12-20T00:00:00Z",
        }
    )
    stored = await world.connection(item)
    assert stored.reconnect_by == datetime(2026, 12, 20, tzinfo=UTC)
    assert stored.status is ConnectionStatus.ACTIVE
    unknown = await world.stack.plaid.handle_webhook({**hook, "item_id": "item-nobody-linked"})
    assert unknown.action == "ignored"
    assert (world.store.gets, world.store.lists) == ([], [])


async def test_login_required_is_the_connection_status_until_update_mode(world):
    user_id, chase, wells = await _two_items(world)
    item = chase.provider_connection_id
    token = (await world.store.inner.get(plaid_access_token_name(str(user_id), item)))[
        "access_token"
    ]
    await world.stack.plaid_client.request("/sandbox/item/reset_login", {"access_token": token})

    summary = await world.sync(user_id)
    outcomes = {c.connection_id: c for c in summary.connections}
    assert outcomes[chase.id].broken
    stored = await world.connection(item)
    assert stored.status is ConnectionStatus.BROKEN
    assert "ITEM_LOGIN_REQUIRED" in (stored.status_reason or "")
    # The other Item only could not be read this time: not marked as needing a login.
    assert not outcomes[wells.id].broken
    assert (await world.connection(wells.provider_connection_id)).status is ConnectionStatus.ACTIVE

    # Update mode (Link with the Item's own token), then its completion clears the status.
    mounts = {"http://plaid.sandbox": httpx.ASGITransport(app=world.stack.plaid_app)}
    async with world.stack.sessionmaker() as session, httpx.AsyncClient(mounts=mounts) as browser:
        links = world.stack.links(session)
        start = await links.reconnect(user_id, chase.id, redirect_uri=REDIRECT)
        await log_in_hosted_link(browser, start.url)
        await links.complete_reconnect(user_id, chase.id)
        await session.commit()
    assert (await world.connection(item)).status is ConnectionStatus.ACTIVE
    assert (await world.sync(user_id)).connections_ok == 2


async def test_records_of_older_versions_move_to_the_item_on_first_read(world):
    user_id, chase, _wells = await _two_items(world)
    user, item = str(user_id), chase.provider_connection_id
    # The store as an older version left it: the token under the institution's slug, with the
    # Item's metadata beside it; the connection as it was, without Plaid's institution id.
    new_name = plaid_access_token_name(user, item)
    token = (await world.store.inner.get(new_name))["access_token"]
    await world.store.inner.delete(new_name)
    old_name = plaid_slug_access_token_name(user, "chase")
    await world.store.inner.put(
        old_name,
        {
            "access_token": token,
            "item_id": item,
            "institution_id": "ins_56",
            "institution_name": "Chase",
            "created_at": "2026-11-24T12:00:00+00:00",
            "login_required": False,
        },
    )
    async with world.stack.sessionmaker() as session:
        stored = await ConnectionRepository.from_session(session).get(chase.id)
        assert stored is not None
        stored.provider_institution_id = None
        await session.commit()
    account_id = (await world.accounts(chase.id))[0]
    connector = world.fresh_connector()
    world.store.reset()

    assert await connector.get_holdings(user, account_id)
    assert world.store.lists == [plaid_access_token_prefix(user)]  # found once
    assert await world.store.inner.get(new_name) == {"access_token": token}
    assert old_name not in await world.store.inner.list(plaid_access_token_prefix(user))
    assert (await world.connection(item)).provider_institution_id == "ins_56"

    world.store.reset()
    assert await connector.get_holdings(user, account_id)
    assert (world.store.gets, world.store.lists) == ([new_name], [])
    assert (await world.sync(user_id)).connections_ok == 2


async def test_an_old_re_login_mark_becomes_the_connection_status(world):
    user_id, chase, _wells = await _two_items(world)
    user, item = str(user_id), chase.provider_connection_id
    new_name = plaid_access_token_name(user, item)
    token = (await world.store.inner.get(new_name))["access_token"]
    await world.store.inner.delete(new_name)
    await world.store.inner.put(
        plaid_slug_access_token_name(user, "chase"),
        {"access_token": token, "item_id": item, "login_required": True},
    )
    # Update mode reads the token (and so moves the record) whatever the Item's state.
    await world.fresh_connector().create_link(user, update_item_id=item)
    assert (await world.connection(item)).status is ConnectionStatus.BROKEN
    assert await world.store.inner.get(new_name) == {"access_token": token}
