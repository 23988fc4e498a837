"""The webhook events repository: once per provider and event id, then marked."""

import pytest
from sqlalchemy.exc import IntegrityError

from brokerlink.domain.enums import Provider
from brokerlink.repositories import WebhookEventRepository
from tests.operator.rows import NOW, account, connection

pytestmark = pytest.mark.asyncio


def _repo(session) -> WebhookEventRepository:
    return WebhookEventRepository.from_session(session)


class TestRecord:
    async def test_a_seen_event_id_is_refused_and_nothing_changes(self, session):
        repo = _repo(session)
        first = await repo.record(
            provider=Provider.SNAPTRADE,
            event_id="wh-1",
            event_type="ACCOUNT_HOLDINGS_UPDATED",
            event_at=NOW,
            received_at=NOW,
        )
        again = await repo.record(
            provider=Provider.SNAPTRADE,
            event_id="wh-1",
            event_type="CONNECTION_DELETED",
            event_at=NOW,
            received_at=NOW,
        )
        assert (first, again) == (True, False)
        kept = await repo.get(Provider.SNAPTRADE, "wh-1")
        assert kept is not None
        assert (kept.event_type, kept.result) == ("ACCOUNT_HOLDINGS_UPDATED", "accepted")

    async def test_the_same_id_at_another_provider_is_another_event(self, session):
        repo = _repo(session)
        for provider in (Provider.SNAPTRADE, Provider.PLAID):
            assert await repo.record(
                provider=provider, event_id="same", event_type="X", event_at=None
            )

    async def test_a_result_outside_the_four_kinds_is_refused_by_the_database(self, session):
        with pytest.raises(IntegrityError):
            await _repo(session).record(
                provider=Provider.PLAID,
                event_id="bad",
                event_type="ITEM:ERROR",
                event_at=None,
                result="ok",
            )


class TestMark:
    async def test_marks_the_outcome_and_what_it_concerned(self, session):
        snap = await connection(session, Provider.SNAPTRADE)
        acct = await account(session, snap)
        repo = _repo(session)
        await repo.record(
            provider=Provider.SNAPTRADE, event_id="wh-2", event_type="X", event_at=NOW
        )
        assert await repo.mark(
            provider=Provider.SNAPTRADE,
            event_id="wh-2",
            result="failed",
            error="the account is unknown",
            connection_id=snap.id,
            account_id=acct.id,
        )
        assert await repo.mark(provider=Provider.SNAPTRADE, event_id="wh-2", result="refused:stale")
        marked = await repo.get(Provider.SNAPTRADE, "wh-2")
        assert marked is not None
        await session.refresh(marked)
        assert (marked.result, marked.error) == ("refused:stale", None)
        assert (marked.connection_id, marked.account_id) == (snap.id, acct.id)

    async def test_an_unknown_event_is_not_marked(self, session):
        assert not await _repo(session).mark(
            provider=Provider.PLAID, event_id="never-seen", result="handled"
        )
