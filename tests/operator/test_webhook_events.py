"""The webhook events repository: once per provider and event id, then marked."""

from datetime import timedelta

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

    async def test_a_result_outside_the_five_kinds_is_refused_by_the_database(self, session):
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


class TestCopies:
    async def test_the_verified_deliveries_of_a_body_signed_since_oldest_first(self, session):
        repo = _repo(session)
        body, other = "ab" * 32, "cd" * 32
        rows = [
            # event id, provider, body, signed, result
            ("too-old", Provider.PLAID, body, NOW - timedelta(hours=25), "handled"),
            ("failed", Provider.PLAID, body, NOW - timedelta(hours=2), "failed"),
            ("handled", Provider.PLAID, body, NOW - timedelta(hours=1), "handled"),
            ("ignored", Provider.PLAID, body, NOW - timedelta(minutes=1), "ignored"),
            (f"sha256:{body}", Provider.PLAID, body, None, "refused:replayed"),
            ("other-body", Provider.PLAID, other, NOW, "handled"),
            ("other-provider", Provider.SNAPTRADE, body, NOW, "handled"),
        ]
        for event_id, provider, digest, signed, result in rows:
            assert await repo.record(
                provider=provider,
                event_id=event_id,
                event_type="HOLDINGS:DEFAULT_UPDATE",
                event_at=signed,
                result=result,
                body_sha256=digest,
            )

        copies = await repo.copies(Provider.PLAID, body, signed_since=NOW - timedelta(hours=24))

        assert [c.event_id for c in copies] == ["failed", "handled", "ignored"]
        assert await repo.copies(Provider.PLAID, "ef" * 32, signed_since=NOW) == []

    async def test_the_body_lock_can_be_taken_twice_in_one_transaction(self, session):
        repo = _repo(session)
        await repo.lock_body(Provider.PLAID, "ab" * 32)
        await repo.lock_body(Provider.PLAID, "ab" * 32)
