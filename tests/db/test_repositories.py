"""The repositories' main operations, on the real schema."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from brokerlink.domain import AccountType, Capabilities, Provider
from brokerlink.models import ConnectionStatus, RefreshStatus, RefreshTrigger
from brokerlink.repositories import (
    MANUAL_ACCOUNT_ID,
    AccountRepository,
    ConnectionRepository,
    CostLedgerRepository,
    EnvelopeSecretRepository,
    PortfolioRepository,
    ProviderCallLogRepository,
    RefreshLogRepository,
    UserRepository,
)
from tests.db.factories import make_graph

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


class TestUserRepository:
    @pytest.mark.asyncio
    async def test_create_get_and_find_by_email(self, session):
        repo = UserRepository.from_session(session)

        user = await repo.create(email="ada@example.com", name="Ada")

        assert user.id is not None
        assert await repo.get(user.id) is user
        assert await repo.get_by_email("ada@example.com") is user
        assert await repo.get_by_email("bob@example.com") is None

    @pytest.mark.asyncio
    async def test_emails_are_unique(self, session):
        repo = UserRepository.from_session(session)
        await repo.create(email="ada@example.com")

        with pytest.raises(sa.exc.IntegrityError):
            async with session.begin_nested():
                await repo.create(email="ada@example.com")


class TestPortfolioRepository:
    @pytest.mark.asyncio
    async def test_default_portfolio_is_created_once(self, session):
        user = await UserRepository.from_session(session).create(email="a@example.com")
        repo = PortfolioRepository.from_session(session)

        first = await repo.get_or_create_default(user.id)
        second = await repo.get_or_create_default(user.id)
        other = await repo.create(user_id=user.id, name="Kids", base_currency="CAD")

        assert first.id == second.id
        assert [p.id for p in await repo.list_for_user(user.id)] == [first.id, other.id]
        assert (await repo.get(other.id)).base_currency == "CAD"


class TestConnectionRepository:
    @pytest.mark.asyncio
    async def test_upsert_is_idempotent_and_updates_the_institution(self, session):
        graph = await make_graph(session)
        repo = ConnectionRepository.from_session(session)

        again = await repo.upsert(
            user_id=graph.user.id,
            provider=Provider.SNAPTRADE,
            provider_connection_id="auth-1",
            institution_name="Questrade Inc.",
        )

        assert again.id == graph.connection.id
        assert again.institution_name == "Questrade Inc."
        assert again.status == ConnectionStatus.ACTIVE
        assert again.created_at.tzinfo is not None

    @pytest.mark.asyncio
    async def test_a_connection_of_another_user_is_refused(self, session):
        graph = await make_graph(session)
        other = await UserRepository.from_session(session).create(email="eve@example.com")

        with pytest.raises(ValueError, match="another user"):
            await ConnectionRepository.from_session(session).upsert(
                user_id=other.id,
                provider=Provider.SNAPTRADE,
                provider_connection_id=graph.connection.provider_connection_id,
                institution_name="X",
            )

    @pytest.mark.asyncio
    async def test_status_sync_and_refresh_stamps(self, session):
        graph = await make_graph(session)
        repo = ConnectionRepository.from_session(session)

        await repo.set_status(graph.connection, ConnectionStatus.BROKEN, "credentials expired")
        await repo.mark_synced(graph.connection, T0)
        await repo.mark_manual_refresh(graph.connection, T0 + timedelta(minutes=1))
        session.expunge_all()

        loaded = await repo.get(graph.connection.id)
        assert (loaded.status, loaded.status_reason) == (
            ConnectionStatus.BROKEN,
            "credentials expired",
        )
        assert loaded.last_synced_at == T0
        assert loaded.last_manual_refresh_at == T0 + timedelta(minutes=1)
        broken = await repo.list_for_user(graph.user.id, status=ConnectionStatus.BROKEN)
        assert [c.id for c in broken] == [graph.connection.id]
        assert await repo.list_for_user(graph.user.id, provider=Provider.PLAID) == []

    @pytest.mark.asyncio
    async def test_manual_connection_and_account(self, session):
        graph = await make_graph(session)
        connections = ConnectionRepository.from_session(session)
        accounts = AccountRepository.from_session(session)

        manual = await connections.get_or_create_manual(graph.user.id)
        account = await accounts.get_or_create_manual(manual)

        assert manual.provider == Provider.MANUAL
        assert manual.id == (await connections.get_or_create_manual(graph.user.id)).id
        assert account.provider_account_id == MANUAL_ACCOUNT_ID
        assert account.type == AccountType.OTHER
        assert account.id == (await accounts.get_or_create_manual(manual)).id


class TestAccountRepository:
    @pytest.mark.asyncio
    async def test_upsert_updates_in_place(self, session):
        graph = await make_graph(session)
        repo = AccountRepository.from_session(session)

        again = await repo.upsert(
            graph.connection,
            provider_account_id="acct-1",
            name="RRSP",
            type=AccountType.RETIREMENT,
            capabilities=Capabilities(trading=True, realtime=True),
        )
        session.expunge_all()

        loaded = await repo.get(again.id)
        assert loaded.id == graph.account.id
        assert (loaded.name, loaded.type) == ("RRSP", AccountType.RETIREMENT)
        assert loaded.capabilities == Capabilities(trading=True, realtime=True)

    @pytest.mark.asyncio
    async def test_lists_by_connection_and_by_user(self, session):
        graph = await make_graph(session)
        repo = AccountRepository.from_session(session)
        second = await repo.upsert(graph.connection, provider_account_id="acct-2")
        await make_graph(session, email="bob@example.com", provider_connection_id="auth-2")

        by_connection = await repo.list_for_connection(graph.connection.id)
        by_user = await repo.list_for_user(graph.user.id)

        assert [a.id for a in by_connection] == [graph.account.id, second.id]
        assert [a.id for a in by_user] == [graph.account.id, second.id]
        assert second.capabilities == Capabilities()


class TestRefreshLogRepository:
    @pytest.mark.asyncio
    async def test_record_complete_latest_and_count(self, session):
        graph = await make_graph(session)
        repo = RefreshLogRepository.from_session(session)

        first = await repo.record(graph.connection, trigger=RefreshTrigger.MANUAL, at=T0)
        await repo.complete(first, RefreshStatus.ACCEPTED, at=T0 + timedelta(seconds=2))
        second = await repo.record(
            graph.connection, trigger=RefreshTrigger.SCHEDULED, at=T0 + timedelta(hours=1)
        )

        assert (await repo.latest(graph.connection.id)).id == second.id
        assert first.completed_at == T0 + timedelta(seconds=2)
        assert first.provider == Provider.SNAPTRADE
        assert await repo.count_since(T0, user_id=graph.user.id) == 2
        assert await repo.count_since(T0, trigger=RefreshTrigger.MANUAL) == 1
        assert (
            await repo.count_since(T0 + timedelta(minutes=1), connection_id=first.connection_id)
            == 1
        )


class TestCostLedgerRepository:
    @pytest.mark.asyncio
    async def test_totals_are_exact_and_filtered(self, session):
        graph = await make_graph(session)
        repo = CostLedgerRepository.from_session(session)
        for minute in range(3):
            await repo.record(
                provider=Provider.SNAPTRADE,
                operation="connection.refresh",
                amount=Decimal("0.1"),
                user_id=graph.user.id,
                at=T0 + timedelta(minutes=minute),
            )
        await repo.record(provider=Provider.PLAID, operation="item.create", amount=Decimal("1.5"))

        assert await repo.total(provider=Provider.SNAPTRADE) == Decimal("0.3")
        assert await repo.total() == Decimal("1.8")
        assert await repo.total(since=T0 + timedelta(minutes=1), user_id=graph.user.id) == Decimal(
            "0.2"
        )
        assert await repo.total(operation="nothing") == Decimal(0)
        assert [e.provider for e in await repo.recent(limit=1)] == [Provider.PLAID]


class TestProviderCallLogRepository:
    @pytest.mark.asyncio
    async def test_record_and_recent(self, session):
        repo = ProviderCallLogRepository.from_session(session)
        await repo.record(
            provider=Provider.SNAPTRADE,
            operation="positions.fetch",
            latency_ms=120,
            result="ok",
            institution="QUESTRADE",
            call_id="ours-1",
            provider_request_id="req-1",
            status_code=200,
            at=T0,
        )
        await repo.record(
            provider=Provider.PLAID,
            operation="holdings.get",
            latency_ms=3000,
            result="RateLimited",
            error_code="RATE_LIMIT_EXCEEDED",
            cost_type="plaid.investments.refresh",
            cost_amount=Decimal("0.12"),
            status_code=429,
            at=T0 + timedelta(seconds=1),
        )

        everything = await repo.recent()
        snaptrade = await repo.recent(provider=Provider.SNAPTRADE, institution="QUESTRADE")

        assert [c.operation for c in everything] == ["holdings.get", "positions.fetch"]
        assert [(c.call_id, c.provider_request_id, c.latency_ms, c.result) for c in snaptrade] == [
            ("ours-1", "req-1", 120, "ok")
        ]
        assert [(c.error_code, c.cost_type, c.cost_amount) for c in everything] == [
            ("RATE_LIMIT_EXCEEDED", "plaid.investments.refresh", Decimal("0.12")),
            (None, None, None),
        ]
        assert await repo.recent(since=T0 + timedelta(seconds=1), limit=5) == everything[:1]


class TestEnvelopeSecretRepository:
    @pytest.mark.asyncio
    async def test_put_get_replace_delete(self, session):
        user = await UserRepository.from_session(session).create(email="a@example.com")
        repo = EnvelopeSecretRepository.from_session(session)

        created = await repo.put(
            "brokerlink/snaptrade/user/1",
            ciphertext=b"\x00cipher\xff",
            wrapped_data_key=b"wrapped",
            key_id="alias/brokerlink",
            user_id=user.id,
        )
        replaced = await repo.put(
            "brokerlink/snaptrade/user/1",
            ciphertext=b"second",
            wrapped_data_key=b"wrapped2",
            key_id="alias/other",
            user_id=user.id,
        )

        assert replaced.id == created.id
        loaded = await repo.get("brokerlink/snaptrade/user/1")
        assert (loaded.ciphertext, loaded.wrapped_data_key, loaded.key_id) == (
            b"second",
            b"wrapped2",
            "alias/other",
        )
        assert await repo.delete("brokerlink/snaptrade/user/1") is True
        assert await repo.delete("brokerlink/snaptrade/user/1") is False
        assert await repo.get("brokerlink/snaptrade/user/1") is None

    @pytest.mark.asyncio
    async def test_list_by_prefix_is_exact_and_case_sensitive(self, session):
        repo = EnvelopeSecretRepository.from_session(session)
        names = [
            "brokerlink/a",
            "brokerlink/b",
            "BROKERLINK/c",
            "brokerlinkX/d",
            "broker_link/e",
            "brokerlink%/f",
        ]
        for name in names:
            await repo.put(name, ciphertext=b"c", wrapped_data_key=b"k", key_id="k")

        def listed(rows):
            return [r.name for r in rows]

        assert listed(await repo.list_by_prefix("brokerlink/")) == ["brokerlink/a", "brokerlink/b"]
        assert listed(await repo.list_by_prefix("broker_")) == ["broker_link/e"]
        assert listed(await repo.list_by_prefix("brokerlink%")) == ["brokerlink%/f"]
        assert len(await repo.list_by_prefix("")) == len(names)
